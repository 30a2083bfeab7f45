# syntax=docker/dockerfile:1
#
# strata: ONE runtime image holding all four binaries in /usr/local/bin/:
#   strata-registry (crates/central-registry), strata-edge (crates/edge-proxy),
#   strata-sync (crates/sync-worker) and strata (crates/cli).
#
# Why one image and not one per tier: the four binaries come out of one `cargo build` of one
# Cargo.lock, so one image is one build (one dependency cache, one scan, one signature, one tag to
# promote), and every tier of a release runs the same bytes — the edge and the registry can never
# disagree because they were built from different commits. The deployment picks the tier with
# the command (compose `command:`, the Helm chart's `command:`), e.g.
#   docker run strata:dev strata-registry --config /etc/strata/registry.toml
# There is deliberately no ENTRYPOINT: the command *is* the tier.
#
#   docker build -t strata:dev --build-arg VERSION=0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#
# Stages: chef (the toolchain + cargo-chef) → planner (recipe.json: the dependency graph only) →
# builder (cooks the dependencies from the recipe — a layer that stays cached until Cargo.toml /
# Cargo.lock change — then builds the workspace sources) → runtime (distroless, no shell).

# Rust 1.88 is the workspace's rust-version (Cargo.toml); Cargo.lock is resolved for it. The tag
# pins cargo-chef 0.1.71 and Rust 1.88 on Debian bookworm, the glibc the runtime below ships.
ARG CHEF_IMAGE=lukemathwalker/cargo-chef:0.1.71-rust-1.88-bookworm
# distroless cc: glibc, libgcc, CA certificates and tzdata; no shell, no package manager. The
# `nonroot` tag runs as uid/gid 65532.
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${CHEF_IMAGE} AS chef
WORKDIR /src
# Every cargo call builds the same four packages with the same flags, so the cooked dependency
# layer is exactly what the final build reuses (the same feature unification).
ENV CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0 \
    CARGO_TARGET_DIR=/src/target

FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
COPY --from=planner /src/recipe.json recipe.json
# Dependencies only: this layer is rebuilt when the recipe (manifests, Cargo.lock) changes, not
# when a source file does.
RUN cargo chef cook --release --locked --recipe-path recipe.json \
      -p strata-central-registry -p strata-edge-proxy -p strata-sync-worker -p strata-cli
COPY . .
RUN cargo build --release --locked \
      -p strata-central-registry -p strata-edge-proxy -p strata-sync-worker -p strata-cli \
 && mkdir -p /out/bin /out/state/edge-cache \
 && cp target/release/strata-registry target/release/strata-edge \
       target/release/strata-sync target/release/strata /out/bin/

FROM ${RUNTIME_IMAGE} AS runtime
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="strata" \
      org.opencontainers.image.description="strata Go module proxy platform: strata-registry, strata-edge, strata-sync and the strata CLI in one image; the command picks the tier" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://example.invalid/strata" \
      org.opencontainers.image.url="https://example.invalid/strata" \
      org.opencontainers.image.vendor="strata" \
      org.opencontainers.image.base.name="gcr.io/distroless/cc-debian12:nonroot"
COPY --from=builder --chown=0:0 --chmod=0755 /out/bin/ /usr/local/bin/
# Writable state lives under /var/lib/strata, owned by the runtime user: the edge's disk tier in
# /var/lib/strata/edge-cache (a new named volume mounted on a directory of the image starts with
# that directory's owner, so uid 65532 can write it), fs storage anywhere below.
COPY --from=builder --chown=65532:65532 /out/state/ /var/lib/strata/
WORKDIR /var/lib/strata
# Logs are JSON lines on stderr; RUST_LOG sets the level.
ENV RUST_LOG=info
# 8080 registry HTTP (GOPROXY, publish API, /healthz /readyz /metrics), 9090 registry gRPC,
# 8081 edge GOPROXY, 9181 edge admin (/healthz /readyz /metrics), 8090 sync worker HTTP.
# The binaries' built-in defaults listen on 127.0.0.1: the configuration must say 0.0.0.0.
EXPOSE 8080 9090 8081 9181 8090
USER 65532:65532
# No ENTRYPOINT (exec form or otherwise): the tier is the command. Without one, `strata --help`.
CMD ["strata", "--help"]
