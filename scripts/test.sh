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
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
log="$(mktemp)"
cargo test --locked 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
rm -f "$log"
echo "tests: ${passed} passed, ${failed} failed"
exit "$status"
