//! The listener: HTTP/1.1 and h2 (prior knowledge in clear text, ALPN over TLS) on hyper 1.x,
//! optional TLS with rustls, graceful shutdown.
//!
//! Per-request behaviour is a tower stack, built once here; outermost first:
//! 1. concurrency limit (`server.max_concurrent_requests`) — a request waits for a slot
//!    before any work, so an overload queues at the door instead of inside the caches; a slot
//!    is held until the response head is ready (bodies stream outside the limit);
//! 2. the handler ([`super::handle`]), which times, counts and logs each request itself.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tower::{ServiceBuilder, ServiceExt};

use super::zerocopy::{FileRegions, ZeroCopy, ZeroCopyStream};
use crate::edge::Edge;

/// Longest a client may take to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Loads a certificate chain and key (PEM) into a server configuration offering h2 and
/// HTTP/1.1.
pub fn tls_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, String> {
    strata_service::tls::server_config(cert, key, &[b"h2", b"http/1.1"], None)
}

/// Serves `edge` on `listener` until `shutdown`, then gives open connections `grace` to finish.
pub async fn serve(
    listener: TcpListener,
    edge: Arc<Edge>,
    tls: Option<Arc<ServerConfig>>,
    shutdown: CancellationToken,
    grace: Duration,
) {
    let limit = edge.config.server.max_concurrent_requests;
    let handler = Arc::clone(&edge);
    let service = ServiceBuilder::new()
        .concurrency_limit(limit)
        .service_fn(move |request| super::handle(Arc::clone(&handler), request));
    let builder = Builder::new(TokioExecutor::new());
    let graceful = GracefulShutdown::new();
    let acceptor = tls.map(TlsAcceptor::from);
    let sendfile = edge.config.server.sendfile;
    while let Some((tcp, peer)) = accept(&listener, &shutdown).await {
        let _ = tcp.set_nodelay(true);
        // On plain TCP, responses can hand file-backed bytes to sendfile (`zerocopy`); with
        // `server.sendfile = false` no request gets the extension, so none registers any.
        let regions = Arc::new(FileRegions::new(edge.metrics.sendfile_bytes.clone()));
        let extension = (acceptor.is_none() && sendfile).then(|| ZeroCopy(Arc::clone(&regions)));
        // The peer rides along as a request extension, for the access log.
        let hyper_service = TowerToHyperService::new(service.clone().map_request(
            move |mut request: http::Request<hyper::body::Incoming>| {
                request.extensions_mut().insert(super::ClientAddr(peer));
                if let Some(zc) = &extension {
                    request.extensions_mut().insert(zc.clone());
                }
                request
            },
        ));
        match &acceptor {
            None => {
                let conn = builder
                    .serve_connection(
                        TokioIo::new(ZeroCopyStream::new(tcp, regions)),
                        hyper_service,
                    )
                    .into_owned();
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let tls =
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                            Ok(Ok(tls)) => tls,
                            Ok(Err(e)) => {
                                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let conn = builder
                        .serve_connection(TokioIo::new(tls), hyper_service)
                        .into_owned();
                    if let Err(e) = watcher.watch(conn).await {
                        tracing::debug!(%peer, error = %e, "connection ended with an error");
                    }
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            ?grace,
            "connections still open after the shutdown grace; closing them"
        );
    }
}

/// Serves the ops endpoints ([`super::handle_admin`]) on `listener` until `shutdown`: plain
/// HTTP/1.1, a handful of connections (scrapers and probes), no grace needed.
pub async fn serve_admin(listener: TcpListener, edge: Arc<Edge>, shutdown: CancellationToken) {
    let builder = Builder::new(TokioExecutor::new());
    while let Some((tcp, peer)) = accept(&listener, &shutdown).await {
        let handler = Arc::clone(&edge);
        let service = hyper::service::service_fn(move |request| {
            super::handle_admin(Arc::clone(&handler), request)
        });
        let conn = builder
            .serve_connection(TokioIo::new(tcp), service)
            .into_owned();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                result = conn => if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "admin connection ended with an error");
                },
                () = shutdown.cancelled() => {}
            }
        });
    }
}

/// The next connection, or `None` once `shutdown` is cancelled. A failed accept (out of file
/// descriptors, a connection reset before it was taken) is logged and retried after a pause.
async fn accept(
    listener: &TcpListener,
    shutdown: &CancellationToken,
) -> Option<(tokio::net::TcpStream, SocketAddr)> {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return None,
            accepted = listener.accept() => match accepted {
                Ok(c) => return Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// The address a listener is bound to, for logs.
pub fn describe(addr: SocketAddr, tls: bool) -> String {
    format!("{}://{addr}", if tls { "https" } else { "http" })
}
