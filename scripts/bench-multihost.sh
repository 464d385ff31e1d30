#!/usr/bin/env bash
# Benchmark (not a test): shipping an image to the nodes of a real 3-node
# swarm (scripts/multi-host.sh) by our deploy (engine API save stream into
# each node's load, nothing on disk) against `docker save | docker load`
# per node, side by side in one run, ROUNDS interleaved rounds, medians
# with min–max. The image is FROM scratch: the test server plus SIZE_MB of
# random bytes (incompressible, as most layers are not).
#
#   bash scripts/bench-multihost.sh            # ROUNDS=3 SIZE_MB=64
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-3}"
SIZE_MB="${SIZE_MB:-64}"
# shellcheck source=scripts/rig-bench.sh
. scripts/rig-bench.sh
work="$(mktemp -d)"
cleanup() {
  DEPLOYMENT_MANAGER_STATE="$work/state.db" "$DM" destroy bench-ship --volumes >/dev/null 2>&1 || true
  rm -rf "$work"
  rig_done
}
trap cleanup EXIT

# The image: built on this machine's engine only.
server_context "$work/ctx"
head -c "$((SIZE_MB << 20))" /dev/urandom > "$work/ctx/blob"
IMAGE=dm-bench/ship:1
docker build -q -t "$IMAGE" "$work/ctx" >/dev/null

cat > "$work/app.yaml" <<EOF
apiVersion: deployment-manager/v1
kind: App
name: bench-ship
services:
  web:
    image: $IMAGE
    ports:
      - port: 8080
        public: true
        published: 18520
    env:
      VERSION: v1
    replicas: 3
    health:
      command: ["/server", "healthcheck"]
      interval: 1s
      retries: 2
EOF
export DEPLOYMENT_MANAGER_STATE="$work/state.db"
"$DM" profile create bench-ship "$work/app.yaml" >/dev/null
"$DM" profile set bench-ship target swarm >/dev/null
"$DM" profile set bench-ship hosts "$DM_RIG_SWARM_NODES" >/dev/null

drop_image() {
  "$DM" destroy bench-ship --volumes >/dev/null 2>&1 || true
  for n in "${NODES[@]}"; do docker -H "$n" rmi -f "$IMAGE" >/dev/null 2>&1 || true; done
}

ours=() theirs=() ours_mb=()
for r in $(seq 1 "$ROUNDS"); do
  # Alternate which goes first from round to round.
  order="ours theirs"; [ $((r % 2)) -eq 0 ] && order="theirs ours"
  for what in $order; do
    drop_image
    if [ "$what" = ours ]; then
      log="$work/deploy-$r.log"
      "$DM" deploy bench-ship --bake 0s > "$log" 2>&1
      # "sent IMAGE from this machine to NODE (X MB in Ys)", one per node.
      secs=$(grep -Eo '\(([0-9.]+) MB in ([0-9.]+)s\)' "$log" | sed -E 's/.* in ([0-9.]+)s\)/\1/' | awk '{s+=$1} END {print s}')
      mb=$(grep -Eo '\(([0-9.]+) MB in' "$log" | grep -Eo '[0-9.]+' | awk '{s+=$1} END {print s}')
      ours+=("$secs"); ours_mb+=("$mb")
    else
      start=$(date +%s.%N)
      for n in "${NODES[@]}"; do docker save "$IMAGE" | docker -H "$n" load -q >/dev/null; done
      end=$(date +%s.%N)
      theirs+=("$(awk -v a="$start" -v b="$end" 'BEGIN {print b - a}')")
    fi
  done
done

stats() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f (%.2f–%.2f)", m, a[1], a[NR]}'; }
echo
echo "Image shipping to ${#NODES[@]} swarm nodes, ${SIZE_MB} MiB random layer + test server, $ROUNDS rounds, seconds for all nodes, median (min–max)"
printf '| %-36s | %-22s | %-14s |\n' "how" "seconds" "MB sent"
printf '|%s|%s|%s|\n' "--------------------------------------" "------------------------" "----------------"
printf '| %-36s | %-22s | %-14s |\n' "deploy (engine API save → load)" "$(stats "${ours[@]}")" "$(printf '%s\n' "${ours_mb[@]}" | sort -g | head -1)"
printf '| %-36s | %-22s | %-14s |\n' "docker save | docker -H node load" "$(stats "${theirs[@]}")" "(same stream)"
