#!/usr/bin/env bash
# Core benchmarks: module zip verification + h1 throughput vs sha256sum, and peak memory.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --release --workspace >&2
target="${CARGO_TARGET_DIR:-target}"
python3 bench/core_verify.py "$target/release/strata" "$@"
