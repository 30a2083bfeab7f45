//! The publish API.
//!
//! * `PUT /api/repos/{repo}/upload` with a module zip as the body: module and version come from
//!   the zip's `module@version/` prefix, `.mod` from the zip's go.mod (or synthesized), `.info`
//!   Time is the publish time. 201 with the two go.sum lines.
//! * Artifactory style, so `jf go-publish` users can switch:
//!   `PUT /api/go/{repo}/{module}/@v/{version}.zip` publishes like `upload`, with the module and
//!   version taken from the URL (the zip must agree). `.mod` and `.info` uploads are checked
//!   (the go.mod must name the module, the info must name the version) and acknowledged: before
//!   the zip is there with 202 (the `.mod` served is always the zip's go.mod), afterwards with
//!   200 if they match what is stored and 409 if they do not.
//! * `DELETE /api/go/{repo}/{module}/@v/{version}.zip` deletes the version (delete permission).
//!
//! Errors: 400 with every violation, 401/403, 409 when the version exists (or existed with other
//! bytes), 413 past the size limit — always `text/plain` and never a partial version.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use strata_core::gomod::GoMod;
use strata_core::protocol::{CacheClass, ProxyRequest};
use strata_core::version::ModuleVersion;

use super::AppState;
use super::reply;
use crate::error::RegistryError;
use crate::metrics::OutcomeLabels;
use crate::registry::Answer;
use crate::repository::InfoDoc;
use crate::storage::read_body;

/// Largest `.mod`/`.info` body accepted on the Artifactory-style routes.
const MAX_SIDE_FILE: usize = 16 << 20;

/// `PUT /api/repos/{repo}/upload`.
pub async fn upload(
    State(state): State<Arc<AppState>>,
    Path(repo): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    publish(&state, &repo, &headers, body, None).await
}

/// `PUT /api/go/{repo}/{module}/@v/{version}.{zip,mod,info}`.
pub async fn artifactory_put(
    State(state): State<Arc<AppState>>,
    Path((repo, path)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let request = match ProxyRequest::parse(&path) {
        Ok(r) => r,
        Err(e) => return reply::error(&RegistryError::BadPath(e)),
    };
    match request {
        ProxyRequest::Zip(m, v) => {
            let expected = ModuleVersion::new(m.as_str(), v.as_str());
            publish(&state, &repo, &headers, body, Some(expected)).await
        }
        ProxyRequest::Mod(m, v) => {
            side_file(
                &state,
                &repo,
                &headers,
                body,
                ProxyRequest::Mod(m.clone(), v.clone()),
                |data| {
                    GoMod::parse_for(data, m.as_str())
                        .map(|_| ())
                        .map_err(|e| format!("{m}@{v}.mod: {e}"))
                },
            )
            .await
        }
        ProxyRequest::Info(m, v) => {
            side_file(
                &state,
                &repo,
                &headers,
                body,
                ProxyRequest::Info(m.clone(), v.clone()),
                |data| {
                    let info: InfoDoc = serde_json::from_slice(data)
                        .map_err(|e| format!("{m}@{v}.info: not version JSON: {e}"))?;
                    if info.version != v.as_str() {
                        return Err(format!("{m}@{v}.info names version {:?}", info.version));
                    }
                    Ok(())
                },
            )
            .await
        }
        other => reply::error(&RegistryError::BadPath(
            strata_core::protocol::RequestError {
                path: other.path(),
                reason: "only <module>/@v/<version>.{zip,mod,info} can be uploaded".into(),
            },
        )),
    }
}

/// `DELETE /api/go/{repo}/{module}/@v/{version}.zip`.
pub async fn artifactory_delete(
    State(state): State<Arc<AppState>>,
    Path((repo, path)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let started = Instant::now();
    let response = match ProxyRequest::parse(&path) {
        Ok(ProxyRequest::Zip(m, v)) => {
            let result = async {
                let principal = state
                    .registry
                    .authenticate(reply::authorization(&headers))?;
                state.registry.delete(&principal, &repo, &m, &v).await
            }
            .await;
            match result {
                Ok(_) => reply::text(
                    StatusCode::OK,
                    CacheClass::UpstreamFailure,
                    format!("deleted {m}@{v}"),
                ),
                Err(e) => reply::error(&e),
            }
        }
        Ok(_) => reply::text(
            StatusCode::BAD_REQUEST,
            CacheClass::UpstreamFailure,
            "delete a version through its .zip path",
        ),
        Err(e) => reply::error(&RegistryError::BadPath(e)),
    };
    record(&state, "delete", &response, started);
    response
}

async fn publish(
    state: &AppState,
    repo: &str,
    headers: &HeaderMap,
    body: Body,
    expected: Option<ModuleVersion>,
) -> Response {
    let started = Instant::now();
    let result = async {
        let principal = state.registry.authenticate(reply::authorization(headers))?;
        // Authorize before reading the body, so a refused client is not made to upload it.
        state
            .registry
            .authorized(&principal, repo, crate::auth::Permission::Deploy)?;
        state
            .registry
            .publish(&principal, repo, body.into_data_stream(), expected)
            .await
    }
    .await;
    let (outcome, response) = match result {
        Ok((published, _)) => (
            "published",
            reply::text(
                StatusCode::CREATED,
                CacheClass::UpstreamFailure,
                published.go_sum,
            ),
        ),
        Err(e) => (crate::metrics::publish_outcome(e.kind()), reply::error(&e)),
    };
    state
        .metrics
        .publishes
        .get_or_create(&OutcomeLabels { outcome })
        .inc();
    record(state, "upload", &response, started);
    response
}

/// A `.mod` or `.info` upload: checked with `check`, compared with the stored one if the
/// version exists.
async fn side_file(
    state: &AppState,
    repo: &str,
    headers: &HeaderMap,
    body: Body,
    request: ProxyRequest,
    check: impl FnOnce(&[u8]) -> Result<(), String>,
) -> Response {
    let started = Instant::now();
    let result = async {
        let principal = state.registry.authenticate(reply::authorization(headers))?;
        state.registry.authorized(&principal, repo, crate::auth::Permission::Deploy)?;
        let stream = Box::pin(futures::TryStreamExt::map_err(body.into_data_stream(), std::io::Error::other));
        let data = read_body(stream, MAX_SIDE_FILE)
            .await
            .map_err(|_| RegistryError::TooLarge { limit: MAX_SIDE_FILE as u64 })?;
        check(&data).map_err(|e| RegistryError::InvalidModule(vec![e]))?;
        let stored = match state.registry.read(&principal, repo, &request, None).await {
            Ok(answer) => Some(answer),
            Err(RegistryError::NotFound(_)) => None,
            Err(e) => return Err(e),
        };
        let name = request.path();
        match stored {
            None => Ok(reply::text(
                StatusCode::ACCEPTED,
                CacheClass::UpstreamFailure,
                format!("accepted {name}: the version is stored when its .zip is uploaded (its .mod comes from the zip)"),
            )),
            Some(answer) => {
                let same = match answer {
                    Answer::Artifact(a) => read_body(a.object.body, MAX_SIDE_FILE).await.map(|b| b == data).unwrap_or(false),
                    Answer::Info(..) => true,
                    Answer::List(..) => false,
                };
                if same {
                    Ok(reply::text(StatusCode::OK, CacheClass::UpstreamFailure, format!("{name} matches the stored version")))
                } else {
                    Err(RegistryError::Conflict(format!("{name} differs from the stored version; versions are immutable")))
                }
            }
        }
    }
    .await;
    let response = result.unwrap_or_else(|e| reply::error(&e));
    record(state, "upload", &response, started);
    response
}

fn record(state: &AppState, endpoint: &'static str, response: &Response, started: Instant) {
    state
        .metrics
        .observe_request(endpoint, response.status().as_u16(), started);
}
