#!/usr/bin/env bash
# Publish benchmark (issue 16): the cost of the registry's checksum database ([ledger]) on
# publishing. Two registries from the same release binary, identical except that one has a
# [ledger] (a key from `strata sumdb keygen`), receive distinct module versions through the HTTP
# publish API — small zips and 1 MiB zips, sequentially and with 8 concurrent clients, in
# interleaved rounds — and bench/publish_ledger.py prints median/p90 latency, total time and
# publishes/s per registry and the on/off ratios (the issue's target: total time <= 1.10), after
# checking that the ledger's signed tree size equals the number of publishes it took. Reports
# numbers; never fails on a threshold.
#
# Environment: BENCH_PUBLISH_COUNT (small versions per registry and mode, default 200),
# BENCH_PUBLISH_LARGE_COUNT (1 MiB versions, default 100; 0 leaves that row out),
# BENCH_PUBLISH_SMALL_KIB (4), BENCH_PUBLISH_LARGE_KIB (1024), BENCH_PUBLISH_CONCURRENCY (8),
# BENCH_ROUNDS (4), BENCH_PUBLISH_MODES (sequential,concurrent), BENCH_KEEP=1 keeps the work
# directory (about 0.5 GB with the defaults). Arguments are passed on to bench/publish_ledger.py
# (--count, --large-count, --concurrency, --rounds, ...).
set -euo pipefail
fail() { echo "bench-publish: $*" >&2; exit 1; }
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
command -v python3 >/dev/null 2>&1 || fail "python3 is needed"

bin="${CARGO_TARGET_DIR:-target}/release"
# The whole workspace, as `make build` does: one feature resolution, so after `make build` this
# compiles nothing (a -p subset resolves features differently and rebuilds dependencies).
cargo build --locked --release --workspace >&2 \
  || fail "cargo build --release --workspace failed"
for b in strata-registry strata; do
  [ -x "$bin/$b" ] || fail "$bin/$b was not built"
done

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench-publish.XXXXXX")
# Whatever happens (failure, Ctrl-C), nothing is left running or listening: the driver stops its
# registries itself, and records their pids so that this trap can stop any it could not.
cleanup() {
  local status=$?
  bench_stop_driver "${py_pid:-}" "$work/pids"
  bench_remove_work bench-publish "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

python3 bench/publish_ledger.py \
  --registry "$bin/strata-registry" --strata "$bin/strata" --workdir "$work" "$@" &
py_pid=$!
wait "$py_pid"
