#!/usr/bin/env bash
# Edge benchmark: warm `.info` and 1 MiB `.zip` requests/second and p99 at 64 connections, for
# strata-edge and for nginx serving the same bytes from disk, side by side in one run
# (bench/edge_vs_nginx.py does the measuring), plus `strata up` (the all-in-one process of
# `make run`) and any GOPROXY peers in the same rounds; then a fan-out (N concurrent downloads of
# one large zip: time and peak RSS growth) and a cold fill (a never-fetched zip through edge and
# registry from a throttled upstream). Installs nginx, wrk and curl from Debian's packages if
# they are missing (idempotent; fails loudly). Reports numbers; never fails on a threshold.
#
# Environment: BENCH_SECONDS (per measured run, default 10), BENCH_ROUNDS (3),
# BENCH_CONNECTIONS (64), BENCH_THREADS (2), BENCH_DISK_ZIP_MIB (4; a zip above the edge's
# memory_zip_max_bytes, served from its disk tier; 0 leaves that row out), BENCH_TARGETS (a
# subset of info,zip,disk-zip), BENCH_KEEP=1 keeps the work directory.
# BENCH_BASELINE_EDGE=PATH also measures an edge started from that binary, side by side with the
# one built here, and reports current/baseline ratios (copy an old build out of target/ first: this
# run rebuilds target/release/strata-edge). BENCH_EDGE_ENV="KEY=VALUE ..." sets variables for the
# current edge only (e.g. OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317 for tracing on); the
# caller's own OTEL_* variables never reach the servers.
# BENCH_ALL_IN_ONE=PATH measures `PATH up` instead of the `strata` built here (the default: always
# measured, as "strata up"); BENCH_ALL_IN_ONE=off leaves that row out.
# BENCH_PEERS="NAME=URL[@PID] ..." also measures GOPROXY servers already running (a goproxy, an
# Athens, ...; @PID adds their CPU and RSS). They must serve the bench's modules: start each with
# its upstream at the GOPROXY tree the bench writes (and prints) before it first asks them, fixed
# with BENCH_GOPROXY_DIR=DIR (e.g. GOPROXY=file://DIR GONOSUMDB=example.com/bench for a peer
# built on the go command); zips and go.mod files are the same bytes every run.
# BENCH_FANOUT_MIB (64; 0 leaves the fan-out out), BENCH_FANOUT_CLIENTS (1,10,50,200): N curl
# processes each downloading that zip at once, per server. BENCH_COLD_MBPS (100 Mbit/s; 0 leaves
# the cold fill out), BENCH_COLD_MIB (16): the throttled upstream's bandwidth and zip size.
# Arguments are passed on to bench/edge_vs_nginx.py (--baseline-edge, --edge-env, --peer,
# --all-in-one, --seconds, ...; paths relative to the repo root).
set -euo pipefail
fail() { echo "bench-edge: $*" >&2; exit 1; }

# The baseline binary, resolved against the caller's directory before the cd below.
baseline=()
if [ -n "${BENCH_BASELINE_EDGE:-}" ]; then
  base_path=$(realpath -e -- "$BENCH_BASELINE_EDGE" 2>/dev/null) \
    || fail "BENCH_BASELINE_EDGE=$BENCH_BASELINE_EDGE does not exist"
  [ -f "$base_path" ] && [ -x "$base_path" ] \
    || fail "BENCH_BASELINE_EDGE=$BENCH_BASELINE_EDGE is not an executable file"
  baseline=(--baseline-edge "$base_path")
fi
# The all-in-one binary: BENCH_ALL_IN_ONE (resolved here too), else the `strata` built below.
all_in_one=""
case "${BENCH_ALL_IN_ONE:-}" in
  "") ;;
  off|none|0|no) all_in_one=off ;;
  *)
    all_in_one=$(realpath -e -- "$BENCH_ALL_IN_ONE" 2>/dev/null) \
      || fail "BENCH_ALL_IN_ONE=$BENCH_ALL_IN_ONE does not exist"
    [ -f "$all_in_one" ] && [ -x "$all_in_one" ] \
      || fail "BENCH_ALL_IN_ONE=$BENCH_ALL_IN_ONE is not an executable file"
    ;;
esac
if [ -n "${BENCH_GOPROXY_DIR:-}" ]; then
  BENCH_GOPROXY_DIR=$(realpath -m -- "$BENCH_GOPROXY_DIR")
  export BENCH_GOPROXY_DIR
fi
cd "$(dirname "$0")/.."
. scripts/bench-lib.sh

need() { command -v "$1" >/dev/null 2>&1; }

# nginx lives in /usr/sbin, which is not on every user's PATH.
find_nginx() {
  local n
  for n in "$(command -v nginx 2>/dev/null || true)" /usr/sbin/nginx; do
    [ -n "$n" ] && [ -x "$n" ] && { echo "$n"; return 0; }
  done
  return 1
}

# Installs Debian packages without starting their services (a policy-rc.d guard, as
# scripts/ensure-deps.sh does for redis-server), then disables any unit they brought.
apt_install() {
  need apt-get || fail "$* missing and apt-get is unavailable: install them by hand"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    need sudo || fail "$* missing and installing needs root (no sudo found)"
    sudo="sudo"
  fi
  local policy=/usr/sbin/policy-rc.d added_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod 755 "$policy" && added_policy=1
  fi
  echo "bench-edge: installing $* with apt-get" >&2
  local ok=1
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || ok=""
  [ -n "$ok" ] && { $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 || ok=""; }
  [ -n "$added_policy" ] && $sudo rm -f "$policy"
  [ -n "$ok" ] || fail "apt-get could not install $* (see the apt output above)"
  if [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now nginx >/dev/null 2>&1 || true
  fi
}

missing=()
find_nginx >/dev/null || missing+=(nginx-light)
need wrk || missing+=(wrk)
need curl || missing+=(curl)
need python3 || missing+=(python3)
[ "${#missing[@]}" -eq 0 ] || apt_install "${missing[@]}"
NGINX=$(find_nginx) || fail "nginx was installed but is not found (looked on PATH and in /usr/sbin)"
need wrk || fail "wrk was installed but is still not on PATH"
need curl || fail "curl was installed but is still not on PATH"
"$NGINX" -v >/dev/null 2>&1 || fail "$NGINX does not run"

bin="${CARGO_TARGET_DIR:-target}/release"
if [ -n "${base_path:-}" ] && [ "$base_path" = "$(realpath -m -- "$bin/strata-edge")" ]; then
  fail "BENCH_BASELINE_EDGE is $bin/strata-edge, which this run rebuilds: copy the old build elsewhere first (cp $bin/strata-edge /tmp/strata-edge.baseline)"
fi
# The whole workspace, as `make build` does: one feature resolution, so after `make build` this
# compiles nothing (a -p subset resolves features differently and rebuilds dependencies).
cargo build --locked --release --workspace >&2 \
  || fail "cargo build --release --workspace failed"
for b in strata-registry strata-edge; do
  [ -x "$bin/$b" ] || fail "$bin/$b was not built"
done
aio=()
case "$all_in_one" in
  off) aio=(--all-in-one off) ;;
  "") if [ -x "$bin/strata" ]; then aio=(--all-in-one "$bin/strata"); fi ;;
  *) aio=(--all-in-one "$all_in_one") ;;
esac

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench-edge.XXXXXX")
# Whatever happens (failure, Ctrl-C), nothing is left running or listening: the driver stops its
# servers itself, and records their pids so that this trap can stop any it could not.
cleanup() {
  local status=$?
  bench_stop_driver "${py_pid:-}" "$work/pids"
  bench_remove_work bench-edge "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

python3 bench/edge_vs_nginx.py \
  --registry "$bin/strata-registry" --edge "$bin/strata-edge" --nginx "$NGINX" \
  --workdir "$work" ${baseline[@]+"${baseline[@]}"} ${aio[@]+"${aio[@]}"} "$@" &
py_pid=$!
wait "$py_pid"
