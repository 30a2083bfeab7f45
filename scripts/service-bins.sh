#!/usr/bin/env bash
# Prints the directory holding this checkout's debug service binaries (strata-registry,
# strata-edge, strata-sync, strata), building them first. They are built as `cargo test
# --workspace` builds them — the same feature resolution — so after `make unit` this is a no-op,
# and no second copy of the dependencies is compiled (a `cargo build -p …` resolves features
# differently and rebuilt them: five minutes on a fresh machine). STRATA_BIN_DIR, when set, is
# used as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -n "${STRATA_BIN_DIR:-}" ]; then
  echo "$STRATA_BIN_DIR"
  exit 0
fi
cargo test --locked --workspace --no-run -q >&2 \
  || { echo "service-bins: building the workspace's test binaries failed" >&2; exit 1; }
dir="${CARGO_TARGET_DIR:-target}/debug"
for b in strata-registry strata-edge strata-sync strata; do
  [ -x "$dir/$b" ] || { echo "service-bins: $dir/$b was not built" >&2; exit 1; }
done
echo "$dir"
