#!/usr/bin/env bash
# Installs or verifies everything `make test` needs. Idempotent; exits non-zero with a reason when
# something cannot be had, so a fresh machine never fails later with a confusing message.
set -euo pipefail

need() { command -v "$1" >/dev/null 2>&1; }
fail() { echo "ensure-deps: $*" >&2; exit 1; }

need cargo || fail "cargo (Rust stable) is required: https://rustup.rs"
need go || fail "the go command (1.22+) is required: the end-to-end and differential tests use it as the real client"
go_minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
[ "${go_minor:-0}" -ge 22 ] || fail "go 1.22 or newer is required, found $(go env GOVERSION)"
need python3 || true

# The differential test fetches golang.org/x/mod through the module proxy on first use; warm the
# module cache here so a proxy outage shows up as a clear set-up failure.
(cd tests/xmodref && go mod download) || fail "could not download golang.org/x/mod through GOPROXY=$(go env GOPROXY)"

# ---- Debian packages ------------------------------------------------------------------------------
# apt_install BINARY PACKAGE…: installs the packages unless BINARY is on PATH. Installing a Debian
# package must not leave a system service running that anything depends on, so services are kept
# from starting during the install and their units are disabled afterwards.
apt_install() {
  local binary=$1; shift
  need "$binary" && return 0
  need apt-get || fail "$binary is not on PATH and apt-get is unavailable: install $* by hand"
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    need sudo || fail "$binary is missing and installing it needs root (no sudo found)"
    sudo="sudo"
  fi
  local policy=/usr/sbin/policy-rc.d added_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null && $sudo chmod 755 "$policy" && added_policy=1
  fi
  echo "ensure-deps: installing $* with apt-get" >&2
  local ok=1
  if [ -z "${STRATA_APT_UPDATED:-}" ]; then
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 || ok=""
    STRATA_APT_UPDATED=1
  fi
  [ -n "$ok" ] && { $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" >&2 || ok=""; }
  [ -n "$added_policy" ] && $sudo rm -f "$policy"
  [ -n "$ok" ] || fail "apt-get could not install $* (see the apt output above)"
  if [ -d /run/systemd/system ]; then
    local unit
    for unit in "$@"; do $sudo systemctl disable --now "$unit" >/dev/null 2>&1 || true; done
  fi
  need "$binary" || fail "$* installed but $binary is still not on PATH"
}

# ---- Redis (events tests: crates/central-registry/tests/events_redis.rs) --------------------------
# The tests start their own redis-server on a free port; they only need the binary.
apt_install redis-server redis-server
redis_version=$(redis-server --version | sed -nE 's/.* v=([0-9.]+).*/\1/p')
case "$redis_version" in
  ""|[0-4].*) fail "redis-server 5.0 or newer (streams) is required, found '${redis_version:-unknown}'" ;;
esac
# ---- end Redis ----------------------------------------------------------------------------------

# ---- S3-protocol server (storage conformance: crates/central-registry/tests/storage_conformance.rs)
# MinIO, because its conditional writes (If-None-Match / If-Match on PutObject and
# CompleteMultipartUpload) are atomic: it evaluates them under its per-object namespace lock.
# s3s-fs 0.14.1 checks them without a lock, so concurrent create-only or compare-and-swap writers
# can all "win" there (run the suite with STRATA_S3_SERVER=s3s-fs to see it). MinIO publishes no
# semver tags: the pin is a pseudo-version of its source. The tests start their own server on a
# free port; they only need the binary (PATH, $GOBIN or $(go env GOPATH)/bin).
MINIO_MODULE=github.com/minio/minio
MINIO_VERSION=v0.0.0-20260212201848-7aac2a2c5b7c
ensure_minio() {
  local gobin
  gobin=$(go env GOBIN)
  [ -n "$gobin" ] || gobin="$(go env GOPATH | cut -d: -f1)/bin"
  local bin="$gobin/minio" installed=""
  if [ -x "$bin" ]; then
    installed=$(go version -m "$bin" 2>/dev/null | awk -v m="$MINIO_MODULE" '$1 == "mod" && $2 == m { print $3 }')
  fi
  [ "$installed" = "$MINIO_VERSION" ] && return 0
  echo "ensure-deps: building minio $MINIO_VERSION with go install (takes a few minutes)" >&2
  go install "$MINIO_MODULE@$MINIO_VERSION" >&2 \
    || fail "go install $MINIO_MODULE@$MINIO_VERSION failed (see above): the S3 storage tests need an S3-protocol server (STRATA_SKIP_S3=1 skips them)"
  "$bin" --version >/dev/null 2>&1 || fail "minio was installed to $bin but does not run"
}
ensure_minio
# ---- end S3 -------------------------------------------------------------------------------------

# ---- Prometheus tools (scripts/check-monitoring.sh) -----------------------------------------------
# promtool checks and unit-tests the alert and recording rules in deploy/prometheus; amtool checks
# the example Alertmanager configuration. Debian ships them with the servers.
apt_install promtool prometheus
apt_install amtool prometheus-alertmanager
# ---- end Prometheus tools -------------------------------------------------------------------------

# ---- Jaeger (tests/e2e/tests/tracing.rs: the OTLP receiver the services export traces to) ----------
# Built once from the Go module registry into a versioned directory outside the clone and reused:
# it takes about ten minutes on two cores. Override the directory with STRATA_TOOLS_DIR.
JAEGER_VERSION=v1.75.0
TOOLS_DIR=${STRATA_TOOLS_DIR:-/var/tmp/strata-tools}
ensure_jaeger() {
  local dir="$TOOLS_DIR/jaeger-${JAEGER_VERSION#v}"
  local bin="$dir/jaeger"
  if [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; then return 0; fi
  echo "ensure-deps: building jaeger $JAEGER_VERSION into $dir (about ten minutes on two cores)" >&2
  mkdir -p "$dir/src" || fail "cannot create $dir"
  # && rather than set -e, which a subshell tested by || does not honour.
  (
    cd "$dir/src" &&
      { [ -f go.mod ] || go mod init strata.local/jaeger-build >&2; } &&
      go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION" >&2 &&
      go build -o "$bin.tmp" github.com/jaegertracing/jaeger/cmd/jaeger >&2 &&
      mv "$bin.tmp" "$bin"
  ) || fail "building jaeger $JAEGER_VERSION failed (see above): the tracing end-to-end test needs it"
  "$bin" version >/dev/null 2>&1 || fail "jaeger was built to $bin but does not run"
}
ensure_jaeger
# ---- end Jaeger -----------------------------------------------------------------------------------

# ---- OpenTelemetry Collector (scripts/check-logging.sh: deploy/logging/otel-collector.yaml) ----------
# A minimal collector distribution (deploy/logging/collector: filelog, transform, routing,
# elasticsearch, file, debug, file_storage, health_check), pinned to contrib v0.139.0 / core
# v1.45.0 like the Jaeger above, so the module and build caches are shared (about seven minutes on
# two busy cores with Jaeger's cache warm). Built once into a directory named after a hash of its
# main.go, go.mod and go.sum (scripts/check-logging.sh computes the same name), so editing the
# distribution rebuilds it. Override the directory with STRATA_TOOLS_DIR.
OTELCOL_VERSION=v0.139.0
otelcol_dir() {
  local hash
  hash=$(cat deploy/logging/collector/main.go deploy/logging/collector/go.mod deploy/logging/collector/go.sum | sha256sum | cut -c1-12)
  echo "$TOOLS_DIR/otelcol-strata-${OTELCOL_VERSION#v}-$hash"
}
ensure_otelcol() {
  local dir bin
  dir=$(otelcol_dir) || fail "cannot read deploy/logging/collector"
  bin="$dir/otelcol-strata"
  if [ -x "$bin" ] && "$bin" components >/dev/null 2>&1; then return 0; fi
  echo "ensure-deps: building otelcol-strata (collector $OTELCOL_VERSION) into $dir (a few minutes)" >&2
  mkdir -p "$dir" || fail "cannot create $dir"
  # && rather than set -e, which a subshell tested by || does not honour.
  (
    cd deploy/logging/collector &&
      go build -trimpath -o "$bin.tmp" . >&2 &&
      mv "$bin.tmp" "$bin"
  ) || fail "building the OpenTelemetry Collector in deploy/logging/collector failed (see above): make logging-check needs it"
  "$bin" components >/dev/null 2>&1 || fail "otelcol-strata was built to $bin but does not run"
}
ensure_otelcol
# ---- end OpenTelemetry Collector ------------------------------------------------------------------

echo "ensure-deps: ok (cargo $(cargo --version | cut -d' ' -f2), $(go env GOVERSION))"
