#!/usr/bin/env bash
# Starts and stops a local S3-protocol server (MinIO, installed by `make deps`) for development and
# manual testing of the S3 storage backend. The Rust tests do not need it: they start their own
# server on a free port (crates/testkit/src/s3_server.rs).
#
#   scripts/s3-server.sh start DIR [BUCKET...]  start with data under DIR on a kernel-chosen port,
#                                               create the buckets, print `export` lines
#   scripts/s3-server.sh env DIR                print the `export` lines of a running server
#   scripts/s3-server.sh stop DIR               stop the server started with DIR
#
# Credentials: $MINIO_ROOT_USER / $MINIO_ROOT_PASSWORD, default strata-dev / strata-dev-secret.
set -euo pipefail

fail() { echo "s3-server: $*" >&2; exit 1; }
usage() { sed -n '6,9p' "$0" | sed 's/^# //' >&2; exit 64; }

user=${MINIO_ROOT_USER:-strata-dev}
password=${MINIO_ROOT_PASSWORD:-strata-dev-secret}

find_minio() {
  command -v minio 2>/dev/null && return 0
  local dir
  for dir in "$(go env GOBIN 2>/dev/null)" "$(go env GOPATH 2>/dev/null)/bin" "$HOME/go/bin"; do
    [ -n "$dir" ] && [ -x "$dir/minio" ] && { echo "$dir/minio"; return 0; }
  done
  return 1
}

running() { [ -f "$1/pid" ] && kill -0 "$(cat "$1/pid")" 2>/dev/null; }

# Succeeds once MinIO reports itself ready to serve requests.
ready() { curl -fsS -o /dev/null "$1/minio/health/ready" 2>/dev/null; }

print_env() {
  local endpoint
  endpoint=$(cat "$1/endpoint")
  cat <<EOF
export STRATA_S3_ENDPOINT=$endpoint
export AWS_ACCESS_KEY_ID=$user
export AWS_SECRET_ACCESS_KEY=$password
export AWS_REGION=us-east-1
EOF
}

start() {
  local dir=$1; shift
  command -v curl >/dev/null || fail "curl is required"
  local minio
  minio=$(find_minio) || fail "minio not found on PATH or in \$(go env GOPATH)/bin: run \`make deps\`"
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if running "$dir"; then
    echo "s3-server: already running (pid $(cat "$dir/pid"))" >&2
    print_env "$dir"
    return 0
  fi
  rm -f "$dir/endpoint" "$dir/server.log"
  # Port 0: the kernel picks a free port and MinIO prints it on its `API:` line.
  MINIO_ROOT_USER=$user MINIO_ROOT_PASSWORD=$password MINIO_BROWSER=off MINIO_UPDATE=off \
    nohup "$minio" server "$dir/data" --address 127.0.0.1:0 --certs-dir "$dir/certs" \
    >"$dir/server.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"

  local endpoint="" deadline=$((SECONDS + 60))
  while [ $SECONDS -lt $deadline ]; do
    running "$dir" || fail "minio exited during start-up:$(printf '\n')$(tail -20 "$dir/server.log")"
    if [ -z "$endpoint" ]; then
      endpoint=$(grep -oE 'http://127\.0\.0\.1:[0-9]+' "$dir/server.log" 2>/dev/null | head -1 || true)
    fi
    if [ -n "$endpoint" ] && ready "$endpoint"; then
      echo "$endpoint" >"$dir/endpoint"
      break
    fi
    sleep 0.1
  done
  [ -f "$dir/endpoint" ] || { stop "$dir"; fail "minio was not ready within 60 s (log: $dir/server.log)"; }

  local bucket
  local sign=(--aws-sigv4 "aws:amz:us-east-1:s3" --user "$user:$password")
  for bucket in "$@"; do
    curl -fsS -o /dev/null -I "${sign[@]}" "$endpoint/$bucket" 2>/dev/null && continue
    curl -fsS -o /dev/null -X PUT "${sign[@]}" "$endpoint/$bucket" || fail "could not create bucket $bucket"
  done
  echo "s3-server: minio (pid $(cat "$dir/pid")) at $endpoint, data in $dir/data" >&2
  print_env "$dir"
}

stop() {
  local dir=$1
  if ! running "$dir"; then
    rm -f "$dir/pid"
    echo "s3-server: not running" >&2
    return 0
  fi
  local pid
  pid=$(cat "$dir/pid")
  kill "$pid"
  local deadline=$((SECONDS + 10))
  while kill -0 "$pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
  rm -f "$dir/pid" "$dir/endpoint"
  echo "s3-server: stopped pid $pid" >&2
}

[ $# -ge 2 ] || usage
command=$1 dir=$2
shift 2
case "$command" in
  start) start "$dir" "$@" ;;
  stop) stop "$dir" ;;
  env) running "$dir" || fail "no server running for $dir"; print_env "$dir" ;;
  *) usage ;;
esac
