#!/usr/bin/env bash
# Starts or stops a throw-away Redis for local runs of the registry with Redis events
# (`events = { kind = "redis", url = "redis://127.0.0.1:PORT" }`). The tests do not need it:
# they start their own redis-server on free ports.
#
#   scripts/redis-server.sh start [PORT]   # default 6390; no persistence; prints the URL
#   scripts/redis-server.sh stop  [PORT]
#   scripts/redis-server.sh status [PORT]
set -euo pipefail

cmd=${1:-}
port=${2:-6390}
dir=${TMPDIR:-/tmp}/strata-redis-$port
pidfile=$dir/redis.pid

fail() { echo "redis-server.sh: $*" >&2; exit 1; }
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "$cmd" in
  start)
    command -v redis-server >/dev/null || fail "redis-server not found: run \`make deps\`"
    if running; then echo "redis://127.0.0.1:$port"; exit 0; fi
    mkdir -p "$dir"
    redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
      --daemonize yes --pidfile "$pidfile" --logfile "$dir/redis.log"
    for _ in $(seq 1 100); do
      if redis-cli -p "$port" ping 2>/dev/null | grep -q PONG; then
        echo "redis://127.0.0.1:$port"; exit 0
      fi
      sleep 0.1
    done
    fail "redis-server did not answer PING on port $port; see $dir/redis.log"
    ;;
  stop)
    if running; then
      pid=$(cat "$pidfile")
      kill "$pid"
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && fail "redis-server (pid $pid) did not exit"
    fi
    rm -f "$pidfile"
    ;;
  status)
    if running; then echo "running: redis://127.0.0.1:$port (pid $(cat "$pidfile"))"; else echo "stopped"; exit 1; fi
    ;;
  *) fail "usage: $0 start|stop|status [PORT]" ;;
esac
