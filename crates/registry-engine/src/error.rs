//! The registry's error type. Every variant maps to one [`ErrorKind`] ([`RegistryError::kind`]),
//! which maps once to an HTTP status and once to a gRPC code in `strata_core::protocol`.

use strata_core::protocol::{ErrorKind, RequestError};

use crate::index::IndexError;
use crate::keys::RepoName;
use crate::storage::StorageError;

/// Everything a registry operation can fail with; `Display` is the plain-text reason clients see.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No such repository.
    #[error("repository {0:?} does not exist")]
    NoSuchRepository(String),
    /// The module or version is not in the repository.
    #[error("{0}: not found")]
    NotFound(String),
    /// A version that was deleted.
    #[error("{0}: deleted")]
    Deleted(String),
    /// The request path is not GOPROXY protocol.
    #[error(transparent)]
    BadPath(#[from] RequestError),
    /// An upload that breaks the module rules; one line per violation.
    #[error("{}", .0.join("\n"))]
    InvalidModule(Vec<String>),
    /// An upload body that broke off while it was read (the client hung up or sent less than
    /// it announced): the client's failure, and nothing was stored.
    #[error("{0}")]
    Aborted(String),
    /// A body over the configured limit.
    #[error("upload too large: the limit is {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: u64,
    },
    /// No credentials, or unknown ones.
    #[error("{0}")]
    Unauthenticated(String),
    /// Credentials without the needed permission, or a module path the repository does not
    /// accept.
    #[error("{0}")]
    Forbidden(String),
    /// The version exists already (or existed with other bytes): versions are immutable.
    #[error("{0}")]
    Conflict(String),
    /// The operation does not apply to this kind of repository.
    #[error("{0}")]
    Unsupported(String),
    /// The version index could not be read or updated.
    #[error(transparent)]
    Index(#[from] IndexError),
    /// Storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A local I/O failure (spooling an upload).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The failure.
        source: std::io::Error,
    },
    /// An upstream request failed (remote repositories).
    #[error(transparent)]
    Upstream(#[from] crate::upstream::UpstreamError),
    /// An upstream failed and the repository lets clients fall through (404 + `no-store`).
    #[error("{0} (falling through: this repository answers upstream failures as not found)")]
    FallThrough(String),
    /// Bytes from an upstream that do not match the checksum database: never stored or served.
    #[error("{0}")]
    Integrity(String),
    /// The checksum database could not vouch for a module.
    #[error(transparent)]
    SumDb(#[from] crate::sumdb::SumDbError),
    /// The registry's own checksum database (the ledger) refused or failed to record a
    /// version: a conflicting record is a 409, a storage failure a 503.
    #[error(transparent)]
    Ledger(#[from] crate::ledger::LedgerError),
    /// The same failure, handed to every caller that shared one upstream fetch.
    #[error(transparent)]
    Shared(std::sync::Arc<RegistryError>),
    /// A bug or an unexpected failure (a panicked worker thread).
    #[error("internal error: {0}")]
    Internal(String),
}

impl RegistryError {
    /// The protocol-level kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RegistryError::NoSuchRepository(_)
            | RegistryError::NotFound(_)
            | RegistryError::Deleted(_) => ErrorKind::NotFound,
            RegistryError::BadPath(_) => ErrorKind::BadPath,
            RegistryError::InvalidModule(_) | RegistryError::Aborted(_) => ErrorKind::InvalidInput,
            RegistryError::TooLarge { .. } => ErrorKind::TooLarge,
            RegistryError::Unauthenticated(_) => ErrorKind::Unauthenticated,
            RegistryError::Forbidden(_) => ErrorKind::Forbidden,
            RegistryError::Conflict(_) => ErrorKind::Conflict,
            RegistryError::Unsupported(_) => ErrorKind::Forbidden,
            RegistryError::Index(IndexError::Contended { .. }) => ErrorKind::Unavailable,
            RegistryError::Index(IndexError::Storage(e)) | RegistryError::Storage(e) => {
                storage_kind(e)
            }
            RegistryError::Index(IndexError::Corrupt { .. }) => ErrorKind::Internal,
            RegistryError::Io { .. } | RegistryError::Internal(_) => ErrorKind::Internal,
            RegistryError::Upstream(e) => e.kind(),
            RegistryError::FallThrough(_) => ErrorKind::UpstreamFallThrough,
            RegistryError::Integrity(_) => ErrorKind::IntegrityViolation,
            RegistryError::Shared(e) => e.kind(),
            RegistryError::SumDb(e) => e.kind(),
            RegistryError::Ledger(e) => e.kind(),
        }
    }

    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        RegistryError::Io {
            context: context.into(),
            source,
        }
    }

    /// The error for a repository that is not configured.
    pub fn no_repo(name: &RepoName) -> Self {
        RegistryError::NoSuchRepository(name.to_string())
    }
}

fn storage_kind(e: &StorageError) -> ErrorKind {
    if e.is_not_found() {
        ErrorKind::NotFound
    } else if matches!(e, StorageError::InvalidKey { .. }) {
        // A key is built from the request: one that storage cannot hold names no module here.
        // (The protocol parser's length limits keep GOPROXY requests from getting this far.)
        ErrorKind::BadPath
    } else if e.is_conflict() {
        ErrorKind::Conflict
    } else {
        ErrorKind::Unavailable
    }
}
