//! The checksum-database route: `<prefix>sumdb/<name>/<path>` is parsed into a database name
//! and a [`SumDbRequest`] (`supported`, `latest`, `lookup`, `tile`) before anything else, and
//! the registry's `/go/{repo}/sumdb/<name><path>` is called with the path *rebuilt from the
//! parsed form*, so nothing but those four endpoints of that one repository can be reached
//! through here (no `..`, no other repository, no ops endpoint).
//!
//! Nothing on this route grants or renews an authorization decision: those come only from the
//! GOPROXY route's questions to the registry ([`crate::access`]). Tiles never change, so they
//! are cached in both tiers — unless the registry marks them `no-store` (a tile beyond its
//! verified tree head) — and served from there only to clients the registry admitted to the
//! repository within the decision TTL (or, with every registry down, the offline grace).
//! Everything else is passed through uncached. Every body read here is bounded.
//!
//! Health: only a transport failure, a timeout or the registry's own 503 count against the
//! registry. A 502/504 means the registry answered that *the database* failed.

use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use http::{HeaderValue, Response, StatusCode, header};
use strata_core::protocol::CacheClass;
use strata_core::sumdb::SumDbRequest;

use super::respond::{self, ResponseBody, X_CACHE};
use crate::access::Principal;
use crate::cache::{CacheKey, EntryKind, Item, MemEntry, Meta};
use crate::edge::Edge;

/// Largest tile accepted (a full data tile is well below this).
const MAX_TILE: usize = 1 << 20;
/// Largest other answer accepted: a signed tree note, a lookup record, an error text.
const MAX_TEXT: usize = 64 << 10;
/// Longest checksum-database name (a host name).
const MAX_NAME: usize = 253;

/// A parsed request on this route.
struct Parsed {
    name: String,
    request: SumDbRequest,
}

/// `<name>/<path>` (already percent-decoded once by the router).
fn parse(rest: &str) -> Result<Parsed, String> {
    let (name, path) = rest.split_once('/').ok_or("expected sumdb/<name>/<path>")?;
    let valid_name = !name.is_empty()
        && name.len() <= MAX_NAME
        && !name.starts_with(['.', '-'])
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'));
    if !valid_name {
        return Err(format!("{name:?} is not a checksum database name"));
    }
    let request = SumDbRequest::parse(&format!("/{path}"))?;
    Ok(Parsed {
        name: name.to_owned(),
        request,
    })
}

pub(super) async fn handle(
    edge: &Arc<Edge>,
    repo: &str,
    rest: &str,
    auth: Option<&str>,
) -> Response<ResponseBody> {
    let parsed = match parse(rest) {
        Ok(p) => p,
        Err(reason) => {
            return respond::text(
                StatusCode::NOT_FOUND,
                CacheClass::NotFound,
                format!("invalid checksum database path sumdb/{rest}: {reason}"),
            );
        }
    };
    let principal = Principal::from_header(auth);
    let tile = match &parsed.request {
        SumDbRequest::Tile(t) => Some(CacheKey {
            repo: repo.to_owned(),
            item: Item::Tile(format!("{}/{}", parsed.name, t.path())),
        }),
        _ => None,
    };
    if let Some(key) = &tile
        && edge.access.knows(&principal, repo).await
        && let Some(r) = cached(edge, key).await
    {
        return r;
    }
    let path = parsed.request.path();
    let limit = if tile.is_some() { MAX_TILE } else { MAX_TEXT };
    let mut reasons = Vec::new();
    for upstream in edge.pool.order().into_iter().take(3) {
        let url = format!(
            "{}/go/{repo}/sumdb/{}{path}",
            upstream.http_base, parsed.name
        );
        let mut get = edge
            .fallbacks
            .client()
            .get(&url)
            .timeout(edge.config.upstream.request_timeout());
        if let Some(a) = auth {
            get = get.header(header::AUTHORIZATION, a);
        }
        if strata_service::trace::enabled() {
            let mut headers = reqwest::header::HeaderMap::new();
            strata_service::trace::inject_headers(&mut headers);
            get = get.headers(headers);
        }
        let started = Instant::now();
        let response = match get.send().await {
            Ok(r) if r.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE => {
                reasons.push(format!("{}: {}", upstream.name, r.status()));
                edge.pool.failed(&upstream, "failed");
                continue;
            }
            Ok(r) => r,
            Err(e) => {
                reasons.push(format!("{}: {}", upstream.name, without_url(&e)));
                edge.pool
                    .failed(&upstream, if e.is_timeout() { "timeout" } else { "failed" });
                continue;
            }
        };
        let status = response.status();
        let cache_control = response
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let content_type = response.headers().get(header::CONTENT_TYPE).cloned();
        let body = match read_bounded(response, limit).await {
            Ok(b) => b,
            Err(BodyError::TooLarge(e)) => {
                // The registry answered; an answer too large to pass on says nothing about
                // its health (and its size may follow from what the client asked).
                reasons.push(format!("{}: {e}", upstream.name));
                continue;
            }
            Err(BodyError::Transport(e)) => {
                reasons.push(format!("{}: {e}", upstream.name));
                edge.pool.failed(&upstream, "failed");
                continue;
            }
        };
        upstream.health.success(started.elapsed());
        if status.is_success()
            && let Some(key) = tile
        {
            // A tile beyond the registry's verified tree head is passed on, never kept.
            if cache_control.split(',').any(|d| d.trim() == "no-store") {
                return bytes_response(body, CacheClass::UpstreamFailure, "miss");
            }
            store(edge, key, body.clone()).await;
            return bytes_response(body, CacheClass::Immutable, "miss");
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
        let content_type = content_type
            .as_ref()
            .and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok())
            .unwrap_or_else(|| HeaderValue::from_static("text/plain; charset=utf-8"));
        h.insert(header::CONTENT_TYPE, content_type);
        h.insert(X_CACHE, HeaderValue::from_static("miss"));
        return r;
    }
    if let Some(key) = &tile
        && edge.access.offline_ok(&principal, repo).await
        && let Some(r) = cached(edge, key).await
    {
        return r;
    }
    respond::text(
        StatusCode::BAD_GATEWAY,
        CacheClass::UpstreamFailure,
        format!(
            "no registry answered sumdb/{}{path}: {}",
            parsed.name,
            reasons.join("; ")
        ),
    )
}

/// A transport error's text without the URL (which would only repeat the request).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<registry>");
    }
    text
}

/// Why a body could not be read.
enum BodyError {
    /// Past the limit (announced or actual).
    TooLarge(String),
    /// The connection failed while reading.
    Transport(String),
}

/// The body, refused past `limit` bytes (announced or actual).
async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Result<Bytes, BodyError> {
    let too_large = || BodyError::TooLarge(format!("answer larger than {limit} bytes"));
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| BodyError::Transport(without_url(&e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
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

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn only_the_four_endpoints_of_a_named_database_parse() {
        for ok in [
            "sum.golang.org/latest",
            "sum.golang.org/supported",
            "sum.golang.org/lookup/example.com/m@v1.0.0",
            "sum.golang.org/tile/8/0/000",
        ] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "sum.golang.org/../../../../metrics",
            "../go/private/example.com/m/@v/list",
            "sum.golang.org/../../go/private/example.com/m/@v/list",
            "sum.golang.org/lookup/../../x@v1.0.0",
            "sum.golang.org",
            "/latest",
            "..%2f/latest",
            "sum..golang.org/latest",
            ".sum/latest",
            "sum.golang.org/tile/8/0/../../x",
            "sum.golang.org/latest/..",
        ] {
            assert!(parse(bad).is_err(), "{bad} parsed");
        }
    }
}
