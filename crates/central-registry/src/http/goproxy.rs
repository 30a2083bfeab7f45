//! `GET`/`HEAD /go/{repo}/…`: the GOPROXY protocol for one repository, with ETag /
//! If-None-Match and Range support and the cache-control policy of `strata_core::protocol`.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use strata_core::protocol::{ArtifactKind, CacheClass, ProxyRequest, private_cache_control};
use strata_service::conditional;

use super::AppState;
use super::reply;
use crate::error::RegistryError;
use crate::metrics::EndpointLabels;
use crate::registry::Answer;
use crate::repository::Freshness;
use crate::storage::StorageError;

/// Serves one GOPROXY request.
pub async fn handle(
    State(state): State<Arc<AppState>>,
    Path((repo, path)): Path<(String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let mut response = route(&state, &repo, &path, &method, &headers).await;
    // Answers of a repository without anonymous read are for their reader only: no shared
    // cache between the registry and the client may keep them for someone else.
    let private = state
        .registry
        .repo(&repo)
        .is_ok_and(|entry| !entry.config.anonymous_read());
    if private {
        if let Some(value) = response
            .headers()
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .map(private_cache_control)
            && let Ok(value) = HeaderValue::from_str(&value)
        {
            response.headers_mut().insert(header::CACHE_CONTROL, value);
        }
        response
            .headers_mut()
            .append(header::VARY, HeaderValue::from_static("authorization"));
    }
    response
}

async fn route(
    state: &Arc<AppState>,
    repo: &str,
    path: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let started = Instant::now();
    if let Some(db_path) = path.strip_prefix("sumdb/") {
        let response = sumdb(state, repo, db_path, method, headers).await;
        state
            .metrics
            .observe_request("sumdb", response.status().as_u16(), started);
        return response;
    }
    let (endpoint, response) = match ProxyRequest::parse(path) {
        Ok(request) => {
            let endpoint = endpoint_name(&request);
            (
                endpoint,
                answer(state, repo, &request, method, headers).await,
            )
        }
        Err(e) => ("invalid", reply::error(&RegistryError::BadPath(e))),
    };
    state
        .metrics
        .observe_request(endpoint, response.status().as_u16(), started);
    if *method != Method::HEAD
        && let Some(len) = response
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
    {
        state
            .metrics
            .bytes
            .get_or_create(&EndpointLabels { endpoint })
            .inc_by(len);
    }
    response
}

/// `/go/{repo}/sumdb/{name}/…`: the registry's own checksum database when `name` is its
/// ledger's, else the checksum-database proxy of the repository's database (protocol §6.2), so
/// that clients behind a firewall verify go.sum through the registry.
async fn sumdb(
    state: &AppState,
    repo: &str,
    db_path: &str,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let principal = match state.registry.authenticate(reply::authorization(headers)) {
        Ok(p) => p,
        Err(e) => return reply::error(&e),
    };
    let Some((name, rest)) = db_path.split_once('/') else {
        return reply::error(&RegistryError::NotFound(format!(
            "sumdb/{db_path}: expected sumdb/<name>/<path>"
        )));
    };
    // The registry's own database (the ledger) first; other names go to the proxy.
    let answer = if state.registry.is_ledger(name) {
        state
            .registry
            .ledger_request(&principal, repo, &format!("/{rest}"))
            .await
    } else {
        match state.registry.sumdb(&principal, repo, name) {
            Ok(db) => db
                .proxy(&format!("/{rest}"))
                .await
                .map_err(RegistryError::SumDb),
            Err(e) => Err(e),
        }
    };
    match answer {
        Ok(answer) => {
            let body = if *method == Method::HEAD {
                Body::empty()
            } else {
                Body::from(answer.body.clone())
            };
            let mut r = Response::new(body);
            set(&mut r, header::CONTENT_TYPE, answer.content_type);
            set(&mut r, header::CACHE_CONTROL, &answer.cache_control);
            set(
                &mut r,
                header::CONTENT_LENGTH,
                &answer.body.len().to_string(),
            );
            r
        }
        Err(e) => reply::error(&e),
    }
}

fn endpoint_name(request: &ProxyRequest) -> &'static str {
    match request {
        ProxyRequest::List(_) => "list",
        ProxyRequest::Latest(_) => "latest",
        ProxyRequest::Info(..) => "info",
        ProxyRequest::Mod(..) => "mod",
        ProxyRequest::Zip(..) => "zip",
        ProxyRequest::Query(..) => "query",
    }
}

async fn answer(
    state: &AppState,
    repo: &str,
    request: &ProxyRequest,
    method: &Method,
    headers: &HeaderMap,
) -> Response {
    let principal = match state.registry.authenticate(reply::authorization(headers)) {
        Ok(p) => p,
        Err(e) => return reply::error(&e),
    };
    let range = match request {
        ProxyRequest::Zip(..) => headers
            .get(header::RANGE)
            .and_then(|v| conditional::parse_range(v.to_str().ok()?)),
        _ => None,
    };
    let answer = match state.registry.read(&principal, repo, request, range).await {
        Ok(a) => a,
        Err(RegistryError::Storage(StorageError::RangeNotSatisfiable { size, .. })) => {
            let mut r = reply::text(
                StatusCode::RANGE_NOT_SATISFIABLE,
                CacheClass::UpstreamFailure,
                "range not satisfiable",
            );
            set(&mut r, header::CONTENT_RANGE, &format!("bytes */{size}"));
            return r;
        }
        Err(e) => return reply::error(&e),
    };
    let cache = request.cache_class();
    match answer {
        Answer::List(versions, freshness) => {
            let mut body = versions.join("\n");
            if !body.is_empty() {
                body.push('\n');
            }
            stale(
                respond(
                    StatusCode::OK,
                    "text/plain; charset=utf-8",
                    cache,
                    Body::from(body),
                    method,
                ),
                freshness,
            )
        }
        Answer::Info(info, freshness) => stale(
            respond(
                StatusCode::OK,
                ArtifactKind::Info.content_type(),
                cache,
                Body::from(info.to_json()),
                method,
            ),
            freshness,
        ),
        Answer::Artifact(artifact) => {
            let kind = if matches!(request, ProxyRequest::Zip(..)) {
                ArtifactKind::Zip
            } else {
                ArtifactKind::Mod
            };
            let etag = artifact.etag.as_ref().map(|e| format!("\"{e}\""));
            if let Some(etag) = &etag
                && conditional::if_none_match(
                    headers
                        .get_all(header::IF_NONE_MATCH)
                        .iter()
                        .filter_map(|v| v.to_str().ok()),
                    etag,
                )
            {
                let mut r = respond(
                    StatusCode::NOT_MODIFIED,
                    kind.content_type(),
                    cache,
                    Body::empty(),
                    method,
                );
                set(&mut r, header::ETAG, etag);
                r.headers_mut().remove(header::CONTENT_TYPE);
                return r;
            }
            let object = artifact.object;
            let total = object.meta.size;
            let partial = object.range.start != 0 || object.range.end != total;
            let len = object.range.end - object.range.start;
            let status = if partial {
                StatusCode::PARTIAL_CONTENT
            } else {
                StatusCode::OK
            };
            let body = if *method == Method::HEAD {
                Body::empty()
            } else {
                Body::from_stream(object.body)
            };
            let mut r = respond(status, kind.content_type(), cache, body, method);
            if let Some(etag) = &etag {
                set(&mut r, header::ETAG, etag);
            }
            set(&mut r, header::CONTENT_LENGTH, &len.to_string());
            if kind == ArtifactKind::Zip {
                set(&mut r, header::ACCEPT_RANGES, "bytes");
            }
            if partial {
                set(
                    &mut r,
                    header::CONTENT_RANGE,
                    &format!(
                        "bytes {}-{}/{total}",
                        object.range.start,
                        object.range.end.saturating_sub(1)
                    ),
                );
            }
            if let Some(h1) = artifact.h1 {
                set(
                    &mut r,
                    header::HeaderName::from_static("x-go-checksum"),
                    &h1,
                );
            }
            r
        }
    }
}

fn respond(
    status: StatusCode,
    content_type: &'static str,
    cache: CacheClass,
    body: Body,
    method: &Method,
) -> Response {
    let body = if *method == Method::HEAD {
        Body::empty()
    } else {
        body
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache.cache_control()),
    );
    r
}

/// Marks a stale answer (served because the upstream failed): `X-Strata-Stale: true`, the
/// RFC 9111 `Warning`-style note, and `no-store` so that no cache keeps it.
fn stale(mut r: Response, freshness: Freshness) -> Response {
    if freshness == Freshness::Stale {
        set(
            &mut r,
            header::HeaderName::from_static("x-strata-stale"),
            "true",
        );
        set(&mut r, header::WARNING, "110 strata \"Response is Stale\"");
        set(
            &mut r,
            header::CACHE_CONTROL,
            CacheClass::UpstreamFailure.cache_control(),
        );
    }
    r
}

fn set(r: &mut Response, name: header::HeaderName, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}
