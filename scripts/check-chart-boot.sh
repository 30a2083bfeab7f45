#!/usr/bin/env bash
# The Helm chart's "rendered config boots" test: renders deploy/helm/strata with the values files
# the README installs — deploy/helm/examples/central.yaml (release central, namespace strata) and
# deploy/helm/examples/edge-eu.yaml (release edge-eu, namespace strata-edge) — takes the rendered
# ConfigMaps, Secrets and container environments, replaces in-cluster addresses and pod paths
# with local ones, starts the REAL strata-registry, strata-sync and strata-edge with exactly that
# configuration on a real redis-server and a real MinIO, then `strata publish`es a module to the
# registry and `go mod download`s it through the edge. central.yaml turns the registry's checksum
# database on ([ledger]): the operator's signer-key Secret is stood in for by a key from
# `strata sumdb keygen`, and the go command runs with GOSUMDB = its verifier key and no
# GONOSUMDB, so it verifies the private module against the ledger through the edge's
# /sumdb/<name>/ (the tiles it fetched must be in its module cache, and another key of the same
# name must fail). A chart value the services reject fails it; the self-check at the end proves
# that with a copy of central.yaml the schema accepts but the registry refuses (exit 64).
#
#   scripts/check-chart-boot.sh
#   STRATA_BIN_DIR=/path/to/debug scripts/check-chart-boot.sh
#   STRATA_KEEP_WORK=1 scripts/check-chart-boot.sh     # keep logs and state
#
# Every substitution is listed in the output; scripts/chart_boot.py documents them. The one
# addition to the rendered environment is AWS_ENDPOINT_URL (MinIO) for the S3 users: the
# examples name real AWS S3, and the registry's S3 client (aws_config::defaults) honours that
# variable, as an operator of an S3-compatible store would set through registry/worker.extraEnv.
#
# Tools: scripts/deploy-tools.sh (helm, Python with PyYAML), redis-server, openssl, minio
# ($(go env GOPATH)/bin, scripts/ensure-deps.sh), go, and the debug binaries in
# ${STRATA_BIN_DIR:-${CARGO_TARGET_DIR:-/var/tmp/strata-target}/debug}.
set -euo pipefail
exec 3>&2

cd "$(dirname "$0")/.."
ROOT=$PWD
CHART=deploy/helm/strata
EXAMPLES=deploy/helm/examples

fail() { echo "check-chart-boot: FAIL: $*" >&2; exit 1; }
step() { echo "check-chart-boot: == $*" >&2; }

# shellcheck source=scripts/deploy-tools.sh
source scripts/deploy-tools.sh
for tool in "$HELM" "$DEPLOY_PY"; do
  [ -x "$tool" ] || fail "$tool is missing: run scripts/deploy-tools.sh ensure"
done
"$DEPLOY_PY" -c 'import yaml, tomllib' 2>/dev/null || fail "$DEPLOY_PY lacks PyYAML or tomllib"
BIN_DIR=$(scripts/service-bins.sh) || fail "the service binaries could not be built"
command -v redis-server >/dev/null || fail "redis-server is missing: run make deps (scripts/ensure-deps.sh)"
command -v go >/dev/null || fail "go is missing"
command -v openssl >/dev/null || fail "openssl is missing (the edge Ingress stand-in's certificate)"
MINIO=$(command -v minio || true)
[ -n "$MINIO" ] || MINIO="$(go env GOPATH | cut -d: -f1)/bin/minio"
[ -x "$MINIO" ] || fail "minio is missing: run make deps (scripts/ensure-deps.sh)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/check-chart-boot.XXXXXX")
export HELM_CACHE_HOME="$WORK/helm-cache" HELM_CONFIG_HOME="$WORK/helm-config" HELM_DATA_HOME="$WORK/helm-data"
# Every process the driver starts leads its own process group, its id in $WORK/pids. The driver
# stops them itself; this trap is the backstop (a failure, ^C, a killed driver).
DRIVER=""
cleanup() {
  local status=$? pid
  if [ -n "$DRIVER" ] && kill -0 "$DRIVER" 2>/dev/null; then
    kill -TERM "$DRIVER" 2>/dev/null || true
    wait "$DRIVER" 2>/dev/null || true
  fi
  if [ -s "$WORK/pids" ]; then
    while read -r pid; do [ -n "$pid" ] && kill -TERM -- "-$pid" 2>/dev/null || true; done <"$WORK/pids"
    sleep 1
    while read -r pid; do [ -n "$pid" ] && kill -KILL -- "-$pid" 2>/dev/null || true; done <"$WORK/pids"
  fi
  if [ "$status" -eq 0 ] && [ -z "${STRATA_KEEP_WORK:-}" ]; then
    chmod -R u+w "$WORK" 2>/dev/null || true   # the Go module cache is read-only
    rm -rf "$WORK"
  else
    echo "check-chart-boot: logs and state kept in $WORK" >&3
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# render NAME RELEASE NAMESPACE VALUES: helm template into $WORK/NAME.yaml.
render() {
  "$HELM" template "$2" "$CHART" --namespace "$3" -f "$4" >"$WORK/$1.yaml" 2>"$WORK/$1.err" \
    || { cat "$WORK/$1.err" >&2; fail "helm template $2 -n $3 -f $4"; }
  echo "check-chart-boot: helm template $2 $CHART -n $3 -f $4" >&2
}

# run_driver CENTRAL EDGE RUNDIR: in the background, so a signal reaches the trap at once.
run_driver() {
  "$DEPLOY_PY" scripts/chart_boot.py "$1" "$2" "$BIN_DIR" "$MINIO" "$3" "$WORK/pids" &
  DRIVER=$!
  local rc=0
  wait "$DRIVER" || rc=$?
  DRIVER=""
  return "$rc"
}

T0=$(date +%s)
step "render the README's releases"
render central central strata "$EXAMPLES/central.yaml"
render edge-eu edge-eu strata-edge "$EXAMPLES/edge-eu.yaml"

step "boot test: the rendered configuration, real binaries, real Redis and MinIO"
run_driver "$WORK/central.yaml" "$WORK/edge-eu.yaml" "$WORK/run" || fail "the boot test failed (see above)"

# ---- the boot test must be able to fail ---------------------------------------------------------
# Each case: a copy of one example values file with a mistake values.schema.json cannot see; helm
# must render it, and the named service must refuse it at boot (exit 64, with its message).
step "self-check: values the schema accepts but a service rejects must fail the boot"
# negative NAME central|edge-eu PYTHON-STATEMENT COMPONENT MESSAGE
negative() {
  local name=$1 which=$2 mutation=$3 component=$4 want=$5 rc=0
  local vals="$WORK/values-$name.yaml" central="$WORK/central.yaml" edge="$WORK/edge-eu.yaml"
  "$DEPLOY_PY" - "$EXAMPLES/$which.yaml" "$vals" "$mutation" <<'PY' || fail "self-check $name: mutating $which.yaml failed"
import sys, yaml
src, dst, mutation = sys.argv[1:]
values = yaml.safe_load(open(src))
before = yaml.safe_dump(values)
exec(mutation, {"values": values})
if yaml.safe_dump(values) == before:
    sys.exit("the mutation changed nothing")
with open(dst, "w") as f:
    yaml.safe_dump(values, f, sort_keys=False)
PY
  if [ "$which" = central ]; then
    render "neg-$name" central strata "$vals"; central="$WORK/neg-$name.yaml"
  else
    render "neg-$name" edge-eu strata-edge "$vals"; edge="$WORK/neg-$name.yaml"
  fi
  run_driver "$central" "$edge" "$WORK/run-neg-$name" >"$WORK/neg-$name.out" 2>&1 || rc=$?
  if [ "$rc" -eq 0 ]; then
    cat "$WORK/neg-$name.out" >&2
    fail "self-check $name: the boot test passed $which.yaml with: $mutation"
  fi
  if ! grep -qF "$component exited with status 64 before it was ready (64: the configuration was rejected)" "$WORK/neg-$name.out" \
     || ! grep -qF -- "$want" "$WORK/neg-$name.out"; then
    cat "$WORK/neg-$name.out" >&2
    fail "self-check $name: the boot failed, but not with $component's exit 64 and '$want'"
  fi
  echo "check-chart-boot: self-check $name ($which.yaml: $mutation) renders, and fails the boot:" >&2
  grep -m1 -A2 'FAIL: ' "$WORK/neg-$name.out" | grep -v '^ *{' | cut -c1-160 | sed 's/^/    /' >&2
}
# registry.config.repositories[go].members[0] = "privat" (a typo of "private").
negative bad-member central \
  'next(r for r in values["registry"]["config"]["repositories"] if r["kind"] == "virtual")["members"][0]["repository"] = "privat"' \
  central/registry 'member "privat" is not a configured repository'
# edge.config.routes[/private/].prefix = "/": two routes for one prefix (array items can't be
# compared by the schema).
negative duplicate-route edge-eu \
  'next(r for r in values["edge"]["config"]["routes"] if r["prefix"] == "/private/")["prefix"] = "/"' \
  edge-eu/edge 'routes.prefix "/" is listed twice'

step "ok: the chart's rendered configuration boots, publishes and serves ($(( $(date +%s) - T0 ))s)"
