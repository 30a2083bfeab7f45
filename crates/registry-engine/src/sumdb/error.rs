//! Why a checksum-database lookup or proxied request failed, each cause mapped to one
//! [`ErrorKind`], and the translation of the core client's errors into them. Messages end up in
//! `go` output (`verifying module: …: 502 Bad Gateway\n\tserver response: <message>`), so they
//! name the database and say what to do where there is something to do.

use strata_core::protocol::ErrorKind;
use strata_core::sumdb::{ClientError, TlogError};

use crate::storage::StorageError;
use crate::upstream::UpstreamError;

/// A failed checksum-database operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SumDbError {
    /// The database has no record of this module version (it answered 404/410).
    #[error(
        "{module}@{version}: not found in checksum database {db}; if this is a private module, \
         add its path to the repository's no-sum patterns (and to GONOSUMDB or GOPRIVATE for the \
         go command)"
    )]
    NotInDatabase {
        /// The database name.
        db: String,
        /// The module path.
        module: String,
        /// The version.
        version: String,
    },
    /// A proxied path the database does not serve (404/410), e.g. a partial tile that is
    /// complete by now.
    #[error("checksum database {db}: {path}: not found")]
    NotFound {
        /// The database name.
        db: String,
        /// The path below the database URL.
        path: String,
    },
    /// A proxied path that is not checksum-database protocol; nothing was sent upstream.
    #[error("checksum database {db}: {path:?}: {reason}")]
    InvalidPath {
        /// The database name.
        db: String,
        /// The path as received.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The database could not be reached, failed or timed out.
    #[error("checksum database {db}: {source}")]
    Upstream {
        /// The database name.
        db: String,
        /// The HTTP failure.
        source: UpstreamError,
    },
    /// What the database served does not verify: a bad signature, a record or tile that does
    /// not match the signed tree, or two signed trees that contradict each other (a fork: a
    /// SECURITY ERROR).
    #[error("checksum database {db}: verification failed: {message}")]
    Integrity {
        /// The database name.
        db: String,
        /// The verifier's explanation (for a fork, both signed tree heads and the proof).
        message: String,
    },
    /// The persisted tree head or the cache could not be read or written.
    #[error("checksum database {db}: storage: {message}")]
    Storage {
        /// The database name.
        db: String,
        /// The storage failure.
        message: String,
    },
    /// A bug or an unexpected failure (a panicked verifier thread).
    #[error("checksum database {db}: internal error: {message}")]
    Internal {
        /// The database name.
        db: String,
        /// What happened.
        message: String,
    },
}

impl SumDbError {
    /// The protocol-level kind of the failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SumDbError::NotInDatabase { .. } | SumDbError::NotFound { .. } => ErrorKind::NotFound,
            SumDbError::InvalidPath { .. } => ErrorKind::InvalidInput,
            // A 404 for something the verifier needs (a tile) is the database failing.
            SumDbError::Upstream { source, .. } if source.is_not_found() => {
                ErrorKind::UpstreamUnavailable
            }
            SumDbError::Upstream { source, .. } => source.kind(),
            SumDbError::Integrity { .. } => ErrorKind::IntegrityViolation,
            SumDbError::Storage { .. } => ErrorKind::Unavailable,
            SumDbError::Internal { .. } => ErrorKind::Internal,
        }
    }

    /// Whether this is a fork of the database's log (the verifier's SECURITY ERROR).
    pub fn is_security_error(&self) -> bool {
        matches!(self, SumDbError::Integrity { message, .. } if message.contains("SECURITY ERROR"))
    }
}

/// Turns a core client error into a [`SumDbError`]; `lookup` names the module version when the
/// failing operation was a lookup, so a 404 on it reads as "not in the database".
pub(super) fn classify(db: &str, err: &ClientError, lookup: Option<(&str, &str)>) -> SumDbError {
    let mut root = err;
    while let ClientError::Lookup { source, .. } | ClientError::Init(source) = root {
        root = source;
    }
    match root {
        ClientError::Remote { path, source } => from_ops(
            db,
            source.as_ref(),
            lookup.filter(|_| path.starts_with("/lookup/")),
        ),
        ClientError::Config(source)
        | ClientError::Tiles(TlogError::Read(source))
        | ClientError::CheckTree {
            source: TlogError::Read(source),
            ..
        } => from_ops(db, source.as_ref(), None),
        ClientError::Security { report } => SumDbError::Integrity {
            db: db.to_owned(),
            message: match lookup {
                Some((module, version)) => format!("{module}@{version}: {report}"),
                None => report.clone(),
            },
        },
        ClientError::Key(e) => SumDbError::Internal {
            db: db.to_owned(),
            message: format!("invalid verifier key: {e}"),
        },
        // Verification failures: the whole chain says what was being checked.
        _ => SumDbError::Integrity {
            db: db.to_owned(),
            message: err.to_string(),
        },
    }
}

/// An error raised by our own [`strata_core::sumdb::ClientOps`]: an upstream or storage failure.
pub(super) fn from_ops(
    db: &str,
    err: &(dyn std::error::Error + Send + Sync + 'static),
    lookup: Option<(&str, &str)>,
) -> SumDbError {
    let db = db.to_owned();
    if let Some(e) = err.downcast_ref::<UpstreamError>() {
        return match lookup {
            Some((module, version)) if e.is_not_found() => SumDbError::NotInDatabase {
                db,
                module: module.to_owned(),
                version: version.to_owned(),
            },
            _ => SumDbError::Upstream {
                db,
                source: e.clone(),
            },
        };
    }
    if err.downcast_ref::<StorageError>().is_some() {
        return SumDbError::Storage {
            db,
            message: err.to_string(),
        };
    }
    SumDbError::Internal {
        db,
        message: err.to_string(),
    }
}

/// A tile-authentication failure of the proxy; `what` names the tile.
pub(super) fn from_tlog(db: &str, err: &TlogError, what: &str) -> SumDbError {
    match err {
        TlogError::Read(e) => from_ops(db, e.as_ref(), None),
        other => SumDbError::Integrity {
            db: db.to_owned(),
            message: format!("{what}: {other}"),
        },
    }
}
