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
# BENCH_ROUNDS (4), BENCH_PUBLISH_MODES (sequential,concurrent),
# BENCH_PUBLISH_STORAGE: fs (default: a directory per registry), s3 (a bucket per registry in one
#   local MinIO that the driver starts with scripts/s3-server.sh and stops; needs minio from
#   `make deps`, and curl) or both (an fs run, then an s3 run, each with its own tables),
# BENCH_PREBUILT=1 skips `cargo build` and runs the release binaries already in
#   ${CARGO_TARGET_DIR:-/var/tmp/strata-target}/release (build them first: make build),
# BENCH_KEEP=1 keeps the work directory (about 0.5 GB per storage with the defaults). Arguments are
# passed on to bench/publish_ledger.py (--count, --large-count, --concurrency, --rounds, ...; not
# --storage, which BENCH_PUBLISH_STORAGE sets).
set -euo pipefail
fail() { echo "bench-publish: $*" >&2; exit 1; }
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh
command -v python3 >/dev/null 2>&1 || fail "python3 is needed"

storage=${BENCH_PUBLISH_STORAGE:-fs}
case "$storage" in
  fs | s3) storages=("$storage") ;;
  both) storages=(fs s3) ;;
  *) fail "BENCH_PUBLISH_STORAGE=$storage: expected fs, s3 or both" ;;
esac

if [ -n "${BENCH_PREBUILT:-}" ]; then
  bin="${CARGO_TARGET_DIR:-/var/tmp/strata-target}/release"
  for b in strata-registry strata; do
    [ -x "$bin/$b" ] || fail "$bin/$b does not exist (build it first: make build)"
  done
else
  bin="${CARGO_TARGET_DIR:-target}/release"
  # The whole workspace, as `make build` does: one feature resolution, so after `make build` this
  # compiles nothing (a -p subset resolves features differently and rebuilds dependencies).
  cargo build --locked --release --workspace >&2 \
    || fail "cargo build --release --workspace failed"
  for b in strata-registry strata; do
    [ -x "$bin/$b" ] || fail "$bin/$b was not built"
  done
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench-publish.XXXXXX")
# Whatever happens (failure, Ctrl-C), nothing is left running or listening: the driver stops its
# registries itself, and records their pids so that this trap can stop any it could not.
cleanup() {
  local status=$? s
  for s in "${storages[@]}"; do
    bench_stop_driver "${py_pid:-}" "$work/$s/pids"
  done
  bench_remove_work bench-publish "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# One driver run per storage, one after the other, each in its own subdirectory of $work (the
# driver records every server pid, MinIO's too, in its pids file for the trap; a driver that
# succeeded has stopped them all, so its file goes).
for s in "${storages[@]}"; do
  mkdir -p "$work/$s"
  python3 bench/publish_ledger.py --storage "$s" \
    --registry "$bin/strata-registry" --strata "$bin/strata" --workdir "$work/$s" "$@" &
  py_pid=$!
  wait "$py_pid"
  py_pid=""
  rm -f "$work/$s/pids"
done
