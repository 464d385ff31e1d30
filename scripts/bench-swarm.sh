#!/usr/bin/env bash
# Swarm deploy benchmark (not a test): on the local single-node swarm, a
# service of 3 replicas whose start-up takes 2 s, deployed with
# `docker stack deploy` and with `deployment-manager deploy` (profile
# target swarm), side by side in one run. Prints one table:
# - fresh deploy: from the command to 3 of 3 replicas healthy (median of 3);
# - update to a new version: from the command to converged, and failed
#   requests when oha sends a fixed RATE req/s for DURATION s through the
#   service's public port with the update started after 10 s.
#
# The stack publishes through the swarm routing mesh, which needs IPVS in
# the kernel; where /proc/net/ip_vs is missing (as on the machines this
# project is built on) its load column says so instead of a number.
#
# Needs: docker (running; the script runs `docker swarm init` if needed),
# oha (`cargo install oha --locked`), bc. RATE (default 500), DURATION (40).
set -euo pipefail
cd "$(dirname "$0")/.."

RATE=${RATE:-500}
DURATION=${DURATION:-40}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/deployment-manager-target}
OHA=${OHA:-$(command -v oha || echo "$HOME/.cache/dm-tools/bin/oha")}
[ -x "$OHA" ] || { echo "missing oha (cargo install oha --locked)"; exit 1; }
[ "$(docker info --format '{{.Swarm.LocalNodeState}}')" = active ] ||
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null

echo "building release binaries..." >&2
cargo build --release --locked --quiet
DM=$CARGO_TARGET_DIR/release/deployment-manager
WORK=$(mktemp -d)
export DEPLOYMENT_MANAGER_STATE=$WORK/state.db DM_QUIET=1 NO_COLOR=1
IMAGE=dm-bench/server:1
TS_TARGET=$HOME/.cache/dm-testserver-target
(cd testkit/testserver && RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release \
  --target x86_64-unknown-linux-gnu --target-dir "$TS_TARGET")
cp "$TS_TARGET/x86_64-unknown-linux-gnu/release/dm-testserver" "$WORK/server"
printf 'FROM scratch\nCOPY server /server\nUSER 10001:10001\nENTRYPOINT ["/server"]\n' > "$WORK/Dockerfile"
docker build -q -t "$IMAGE" "$WORK" >/dev/null

PORT_STACK=18451
PORT_DM=18452
cleanup() {
  docker stack rm dmbs >/dev/null 2>&1 || true
  "$DM" destroy bench-swarm --volumes >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

stack() { # version
  cat > "$WORK/stack-$1.yaml" <<YAML
services:
  web:
    image: $IMAGE
    environment: {VERSION: "$1", STARTUP_DELAY_MS: "2000"}
    healthcheck: {test: ["CMD", "/server", "healthcheck"], interval: 1s, timeout: 5s, retries: 2, start_period: 5s}
    ports: [{target: 8080, published: $PORT_STACK, mode: ingress}]
    deploy:
      replicas: 3
      update_config: {parallelism: 1, order: start-first, failure_action: rollback, monitor: 9s}
YAML
}

app() { # version
  cat > "$WORK/app-$1.yaml" <<YAML
apiVersion: deployment-manager/v1
kind: App
name: bench-swarm
services:
  web:
    image: $IMAGE
    ports:
      - port: 8080
        public: true
        published: $PORT_DM
    env:
      VERSION: $1
      STARTUP_DELAY_MS: "2000"
    replicas: 3
    health:
      command: ["/server", "healthcheck"]
      interval: 1s
      retries: 2
      start_period: 5s
YAML
}

now() { date +%s.%N; }
elapsed() { printf '%.2f' "$(echo "$2 - $1" | bc -l)"; }
median() { printf '%s\n' "$@" | sort -n | sed -n 2p; }

# Until 3 tasks of version $1 run (healthy) and no update is in flight.
stack_ready() {
  for _ in $(seq 1 900); do
    local n state envv
    n=$(docker service ps dmbs_web --filter desired-state=running --format '{{.CurrentState}}' 2>/dev/null | grep -c '^Running' || true)
    state=$(docker service inspect dmbs_web --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}' 2>/dev/null || echo missing)
    envv=$(docker service inspect dmbs_web --format '{{range .Spec.TaskTemplate.ContainerSpec.Env}}{{.}} {{end}}' 2>/dev/null || true)
    if [ "$n" = 3 ] && [ "$state" != updating ] && [[ "$envv" == *"VERSION=$1"* ]]; then return 0; fi
    sleep 0.2
  done
  echo "stack did not converge" >&2
  return 1
}

# `docker stack rm` returns before its containers and network are gone; a
# new deploy of the same stack fails while the network still exists.
stack_gone() {
  docker stack rm dmbs >/dev/null 2>&1 || true
  for _ in $(seq 1 300); do
    [ -z "$(docker ps -aq --filter label=com.docker.stack.namespace=dmbs)" ] &&
      [ -z "$(docker network ls -q --filter name=dmbs_default)" ] && return 0
    sleep 0.2
  done
}

fresh_profile() {
  "$DM" destroy bench-swarm >/dev/null 2>&1 || true
  rm -f "$WORK"/state.db*
  "$DM" profile create bench-swarm "$WORK/app-v1.yaml" >/dev/null
  "$DM" profile set bench-swarm target swarm >/dev/null
}

stack v1
stack v2
app v1
app v2

echo "fresh deploys (3 rounds, alternating)..." >&2
S=()
D=()
for _ in 1 2 3; do
  stack_gone
  t0=$(now)
  docker stack deploy -c "$WORK/stack-v1.yaml" dmbs >/dev/null 2>"$WORK/err" || { cat "$WORK/err"; exit 1; }
  stack_ready v1
  S+=("$(elapsed "$t0" "$(now)")")
  fresh_profile
  t0=$(now)
  "$DM" deploy bench-swarm --bake 0s >/dev/null
  D+=("$(elapsed "$t0" "$(now)")")
done

load() { # port, output file; runs in the background ($! is its pid)
  "$OHA" -z "${DURATION}s" -q "$RATE" -c 16 --no-tui --wait-ongoing-requests-after-deadline \
    --output-format json "http://127.0.0.1:$1/" > "$2" 2>/dev/null &
}
failed() {
  python3 -c "
import json, sys
d = json.load(open(sys.argv[1]))
codes = d['statusCodeDistribution']
bad = sum(v for k, v in codes.items() if k != '200') + sum(d.get('errorDistribution', {}).values())
print(bad, codes.get('200', 0) + bad)" "$1"
}

echo "updates..." >&2
if [ -e /proc/net/ip_vs ]; then
  load $PORT_STACK "$WORK/stack.json"
  pid=$!
  sleep 10
  t0=$(now)
  docker stack deploy -c "$WORK/stack-v2.yaml" dmbs >/dev/null 2>"$WORK/err" || { cat "$WORK/err"; exit 1; }
  stack_ready v2
  SU=$(elapsed "$t0" "$(now)")
  wait "$pid" || true
  read -r SF SN < <(failed "$WORK/stack.json")
else
  t0=$(now)
  docker stack deploy -c "$WORK/stack-v2.yaml" dmbs >/dev/null 2>"$WORK/err" || { cat "$WORK/err"; exit 1; }
  stack_ready v2
  SU=$(elapsed "$t0" "$(now)")
  SF="n/a: no IPVS"
  SN="-"
fi
load $PORT_DM "$WORK/dm.json"
pid=$!
sleep 10
t0=$(now)
"$DM" deploy bench-swarm --app "$WORK/app-v2.yaml" --bake 0s >/dev/null
DU=$(elapsed "$t0" "$(now)")
wait "$pid" || true
read -r DF DN < <(failed "$WORK/dm.json")

echo
echo "Swarm: 3 replicas with 2 s start-up on a single-node swarm, $(date +%F); fresh = median of 3 (runs in brackets); update under a fixed $RATE req/s for ${DURATION}s (oha)"
row() { printf '| %-26s | %-30s | %-10s | %-15s | %-7s |\n' "$@"; }
row what "fresh → 3/3 healthy (s)" "update (s)" "failed requests" "of"
echo "|----------------------------|--------------------------------|------------|-----------------|---------|"
row "docker stack deploy" "$(median "${S[@]}") [${S[*]}]" "$SU" "$SF" "$SN"
row "deployment-manager deploy" "$(median "${D[@]}") [${D[*]}]" "$DU" "$DF" "$DN"
