//! The warm-up API: CI pipelines post their go.sum (or go.mod, or a list of `module@version`)
//! before a build, and every listed version is fetched into the registry by `Prefetch` jobs.
//!
//! - `POST /api/warm?repository=<repo>[&pin=<name>]`, body:
//!   - a **go.sum**: every line's version; `/go.mod` lines fetch only the go.mod, unless the
//!     same version also has a zip line;
//!   - a **go.mod** (it has a `module` directive): every `require`d version, whole; a
//!     requirement replaced by a directory is skipped, one replaced by another module version
//!     fetches the replacement;
//!   - **lines `module@version`** (blank lines and `#` or `//` comments ignored).
//!
//!   Everything is validated before anything is enqueued: a bad line is a 400 naming it. The
//!   caller needs a token with read permission on the repository. Answer: 202
//!   `{"id", "jobs", "progress": "/api/warm/<id>"}`. The set is stored as
//!   `sync/warmups/<id>.json` in the registry storage, so any worker answers for it.
//! - `GET /api/warm/{id}`: `{total, completed, failed, pending, done, failures: […]}` —
//!   completed from the queue's completion markers, failed from the prefetches' failure
//!   records (a job that gave up for good).
//! - `pin=<name>` also stores the set as pin `sync/pins/<name>.json` (a later warm-up with the
//!   same pin name replaces it): retention never removes pinned versions.
//!   `GET /api/pins/{name}` shows a pin (read permission), `DELETE /api/pins/{name}` removes
//!   it (admin permission on its repository).

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use strata_registry_engine::auth::Permission;
use strata_registry_engine::keys::RepoName;
use strata_registry_engine::registry::Registry;
use strata_registry_engine::storage::KeyPrefix;
use strata_core::gomod::GoMod;
use strata_core::gosum::GoSumLine;
use strata_core::path::ModulePath;
use strata_core::version::Version;

use super::{ApiState, authorized, json, principal, queue_error, text};
use crate::envelope::JobId;
use crate::handlers::prefetch;
use crate::job::Job;
use crate::queue::NewJob;
use crate::registry::{
    DocError, Write, delete_doc, read_doc, rfc3339, sync_key, unix_now, write_doc,
};

/// The largest body accepted.
pub const MAX_BODY: usize = 8 << 20;
/// The most versions one warm-up may list.
pub const MAX_ITEMS: usize = 50_000;
/// Completion checks run at once when progress is asked for.
const PROGRESS_CONCURRENCY: usize = 16;

/// One version to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarmItem {
    /// The module.
    pub module: ModulePath,
    /// The version.
    pub version: Version,
    /// Only the go.mod (and `.info`).
    pub mod_only: bool,
}

/// What a warm-up body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A go.sum file.
    GoSum,
    /// A go.mod file.
    GoMod,
    /// Lines `module@version`.
    List,
}

impl Format {
    /// Its name in messages.
    pub fn name(self) -> &'static str {
        match self {
            Format::GoSum => "go.sum",
            Format::GoMod => "go.mod",
            Format::List => "module@version list",
        }
    }
}

/// A body that cannot be warmed, naming the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{format} line {line}: {text:?}: {reason}")]
pub struct BodyError {
    /// The format the body was read as.
    pub format: &'static str,
    /// 1-based line number.
    pub line: usize,
    /// The line.
    pub text: String,
    /// What is wrong.
    pub reason: String,
}

fn meaningful(line: &str) -> Option<&str> {
    let line = line.trim();
    (!line.is_empty() && !line.starts_with('#') && !line.starts_with("//")).then_some(line)
}

/// Which format `text` is: a go.mod has a `module` directive, a go.sum's lines have three
/// fields ending in an `h1:` hash, anything else is a list.
pub fn detect(text: &str) -> Format {
    let is_module_directive = |line: &str| {
        line.strip_prefix("module")
            .is_some_and(|rest| rest.starts_with([' ', '\t', '"', '(']))
    };
    if text.lines().filter_map(meaningful).any(is_module_directive) {
        return Format::GoMod;
    }
    match text.lines().find_map(meaningful) {
        Some(first) => {
            let fields: Vec<&str> = first.split_whitespace().collect();
            if fields.len() == 3 && fields[2].starts_with("h1:") {
                Format::GoSum
            } else {
                Format::List
            }
        }
        None => Format::List,
    }
}

/// Checks a module path and version as a pair.
fn module_version(path: &str, version: &str) -> Result<(ModulePath, Version), String> {
    let module = ModulePath::new(path).map_err(|e| format!("module path: {e}"))?;
    let version = Version::new(version).map_err(|e| format!("version: {e}"))?;
    strata_core::version::check(module.as_str(), version.as_str()).map_err(|e| e.to_string())?;
    Ok((module, version))
}

/// The versions a body lists, deduplicated in order of appearance (a version listed with
/// its zip anywhere is fetched whole), with the line each came from.
pub fn parse(text: &str) -> Result<(Format, Vec<(WarmItem, usize)>), BodyError> {
    let format = detect(text);
    let mut items: Vec<(WarmItem, usize)> = Vec::new();
    let mut seen: HashMap<(String, String), usize> = HashMap::new();
    let mut add = |module: ModulePath, version: Version, mod_only: bool, line: usize| {
        let key = (module.as_str().to_owned(), version.as_str().to_owned());
        match seen.get(&key) {
            Some(&i) => items[i].0.mod_only &= mod_only,
            None => {
                seen.insert(key, items.len());
                items.push((
                    WarmItem {
                        module,
                        version,
                        mod_only,
                    },
                    line,
                ));
            }
        }
    };
    let error = |line: usize, text: &str, reason: String| BodyError {
        format: format.name(),
        line,
        text: text.to_owned(),
        reason,
    };
    match format {
        Format::GoSum => {
            for (i, raw) in text.split('\n').enumerate() {
                let line_no = i + 1;
                let parsed = GoSumLine::parse(raw, line_no)
                    .map_err(|e| error(line_no, raw.trim(), e.to_string()))?;
                let Some(line) = parsed else { continue };
                let (module, version) = module_version(&line.path, &line.version)
                    .map_err(|reason| error(line_no, raw.trim(), reason))?;
                add(module, version, line.go_mod_only, line_no);
            }
        }
        Format::GoMod => {
            let gomod = GoMod::parse(text.as_bytes()).map_err(|e| BodyError {
                format: format.name(),
                line: e.line().unwrap_or(0),
                text: e
                    .line()
                    .and_then(|n| text.lines().nth(n - 1))
                    .unwrap_or("")
                    .trim()
                    .to_owned(),
                reason: e.to_string(),
            })?;
            for require in &gomod.require {
                let replaced = gomod.replace.iter().find(|r| {
                    r.old_path == require.path
                        && r.old_version
                            .as_deref()
                            .is_none_or(|v| v == require.version)
                });
                let (path, version) = match replaced {
                    // A local directory: nothing to fetch.
                    Some(r) if r.new_version.is_none() => continue,
                    Some(r) => (r.new_path.as_str(), r.new_version.as_deref().unwrap_or("")),
                    None => (require.path.as_str(), require.version.as_str()),
                };
                let line_no = line_of(text, &require.path, &require.version);
                let (module, version) = module_version(path, version).map_err(|reason| {
                    error(
                        line_no,
                        &format!("{} {}", require.path, require.version),
                        reason,
                    )
                })?;
                add(module, version, false, line_no);
            }
        }
        Format::List => {
            for (i, raw) in text.lines().enumerate() {
                let line_no = i + 1;
                let Some(line) = meaningful(raw) else {
                    continue;
                };
                let Some((path, version)) = line.rsplit_once('@') else {
                    return Err(error(
                        line_no,
                        line,
                        "expected module@version (or a go.sum or go.mod)".into(),
                    ));
                };
                if line.split_whitespace().nth(1).is_some() {
                    return Err(error(
                        line_no,
                        line,
                        "expected one module@version per line".into(),
                    ));
                }
                let (module, version) =
                    module_version(path, version).map_err(|reason| error(line_no, line, reason))?;
                add(module, version, false, line_no);
            }
        }
    }
    Ok((format, items))
}

/// The line of a go.mod requirement (1-based; 0 if not found literally).
fn line_of(text: &str, path: &str, version: &str) -> usize {
    text.lines()
        .position(|l| l.contains(path) && l.contains(version))
        .map_or(0, |i| i + 1)
}

/// `sync/warmups/<id>.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarmupDoc {
    /// The warm-up's id.
    pub id: String,
    /// The repository warmed.
    pub repository: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// The token that asked.
    pub requested_by: String,
    /// The pin it set, if any.
    #[serde(default)]
    pub pin: Option<String>,
    /// What the body was.
    pub format: String,
    /// The versions, with their jobs.
    pub items: Vec<WarmupItem>,
}

/// One version of a warm-up set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WarmupItem {
    /// The module.
    pub module: String,
    /// The version.
    pub version: String,
    /// Only the go.mod.
    pub mod_only: bool,
    /// The prefetch job's idempotency key.
    pub key: String,
    /// The prefetch job's id.
    pub job_id: String,
}

/// `sync/pins/<name>.json`: versions retention keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinDoc {
    /// The pin's name.
    pub name: String,
    /// The repository the set was warmed into.
    pub repository: String,
    /// The warm-up that set it.
    pub warmup: String,
    /// When (RFC 3339).
    pub created_at: String,
    /// The pinned versions.
    pub items: Vec<PinItem>,
}

/// A pinned version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinItem {
    /// The module.
    pub module: String,
    /// The version.
    pub version: String,
    /// Only its go.mod was warmed.
    pub mod_only: bool,
}

/// Checks a pin name: 1–64 of `[A-Za-z0-9._-]`, not starting with `.`.
pub fn check_pin_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid pin name {name:?}: use 1 to 64 letters, digits, '.', '_' or '-', not starting with '.'"
        ))
    }
}

fn pin_key(name: &str) -> Result<strata_registry_engine::storage::ObjectKey, String> {
    check_pin_name(name)?;
    sync_key(&format!("pins/{name}.json")).map_err(|e| e.to_string())
}

fn warmup_key(id: &str) -> Result<strata_registry_engine::storage::ObjectKey, String> {
    if id.is_empty() || id.len() > 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("invalid warm-up id {id:?}"));
    }
    sync_key(&format!("warmups/{id}.json")).map_err(|e| e.to_string())
}

/// Every pin.
pub async fn load_pins(registry: &Registry) -> Result<Vec<PinDoc>, DocError> {
    let prefix = KeyPrefix::new("sync/pins/").map_err(|source| DocError::Storage {
        key: "sync/pins/".into(),
        source,
    })?;
    let keys: Vec<_> = registry
        .store()
        .list(&prefix)
        .map_ok(|meta| meta.key)
        .try_collect()
        .await
        .map_err(|source| DocError::Storage {
            key: "sync/pins/".into(),
            source,
        })?;
    let mut pins = Vec::with_capacity(keys.len());
    for key in keys {
        if let Some((pin, _)) = read_doc::<PinDoc>(registry.store(), &key).await? {
            pins.push(pin);
        }
    }
    Ok(pins)
}

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
        return text(
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
        return text(StatusCode::BAD_REQUEST, e);
    }
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return text(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is larger than {MAX_BODY} bytes"),
            );
        }
    };
    let Ok(body) = std::str::from_utf8(&bytes) else {
        return text(StatusCode::BAD_REQUEST, "the body is not UTF-8 text");
    };
    let (format, items) = match parse(body) {
        Ok(parsed) => parsed,
        Err(e) => return text(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if items.is_empty() {
        return text(
            StatusCode::BAD_REQUEST,
            "the body lists no module versions (send a go.sum, a go.mod or lines module@version)",
        );
    }
    if items.len() > MAX_ITEMS {
        return text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} versions; one warm-up takes at most {MAX_ITEMS}",
                items.len()
            ),
        );
    }
    for (item, line) in &items {
        if !entry.config.accepts(item.module.as_str()) {
            return text(
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
        Err(e) => return text(StatusCode::BAD_REQUEST, e),
    };
    let enqueued = match state.queue.enqueue_batch(jobs).await {
        Ok(enqueued) => enqueued,
        Err(e) => return queue_error(&e),
    };
    let id = JobId::generate().to_string();
    let created_at = rfc3339(unix_now());
    let doc = WarmupDoc {
        id: id.clone(),
        repository: repo.to_owned(),
        created_at: created_at.clone(),
        requested_by: principal.label().to_owned(),
        pin: query.pin.clone(),
        format: format.name().to_owned(),
        items: items
            .iter()
            .zip(&enqueued)
            .map(|((item, _), queued)| WarmupItem {
                module: item.module.to_string(),
                version: item.version.to_string(),
                mod_only: item.mod_only,
                key: queued.key.clone(),
                job_id: queued.id.to_string(),
            })
            .collect(),
    };
    let stored = match warmup_key(&id) {
        Ok(key) => write_doc(state.registry.store(), &key, &doc, Write::IfAbsent)
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    if let Err(e) = stored {
        return text(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "the {} jobs were enqueued, but the warm-up set could not be stored: {e}",
                enqueued.len()
            ),
        );
    }
    if let Some(name) = &query.pin {
        let pin = PinDoc {
            name: name.clone(),
            repository: repo.to_owned(),
            warmup: id.clone(),
            created_at,
            items: doc
                .items
                .iter()
                .map(|i| PinItem {
                    module: i.module.clone(),
                    version: i.version.clone(),
                    mod_only: i.mod_only,
                })
                .collect(),
        };
        let pinned = match pin_key(name) {
            Ok(key) => write_doc(state.registry.store(), &key, &pin, Write::Overwrite)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        if let Err(e) = pinned {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("warm-up {id} was enqueued, but pin {name:?} could not be stored: {e}"),
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

/// A version that will not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The module.
    pub module: String,
    /// The version.
    pub version: String,
    /// Only the go.mod was asked for.
    pub mod_only: bool,
    /// Why.
    pub error: String,
}

/// The answer of `GET /api/warm/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// The warm-up's id.
    pub id: String,
    /// The repository.
    pub repository: String,
    /// When it was asked for.
    pub created_at: String,
    /// The pin it set.
    pub pin: Option<String>,
    /// Versions listed.
    pub total: usize,
    /// Stored.
    pub completed: usize,
    /// Given up (see `failures`).
    pub failed: usize,
    /// Still queued, running or waiting for a retry.
    pub pending: usize,
    /// Nothing pending.
    pub done: bool,
    /// The versions that failed, with why.
    pub failures: Vec<Failure>,
}

enum ItemState {
    Completed,
    Failed(String),
    Pending,
}

async fn item_state(
    state: &ApiState,
    repo: &str,
    item: &WarmupItem,
) -> Result<ItemState, Response> {
    match state.queue.is_completed(&item.key).await {
        Ok(true) => return Ok(ItemState::Completed),
        Ok(false) => {}
        Err(e) => return Err(queue_error(&e)),
    }
    let (Ok(module), Ok(version)) = (ModulePath::new(&item.module), Version::new(&item.version))
    else {
        return Ok(ItemState::Failed("not a module version".into()));
    };
    match prefetch::failure(&state.registry, repo, &module, &version, item.mod_only).await {
        Ok(Some(record)) if record.job_id == item.job_id => Ok(ItemState::Failed(record.error)),
        Ok(_) => Ok(ItemState::Pending),
        Err(e) => Err(text(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
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
        Err(e) => return text(StatusCode::NOT_FOUND, e),
    };
    let doc = match read_doc::<WarmupDoc>(state.registry.store(), &key).await {
        Ok(Some((doc, _))) => doc,
        Ok(None) => return text(StatusCode::NOT_FOUND, format!("no warm-up {id}")),
        Err(e) => return text(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    if let Err(response) = authorized(&state, &principal, &doc.repository, Permission::Read) {
        return response;
    }
    let states: Vec<Result<ItemState, Response>> = futures::stream::iter(doc.items.clone())
        .map(|item| {
            let state = state.clone();
            let repo = doc.repository.clone();
            async move { item_state(&state, &repo, &item).await }
        })
        .buffered(PROGRESS_CONCURRENCY)
        .collect()
        .await;
    let mut progress = Progress {
        id: doc.id.clone(),
        repository: doc.repository.clone(),
        created_at: doc.created_at.clone(),
        pin: doc.pin.clone(),
        total: doc.items.len(),
        completed: 0,
        failed: 0,
        pending: 0,
        done: false,
        failures: Vec::new(),
    };
    for (item, item_state) in doc.items.iter().zip(states) {
        match item_state {
            Ok(ItemState::Completed) => progress.completed += 1,
            Ok(ItemState::Pending) => progress.pending += 1,
            Ok(ItemState::Failed(error)) => {
                progress.failed += 1;
                progress.failures.push(Failure {
                    module: item.module.clone(),
                    version: item.version.clone(),
                    mod_only: item.mod_only,
                    error,
                });
            }
            Err(response) => return response,
        }
    }
    progress.done = progress.pending == 0;
    json(StatusCode::OK, &progress)
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
            text(
                StatusCode::OK,
                format!("unpinned {name}: {} versions", pin.items.len()),
            )
        }
        Err(e) => text(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn load_pin(state: &ApiState, name: &str) -> Result<PinDoc, Response> {
    let key = pin_key(name).map_err(|e| text(StatusCode::BAD_REQUEST, e))?;
    match read_doc::<PinDoc>(state.registry.store(), &key).await {
        Ok(Some((pin, _))) => Ok(pin),
        Ok(None) => Err(text(StatusCode::NOT_FOUND, format!("no pin {name:?}"))),
        Err(e) => Err(text(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
    }
}

/// A repository name from a query or path.
pub(crate) fn repo_name(name: &str) -> Result<RepoName, Response> {
    RepoName::new(name).map_err(|e| text(StatusCode::BAD_REQUEST, e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn listed(items: &[(WarmItem, usize)]) -> Vec<String> {
        items
            .iter()
            .map(|(i, _)| {
                format!(
                    "{}@{}{}",
                    i.module,
                    i.version,
                    if i.mod_only { "/mod" } else { "" }
                )
            })
            .collect()
    }

    #[test]
    fn go_sum_lines_fetch_go_mod_only_unless_the_zip_is_listed() {
        let body = "\
example.com/a v1.0.0 h1:AAAA=
example.com/a v1.0.0/go.mod h1:BBBB=
example.com/b v1.1.0/go.mod h1:CCCC=

example.com/C/v2 v2.0.0/go.mod h1:DDDD=
example.com/C/v2 v2.0.0 h1:EEEE=
";
        let (format, items) = parse(body).unwrap();
        assert_eq!(format, Format::GoSum);
        assert_eq!(
            listed(&items),
            [
                "example.com/a@v1.0.0",
                "example.com/b@v1.1.0/mod",
                "example.com/C/v2@v2.0.0"
            ]
        );
        assert_eq!(items[1].1, 3, "the line it came from");
    }

    #[test]
    fn go_mod_requirements_are_fetched_whole() {
        let body = "\
// a comment first
module example.com/app

go 1.22

require (
\texample.com/a v1.0.0
\texample.com/b v1.2.0 // indirect
\texample.com/local v0.1.0
\texample.com/old v1.0.0
)

replace example.com/local => ../local
replace example.com/old v1.0.0 => example.com/new v1.3.0
";
        let (format, items) = parse(body).unwrap();
        assert_eq!(format, Format::GoMod);
        assert_eq!(
            listed(&items),
            [
                "example.com/a@v1.0.0",
                "example.com/b@v1.2.0",
                "example.com/new@v1.3.0"
            ]
        );
    }

    #[test]
    fn lists_take_module_at_version_lines() {
        let body = "# warm these\nexample.com/a@v1.0.0\n\n// and this\nexample.com/b@v0.0.0-20240101000000-abcdefabcdef\nexample.com/a@v1.0.0\n";
        let (format, items) = parse(body).unwrap();
        assert_eq!(format, Format::List);
        assert_eq!(
            listed(&items),
            [
                "example.com/a@v1.0.0",
                "example.com/b@v0.0.0-20240101000000-abcdefabcdef"
            ]
        );
    }

    #[test]
    fn bad_lines_are_named() {
        for (body, line, want) in [
            (
                "example.com/a v1.0.0 h1:AAAA=\nexample.com/b v1.0.0\n",
                2,
                "wrong number of fields",
            ),
            (
                "example.com/a v1.0.0 h1:AAAA=\nexample.com/b 1.0.0 h1:BBBB=\n",
                2,
                "version",
            ),
            ("example.com/a@v1.0.0\nnot a line\n", 2, "module@version"),
            ("example.com/a@v1.0.0\nexample.com/b/v2@v1.0.0\n", 2, "v2"),
            ("example.com/a@v1.0.0\nnodot@v1.0.0\n", 2, "module path"),
            ("example.com/a@v1.0\n", 1, "not canonical"),
            (
                "module example.com/app\n\nrequire example.com/a v1.0.0\nrequire example.com/b/v3 v1.0.0\n",
                4,
                "v3",
            ),
        ] {
            let error = parse(body).unwrap_err();
            assert_eq!(error.line, line, "{body:?}: {error}");
            assert!(error.to_string().contains(want), "{body:?}: {error}");
        }
        let error = parse("module example.com/app\nrequire (\n").unwrap_err();
        assert!(error.to_string().contains("go.mod"), "{error}");
    }

    #[test]
    fn formats_are_detected() {
        assert_eq!(detect("example.com/a v1.0.0 h1:x=\n"), Format::GoSum);
        assert_eq!(detect("module example.com/x\n"), Format::GoMod);
        assert_eq!(detect("go 1.22\nmodule \"example.com/x\"\n"), Format::GoMod);
        assert_eq!(detect("modulex@v1.0.0\n"), Format::List);
        assert_eq!(detect(""), Format::List);
    }

    #[test]
    fn pin_names_are_checked() {
        for good in ["release-1.2", "ci_main", "A"] {
            assert!(check_pin_name(good).is_ok(), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_pin_name(bad).is_err(), "{bad}");
        }
        assert!(warmup_key("0192f3a4b5c6").is_ok());
        assert!(warmup_key("../x").is_err());
    }
}
