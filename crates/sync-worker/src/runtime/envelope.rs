//! The envelope a job travels in: identity, idempotency key, attempt count and enqueue time
//! around the job itself, encoded as one JSON document (the `job` field of a stream entry).
//!
//! ```json
//! {"v":1,"id":"0192f3a4b5c6d7e8f9a0b1c2d3e4","key":"prefetch/gocache/example.com/m@v1.2.3",
//!  "attempts":0,"enqueued_at_ms":1730000000000,
//!  "kind":"prefetch","payload":{"repository":"gocache","module":"example.com/m",…}}
//! ```
//!
//! With tracing on, a job enqueued inside a trace also carries that trace's W3C `traceparent`
//! (`"traceparent":"00-…-…-01"`), and the job's run continues the trace: a warm-up request and
//! the fetches its jobs cause are one trace.
//!
//! Decoding is two-step: first the envelope, then the job from `kind` and `payload`, so a
//! document whose job this build cannot read still yields its id, key and kind
//! ([`DecodeError::Job`]) and can be dead-lettered with a reason.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::runtime::job::Job;

/// The envelope schema version written by this build.
pub const ENVELOPE_VERSION: u32 = 1;

/// A job's unique id: 12 hex digits of enqueue milliseconds then 16 random hex digits, so ids
/// sort roughly by enqueue time.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct JobId(String);

impl JobId {
    /// A fresh id.
    pub fn generate() -> Self {
        JobId(format!("{:012x}{:016x}", unix_millis(), random_u64()))
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A job with what the runtime needs to deliver it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Envelope {
    /// Unique per enqueue; kept across retries.
    pub id: JobId,
    /// The idempotency key: once a job with this key completed, deliveries of jobs with the
    /// same key are acknowledged without running.
    pub key: String,
    /// Deliveries of this job that ended without completing before the current stream entry
    /// (a retry is a new entry carrying the count so far).
    pub attempts: u32,
    /// When the job was first enqueued (Unix milliseconds).
    pub enqueued_at_ms: u64,
    /// Why the previous delivery failed, for logs and dead letters.
    pub last_error: Option<String>,
    /// The W3C `traceparent` of the span that enqueued the job (tracing on), which its run
    /// continues.
    pub traceparent: Option<String>,
    /// The job.
    pub job: Job,
}

/// Why a document is not a usable envelope.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// Not JSON, or not an envelope.
    #[error("malformed job envelope: {0}")]
    Malformed(String),
    /// Written by a newer schema this build does not read.
    #[error("job envelope version {0} is not supported (this build reads {ENVELOPE_VERSION})")]
    Version(u32),
    /// The envelope is fine but its job is not (an unknown kind from a newer producer, or a
    /// payload that does not validate).
    #[error("job {id} ({kind}, key {key:?}) cannot be read: {reason}")]
    Job {
        /// The envelope's id.
        id: JobId,
        /// Its key.
        key: String,
        /// The kind as written.
        kind: String,
        /// Why the job cannot be read.
        reason: String,
    },
}

#[derive(Serialize)]
struct WireOut<'a> {
    v: u32,
    id: &'a JobId,
    key: &'a str,
    attempts: u32,
    enqueued_at_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<&'a str>,
    #[serde(flatten)]
    job: &'a Job,
}

#[derive(Deserialize)]
struct WireIn {
    v: u32,
    id: JobId,
    key: String,
    #[serde(default)]
    attempts: u32,
    #[serde(default)]
    enqueued_at_ms: u64,
    #[serde(default)]
    last_error: Option<String>,
    #[serde(default)]
    traceparent: Option<String>,
    kind: String,
    #[serde(default)]
    payload: serde_json::Value,
}

impl Envelope {
    /// A first delivery of `job` under `key` (the job's natural key or a per-enqueue one when
    /// `None`; see [`Job::natural_key`]).
    pub fn new(job: Job, key: Option<String>) -> Self {
        let id = JobId::generate();
        let key = key
            .or_else(|| job.natural_key())
            .unwrap_or_else(|| format!("{}/{id}", job.kind()));
        Self {
            id,
            key,
            attempts: 0,
            enqueued_at_ms: unix_millis(),
            last_error: None,
            traceparent: strata_service::trace::traceparent(&strata_service::trace::current()),
            job,
        }
    }

    /// The same job for its next stream entry, after a delivery that ended without completing:
    /// `deliveries` is the count so far, `error` why the last one failed.
    pub fn for_retry(&self, deliveries: u32, error: &str) -> Self {
        Self {
            attempts: deliveries,
            last_error: Some(truncate(error, MAX_ERROR_CHARS)),
            ..self.clone()
        }
    }

    /// The JSON document.
    pub fn encode(&self) -> String {
        let wire = WireOut {
            v: ENVELOPE_VERSION,
            id: &self.id,
            key: &self.key,
            attempts: self.attempts,
            enqueued_at_ms: self.enqueued_at_ms,
            last_error: self.last_error.as_deref(),
            traceparent: self.traceparent.as_deref(),
            job: &self.job,
        };
        // Every field is a string, number or plain struct: serialising cannot fail, but a
        // failure would still produce a document the decoder rejects with a reason.
        serde_json::to_string(&wire).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// Parses a document written by [`Envelope::encode`].
    pub fn decode(document: &str) -> Result<Self, DecodeError> {
        let wire: WireIn =
            serde_json::from_str(document).map_err(|e| DecodeError::Malformed(e.to_string()))?;
        if wire.v != ENVELOPE_VERSION {
            return Err(DecodeError::Version(wire.v));
        }
        let job_error = |reason: String| DecodeError::Job {
            id: wire.id.clone(),
            key: wire.key.clone(),
            kind: wire.kind.clone(),
            reason,
        };
        let tagged = serde_json::json!({ "kind": wire.kind, "payload": wire.payload });
        let job: Job = serde_json::from_value(tagged).map_err(|e| job_error(e.to_string()))?;
        job.validate().map_err(job_error)?;
        if wire.key.is_empty() {
            return Err(job_error("the idempotency key is empty".into()));
        }
        Ok(Self {
            id: wire.id,
            key: wire.key,
            attempts: wire.attempts,
            enqueued_at_ms: wire.enqueued_at_ms,
            last_error: wire.last_error,
            traceparent: wire.traceparent,
            job,
        })
    }

    /// When the job was first enqueued.
    pub fn enqueued_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.enqueued_at_ms)
    }
}

impl DecodeError {
    /// The job kind as written, for metric labels (`unknown` when even the envelope failed).
    pub fn kind(&self) -> &str {
        match self {
            DecodeError::Job { kind, .. } => kind,
            _ => "unknown",
        }
    }
}

/// Longest error message carried in an envelope or dead letter.
const MAX_ERROR_CHARS: usize = 2048;

/// `text` cut to at most `max` characters (on a character boundary).
pub(crate) fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// 64 random bits from the operating system; falls back to a hashed counter if it has none
/// (ids then stay unique within the process, jitter stays spread).
pub(crate) fn random_u64() -> u64 {
    use std::hash::BuildHasher;
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    getrandom::u64().unwrap_or_else(|_| {
        std::collections::hash_map::RandomState::new()
            .hash_one(COUNTER.fetch_add(1, Ordering::Relaxed))
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use strata_core::path::ModulePath;
    use strata_core::version::Version;
    use strata_registry_engine::keys::RepoName;

    fn prefetch() -> Job {
        Job::prefetch(
            RepoName::new("gocache").unwrap(),
            ModulePath::new("example.com/m").unwrap(),
            Version::new("v1.2.3").unwrap(),
            false,
        )
        .unwrap()
    }

    #[test]
    fn round_trips_and_keys_default_sensibly() {
        let envelope = Envelope::new(prefetch(), None);
        assert_eq!(envelope.key, "prefetch/gocache/example.com/m@v1.2.3");
        assert_eq!(envelope.attempts, 0);
        assert_eq!(envelope.id.as_str().len(), 28);
        let document = envelope.encode();
        let value: serde_json::Value = serde_json::from_str(&document).unwrap();
        assert_eq!(value["v"], 1);
        assert_eq!(value["kind"], "prefetch");
        assert_eq!(value["payload"]["module"], "example.com/m");
        assert!(value.get("last_error").is_none());
        assert_eq!(Envelope::decode(&document).unwrap(), envelope);

        let scrub = Envelope::new(Job::Scrub { repository: None }, None);
        assert_eq!(scrub.key, format!("scrub/{}", scrub.id));
        let named = Envelope::new(
            Job::Scrub { repository: None },
            Some("scrub/nightly".into()),
        );
        assert_eq!(named.key, "scrub/nightly");
        assert_ne!(JobId::generate(), JobId::generate());
    }

    #[test]
    fn retries_keep_identity_and_count_deliveries() {
        let envelope = Envelope::new(prefetch(), None);
        let long_error = "x".repeat(5000);
        let retry = envelope.for_retry(2, &long_error);
        assert_eq!(
            (retry.id.clone(), retry.key.clone()),
            (envelope.id, envelope.key)
        );
        assert_eq!(retry.attempts, 2);
        assert_eq!(retry.enqueued_at_ms, envelope.enqueued_at_ms);
        let kept = retry.last_error.clone().unwrap();
        assert_eq!(kept.chars().count(), MAX_ERROR_CHARS + 1);
        assert_eq!(Envelope::decode(&retry.encode()).unwrap(), retry);
        assert_eq!(truncate("héllo", 2), "hé…");
        assert_eq!(truncate("hé", 2), "hé");
    }

    #[test]
    fn undecodable_documents_say_why() {
        assert!(matches!(
            Envelope::decode("not json"),
            Err(DecodeError::Malformed(_))
        ));
        let newer = r#"{"v":2,"id":"a","key":"k","kind":"prefetch","payload":{}}"#;
        assert!(matches!(
            Envelope::decode(newer),
            Err(DecodeError::Version(2))
        ));
        let unknown = r#"{"v":1,"id":"abc","key":"k","kind":"reindex","payload":{}}"#;
        let error = Envelope::decode(unknown).unwrap_err();
        assert_eq!(error.kind(), "reindex");
        let DecodeError::Job { id, key, .. } = &error else {
            panic!("{error:?}")
        };
        assert_eq!((id.as_str(), key.as_str()), ("abc", "k"));
        let wrong_major = r#"{"v":1,"id":"a","key":"k","kind":"prefetch","payload":
            {"repository":"gocache","module":"example.com/m/v2","version":"v1.0.0"}}"#;
        let error = Envelope::decode(wrong_major).unwrap_err().to_string();
        assert!(error.contains("cannot be read"), "{error}");
        let no_key = r#"{"v":1,"id":"a","key":"","kind":"scrub","payload":{}}"#;
        assert!(
            Envelope::decode(no_key)
                .unwrap_err()
                .to_string()
                .contains("key")
        );
    }
}
