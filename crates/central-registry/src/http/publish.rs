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
//!   200 if they match what is stored (the `.mod` byte for byte, the `.info` its `Version` and
//!   `Time`) and 409 if they do not. Like the zip, they are refused (403) for remote and virtual
//!   repositories, before the body is read.
//! * `DELETE /api/go/{repo}/{module}/@v/{version}.zip` deletes the version (delete permission).
//!
//! Errors: 400 with every violation (and for a body the client aborted), 401/403, 409 when the
//! version exists (or existed with other bytes), 413 past the size limit — always `text/plain`
//! and never a partial version.

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
use crate::registry::{Answer, Repository};
use crate::repository::InfoDoc;
use crate::storage::read_body;
use crate::upload;
use strata_registry_engine::audit;

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
        request @ (ProxyRequest::Mod(..) | ProxyRequest::Info(..)) => {
            side_file(&state, &repo, &headers, body, request).await
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
                    .authenticate(reply::authorization(&headers))
                    .inspect_err(|e| audit::unauthenticated("delete", &repo, &e.to_string()))?;
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
        let principal = state
            .registry
            .authenticate(reply::authorization(headers))
            .inspect_err(|e| audit::unauthenticated("publish", repo, &e.to_string()))?;
        // The engine authorizes before it reads the body, so a refused client is not made to
        // upload it, and audits the attempt either way.
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

/// A `.mod` or `.info` upload (`request`): checked, then compared with the stored one if the
/// version exists.
async fn side_file(
    state: &AppState,
    repo: &str,
    headers: &HeaderMap,
    body: Body,
    request: ProxyRequest,
) -> Response {
    let started = Instant::now();
    let result = async {
        let principal = state.registry.authenticate(reply::authorization(headers))?;
        let entry = state
            .registry
            .authorized(&principal, repo, crate::auth::Permission::Deploy)?;
        // Before the body is read, and before anything could reach a remote's upstream.
        if !matches!(entry.repo, Repository::Local(_)) {
            return Err(RegistryError::Unsupported(format!(
                "cannot publish to {} repository {:?}: only local repositories are written \
                 through the API",
                entry.config.kind(),
                entry.config.name().as_str()
            )));
        }
        let data = upload::read_small(body.into_data_stream(), MAX_SIDE_FILE).await?;
        let name = request.path();
        let uploaded_info = check_side_file(&request, &data).map_err(|e| RegistryError::InvalidModule(vec![e]))?;
        let stored = match state.registry.read(&principal, repo, &request, None).await {
            Ok(answer) => answer,
            Err(RegistryError::NotFound(_)) => {
                return Ok(reply::text(
                    StatusCode::ACCEPTED,
                    CacheClass::UpstreamFailure,
                    format!("accepted {name}: the version is stored when its .zip is uploaded (its .mod comes from the zip)"),
                ));
            }
            Err(e) => return Err(e),
        };
        let difference = match (stored, uploaded_info) {
            (Answer::Artifact(a), None) => {
                let same = read_body(a.object.body, MAX_SIDE_FILE)
                    .await
                    .map(|b| b == data)
                    .map_err(|e| RegistryError::io(format!("reading the stored {name}"), e))?;
                (!same).then(|| "its content differs from the stored go.mod".to_owned())
            }
            (Answer::Info(stored, _), Some(uploaded)) => (stored.time != uploaded.time).then(|| {
                format!(
                    "its Time {:?} differs from the stored {:?} (the time the version was published)",
                    uploaded.time, stored.time
                )
            }),
            _ => Some("it does not match what is stored".to_owned()),
        };
        match difference {
            None => Ok(reply::text(StatusCode::OK, CacheClass::UpstreamFailure, format!("{name} matches the stored version"))),
            Some(why) => Err(RegistryError::Conflict(format!("{name} differs from the stored version: {why}; versions are immutable"))),
        }
    }
    .await;
    let response = result.unwrap_or_else(|e| reply::error(&e));
    record(state, "upload", &response, started);
    response
}

/// Checks an uploaded `.mod` (it must name the module) or `.info` (it must name the version);
/// returns the parsed `.info`.
fn check_side_file(request: &ProxyRequest, data: &[u8]) -> Result<Option<InfoDoc>, String> {
    match request {
        ProxyRequest::Mod(m, v) => GoMod::parse_for(data, m.as_str())
            .map(|_| None)
            .map_err(|e| format!("{m}@{v}.mod: {e}")),
        ProxyRequest::Info(m, v) => {
            let info: InfoDoc = serde_json::from_slice(data)
                .map_err(|e| format!("{m}@{v}.info: not version JSON: {e}"))?;
            if info.version != v.as_str() {
                return Err(format!("{m}@{v}.info names version {:?}", info.version));
            }
            Ok(Some(info))
        }
        other => Err(format!(
            "{}: only .mod and .info accompany a zip",
            other.path()
        )),
    }
}

fn record(state: &AppState, endpoint: &'static str, response: &Response, started: Instant) {
    state
        .metrics
        .observe_request(endpoint, response.status().as_u16(), started);
}
