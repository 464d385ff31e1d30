# Sourced by the multi-host benchmarks: a release build of the tool as
# $DM, and the hosts of scripts/multi-host.sh (made here when missing,
# then removed by `rig_done`), with their env file loaded.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/deployment-manager-target}"
cargo build --release --quiet
DM="$CARGO_TARGET_DIR/release/deployment-manager"
RIG="${DM_RIG_DIR:-/tmp/dm-rig}"
made_rig=""
if [ ! -f "$RIG/env" ]; then
  bash scripts/multi-host.sh up >/dev/null
  made_rig=1
fi
# shellcheck disable=SC1091
. "$RIG/env"
IFS=, read -r -a NODES <<< "$DM_RIG_SWARM_NODES"
IFS=, read -r -a ADDRS <<< "$DM_RIG_SWARM_ADDRS"

# Takes the hosts down again if this run made them.
rig_done() {
  [ -z "$made_rig" ] || bash scripts/multi-host.sh down >/dev/null 2>&1 || true
}
