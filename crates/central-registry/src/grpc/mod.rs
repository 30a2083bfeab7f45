//! The registry's gRPC front end: the `strata.registry.v1.Registry` service of
//! `proto/strata/registry/v1/registry.proto` (info, mod, zip streamed in chunks, list, latest,
//! query, stat, publish as a client stream) and the standard `grpc.health.v1.Health` service,
//! whose status follows readiness (see [`health`]).
//! Like the HTTP front end it is a thin layer over [`Registry`](crate::registry::Registry), so
//! authentication, authorization and module rules are the same whichever way a request comes.
//!
//! Server limits, and why:
//!
//! | limit | value | why |
//! |---|---|---|
//! | largest message received | [`MAX_RECEIVE_MESSAGE`] (4 MiB) | the gRPC default; a `Publish` chunk, everything else is tiny |
//! | largest message sent | [`MAX_SEND_MESSAGE`] (17 MiB) | a `.mod` of up to 16 MiB in one `Mod` answer |
//! | zip data per message | [`MAX_ZIP_CHUNK`] (256 KiB) | small enough to interleave streams, large enough for throughput |
//! | HTTP/2 streams per connection | 256 | an edge multiplexes its misses over few connections |
//! | in-flight calls per connection | 256 | the tower concurrency limit (a call holds its slot until its handler returns) |
//! | HTTP/2 flow-control window | 1 MiB per stream, 4 MiB per connection | bounds what a connection can make the server buffer on receive |
//! | HTTP/2 keepalive | ping every 30 s, dead after 10 s unanswered | drops half-open connections of vanished edges |
//! | TCP | `TCP_NODELAY`, keepalive after 60 s idle | latency of small unary calls; dead peers behind NAT |
//!
//! There is deliberately no server-wide request timeout: a `Publish` handler runs for the whole
//! upload and a `Zip` stream for the whole download. Clients bound their calls with the
//! standard `grpc-timeout` deadline, which the server honours.
//!
//! Memory stays bounded per call: zip bytes go from the storage stream to the wire chunk by
//! chunk as HTTP/2 flow control lets them, and publish chunks go from the wire into the upload
//! spool file the same way.
//!
//! With `server.grpc_tls` the listener speaks TLS (HTTP/2 by ALPN) with the configured
//! certificate; with its `client_ca` every client must present a certificate signed by that CA
//! (mutual TLS), and one without is refused during the handshake, before any call (see
//! [`tls`]).

mod convert;
pub mod health;
mod service;
mod streams;
pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;

use crate::http::AppState;
pub use service::RegistryService;

/// The generated messages, server and client of `strata.registry.v1` (the contract crate).
pub use strata_proto as proto;

/// Largest message the server accepts (a `Publish` chunk).
pub const MAX_RECEIVE_MESSAGE: usize = 4 << 20;
/// Largest message the server sends (a `Mod` answer with a go.mod of up to 16 MiB).
pub const MAX_SEND_MESSAGE: usize = 17 << 20;
/// Largest zip data chunk in a `Zip` stream.
pub const MAX_ZIP_CHUNK: usize = 256 << 10;

const MAX_STREAMS_PER_CONNECTION: u32 = 256;
const MAX_CALLS_PER_CONNECTION: usize = 256;
const STREAM_WINDOW: u32 = 1 << 20;
const CONNECTION_WINDOW: u32 = 4 << 20;
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(10);
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// Serves the registry and health services on `listener` (over TLS with `tls`) until
/// `shutdown` is cancelled, then lets open calls finish.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let registry = proto::registry_server::RegistryServer::new(RegistryService::new(state.clone()))
        .max_decoding_message_size(MAX_RECEIVE_MESSAGE)
        .max_encoding_message_size(MAX_SEND_MESSAGE);
    let (health, health_service) = tonic_health::server::health_reporter();
    health::follow_readiness(health, state, shutdown.clone()).await;
    let incoming = TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(TCP_KEEPALIVE));
    let router = Server::builder()
        // One span per call, so the JSON logs of a call carry its method; with tracing on it is
        // the call's server span, continuing the edge's `traceparent` (gRPC metadata).
        .trace_fn(|request| {
            let method = request.uri().path();
            if strata_service::trace::enabled() {
                let span = strata_service::span!(
                    "grpc",
                    otel.name = method.trim_start_matches('/'),
                    otel.kind = "server",
                    rpc.system = "grpc",
                    method = %method,
                );
                strata_service::trace::set_parent_from_headers(&span, request.headers());
                span
            } else {
                tracing::info_span!("grpc", method = %method)
            }
        })
        .max_concurrent_streams(MAX_STREAMS_PER_CONNECTION)
        .concurrency_limit_per_connection(MAX_CALLS_PER_CONNECTION)
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        .add_service(health_service)
        .add_service(registry);
    match tls {
        Some(config) => {
            let incoming = tls::incoming(incoming, config, shutdown.clone());
            router
                .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                .await
        }
        None => {
            router
                .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                .await
        }
    }
}
