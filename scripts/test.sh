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
cargo test --locked
