#!/usr/bin/env bash
# Proxy benchmark (not a test): one table, measured side by side in one run
# on loopback against the same upstream, for a direct connection, our
# proxy, nginx (Debian) and Caddy (Debian).
#
# - Upstream: an nginx worker answering `200 v1` from memory, HTTP/1.1
#   keep-alive (up to 100,000 requests per connection), so no path opens a
#   connection per request: earlier runs against the test server (which
#   closes every connection) filled the port range with TIME_WAIT and gave
#   the same path 700 and 5,300 req/s in consecutive rounds.
# - Throughput: $DURATION s at 32 keep-alive connections (oha).
#   Latency: $DURATION s at a fixed 1,000 req/s over 16 connections.
# - $ROUNDS interleaved rounds (the order of the paths rotates each round);
#   each cell is the median with min–max.
#
# Needs: oha (`cargo install oha --locked`), nginx (`apt-get install -y
# nginx-light`), caddy (`apt-get install -y caddy`). Override with OHA=,
# NGINX=, CADDY=, DM= (a release build of deployment-manager; built when
# unset), ROUNDS= (default 5) and DURATION= (default 10). DM_BEFORE= adds
# an earlier build's proxy as one more path (`before`), for a comparison
# of two builds in the same rounds.
set -euo pipefail
cd "$(dirname "$0")/.."

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/deployment-manager-target}
OHA=${OHA:-$(command -v oha || echo "$HOME/.cache/dm-tools/bin/oha")}
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
CADDY=${CADDY:-$(command -v caddy || echo /usr/bin/caddy)}
for tool in "$OHA" "$NGINX" "$CADDY"; do
  [ -x "$tool" ] || { echo "missing $tool (see the header of this script)"; exit 1; }
done
if [ -z "${DM:-}" ]; then
  echo "building the release binary..." >&2
  cargo build --release --locked --quiet
  DM=$CARGO_TARGET_DIR/release/deployment-manager
fi

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for f in "$WORK"/*.pid; do [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

UP=18430 NGX=18431 OURS=18432 ADMIN=18433 CDY=18434 BEFORE=18435
cat > "$WORK/upstream.conf" <<EOF
worker_processes 1;
pid $WORK/upstream.pid;
error_log $WORK/upstream-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000;
  server { listen 127.0.0.1:$UP; location / { return 200 "v1\n"; } }
}
EOF
cat > "$WORK/nginx.conf" <<EOF
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 100000;
  upstream app { server 127.0.0.1:$UP; keepalive 64; }
  server {
    listen 127.0.0.1:$NGX;
    location / { proxy_pass http://app; proxy_http_version 1.1; proxy_set_header Connection ""; }
  }
}
EOF
cat > "$WORK/Caddyfile" <<EOF
{
  admin off
  auto_https off
}
http://127.0.0.1:$CDY {
  reverse_proxy 127.0.0.1:$UP
}
EOF
cat > "$WORK/routes.json" <<EOF
{"service":"bench","releases":[{"release":"1","weight":100,"targets":["127.0.0.1:$UP"]}]}
EOF
cp "$WORK/routes.json" "$WORK/routes-before.json"
"$NGINX" -c "$WORK/upstream.conf"
"$NGINX" -c "$WORK/nginx.conf"
HOME=$WORK XDG_DATA_HOME=$WORK XDG_CONFIG_HOME=$WORK "$CADDY" run --config "$WORK/Caddyfile" --adapter caddyfile > "$WORK/caddy.log" 2>&1 &
PIDS+=($!)
CADDY_PID=$!
DM_QUIET=1 "$DM" proxy run --service bench --listen "127.0.0.1:$OURS" --admin "127.0.0.1:$ADMIN" --state "$WORK/routes.json" > "$WORK/proxy.log" 2>&1 &
PIDS+=($!)
OURS_PID=$!
# `h2c`: our proxy again, its clients on HTTP/2 without TLS (prior
# knowledge, as gRPC clients send); the upstream side is the same HTTP/1.1.
PATHS=(direct ours nginx caddy h2c)
if [ -n "${DM_BEFORE:-}" ]; then
  # An earlier build of the proxy, measured in the same rounds.
  DM_QUIET=1 "$DM_BEFORE" proxy run --service bench --listen "127.0.0.1:$BEFORE" --admin 127.0.0.1:18436 --state "$WORK/routes-before.json" > "$WORK/before.log" 2>&1 &
  PIDS+=($!)
  BEFORE_PID=$!
  PATHS+=(before)
fi
sleep 2

# CPU time (user + system, all threads) of the processes that serve a
# path, in clock ticks: per request, it is the cost of the path with the
# machine's noise (other processes taking turns) left out, which a
# throughput on two shared cores is not.
servers_of() {
  case $1 in
    direct) pgrep -P "$(cat "$WORK/upstream.pid")" ;;
    nginx) pgrep -P "$(cat "$WORK/nginx.pid")" ;;
    caddy) echo "$CADDY_PID" ;;
    ours | h2c) echo "$OURS_PID" ;;
    before) echo "$BEFORE_PID" ;;
  esac
}
ticks() {
  local total=0 pid task
  for pid in $(servers_of "$1"); do
    for task in /proc/"$pid"/task/*; do
      total=$((total + $(awk '{print $14 + $15}' "$task/stat")))
    done
  done
  echo "$total"
}

declare -A URL=(
  [direct]=http://127.0.0.1:$UP/
  [ours]=http://127.0.0.1:$OURS/
  [nginx]=http://127.0.0.1:$NGX/
  [caddy]=http://127.0.0.1:$CDY/
  [before]=http://127.0.0.1:$BEFORE/
  [h2c]=http://127.0.0.1:$OURS/
)
declare -A ARGS=([h2c]=--http2)
for p in "${PATHS[@]}"; do
  # shellcheck disable=SC2086
  "$OHA" -n 1 --no-tui --output-format json ${ARGS[$p]:-} "${URL[$p]}" > "$WORK/check-$p.json"
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["statusCodeDistribution"].get("200") == 1 else 1)' "$WORK/check-$p.json" ||
    { echo "$p did not answer 200: $(cat "$WORK/check-$p.json")"; cat "$WORK"/*.log; exit 1; }
  # shellcheck disable=SC2086
  "$OHA" -z 2s -c 32 --no-tui ${ARGS[$p]:-} "${URL[$p]}" > /dev/null 2>&1 # warm-up
done

for round in $(seq 1 "$ROUNDS"); do
  # Rotate the order so no path always runs first or last in a round.
  shift_by=$(( (round - 1) % ${#PATHS[@]} ))
  order=("${PATHS[@]:$shift_by}" "${PATHS[@]:0:$shift_by}")
  for p in "${order[@]}"; do
    echo "round $round/$ROUNDS: $p" >&2
    before_ticks=$(ticks "$p")
    # shellcheck disable=SC2086
    "$OHA" -z "${DURATION}s" -c 32 --no-tui --output-format json ${ARGS[$p]:-} "${URL[$p]}" > "$WORK/t-$p-$round.json"
    echo $(( $(ticks "$p") - before_ticks )) > "$WORK/cpu-$p-$round"
    # shellcheck disable=SC2086
    "$OHA" -z "${DURATION}s" -q 1000 -c 16 --no-tui --output-format json ${ARGS[$p]:-} "${URL[$p]}" > "$WORK/l-$p-$round.json"
  done
done

python3 - "$WORK" "$ROUNDS" "$DURATION" "${PATHS[@]}" <<'EOF'
import json, statistics, sys
work, rounds, duration = sys.argv[1], int(sys.argv[2]), sys.argv[3]
paths = sys.argv[4:]
def load(kind, p, r):
    return json.load(open(f"{work}/{kind}-{p}-{r}.json"))
def cell(xs, fmt):
    return f"{fmt.format(statistics.median(xs))} ({fmt.format(min(xs))}–{fmt.format(max(xs))})"
rows = {}
for p in paths:
    rps = [load("t", p, r)["summary"]["requestsPerSec"] for r in range(1, rounds + 1)]
    lat = [load("l", p, r)["latencyPercentiles"] for r in range(1, rounds + 1)]
    ok = [load("t", p, r)["summary"]["successRate"] for r in range(1, rounds + 1)]
    ok += [load("l", p, r)["summary"]["successRate"] for r in range(1, rounds + 1)]
    ms = lambda k: [l[k] * 1000 for l in lat]
    # Clock ticks are 10 ms (USER_HZ 100) on Linux.
    cpu = [int(open(f"{work}/cpu-{p}-{r}").read()) * 10_000 / sum(load("t", p, r)["statusCodeDistribution"].values())
           for r in range(1, rounds + 1)]
    rows[p] = dict(rps=rps, p50=ms("p50"), p99=ms("p99"), p999=ms("p99.9"), ok=min(ok), cpu=cpu)
nginx_rps = statistics.median(rows["nginx"]["rps"])
direct_p99 = statistics.median(rows["direct"]["p99"])
print(f"Proxy benchmark: {rounds} interleaved rounds, {duration} s each; throughput at 32 connections, latency at a fixed 1,000 req/s over 16 connections (oha); upstream = nginx `return 200`, keep-alive; median (min–max)")
nginx_cpu = statistics.median(rows["nginx"]["cpu"])
print("| path   | req/s at 32 conns       | × nginx | CPU µs/req       | × nginx | p50 ms              | p99 ms              | p99.9 ms            | p99 added ms | success |")
print("|--------|-------------------------|---------|------------------|---------|---------------------|---------------------|---------------------|--------------|---------|")
for p in paths:
    r = rows[p]
    print(f"| {p:<6} | {cell(r['rps'], '{:,.0f}'):<23} | {statistics.median(r['rps']) / nginx_rps:7.2f} | {cell(r['cpu'], '{:.1f}'):<16} | {statistics.median(r['cpu']) / nginx_cpu:7.2f} | {cell(r['p50'], '{:.3f}'):<19} | {cell(r['p99'], '{:.3f}'):<19} | {cell(r['p999'], '{:.3f}'):<19} | {statistics.median(r['p99']) - direct_p99:12.3f} | {r['ok']:7.4f} |")
print("CPU µs/req: user + system time of the serving processes during the 32-connection run, per request (direct: the upstream alone; the other paths exclude it).")
EOF
