//! The change event itself: a versioned JSON document, its kinds, and the time-ordered ids that
//! name events and outbox entries.
//!
//! Wire format, schema 1 (fields that are `None` are left out):
//!
//! ```json
//! {"schema":1,"id":"0001927f3c2a0000a41c9e0b5d7f3e21","kind":"version_published",
//!  "repository":"private","module":"example.com/Foo","version":"v1.2.0",
//!  "zip_h1":"h1:…","mod_h1":"h1:…","at":"2024-10-01T12:00:00Z"}
//! ```
//!
//! Readers ignore fields they do not know, so later schema-1 writers may add optional fields.
//! Anything else (a new kind, a changed meaning) bumps [`SCHEMA_VERSION`]; a reader refuses a
//! schema it does not know with [`DecodeError::UnknownSchema`] instead of guessing.

use std::{
    hash::BuildHasher,
    sync::atomic::{AtomicU64, Ordering},
    time::{SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Serialize};
use strata_core::pseudo::Timestamp;

/// The schema version this build writes and the only one it reads.
pub const SCHEMA_VERSION: u32 = 1;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A version was published to a hosted repository.
    VersionPublished,
    /// A version was fetched from an upstream and stored by a caching repository.
    VersionCached,
    /// A version was deleted (its bytes stay reserved: it can never be re-published differently).
    VersionDeleted,
    /// The version list of a module changed for another reason (e.g. retraction, repair).
    ListChanged,
    /// Stored bytes no longer match their recorded hashes, or an upstream served bytes that
    /// contradict the checksum database.
    IntegrityViolation,
}

/// One change to a repository, as every tier sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Schema version of this document; [`SCHEMA_VERSION`] for events built here.
    pub schema: u32,
    /// Unique, time-ordered id. Delivery is at-least-once: consumers dedupe by it.
    pub id: String,
    /// What happened.
    pub kind: EventKind,
    /// The repository the change happened in.
    pub repository: String,
    /// The module path (not case-encoded).
    pub module: String,
    /// The version concerned, if the change is about one version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// `h1:` hash of the version's zip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zip_h1: Option<String>,
    /// `h1:` hash of the version's go.mod.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mod_h1: Option<String>,
    /// When the change happened: RFC 3339 in UTC, second resolution (`2006-01-02T15:04:05Z`).
    pub at: String,
    /// Free-form human-readable detail (e.g. what an integrity check found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The virtual repositories that have `repository` as a member, so show this change under
    /// their own routes too. A consumer that caches per repository invalidates `repository`
    /// and every one of these (schema 1, optional: older events have none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub visible_in: Vec<String>,
}

/// Why a stored or received document is not an event this build can use.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The document declares a schema version this build does not know.
    #[error("event schema {schema} is not supported (this build reads schema {SCHEMA_VERSION})")]
    UnknownSchema {
        /// The version the document declares.
        schema: u64,
    },
    /// The document is not valid JSON, or lacks or mistypes a field.
    #[error("malformed event: {0}")]
    Malformed(#[from] serde_json::Error),
    /// A stream entry carries no `event` field.
    #[error("stream entry has no `event` field")]
    MissingPayload,
}

impl Event {
    /// A new event of `kind` about `module` in `repository`, with a fresh id and the current
    /// time; add the optional parts with the `with_*` methods.
    pub fn new(kind: EventKind, repository: impl Into<String>, module: impl Into<String>) -> Self {
        Self {
            schema: SCHEMA_VERSION,
            id: new_event_id(),
            kind,
            repository: repository.into(),
            module: module.into(),
            version: None,
            zip_h1: None,
            mod_h1: None,
            at: now_rfc3339(),
            detail: None,
            visible_in: Vec::new(),
        }
    }

    /// Every repository whose answers this change affects: `repository`, then the virtual
    /// repositories that show it ([`Event::visible_in`]).
    pub fn affected_repositories(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.repository.as_str()).chain(self.visible_in.iter().map(String::as_str))
    }

    /// Sets the version.
    pub fn with_version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }

    /// Sets the `h1:` hashes of the zip and the go.mod.
    pub fn with_hashes(mut self, zip_h1: impl Into<String>, mod_h1: impl Into<String>) -> Self {
        self.zip_h1 = Some(zip_h1.into());
        self.mod_h1 = Some(mod_h1.into());
        self
    }

    /// Sets the human-readable detail.
    pub fn with_detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// The JSON document (schema [`SCHEMA_VERSION`]).
    pub fn to_json(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }

    /// Parses a JSON document, refusing a schema version other than [`SCHEMA_VERSION`] before
    /// looking at the rest, and ignoring unknown fields.
    pub fn from_json(json: &[u8]) -> Result<Self, DecodeError> {
        #[derive(Deserialize)]
        struct Probe {
            schema: u64,
        }
        let probe: Probe = serde_json::from_slice(json)?;
        if probe.schema != u64::from(SCHEMA_VERSION) {
            return Err(DecodeError::UnknownSchema {
                schema: probe.schema,
            });
        }
        Ok(serde_json::from_slice(json)?)
    }
}

/// A fresh event id: 32 lowercase hex digits, a time-ordered stamp then 64 random bits.
/// Ids made by one process sort (as strings) in the order they were made.
pub fn new_event_id() -> String {
    format!("{:016x}{:016x}", ordered_stamp(), random_u64())
}

/// Milliseconds since the Unix epoch shifted left 16 bits, plus a counter: strictly increasing
/// within the process even when the clock stalls or steps back, so it can order outbox entries.
pub fn ordered_stamp() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = unix_millis() << 16;
    let mut prev = LAST.load(Ordering::Relaxed);
    loop {
        let next = now.max(prev.saturating_add(1));
        match LAST.compare_exchange_weak(prev, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(current) => prev = current,
        }
    }
}

/// 64 unpredictable bits, from the standard library's randomly keyed SipHash: enough for id
/// uniqueness across processes and for backoff jitter, without a dependency on a RNG crate.
pub fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    std::collections::hash_map::RandomState::new().hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
}

fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| {
        u64::try_from(d.as_millis()).unwrap_or(u64::MAX >> 16)
    })
}

fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Timestamp::from_unix_seconds(i64::try_from(secs).unwrap_or(i64::MAX)).to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn round_trips_and_leaves_out_absent_fields() {
        let event = Event::new(EventKind::VersionPublished, "private", "example.com/Foo")
            .with_version("v1.0.0")
            .with_hashes("h1:zip=", "h1:mod=");
        let json = event.to_json().unwrap();
        assert!(json.starts_with(r#"{"schema":1,"id":""#), "{json}");
        assert!(json.contains(r#""kind":"version_published""#), "{json}");
        assert!(!json.contains("detail"), "{json}");
        assert_eq!(Event::from_json(json.as_bytes()).unwrap(), event);
        assert_eq!(event.at.len(), "2006-01-02T15:04:05Z".len());
        assert!(event.at.ends_with('Z'));
    }

    #[test]
    fn tolerates_unknown_fields_and_refuses_unknown_schemas() {
        let doc = r#"{"schema":1,"id":"x","kind":"list_changed","repository":"r",
            "module":"m","at":"2024-01-01T00:00:00Z","new_field":[1,2]}"#;
        let event = Event::from_json(doc.as_bytes()).unwrap();
        assert_eq!(event.kind, EventKind::ListChanged);
        assert_eq!(event.version, None);

        let future = r#"{"schema":2,"id":"x","something":"else"}"#;
        let err = Event::from_json(future.as_bytes()).unwrap_err();
        assert!(
            matches!(err, DecodeError::UnknownSchema { schema: 2 }),
            "{err}"
        );
        assert!(
            err.to_string().contains("schema 2 is not supported"),
            "{err}"
        );

        assert!(matches!(
            Event::from_json(b"{}"),
            Err(DecodeError::Malformed(_))
        ));
        let bad_kind = doc.replace("list_changed", "exploded");
        assert!(matches!(
            Event::from_json(bad_kind.as_bytes()),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn ids_are_unique_and_time_ordered() {
        let ids: Vec<String> = (0..1000).map(|_| new_event_id()).collect();
        assert!(ids.iter().all(|id| id.len() == 32));
        for pair in ids.windows(2) {
            assert!(pair[0][..16] < pair[1][..16], "{pair:?}");
        }
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
    }
}
