#!/usr/bin/env bash
# The main job on built-in defaults: plan an example app with the embedded
# price catalog and a throwaway SQLite state.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/deployment-manager-target}"
cargo run --release --locked -- --state "${TMPDIR:-/tmp}/dm-state.db" plan "${1:-examples/will-it-compile/app.yaml}"
