//! TLS for the gRPC listener (`server.grpc_tls`): the certificate chain and key, and with
//! `client_ca` mutual TLS — a client without a certificate signed by that CA is refused during
//! the handshake, before any call.
//!
//! The handshake is done here rather than by tonic so that a refused client is logged with its
//! address and the reason (no certificate, unknown issuer, expired, …): the client itself
//! often sees only a closed connection (with TLS 1.3 the server decides after the client has
//! finished its side of the handshake). Handshakes run in their own tasks with a deadline, so a
//! slow client holds up no other; finished connections wait in a bounded queue.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use rustls::ServerConfig;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::config::GrpcTlsConfig;

/// Longest a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshaken connections waiting to be served.
const QUEUE: usize = 128;

/// Loads `server.grpc_tls` into a server configuration offering HTTP/2 (requiring client
/// certificates when `client_ca` is set). Every file is read and checked here, so a wrong one
/// is reported by name at start-up.
pub fn server_config(config: &GrpcTlsConfig) -> Result<Arc<ServerConfig>, String> {
    strata_service::tls::server_config(
        &config.cert,
        &config.key,
        &[b"h2"],
        config.client_ca.as_deref(),
    )
}

/// The TLS connections of the TCP connections in `incoming`, handshaken with `config`, until
/// `shutdown`. Must be called inside a Tokio runtime.
pub fn incoming<S>(
    mut incoming: S,
    config: Arc<ServerConfig>,
    shutdown: CancellationToken,
) -> impl Stream<Item = std::io::Result<TlsStream<TcpStream>>>
where
    S: Stream<Item = std::io::Result<TcpStream>> + Send + Unpin + 'static,
{
    let (tx, rx) = mpsc::channel(QUEUE);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let tcp = tokio::select! {
                next = incoming.next() => next,
                () = shutdown.cancelled() => return,
            };
            let tcp = match tcp {
                Some(Ok(tcp)) => tcp,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "accepting a gRPC connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
                None => return,
            };
            let peer: Option<SocketAddr> = tcp.peer_addr().ok();
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(tls)) => {
                        let _ = tx.send(Ok(tls)).await;
                    }
                    // The refused client learns little (often just a closed connection): this
                    // line is where an operator finds out why.
                    Ok(Err(e)) => tracing::warn!(
                        peer = ?peer,
                        error = %e,
                        "gRPC TLS handshake failed (server.grpc_tls)"
                    ),
                    Err(_) => tracing::warn!(peer = ?peer, "gRPC TLS handshake timed out"),
                }
            });
        }
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
}
