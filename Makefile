# strata — build, test and benchmark entry points. `make help` lists them.

SHELL := /bin/bash
# A persistent target directory outside the checkout keeps fresh-clone CI runs incremental.
# Every cargo call that resolves dependencies passes --locked: a stale Cargo.lock or fuzz/Cargo.lock
# fails the build loudly instead of being rewritten in the checkout.
export CARGO_TARGET_DIR ?= /var/tmp/strata-target
CARGO ?= cargo

.PHONY: help run test deps fmt-check lint monitoring-check logging-check deploy-check unit fuzz-check fuzz-build bench build

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/'

# `make run` builds exactly what `make build` builds (the whole workspace, one feature
# resolution) and then starts the binary: after `make build` it compiles nothing. (`cargo run -p
# strata-cli` resolved features for that package alone and compiled the dependencies a second
# time.)
run: build ## every tier in one process with embedded defaults (data in ./data; ARGS="--listen 127.0.0.1:9000")
	"$(CARGO_TARGET_DIR)/release/strata" up $(ARGS)

build: ## build every binary (release)
	$(CARGO) build --locked --release --workspace

test: deps fmt-check lint monitoring-check logging-check unit deploy-check fuzz-check ## install what tests need, then run every check and test

deps: ## install/verify the tools the tests need (idempotent; fails loudly)
	@scripts/ensure-deps.sh

fmt-check:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	# The service crates keep their top-level module graphs acyclic (issue 12).
	python3 scripts/module-cycles.py crates/edge-proxy/src crates/sync-worker/src crates/central-registry/src crates/registry-engine/src

monitoring-check: ## promtool/amtool: the alert and recording rules, their unit tests, the example configs
	@scripts/check-monitoring.sh

logging-check: ## the example log-shipping config, validated and run by a real OpenTelemetry Collector
	@scripts/check-logging.sh

unit:
	$(CARGO) test --locked --workspace

deploy-check: ## Dockerfile, compose, Helm chart, kustomize: linted, schema-validated, and booted as real binaries
	@scripts/deploy-tools.sh ensure
	@scripts/check-compose.sh
	@scripts/check-helm.sh
	@scripts/check-k8s.sh
	@scripts/check-chart-boot.sh

fuzz-check: ## type-check the fuzz targets (no nightly needed)
	$(CARGO) check --locked --manifest-path fuzz/Cargo.toml --bins

fuzz-build: ## build the fuzz targets with cargo-fuzz (installs it if missing)
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && if rustup toolchain list 2>/dev/null | grep -q nightly; then \
	  $(CARGO) +nightly fuzz build; else RUSTC_BOOTSTRAP=1 $(CARGO) fuzz build; fi

live-test: ## opt-in: remote repository against proxy.golang.org + sum.golang.org's real key; the ledger's public half vs the 4 real go.sums (needs network)
	STRATA_LIVE_UPSTREAM=1 $(CARGO) test --locked --workspace --test live_upstream -- --nocapture

# With BENCH_GOPROXY_BIN and/or BENCH_ATHENS_BIN set (binaries you built from their sources), the
# edge benchmark also measures those proxies as peers (scripts/bench-peers.sh); without, as before.
bench: ## throughput and memory benchmarks (prints a report)
	@scripts/bench-core.sh
	@if [ -n "$${BENCH_GOPROXY_BIN:-}$${BENCH_ATHENS_BIN:-}" ]; then scripts/bench-peers.sh; else scripts/bench-edge.sh; fi
	@scripts/bench-publish.sh

.PHONY: bench-edge
bench-edge: ## edge vs nginx: warm .info and 1 MiB .zip req/s and p99 at 64 connections (installs nginx, wrk)
	@scripts/bench-edge.sh

.PHONY: bench-peers
bench-peers: ## the edge bench plus goproxy and Athens as peers (BENCH_GOPROXY_BIN, BENCH_ATHENS_BIN: binaries you built)
	@scripts/bench-peers.sh
