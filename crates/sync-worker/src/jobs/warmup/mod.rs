//! Warm-up sets and pins, as documents in the registry storage under `sync/` (so every worker
//! sharing the storage answers for them), and what a set's progress is.
//!
//! - `sync/warmups/<id>.json` ([`WarmupDoc`]): the versions a warm-up listed ([`body`]) and the
//!   `Prefetch` job each got; [`progress`] tells completed ones (the queue's completion
//!   markers) from failed ones (the prefetch failure records of [`super::prefetch`]) and
//!   pending ones.
//! - `sync/pins/<name>.json` ([`PinDoc`]): a set under a name; a later set pinned under the same
//!   name replaces it. Retention never removes a pinned version ([`load_pins`]).
//!
//! The HTTP API (`POST /api/warm`, `GET /api/warm/{id}`, `/api/pins/{name}`) serves these; the
//! documents and their keys are defined here, next to the jobs that read them.

pub mod body;

use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use strata_core::path::ModulePath;
use strata_core::version::Version;
use strata_registry_engine::registry::Registry;
use strata_registry_engine::storage::{KeyPrefix, ObjectKey};

pub use self::body::{BodyError, Format, WarmItem, detect, parse};
use super::prefetch;
use crate::registry::{DocError, read_doc, rfc3339, sync_key, unix_now};
use crate::runtime::queue::{Enqueued, JobQueue, QueueError};

/// Completion checks run at once when progress is asked for.
const PROGRESS_CONCURRENCY: usize = 16;

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

impl WarmupDoc {
    /// The set of warm-up `id`: `items` (from [`parse`]) into `repository`, enqueued as
    /// `enqueued` (in the same order), asked for by `requested_by` now.
    pub fn new(
        id: String,
        repository: &str,
        requested_by: &str,
        pin: Option<String>,
        format: Format,
        items: &[(WarmItem, usize)],
        enqueued: &[Enqueued],
    ) -> Self {
        WarmupDoc {
            id,
            repository: repository.to_owned(),
            created_at: rfc3339(unix_now()),
            requested_by: requested_by.to_owned(),
            pin,
            format: format.name().to_owned(),
            items: items
                .iter()
                .zip(enqueued)
                .map(|((item, _), queued)| WarmupItem {
                    module: item.module.to_string(),
                    version: item.version.to_string(),
                    mod_only: item.mod_only,
                    key: queued.key.clone(),
                    job_id: queued.id.to_string(),
                })
                .collect(),
        }
    }

    /// The pin this set makes under `name`.
    pub fn pin(&self, name: &str) -> PinDoc {
        PinDoc {
            name: name.to_owned(),
            repository: self.repository.clone(),
            warmup: self.id.clone(),
            created_at: self.created_at.clone(),
            items: self
                .items
                .iter()
                .map(|i| PinItem {
                    module: i.module.clone(),
                    version: i.version.clone(),
                    mod_only: i.mod_only,
                })
                .collect(),
        }
    }
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

/// The key of pin `name` (checked with [`check_pin_name`]).
pub fn pin_key(name: &str) -> Result<ObjectKey, String> {
    check_pin_name(name)?;
    sync_key(&format!("pins/{name}.json")).map_err(|e| e.to_string())
}

/// The key of warm-up `id` (an id as [`JobId`](crate::runtime::envelope::JobId) makes them:
/// hexadecimal, at most 64 digits).
pub fn warmup_key(id: &str) -> Result<ObjectKey, String> {
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

/// Why the progress of a warm-up cannot be told.
#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    /// The queue did not say whether a job completed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A prefetch failure record could not be read.
    #[error(transparent)]
    Records(#[from] DocError),
}

enum ItemState {
    Completed,
    Failed(String),
    Pending,
}

async fn item_state(
    registry: &Registry,
    queue: &dyn JobQueue,
    repo: &str,
    item: &WarmupItem,
) -> Result<ItemState, ProgressError> {
    if queue.is_completed(&item.key).await? {
        return Ok(ItemState::Completed);
    }
    let (Ok(module), Ok(version)) = (ModulePath::new(&item.module), Version::new(&item.version))
    else {
        return Ok(ItemState::Failed("not a module version".into()));
    };
    match prefetch::failure(registry, repo, &module, &version, item.mod_only).await? {
        Some(record) if record.job_id == item.job_id => Ok(ItemState::Failed(record.error)),
        _ => Ok(ItemState::Pending),
    }
}

/// How far the set `doc` is: each version's job completed (its key's completion marker), failed
/// for good (a failure record of that very job) or still pending.
pub async fn progress(
    registry: &Registry,
    queue: &dyn JobQueue,
    doc: &WarmupDoc,
) -> Result<Progress, ProgressError> {
    let repo = doc.repository.as_str();
    let states: Vec<Result<ItemState, ProgressError>> = futures::stream::iter(doc.items.clone())
        .map(|item| async move { item_state(registry, queue, repo, &item).await })
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
        match item_state? {
            ItemState::Completed => progress.completed += 1,
            ItemState::Pending => progress.pending += 1,
            ItemState::Failed(error) => {
                progress.failed += 1;
                progress.failures.push(Failure {
                    module: item.module.clone(),
                    version: item.version.clone(),
                    mod_only: item.mod_only,
                    error,
                });
            }
        }
    }
    progress.done = progress.pending == 0;
    Ok(progress)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

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
