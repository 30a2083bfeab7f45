//! Harness for strata's separate-process end-to-end tests (`tests/*.rs` of this package): the
//! central registry (`e2e-registry`, the same code as `strata-registry`) on a real MinIO with
//! Redis Streams events, the edge (`e2e-edge`, the same code as `strata-edge`), the fixture
//! upstream GOPROXY and test checksum database of `strata-testkit` in the test process, and the
//! real go command as the client.
//!
//! * [`stack`]: Redis, MinIO, the database and the fixture upstream of one test, and factories
//!   for the rest.
//! * [`registry`], [`edge`]: the two processes, their configuration files, readiness, metrics.
//! * [`process`]: child processes with log files, killed on drop, log tails on failure.
//! * [`go`]: the go command with fresh caches per session.
//! * [`forwarder`]: a TCP forwarder that adds latency.
//! * [`metrics`]: Prometheus text parsing. [`tls`]: a certificate for HTTPS edges.
//! * [`worker`]: the sync worker process. [`prometheus`]: a real Prometheus scraping them.

// Test support: a panic with a clear message is how a broken set-up reports itself.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod edge;
pub mod forwarder;
pub mod go;
pub mod jaeger;
pub mod metrics;
pub mod process;
pub mod prometheus;
pub mod registry;
pub mod stack;
pub mod tls;
pub mod worker;

pub use edge::{EdgeProcess, EdgeSpec};
pub use registry::{CI_TOKEN, OUTSIDER_TOKEN, RegistryProcess};
pub use stack::Stack;

/// The paths of the `e2e-registry`, `e2e-edge` and `e2e-sync` binaries. Cargo tells only integration tests
/// where it built them, so tests pass them in with [`binaries!`].
#[derive(Debug, Clone)]
pub struct Binaries {
    /// `e2e-registry` (the code of `strata-registry`).
    pub registry: std::path::PathBuf,
    /// `e2e-edge` (the code of `strata-edge`).
    pub edge: std::path::PathBuf,
    /// `e2e-sync` (the code of `strata-sync`).
    pub sync: std::path::PathBuf,
}

/// [`Binaries`] as Cargo built them for this test run (call it from an integration test).
#[macro_export]
macro_rules! binaries {
    () => {
        $crate::Binaries {
            registry: ::std::path::PathBuf::from(env!("CARGO_BIN_EXE_e2e-registry")),
            edge: ::std::path::PathBuf::from(env!("CARGO_BIN_EXE_e2e-edge")),
            sync: ::std::path::PathBuf::from(env!("CARGO_BIN_EXE_e2e-sync")),
        }
    };
}

/// A GET with an optional bearer token: status, headers and the whole body.
pub async fn get(
    client: &reqwest::Client,
    url: &str,
    token: Option<&str>,
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let mut request = client.get(url);
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .bytes()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: body: {e}"));
    (status, headers, body.to_vec())
}

/// The `X-Strata-Cache` header (where the edge's answer came from).
pub fn cache_of(headers: &reqwest::header::HeaderMap) -> String {
    headers
        .get("x-strata-cache")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}
