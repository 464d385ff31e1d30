#!/usr/bin/env bash
# Benchmark (not a test): a rolling update, then a worker cut off, on the
# real 3-node swarm of scripts/multi-host.sh, for `docker stack deploy`
# against `deployment-manager deploy`, side by side in one run, with the
# same app: 3 replicas of the FROM-scratch test server, 2 s start-up,
# health checked by its own probe. Prints one table.
#
# - The stack: update_config start-first, one at a time, rollback on
#   failure; endpoint_mode dnsrr, since swarm's routing mesh needs IPVS,
#   which this kernel lacks. Its clients use swarm's DNS round robin: the
#   load runs in a container on n1 inside the stack's overlay network and
#   resolves `web` for every request.
# - Ours: a proxy on every node. The load runs in n1's network and sends to
#   the nodes' addresses in turn; while n3 is cut off, to n1 and n2 only (as
#   DNS or a load balancer checking each node would).
# The client is the test server's `load` mode: RATE requests per second,
# each on a connection of its own (5 s connect timeout, 30 s read timeout).
#
#   bash scripts/bench-node-loss.sh        # RATE=200
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${RATE:-200}"
# shellcheck source=scripts/rig-bench.sh
. scripts/rig-bench.sh
M="${NODES[0]}"
work="$(mktemp -d)"
export DEPLOYMENT_MANAGER_STATE="$work/state.db" NO_COLOR=1
PORT=18530
IMAGE=dm-bench/loss:1
cleanup() {
  ip link set veth-n3-h up 2>/dev/null || true
  "$DM" destroy bench-loss --volumes >/dev/null 2>&1 || true
  docker -H "$M" stack rm bench >/dev/null 2>&1 || true
  docker -H "$M" rm -f bench-client >/dev/null 2>&1 || true
  rm -rf "$work"
  rig_done
}
trap cleanup EXIT

server_context "$work/ctx"
docker build -q -t "$IMAGE" "$work/ctx" >/dev/null
# Both start with the image on every node.
for n in "${NODES[@]}"; do docker save "$IMAGE" | docker -H "$n" load -q >/dev/null; done

# Runs the load on n1 for SECS seconds in network NET; prints its summary.
# Started in the background: `client_start NET SECS URLS`, `client_wait`.
client_start() {
  docker -H "$M" rm -f bench-client >/dev/null 2>&1 || true
  docker -H "$M" run -d --name bench-client --network "$1" "$IMAGE" load "$3" "$RATE" "$2" >/dev/null
}
client_wait() {
  docker -H "$M" wait bench-client >/dev/null
  docker -H "$M" logs bench-client 2>/dev/null
  docker -H "$M" rm -f bench-client >/dev/null
}
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN {printf "%.1f", b - a}'; }
cut_n3() {
  sleep 5
  ip link set veth-n3-h down
  sleep 15
  ip link set veth-n3-h up
}
nodes_ready() {
  for _ in $(seq 1 120); do
    [ "$(docker -H "$M" node ls --format '{{.Status}}' | sort -u)" = Ready ] && return 0
    sleep 0.5
  done
  echo "the swarm's nodes did not all come back" >&2
  return 1
}

# --- docker stack deploy -------------------------------------------------
stack() {
  cat > "$work/stack.yml" <<EOF
version: "3.8"
services:
  web:
    image: $IMAGE
    environment:
      VERSION: $1
      STARTUP_DELAY_MS: "2000"
    healthcheck:
      test: ["CMD", "/server", "healthcheck"]
      interval: 1s
      retries: 2
      start_period: 4s
    deploy:
      replicas: 3
      endpoint_mode: dnsrr
      update_config: {parallelism: 1, order: start-first, failure_action: rollback, monitor: 5s}
      placement: {max_replicas_per_node: 2}
networks:
  default:
    driver: overlay
    attachable: true
EOF
  docker -H "$M" stack deploy -c "$work/stack.yml" bench >/dev/null
}
stack_converged() {
  for _ in $(seq 1 240); do
    state=$(docker -H "$M" service inspect bench_web --format '{{if .UpdateStatus}}{{.UpdateStatus.State}}{{else}}none{{end}}')
    running=$(docker -H "$M" service ps bench_web --filter desired-state=running --format '{{.CurrentState}}' | grep -c '^Running' || true)
    case "$state" in
      completed|none) [ "$running" -ge 3 ] && return 0 ;;
      rollback_completed|paused|rollback_paused) echo "$state"; return 0 ;;
    esac
    sleep 0.25
  done
}
echo "docker stack deploy: v1..." >&2
stack v1
stack_converged >/dev/null
sleep 3
echo "docker stack deploy: update under load..." >&2
client_start bench_default 45 "http://web:8080/"
sleep 5
t=$(now)
stack v2
stack_converged >/dev/null
stack_update_s=$(since "$t")
stack_update_load=$(client_wait)
stack_nodes=$(docker -H "$M" service ps bench_web --filter desired-state=running --format '{{.Node}}' | sort | tr '\n' ' ')
echo "docker stack deploy: n3 cut off..." >&2
client_start bench_default 30 "http://web:8080/"
cut_n3
stack_cut_load=$(client_wait)
nodes_ready
docker -H "$M" stack rm bench >/dev/null
sleep 5

# --- deployment-manager ----------------------------------------------------
app() {
  cat > "$work/app-$1.yaml" <<EOF
apiVersion: deployment-manager/v1
kind: App
name: bench-loss
services:
  web:
    image: $IMAGE
    ports:
      - port: 8080
        public: true
        published: $PORT
    env:
      VERSION: $1
      STARTUP_DELAY_MS: "2000"
    replicas: 3
    health:
      command: ["/server", "healthcheck"]
      interval: 1s
      retries: 2
      start_period: 4s
    placement:
      max_per_node: 2
EOF
  echo "$work/app-$1.yaml"
}
"$DM" profile create bench-loss "$(app v1)" >/dev/null
"$DM" profile set bench-loss target swarm >/dev/null
"$DM" profile set bench-loss hosts "$DM_RIG_SWARM_NODES" >/dev/null
echo "deployment-manager: v1..." >&2
"$DM" deploy bench-loss --app "$(app v1)" --bake 0s >/dev/null 2>&1
urls=$(printf "http://%s:$PORT/," "${ADDRS[@]}" | sed 's/,$//')
echo "deployment-manager: update under load..." >&2
client_start host 45 "$urls"
sleep 5
t=$(now)
"$DM" deploy bench-loss --app "$(app v2)" --bake 0s >/dev/null 2>&1
ours_update_s=$(since "$t")
ours_update_load=$(client_wait)
ours_nodes=$(docker -H "$M" service ps dm-bench-loss-web --filter desired-state=running --format '{{.Node}}' | sort | tr '\n' ' ')
echo "deployment-manager: n3 cut off..." >&2
kept=$(printf "http://%s:$PORT/," "${ADDRS[0]}" "${ADDRS[1]}" | sed 's/,$//')
client_start host 30 "$kept"
cut_n3
ours_cut_load=$(client_wait)
nodes_ready

field() { echo "$1" | head -1 | awk -v k="$2" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}'; }
row() {
  printf '| %-24s | %8s | %14s | %8s | %14s | %9s |\n' "$1" "$2" \
    "$(field "$3" failed) / $(field "$3" sent)" "$(field "$3" p99_ms)" \
    "$(field "$4" failed) / $(field "$4" sent)" "$(field "$4" max_ms)"
}
echo
echo "3-node swarm, 3 replicas with a 2 s start-up, $RATE req/s from n1, one connection per request"
printf '| %-24s | %8s | %14s | %8s | %14s | %9s |\n' "" "update s" "update failed" "p99 ms" "n3 cut failed" "cut max ms"
printf '|%s|%s|%s|%s|%s|%s|\n' "--------------------------" "----------" "----------------" "----------" "----------------" "-----------"
row "docker stack deploy" "$stack_update_s" "$stack_update_load" "$stack_cut_load"
row "deployment-manager" "$ours_update_s" "$ours_update_load" "$ours_cut_load"
echo "tasks before the cut: stack on $stack_nodes; ours on $ours_nodes"
echo
echo "first failures, stack update:";  echo "$stack_update_load" | tail -n +2 | head -5
echo "first failures, stack n3 cut:";  echo "$stack_cut_load" | tail -n +2 | head -5
echo "first failures, ours update:";   echo "$ours_update_load" | tail -n +2 | head -5
echo "first failures, ours n3 cut:";   echo "$ours_cut_load" | tail -n +2 | head -5
