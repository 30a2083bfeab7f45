//! The warm-up API: CI pipelines post their go.sum (or go.mod, or a list of `module@version`)
//! before a build, and every listed version is fetched into the registry by `Prefetch` jobs.
//!
//! - `POST /api/warm?repository=<repo>[&pin=<name>]`, the body a go.sum, a go.mod or lines
//!   `module@version` ([`crate::jobs::warmup::body`]). Everything is validated before anything
//!   is enqueued: a bad line is a 400 naming it. The caller needs a token with read permission
//!   on the repository. Answer: 202 `{"id", "jobs", "progress": "/api/warm/<id>"}`. The set is
//!   stored as `sync/warmups/<id>.json` in the registry storage, so any worker answers for it.
//! - `GET /api/warm/{id}`: `{total, completed, failed, pending, done, failures: […]}` —
//!   completed from the queue's completion markers, failed from the prefetches' failure
//!   records (a job that gave up for good).
//! - `pin=<name>` also stores the set as pin `sync/pins/<name>.json` (a later warm-up with the
//!   same pin name into the same repository replaces it; one into another repository is a 409
//!   and enqueues nothing): retention never removes pinned versions.
//!   `GET /api/pins/{name}` shows a pin (read permission), `DELETE /api/pins/{name}` removes
//!   it (admin permission on its repository).

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use strata_registry_engine::auth::Permission;
use strata_registry_engine::keys::RepoName;

use super::{ApiState, authorized, json, message, principal, queue_error};
use crate::jobs::warmup::{
    PinDoc, ProgressError, WarmupDoc, check_pin_name, parse, pin_key, progress, warmup_key,
};
use crate::registry::{DocError, Write, delete_doc, read_doc, write_doc};
use crate::runtime::envelope::JobId;
use crate::runtime::job::Job;
use crate::runtime::queue::NewJob;

/// The largest body accepted.
pub const MAX_BODY: usize = 8 << 20;
/// The most versions one warm-up may list.
pub const MAX_ITEMS: usize = 50_000;

/// The query of `POST /api/warm`.
#[derive(Debug, Deserialize)]
pub struct WarmQuery {
    /// The repository to warm (remote, or virtual over remotes).
    pub repository: Option<String>,
    /// Pin the set under this name.
    pub pin: Option<String>,
}

/// The answer of `POST /api/warm`.
#[derive(Debug, Serialize, Deserialize)]
pub struct WarmAccepted {
    /// The warm-up's id.
    pub id: String,
    /// Versions enqueued.
    pub jobs: usize,
    /// Where to follow it.
    pub progress: String,
    /// The repository.
    pub repository: String,
    /// The body's format.
    pub format: String,
    /// The pin set, if any.
    pub pin: Option<String>,
}

/// `POST /api/warm`.
pub async fn post_warm(
    State(state): State<ApiState>,
    Query(query): Query<WarmQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let principal = match principal(&state, &headers) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let Some(repo) = query.repository.as_deref().filter(|r| !r.is_empty()) else {
        return message(
            StatusCode::BAD_REQUEST,
            "the repository query parameter is required: POST /api/warm?repository=<repo>",
        );
    };
    let entry = match authorized(&state, &principal, repo, Permission::Read) {
        Ok(entry) => entry,
        Err(response) => return response,
    };
    let repository = entry.config.name().clone();
    if let Some(pin) = &query.pin
        && let Err(e) = check_pin_name(pin)
    {
        return message(StatusCode::BAD_REQUEST, e);
    }
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return message(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {MAX_BODY} bytes"),
            );
        }
    };
    let Ok(body) = std::str::from_utf8(&bytes) else {
        return message(StatusCode::BAD_REQUEST, "the body is not UTF-8 text");
    };
    let (format, items) = match parse(body) {
        Ok(parsed) => parsed,
        Err(e) => return message(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if items.is_empty() {
        return message(
            StatusCode::BAD_REQUEST,
            "the body lists no module versions (send a go.sum, a go.mod or lines module@version)",
        );
    }
    if items.len() > MAX_ITEMS {
        return message(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} versions; one warm-up takes at most {MAX_ITEMS}",
                items.len()
            ),
        );
    }
    for (item, line) in &items {
        if !entry.config.accepts(item.module.as_str()) {
            return message(
                StatusCode::BAD_REQUEST,
                format!(
                    "{} line {line}: {}@{}: repository {repo:?} does not serve this module path",
                    format.name(),
                    item.module,
                    item.version
                ),
            );
        }
    }
    // A pin is replaced only by a warm-up into its own repository, and only if it is still
    // the pin read here: checked before anything is enqueued, so a refusal changes nothing.
    let pin_write = match &query.pin {
        Some(name) => match pin_precondition(&state, name, repository.as_str()).await {
            Ok(how) => Some(how),
            Err(response) => return response,
        },
        None => None,
    };
    let jobs: Result<Vec<NewJob>, String> = items
        .iter()
        .map(|(item, _)| {
            Job::prefetch(
                repository.clone(),
                item.module.clone(),
                item.version.clone(),
                item.mod_only,
            )
            .map(NewJob::new)
        })
        .collect();
    let jobs = match jobs {
        Ok(jobs) => jobs,
        Err(e) => return message(StatusCode::BAD_REQUEST, e),
    };
    let enqueued = match state.queue.enqueue_batch(jobs).await {
        Ok(enqueued) => enqueued,
        Err(e) => return queue_error(&e),
    };
    let id = JobId::generate().to_string();
    let doc = WarmupDoc::new(
        id.clone(),
        repo,
        principal.label(),
        query.pin.clone(),
        format,
        &items,
        &enqueued,
    );
    let stored = match warmup_key(&id) {
        Ok(key) => write_doc(state.registry.store(), &key, &doc, Write::IfAbsent)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    if let Err(e) = stored {
        return message(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "the {} jobs were enqueued, but the warm-up set could not be stored: {e}",
                enqueued.len()
            ),
        );
    }
    if let (Some(name), Some(how)) = (&query.pin, pin_write) {
        let pinned = match pin_key(name) {
            Ok(key) => write_doc(state.registry.store(), &key, &doc.pin(name), how)
                .await
                .map_err(|e| {
                    let status = match e {
                        DocError::Conflict { .. } => StatusCode::CONFLICT,
                        _ => StatusCode::INTERNAL_SERVER_ERROR,
                    };
                    (status, e.to_string())
                }),
            Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, e)),
        };
        if let Err((status, e)) = pinned {
            return message(
                status,
                format!(
                    "warm-up {id} was enqueued, but pin {name:?} was not stored \
                     (another warm-up changed it meanwhile; warm again to pin): {e}"
                ),
            );
        }
    }
    tracing::info!(%id, repository = repo, jobs = enqueued.len(), format = format.name(),
        pin = ?query.pin, by = principal.label(), "warm-up enqueued");
    json(
        StatusCode::ACCEPTED,
        &WarmAccepted {
            progress: format!("/api/warm/{id}"),
            id,
            jobs: enqueued.len(),
            repository: repo.to_owned(),
            format: format.name().to_owned(),
            pin: query.pin,
        },
    )
}

/// `GET /api/warm/{id}`.
pub async fn get_progress(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let principal = match principal(&state, &headers) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let key = match warmup_key(&id) {
        Ok(key) => key,
        Err(e) => return message(StatusCode::NOT_FOUND, e),
    };
    let doc = match read_doc::<WarmupDoc>(state.registry.store(), &key).await {
        Ok(Some((doc, _))) => doc,
        Ok(None) => return message(StatusCode::NOT_FOUND, format!("no warm-up {id}")),
        Err(e) => return message(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    if let Err(response) = authorized(&state, &principal, &doc.repository, Permission::Read) {
        return response;
    }
    match progress(&state.registry, state.queue.as_ref(), &doc).await {
        Ok(progress) => json(StatusCode::OK, &progress),
        Err(ProgressError::Queue(e)) => queue_error(&e),
        Err(ProgressError::Records(e)) => message(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

/// `GET /api/pins/{name}`.
pub async fn get_pin(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let principal = match principal(&state, &headers) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let pin = match load_pin(&state, &name).await {
        Ok(pin) => pin,
        Err(response) => return response,
    };
    if let Err(response) = authorized(&state, &principal, &pin.repository, Permission::Read) {
        return response;
    }
    json(StatusCode::OK, &pin)
}

/// `DELETE /api/pins/{name}`: admin permission on the pin's repository.
pub async fn delete_pin(
    State(state): State<ApiState>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let principal = match principal(&state, &headers) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let pin = match load_pin(&state, &name).await {
        Ok(pin) => pin,
        Err(response) => return response,
    };
    if let Err(response) = authorized(&state, &principal, &pin.repository, Permission::Admin) {
        return response;
    }
    let deleted = match pin_key(&name) {
        Ok(key) => delete_doc(state.registry.store(), &key)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match deleted {
        Ok(()) => {
            tracing::info!(pin = %name, by = principal.label(), "unpinned");
            message(
                StatusCode::OK,
                format!("unpinned {name}: {} versions", pin.items.len()),
            )
        }
        Err(e) => message(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

/// How pin `name` may be written by a warm-up into `repository`: created if there is none,
/// replaced only if it pins the same repository and is still the version read here. A pin of
/// another repository is a 409 (replacing it would unprotect that repository's versions, which
/// only an admin of it may do, with `DELETE /api/pins/{name}`).
async fn pin_precondition(
    state: &ApiState,
    name: &str,
    repository: &str,
) -> Result<Write, Response> {
    let key = pin_key(name).map_err(|e| message(StatusCode::BAD_REQUEST, e))?;
    match read_doc::<PinDoc>(state.registry.store(), &key).await {
        Ok(None) => Ok(Write::IfAbsent),
        Ok(Some((pin, _))) if pin.repository != repository => Err(message(
            StatusCode::CONFLICT,
            format!(
                "pin {name:?} pins repository {:?}; a warm-up into {repository:?} cannot \
                 replace it (choose another pin name, or have an admin of {:?} delete it)",
                pin.repository, pin.repository
            ),
        )),
        Ok(Some((_, etag))) => Ok(Write::IfMatch(etag)),
        Err(e) => Err(message(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

async fn load_pin(state: &ApiState, name: &str) -> Result<PinDoc, Response> {
    let key = pin_key(name).map_err(|e| message(StatusCode::BAD_REQUEST, e))?;
    match read_doc::<PinDoc>(state.registry.store(), &key).await {
        Ok(Some((pin, _))) => Ok(pin),
        Ok(None) => Err(message(StatusCode::NOT_FOUND, format!("no pin {name:?}"))),
        Err(e) => Err(message(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

/// A repository name from a query or path.
pub(crate) fn repo_name(name: &str) -> Result<RepoName, Response> {
    RepoName::new(name).map_err(|e| message(StatusCode::BAD_REQUEST, e.to_string()))
}
