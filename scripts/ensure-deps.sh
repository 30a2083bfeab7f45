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

echo "ensure-deps: ok (cargo $(cargo --version | cut -d' ' -f2), $(go env GOVERSION))"
