//! The checksum-database proxy: `<prefix>sumdb/<name>/…` is forwarded over HTTP to a
//! registry's `/go/{repo}/sumdb/<name>/…`, trying registries in the pool's order.
//!
//! Tiles (`<name>/tile/…`) never change, so they are cached in both tiers and served from
//! there to clients the registry admitted to the repository within the decision TTL (or, with
//! every registry down, within the offline grace). Everything else (`supported`, `lookup`,
//! `latest`) is passed through uncached.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use strata_core::protocol::CacheClass;

use super::respond::{self, ResponseBody, X_CACHE};
use crate::access::Principal;
use crate::cache::key::tile_path;
use crate::cache::{CacheKey, EntryKind, Item, MemEntry, Meta};
use crate::edge::Edge;

/// Largest tile accepted (a full data tile is well below this).
const MAX_TILE: usize = 1 << 20;

pub(super) async fn handle<B>(
    edge: &Arc<Edge>,
    repo: &str,
    rest: &str,
    request: &Request<B>,
    auth: Option<&str>,
) -> Response<ResponseBody> {
    let principal = Principal::from_header(auth);
    let tile = tile_path(rest).map(|t| CacheKey {
        repo: repo.to_owned(),
        item: Item::Tile(t.to_owned()),
    });
    if let Some(key) = &tile
        && edge.access.knows(&principal, repo).await
        && let Some(r) = cached(edge, key).await
    {
        return r;
    }
    let mut reasons = Vec::new();
    for upstream in edge.pool.order().into_iter().take(3) {
        let url = format!("{}/go/{repo}/sumdb/{rest}", upstream.http_base);
        let mut get = edge
            .fallbacks
            .client()
            .get(&url)
            .timeout(edge.config.upstream.request_timeout());
        if let Some(a) = auth {
            get = get.header(header::AUTHORIZATION, a);
        }
        let started = Instant::now();
        let response = match get.send().await {
            Ok(r) if !r.status().is_server_error() => r,
            Ok(r) => {
                reasons.push(format!("{}: {}", upstream.name, r.status()));
                edge.pool.failed(&upstream, "failed");
                continue;
            }
            Err(e) => {
                reasons.push(format!("{}: {e}", upstream.name));
                edge.pool.failed(&upstream, "failed");
                continue;
            }
        };
        upstream.health.success(started.elapsed());
        let status = response.status();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let body = match response.bytes().await {
            Ok(b) if b.len() <= MAX_TILE || tile.is_none() => b,
            Ok(_) => {
                reasons.push(format!("{}: answer too large", upstream.name));
                continue;
            }
            Err(e) => {
                reasons.push(format!("{}: {e}", upstream.name));
                continue;
            }
        };
        if status.is_success() {
            edge.access.allow(&principal, repo).await;
            if let Some(key) = tile {
                store(edge, key, body.clone()).await;
                return bytes_response(body, CacheClass::Immutable, "miss");
            }
        }
        let mut r = Response::new(respond::full(body));
        *r.status_mut() = StatusCode::from_u16(status.as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let cache = if status.is_success() {
            CacheClass::Mutable
        } else {
            CacheClass::UpstreamFailure
        };
        let h = r.headers_mut();
        h.insert(
            header::CACHE_CONTROL,
            HeaderValue::from_static(cache.cache_control()),
        );
        if let Some(ct) = content_type
            .as_ref()
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
        {
            h.insert(header::CONTENT_TYPE, ct);
        }
        h.insert(X_CACHE, HeaderValue::from_static("miss"));
        return r;
    }
    if let Some(key) = &tile
        && edge.access.offline_ok(&principal, repo).await
        && let Some(r) = cached(edge, key).await
    {
        return r;
    }
    let _ = request;
    respond::text(
        StatusCode::BAD_GATEWAY,
        CacheClass::UpstreamFailure,
        format!("no registry answered sumdb/{rest}: {}", reasons.join("; ")),
    )
}

async fn cached(edge: &Edge, key: &CacheKey) -> Option<Response<ResponseBody>> {
    if let Some(entry) = edge.memory.get(key).await {
        edge.metrics.cache_result("memory", "sumdb", "hit");
        return Some(bytes_response(
            entry.body.clone(),
            CacheClass::Immutable,
            "hit-memory",
        ));
    }
    let (_, body) = edge
        .disk
        .get_bytes(&key.relative_path(), MAX_TILE as u64)
        .await?;
    edge.metrics.cache_result("disk", "sumdb", "hit");
    Some(bytes_response(body, CacheClass::Immutable, "hit-disk"))
}

async fn store(edge: &Edge, key: CacheKey, body: Bytes) {
    let meta = Meta::of(EntryKind::Tile, &body, None, None);
    if let Err(e) = edge
        .disk
        .put(&key.relative_path(), &meta, body.clone())
        .await
    {
        tracing::warn!(error = %e, "could not write a tile to the disk tier");
    }
    let entry = MemEntry {
        meta,
        body,
        stored: Instant::now(),
        seq: None,
    };
    edge.memory.insert(key, Arc::new(entry)).await;
}

fn bytes_response(body: Bytes, cache: CacheClass, source: &'static str) -> Response<ResponseBody> {
    let mut r = Response::new(respond::full(body));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache.cache_control()),
    );
    h.insert(X_CACHE, HeaderValue::from_static(source));
    r
}
