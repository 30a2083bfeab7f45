//! Retention over HTTP:
//! - `POST /api/retention/{repo}?dry_run=true|false` enqueues a `Retention` job (admin
//!   permission on the repository; `dry_run` defaults to `true`) and answers 202
//!   `{"id", "key", "repository", "dry_run", "report"}`;
//! - `GET /api/retention/{repo}` answers the last report (`sync/retention/<repo>/last.json`,
//!   read permission): `{repository, dry_run, today, max_idle_days, cached_versions,
//!   kept_pinned, candidates: [{module, version, last_used_day, bytes}], removed,
//!   removed_bytes}`.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use serde::{Deserialize, Serialize};
use strata_registry_engine::auth::Permission;
use strata_registry_engine::registry::Repository;

use super::warm::repo_name;
use super::{ApiState, authorized, json, message, principal, queue_error};
use crate::jobs::retention::last_report;
use crate::runtime::job::Job;
use crate::runtime::queue::NewJob;

/// The answer of `POST /api/retention/{repo}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetentionAccepted {
    /// The job's id.
    pub id: String,
    /// Its idempotency key.
    pub key: String,
    /// The repository.
    pub repository: String,
    /// Whether it only lists.
    pub dry_run: bool,
    /// Where its report appears.
    pub report: String,
}

fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// `POST /api/retention/{repo}?dry_run=…`.
pub async fn post_run(
    State(state): State<ApiState>,
    Path(repo): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let principal = match principal(&state, &headers) {
        Ok(p) => p,
        Err(response) => return response,
    };
    let entry = match authorized(&state, &principal, &repo, Permission::Admin) {
        Ok(entry) => entry,
        Err(response) => return response,
    };
    if let Some(unknown) = query.keys().find(|k| k.as_str() != "dry_run") {
        return message(
            StatusCode::BAD_REQUEST,
            format!("unknown query parameter {unknown:?} (only dry_run=true|false)"),
        );
    }
    let dry_run = match query.get("dry_run").map(|v| parse_bool(v)) {
        None => true,
        Some(Some(value)) => value,
        Some(None) => {
            return message(StatusCode::BAD_REQUEST, "dry_run must be true or false");
        }
    };
    if !matches!(entry.repo, Repository::Remote(_)) {
        return message(
            StatusCode::BAD_REQUEST,
            format!(
                "{repo:?} is a {} repository: retention only removes versions cached by remote repositories",
                entry.config.kind()
            ),
        );
    }
    if !state
        .retention
        .iter()
        .any(|p| p.repository.as_str() == repo)
    {
        return message(
            StatusCode::BAD_REQUEST,
            format!("no [[retention]] policy for repository {repo:?} in the worker configuration"),
        );
    }
    let repository = match repo_name(&repo) {
        Ok(name) => name,
        Err(response) => return response,
    };
    let job = NewJob::new(Job::Retention {
        repository,
        dry_run,
    });
    match state.queue.enqueue(job).await {
        Ok(queued) => {
            tracing::info!(repository = %repo, dry_run, id = %queued.id,
                by = principal.label(), "retention enqueued");
            json(
                StatusCode::ACCEPTED,
                &RetentionAccepted {
                    id: queued.id.to_string(),
                    key: queued.key,
                    repository: repo.clone(),
                    dry_run,
                    report: format!("/api/retention/{repo}"),
                },
            )
        }
        Err(e) => queue_error(&e),
    }
}

/// `GET /api/retention/{repo}`.
pub async fn get_report(
    State(state): State<ApiState>,
    Path(repo): Path<String>,
    headers: HeaderMap,
) -> Response {
    let principal = match principal(&state, &headers) {
        Ok(p) => p,
        Err(response) => return response,
    };
    if let Err(response) = authorized(&state, &principal, &repo, Permission::Read) {
        return response;
    }
    match last_report(&state.registry, &repo).await {
        Ok(Some(report)) => json(StatusCode::OK, &report),
        Ok(None) => message(
            StatusCode::NOT_FOUND,
            format!("no retention report for {repo:?} yet"),
        ),
        Err(e) => message(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("true"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }
}
