# Sourced by the bench scripts (bench-edge.sh, bench-publish.sh, bench-peers.sh): stopping what a
# run started, whatever ended it (failure, Ctrl-C), so nothing is left running or listening.

# bench_stop_driver PID PIDS_FILE: stops the Python driver PID (if it still runs; it stops its
# servers itself), then kills every server pid it recorded in PIDS_FILE that is still there.
bench_stop_driver() {
  local driver=$1 pids_file=$2 pid
  if [ -n "$driver" ] && kill -0 "$driver" 2>/dev/null; then
    kill -TERM "$driver" 2>/dev/null || true
    wait "$driver" 2>/dev/null || true
  fi
  if [ -f "$pids_file" ]; then
    while read -r pid; do
      [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
    done <"$pids_file"
  fi
}

# bench_remove_work NAME DIR: removes the work directory DIR, or keeps it (and says so) when
# BENCH_KEEP is set.
bench_remove_work() {
  if [ -n "${BENCH_KEEP:-}" ]; then
    echo "$1: work directory kept: $2" >&2
  else
    rm -rf "$2"
  fi
}
