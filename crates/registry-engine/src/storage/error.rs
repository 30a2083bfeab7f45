//! [`StorageError`]: what a storage operation can fail with, always naming the operation and key.

use std::{error::Error as StdError, fmt, io};

/// The storage operation that failed, for error context and metrics labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Operation {
    /// Reading an object's metadata.
    Head,
    /// Reading a whole object.
    Get,
    /// Reading a byte range of an object.
    GetRange,
    /// Writing an object (any [`PutCondition`](crate::storage::PutCondition)).
    Put,
    /// Removing an object.
    Delete,
    /// Listing keys under a prefix.
    List,
    /// Copying an object to another key.
    Copy,
    /// Preparing a backend (creating directories, checking a bucket).
    Open,
}

impl Operation {
    /// A short lowercase name (`"put"`), stable for logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Head => "head",
            Self::Get => "get",
            Self::GetRange => "get_range",
            Self::Put => "put",
            Self::Delete => "delete",
            Self::List => "list",
            Self::Copy => "copy",
            Self::Open => "open",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A boxed source error from a backend SDK.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The key (or, for `copy`, the source key) does not name an object.
    #[error("{op} {key}: object not found")]
    NotFound {
        /// The failed operation.
        op: Operation,
        /// The key concerned.
        key: String,
    },
    /// A conditional write lost: the object already exists (`put_if_absent`) or no longer has
    /// the expected etag (`put_if_match`). Nothing was written.
    #[error("{op} {key}: precondition failed (object exists or was changed concurrently)")]
    Conflict {
        /// The failed operation.
        op: Operation,
        /// The key concerned.
        key: String,
    },
    /// The requested byte range starts at or past the end of the object.
    #[error("{op} {key}: range not satisfiable for an object of {size} bytes")]
    RangeNotSatisfiable {
        /// The failed operation.
        op: Operation,
        /// The key concerned.
        key: String,
        /// The object's size (0 when the backend did not say).
        size: u64,
    },
    /// The body handed to a write failed while being read (client went away, bad upload). The
    /// write was abandoned and left nothing visible.
    #[error("{op} {key}: reading the body to store failed: {source}")]
    Body {
        /// The failed operation.
        op: Operation,
        /// The key concerned.
        key: String,
        /// The body stream's error.
        #[source]
        source: io::Error,
    },
    /// A local I/O error (fs backend).
    #[error("{op} {key}: {context}: {source}")]
    Io {
        /// The failed operation.
        op: Operation,
        /// The key concerned.
        key: String,
        /// What was being done (`"rename temp file"`).
        context: &'static str,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// A remote backend failed (S3 error response, network, credentials).
    #[error("{op} {key}: storage backend: {message}")]
    Backend {
        /// The failed operation.
        op: Operation,
        /// The key concerned.
        key: String,
        /// A one-line description, including any status code and service error code.
        message: String,
        /// The SDK's error, when there is one.
        #[source]
        source: Option<BoxError>,
    },
    /// A key or prefix failed validation; see [`ObjectKey`](crate::storage::ObjectKey).
    #[error("invalid storage key {key:?}: {reason}")]
    InvalidKey {
        /// The rejected key.
        key: String,
        /// The rule it broke.
        reason: &'static str,
    },
    /// The storage configuration is unusable.
    #[error("invalid storage configuration: {0}")]
    Config(String),
}

impl StorageError {
    /// Whether this is [`StorageError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// Whether this is [`StorageError::Conflict`]: a lost conditional write, worth a retry after
    /// re-reading the object.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }

    pub(crate) fn io(
        op: Operation,
        key: impl fmt::Display,
        context: &'static str,
        source: io::Error,
    ) -> Self {
        Self::Io {
            op,
            key: key.to_string(),
            context,
            source,
        }
    }

    pub(crate) fn not_found(op: Operation, key: impl fmt::Display) -> Self {
        Self::NotFound {
            op,
            key: key.to_string(),
        }
    }

    pub(crate) fn conflict(op: Operation, key: impl fmt::Display) -> Self {
        Self::Conflict {
            op,
            key: key.to_string(),
        }
    }

    pub(crate) fn body(op: Operation, key: impl fmt::Display, source: io::Error) -> Self {
        Self::Body {
            op,
            key: key.to_string(),
            source,
        }
    }
}
