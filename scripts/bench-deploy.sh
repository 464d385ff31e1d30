#!/usr/bin/env bash
# Deploy benchmark (not a test): prints three tables measured side by side in
# one run on the local Docker engine.
#
# 1. Updating a service whose start-up takes 2 s while oha sends a fixed
#    1,000 requests/s for 60 s: failed requests and the longest request for
#    Docker Compose v5 `up -d` (recreate) and for each of our strategies;
#    then the time from command to all-healthy for 3 replicas, fresh, for
#    `docker compose up -d --wait` and for our `deploy` (median of 3).
# 2. The proxy against nginx and Caddy: scripts/bench-proxy.sh (see its
#    header), run from here with the same release build.
# 3. Command time and failed requests of an update of 2 replicas (2 s
#    start-up) with rolling, blue-green and canary (bake excluded) vs
#    `docker compose up -d`, for an image whose PID 1 handles SIGTERM and
#    one whose PID 1 ignores it (IGNORE_TERM=1, as busybox httpd does), at
#    $RATE req/s for DURATION3 s (default 40). Compose publishes a port per
#    replica (18440-18441); its load goes to the first.
#
# Needs: docker (running), oha (`cargo install oha --locked`), the
# validators venv from scripts/test.sh (for docker-compose v5); table 2
# also nginx and caddy (its script's header). Override with OHA=,
# COMPOSE=. DURATION (default 60) and RATE (default 1000) tune table 1.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-60}
RATE=${RATE:-1000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/deployment-manager-target}
OHA=${OHA:-$(command -v oha || echo "$HOME/.cache/dm-tools/bin/oha")}
COMPOSE=${COMPOSE:-${DM_VALIDATORS_VENV:-$HOME/.cache/deployment-manager-venv}/bin/docker-compose}
for tool in "$OHA" "$COMPOSE"; do
  [ -x "$tool" ] || { echo "missing $tool (see the header of this script)"; exit 1; }
done

echo "building release binaries..." >&2
cargo build --release --locked --quiet
DM=$CARGO_TARGET_DIR/release/deployment-manager
WORK=$(mktemp -d)
export DEPLOYMENT_MANAGER_STATE=$WORK/state.db DM_QUIET=1 NO_COLOR=1
IMAGE=dm-bench/server:1

# The test server image, FROM scratch.
TS_TARGET=$HOME/.cache/dm-testserver-target
(cd testkit/testserver && RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release \
  --target x86_64-unknown-linux-gnu --target-dir "$TS_TARGET")
cp "$TS_TARGET/x86_64-unknown-linux-gnu/release/dm-testserver" "$WORK/server"
printf 'FROM scratch\nCOPY server /server\nUSER 10001:10001\nENTRYPOINT ["/server"]\n' > "$WORK/Dockerfile"
docker build -q -t "$IMAGE" "$WORK" >/dev/null

cleanup() {
  "$COMPOSE" -p dmbench -f "$WORK/compose.yaml" down -t 1 >/dev/null 2>&1 || true
  for p in bench-rolling bench-blue-green bench-canary bench-recreate bench-fresh; do
    "$DM" destroy "$p" --volumes >/dev/null 2>&1 || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

app() { # name version port replicas
  cat > "$WORK/$1-$2.yaml" <<EOF
apiVersion: deployment-manager/v1
kind: App
name: $1
services:
  web:
    image: $IMAGE
    ports:
      - port: 8080
        public: true
        published: $3
    env:
      VERSION: $2
      STARTUP_DELAY_MS: "2000"
    replicas: $4
    health:
      http: /health
EOF
  echo "$WORK/$1-$2.yaml"
}

compose_file() { # version replicas [ports] [ignore-SIGTERM 0/1]
  # One replica publishes port 18400 unless ports are given.
  local ports=${3:-'ports: ["18400:8080"]'}
  [ -z "${3:-}" ] && [ "$2" -gt 1 ] && ports=''
  cat > "$WORK/compose.yaml" <<EOF
services:
  web:
    image: $IMAGE
    environment:
      VERSION: $1
      STARTUP_DELAY_MS: "2000"
      IGNORE_TERM: "${4:-0}"
    $ports
    deploy:
      replicas: $2
    healthcheck:
      test: ["CMD", "/server", "healthcheck"]
      interval: 1s
      timeout: 2s
      retries: 30
EOF
}

# Runs oha at $RATE/s for $DURATION s while "$@" runs after 10 s; prints
# "failed total longest_ms command_s".
under_load() {
  local port=$1; shift
  # Requests still in flight at the deadline finish rather than counting
  # as aborted errors.
  "$OHA" -z "${DURATION}s" -q "$RATE" -c 50 --wait-ongoing-requests-after-deadline --no-tui --output-format json \
    "http://127.0.0.1:$port/" > "$WORK/oha.json" &
  local oha=$!
  sleep 10
  local t0; t0=$(date +%s.%N)
  "$@" >/dev/null 2>"$WORK/cmd.err" || { echo "command failed:" >&2; cat "$WORK/cmd.err" >&2; }
  local t1; t1=$(date +%s.%N)
  wait $oha
  python3 - "$WORK/oha.json" "$t0" "$t1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
codes = d.get("statusCodeDistribution", {})
ok = sum(n for c, n in codes.items() if c.startswith("2"))
errors = sum(d.get("errorDistribution", {}).values())
total = sum(codes.values()) + errors
print(total - ok, total, round(d["summary"]["slowest"] * 1000, 1), round(float(sys.argv[3]) - float(sys.argv[2]), 1))
bad = {c: n for c, n in codes.items() if not c.startswith("2")}
bad.update(d.get("errorDistribution", {}))
print("  failures:", bad or "none", file=sys.stderr)
EOF
}

declare -a ROWS
row() {
  ROWS+=("$(printf '| %-26s | %9s | %8s | %5s | %12s | %9s |' "$@")")
  echo "${ROWS[-1]}" >&2
}

# TABLES=1, 2 or 3 (or a mix, as 13) runs only those tables.
TABLES=${TABLES:-123}
if [[ $TABLES == *1* ]]; then
echo "table 1: updating under $RATE requests/s for $DURATION s..." >&2
compose_file v1 1
"$COMPOSE" -p dmbench -f "$WORK/compose.yaml" up -d --wait >/dev/null 2>&1
compose_file v2 1
read -r f t s c < <(under_load 18400 "$COMPOSE" -p dmbench -f "$WORK/compose.yaml" up -d)
row "docker compose v5 up -d" "$f" "$t" "$(python3 -c "print(f'{100*$f/max($t,1):.2f}%')")" "$s" "$c"
"$COMPOSE" -p dmbench -f "$WORK/compose.yaml" down -t 1 >/dev/null 2>&1

port=18401
for strategy in rolling blue-green canary recreate; do
  p=bench-$strategy
  "$DM" profile delete "$p" >/dev/null 2>&1 || true
  "$DM" profile create "$p" "$(app "$p" v1 $port 1)" >/dev/null
  "$DM" deploy "$p" --bake 0s >/dev/null
  extra=()
  [ "$strategy" = canary ] && extra=(--canary-steps 10,50,100 --pause 8s --analysis-interval 2s)
  read -r f t s c < <(under_load $port "$DM" deploy "$p" --app "$(app "$p" v2 $port 1)" \
    --strategy "$strategy" --bake 5s "${extra[@]}")
  row "deployment-manager $strategy" "$f" "$t" "$(python3 -c "print(f'{100*$f/max($t,1):.2f}%')")" "$s" "$c"
  "$DM" destroy "$p" --volumes >/dev/null
  port=$((port + 1))
done

echo "time to all-healthy, 3 replicas with 2 s start-up (3 runs each)..." >&2
median() { python3 -c "import statistics,sys; print(f'{statistics.median(map(float, sys.argv[1:])):.2f}')" "$@"; }
declare -a CT OT
for i in 1 2 3; do
  compose_file v1 3
  t0=$(date +%s.%N)
  "$COMPOSE" -p dmbench -f "$WORK/compose.yaml" up -d --wait >/dev/null 2>&1
  CT+=("$(python3 -c "print($(date +%s.%N) - $t0)")")
  "$COMPOSE" -p dmbench -f "$WORK/compose.yaml" down -t 1 >/dev/null 2>&1
  "$DM" profile delete bench-fresh >/dev/null 2>&1 || true
  "$DM" profile create bench-fresh "$(app bench-fresh v1 18410 3)" >/dev/null
  t0=$(date +%s.%N)
  "$DM" deploy bench-fresh --bake 0s >/dev/null
  OT+=("$(python3 -c "print($(date +%s.%N) - $t0)")")
  "$DM" destroy bench-fresh --volumes >/dev/null
done

echo
echo "Table 1: update of a service with 2 s start-up under $RATE req/s for $DURATION s (oha), one run each, $(date -u +%F)"
echo "| what                       | failed    | of       | share | longest (ms) | command s |"
echo "|----------------------------|-----------|----------|-------|--------------|-----------|"
printf '%s\n' "${ROWS[@]}"
echo
echo "From command to all 3 replicas healthy (median of 3): docker compose up -d --wait $(median "${CT[@]}") s; deployment-manager deploy $(median "${OT[@]}") s (runs: compose ${CT[*]}; ours ${OT[*]})"

fi
if [[ $TABLES == *3* ]]; then
echo "table 3: update time of 2 replicas, SIGTERM handled or ignored..." >&2
DURATION3=${DURATION3:-40}
declare -a ROWS3
pair_app() { # name version port ignore(0/1)
  local f; f=$(app "$1" "$2" "$3" 2)
  sed -i "s/      STARTUP_DELAY_MS: \"2000\"/      STARTUP_DELAY_MS: \"2000\"\n      IGNORE_TERM: \"$4\"/" "$f"
  echo "$f"
}
for ignore in 0 1; do
  pid1=$([ "$ignore" = 1 ] && echo "ignores SIGTERM" || echo "handles SIGTERM")
  compose_file v1 2 'ports: ["18440-18441:8080"]' "$ignore"
  "$COMPOSE" -p dmbench -f "$WORK/compose.yaml" up -d --wait >/dev/null 2>&1
  compose_file v2 2 'ports: ["18440-18441:8080"]' "$ignore"
  DURATION_SAVED=$DURATION; DURATION=$DURATION3
  read -r f t s c < <(under_load 18440 "$COMPOSE" -p dmbench -f "$WORK/compose.yaml" up -d)
  ROWS3+=("$(printf '| %-28s | %-15s | %6s | %6s | %9s |' "docker compose v5 up -d" "$pid1" "$f" "$t" "$c")")
  echo "${ROWS3[-1]}" >&2
  "$COMPOSE" -p dmbench -f "$WORK/compose.yaml" down -t 1 >/dev/null 2>&1
  port=18450
  for strategy in rolling blue-green canary; do
    p=bench-$strategy
    "$DM" profile delete "$p" >/dev/null 2>&1 || true
    "$DM" profile create "$p" "$(pair_app "$p" v1 $port "$ignore")" >/dev/null
    "$DM" deploy "$p" --bake 0s >/dev/null
    extra=()
    [ "$strategy" = canary ] && extra=(--canary-steps 50,100 --pause 2s --analysis-interval 1s)
    read -r f t s c < <(under_load $port "$DM" deploy "$p" --app "$(pair_app "$p" v2 $port "$ignore")" \
      --strategy "$strategy" --bake 0s --drain-timeout 2s --cleanup "${extra[@]}")
    ROWS3+=("$(printf '| %-28s | %-15s | %6s | %6s | %9s |' "deployment-manager $strategy" "$pid1" "$f" "$t" "$c")")
    echo "${ROWS3[-1]}" >&2
    "$DM" destroy "$p" --volumes >/dev/null
    port=$((port + 1))
  done
  DURATION=$DURATION_SAVED
done
echo
echo "Table 3: update of 2 replicas (2 s start-up) under $RATE req/s for $DURATION3 s (oha), bake 0 s, drain 2 s, stop timeout 30 s, $(date -u +%F)"
echo "| what                         | PID 1           | failed | of     | command s |"
echo "|------------------------------|-----------------|--------|--------|-----------|"
printf '%s\n' "${ROWS3[@]}"
fi
if [[ $TABLES == *2* ]]; then
# The proxy's table has its own script: a keep-alive upstream, interleaved
# rounds, nginx and Caddy beside ours.
DM=$DM bash scripts/bench-proxy.sh
fi
