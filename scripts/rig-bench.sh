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

# A build context in $1 holding the static test server (testkit/testserver)
# and a Dockerfile that copies the whole context onto an empty image;
# files put beside it before the build go into the image too.
server_context() {
  (cd testkit/testserver && RUSTFLAGS="-C target-feature=+crt-static" cargo build --quiet --release \
     --target x86_64-unknown-linux-gnu --target-dir "$HOME/.cache/dm-testserver-target")
  mkdir -p "$1"
  cp "$HOME/.cache/dm-testserver-target/x86_64-unknown-linux-gnu/release/dm-testserver" "$1/server"
  printf 'FROM scratch\nCOPY . /\nUSER 10001:10001\nENTRYPOINT ["/server"]\n' > "$1/Dockerfile"
}
