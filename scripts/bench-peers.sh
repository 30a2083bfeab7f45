#!/usr/bin/env bash
# Edge benchmark with other Go module proxies as peers: starts a goproxy (github.com/goproxy/goproxy,
# `goproxy server`, its `dir` cacher) and an Athens (github.com/gomods/athens, `cmd/proxy`, disk
# storage, NetworkMode "offline") from binaries you built yourself, each on a free loopback port
# with the bench's GOPROXY tree as its only upstream, and runs the edge benchmark
# (scripts/bench-edge.sh -> bench/edge_vs_nginx.py) with them as --peer NAME=URL@PID: same rounds,
# same wrk and fan-out as the strata edge, `strata up` and nginx, their bytes checked against the
# edge's, their CPU and RSS measured. Stops them on exit. Neither proxy's code is in this
# repository, and this script downloads nothing: build them from their public sources, e.g.
#   git clone https://github.com/goproxy/goproxy && cd goproxy && go build -o /some/bin/goproxy ./cmd/goproxy
#   git clone https://github.com/gomods/athens && cd athens && go build -o /some/bin/athens ./cmd/proxy
#
# Environment:
#   BENCH_GOPROXY_BIN  the goproxy binary (unset: no goproxy row)
#   BENCH_ATHENS_BIN   the Athens proxy binary (unset: no Athens row); both unset: says so, exits 0
#   BENCH_GO_BIN       the go command Athens runs to fetch (`go mod download`; default: `go` on
#                      PATH); goproxy fetches from a file:// GOPROXY itself, without it
#   BENCH_ATHENS_LOG_LEVEL  Athens's LogLevel (default "debug", its own default and that of its
#                      published config: one "incoming request" line per request, to a file, as
#                      the edge's access log; "error" turns that off)
#   BENCH_PREBUILT=1   run bench/edge_vs_nginx.py on the release binaries already in
#                      ${CARGO_TARGET_DIR:-target}/release instead of scripts/bench-edge.sh (which
#                      runs `cargo build --release --workspace` first); nginx, wrk and curl must
#                      then be installed already (scripts/bench-edge.sh installs them)
#   BENCH_KEEP=1       keeps the peers' work directory (configs, caches, logs)
# Every other BENCH_* variable of scripts/bench-edge.sh applies (BENCH_SECONDS, BENCH_ROUNDS,
# BENCH_FANOUT_MIB, ...); BENCH_PEERS entries are measured too. Arguments are passed on to the
# edge bench (--seconds 6 --rounds 3 --fanout-clients 1,10,50,200 ...).
#
# The peers: both read the GOPROXY tree the bench writes (BENCH_GOPROXY_DIR, here a directory of
# this run) through GOPROXY=file://DIR with GOSUMDB=off (the bench's modules are in no checksum
# database), which they fetch on the bench's first (warming) GET and cache on disk:
#   goproxy server --address 127.0.0.1:PORT --cacher dir --cacher-dir WORK/goproxy-cache
#     --temp-dir WORK/goproxy-tmp   (it logs errors only; no access log)
#   athens -config_file WORK/athens.toml: StorageType "disk" (RootPath WORK/athens-storage),
#     NetworkMode "offline" (list and latest from storage only: no upstream after warming),
#     DownloadMode "sync", GoBinaryEnvVars ["GOPROXY=file://DIR", "GOSUMDB=off"], otherwise
#     its defaults (LogLevel above, LogFormat plain, StatsExporter prometheus)
set -euo pipefail
fail() { echo "bench-peers: $*" >&2; exit 1; }
say() { echo "bench-peers: $*" >&2; }

# An executable file named by the variable $1 (resolved against the caller's directory), or "".
resolve_bin() {
  local var=$1 value=${!1:-} path
  [ -n "$value" ] || return 0
  path=$(realpath -e -- "$value" 2>/dev/null) || fail "$var=$value does not exist"
  [ -f "$path" ] && [ -x "$path" ] || fail "$var=$value is not an executable file"
  echo "$path"
}
goproxy_bin=$(resolve_bin BENCH_GOPROXY_BIN)
athens_bin=$(resolve_bin BENCH_ATHENS_BIN)
if [ -z "$goproxy_bin" ] && [ -z "$athens_bin" ]; then
  say "BENCH_GOPROXY_BIN and BENCH_ATHENS_BIN are both unset: no peer to measure, skipped" \
    "(build goproxy's ./cmd/goproxy and Athens's ./cmd/proxy from their sources and point" \
    "these variables at the binaries)"
  exit 0
fi
[ -n "$goproxy_bin" ] || say "BENCH_GOPROXY_BIN is unset: no goproxy row"
[ -n "$athens_bin" ] || say "BENCH_ATHENS_BIN is unset: no Athens row"
go_bin=""
if [ -n "$athens_bin" ]; then
  go_bin=$(resolve_bin BENCH_GO_BIN)
  if [ -z "$go_bin" ]; then
    go_bin=$(command -v go 2>/dev/null) || fail "Athens fetches with the go command: none on PATH (set BENCH_GO_BIN)"
  fi
fi
athens_log_level=${BENCH_ATHENS_LOG_LEVEL:-debug}
case "$athens_log_level" in
  trace|debug|info|warning|error|fatal|panic) ;;
  *) fail "BENCH_ATHENS_LOG_LEVEL=$athens_log_level is not an Athens log level" ;;
esac
need() { command -v "$1" >/dev/null 2>&1; }
need curl || fail "curl is needed (scripts/bench-edge.sh installs it)"
need python3 || fail "python3 is needed"
root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/scripts/bench-lib.sh"

work=$(mktemp -d "${TMPDIR:-/tmp}/strata-bench-peers.XXXXXX")
tree="$work/goproxy-tree"
mkdir -p "$tree"
chmod 755 "$work" "$tree"
peer_pids=()
cleanup() {
  local status=$? pid i
  # BENCH_PREBUILT: the servers the driver started itself, should it not have stopped them.
  bench_stop_driver "${bench_pid:-}" "$work/bench/pids"
  for pid in ${peer_pids[@]+"${peer_pids[@]}"}; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in ${peer_pids[@]+"${peer_pids[@]}"}; do
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  bench_remove_work bench-peers "$work"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
# Waits until $2 answers a 2xx, while process $3 lives; $1 names it, $4 is its log.
wait_http() {
  local name=$1 url=$2 pid=$3 log=$4 i
  for i in $(seq 300); do
    curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { tail -n 20 "$log" >&2; fail "$name exited before it answered $url"; }
    sleep 0.2
  done
  tail -n 20 "$log" >&2
  fail "$name did not answer $url within 60 s"
}
# A clean environment for the peers: no GO*, ATHENS_* or PORT variable of the caller.
base_env=(PATH="$PATH" HOME="${HOME:-/root}" TMPDIR="$work")

peers=()
if [ -n "$goproxy_bin" ]; then
  port=$(free_port)
  mkdir -p "$work/goproxy-cache" "$work/goproxy-tmp"
  env -i "${base_env[@]}" GOPROXY="file://$tree" GOSUMDB=off \
    "$goproxy_bin" server --address "127.0.0.1:$port" --cacher dir \
    --cacher-dir "$work/goproxy-cache" --temp-dir "$work/goproxy-tmp" \
    </dev/null >"$work/goproxy.log" 2>&1 &
  pid=$!
  peer_pids+=("$pid")
  wait_http goproxy "http://127.0.0.1:$port/healthz" "$pid" "$work/goproxy.log"
  peers+=(--peer "goproxy=http://127.0.0.1:$port@$pid")
  say "goproxy $goproxy_bin: http://127.0.0.1:$port (pid $pid), dir cacher, GOPROXY=file://$tree"
fi
if [ -n "$athens_bin" ]; then
  port=$(free_port)
  mkdir -p "$work/athens-storage" "$work/athens-goget"
  # Mode 600: Athens refuses a config readable by others when GoEnv is "production" (it is the
  # default "development" here, which only labels traces).
  (umask 077 && cat >"$work/athens.toml" <<EOF
GoBinary = "$go_bin"
GoBinaryEnvVars = ["GOPROXY=file://$tree", "GOSUMDB=off"]
GoGetDir = "$work/athens-goget"
LogLevel = "$athens_log_level"
Port = "127.0.0.1:$port"
StorageType = "disk"
NetworkMode = "offline"
DownloadMode = "sync"

[Storage]
  [Storage.Disk]
    RootPath = "$work/athens-storage"
EOF
  )
  env -i "${base_env[@]}" "$athens_bin" -config_file "$work/athens.toml" \
    </dev/null >"$work/athens.log" 2>&1 &
  pid=$!
  peer_pids+=("$pid")
  wait_http athens "http://127.0.0.1:$port/healthz" "$pid" "$work/athens.log"
  peers+=(--peer "athens=http://127.0.0.1:$port@$pid")
  say "athens $athens_bin: http://127.0.0.1:$port (pid $pid), disk storage, NetworkMode offline," \
    "LogLevel $athens_log_level, go command $go_bin, GOPROXY=file://$tree"
fi
# BENCH_PEERS is ignored by the bench once any --peer is given: its entries become --peer too.
read -r -a more <<<"${BENCH_PEERS:-}"
for p in ${more[@]+"${more[@]}"}; do peers+=(--peer "$p"); done
export BENCH_GOPROXY_DIR="$tree"

if [ -z "${BENCH_PREBUILT:-}" ]; then
  "$root/scripts/bench-edge.sh" "${peers[@]}" "$@" &
  bench_pid=$!
  wait "$bench_pid"
  exit
fi

# BENCH_PREBUILT: the driver itself, on the binaries already built (what scripts/bench-edge.sh does
# after its cargo build).
bin="${CARGO_TARGET_DIR:-$root/target}/release"
for b in strata-registry strata-edge; do
  [ -x "$bin/$b" ] || fail "$bin/$b does not exist (build it first: make build)"
done
nginx=""
for n in "$(command -v nginx 2>/dev/null || true)" /usr/sbin/nginx; do
  [ -n "$n" ] && [ -x "$n" ] && { nginx=$n; break; }
done
[ -n "$nginx" ] || fail "nginx is not installed (scripts/bench-edge.sh installs it)"
need wrk || fail "wrk is not installed (scripts/bench-edge.sh installs it)"
aio=()
if [ -z "${BENCH_ALL_IN_ONE:-}" ] && [ -x "$bin/strata" ]; then
  aio=(--all-in-one "$bin/strata")
fi
mkdir -p "$work/bench"
python3 "$root/bench/edge_vs_nginx.py" \
  --registry "$bin/strata-registry" --edge "$bin/strata-edge" --nginx "$nginx" \
  --workdir "$work/bench" ${aio[@]+"${aio[@]}"} "${peers[@]}" "$@" &
bench_pid=$!
wait "$bench_pid"
