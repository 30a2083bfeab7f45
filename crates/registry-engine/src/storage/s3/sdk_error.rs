//! Mapping S3 SDK errors onto [`StorageError`]: status codes decide, per operation, between
//! not-found, conflict, unsatisfiable range and a backend failure with full context.

use std::error::Error as StdError;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::storage::{Operation, StorageError};

/// The parts of an SDK error that decide how it maps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Failure<'a> {
    /// HTTP status of the response, if one arrived.
    pub(super) status: Option<u16>,
    /// S3 error code (`NoSuchKey`, `PreconditionFailed`), if the response had one.
    pub(super) code: Option<&'a str>,
}

impl Failure<'_> {
    /// A 404 about the object (not about the bucket or a multipart upload).
    pub(super) fn is_missing_object(&self) -> bool {
        self.status == Some(404) && !matches!(self.code, Some("NoSuchBucket" | "NoSuchUpload"))
    }

    /// A failed write precondition: 412, or 409 `ConditionalRequestConflict` (two conditional
    /// writes raced and S3 refused the later one).
    pub(super) fn is_precondition_failure(&self) -> bool {
        self.status == Some(412)
            || (self.status == Some(409) && self.code == Some("ConditionalRequestConflict"))
    }
}

/// Maps `err` for operation `op` on `key`: 404 on an object → `NotFound`, failed preconditions
/// → `Conflict`, 416 → `RangeNotSatisfiable` (size unknown), anything else → `Backend`.
pub(super) fn map<E>(op: Operation, key: &str, err: SdkError<E>) -> StorageError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    let failure = failure(&err);
    if failure.is_precondition_failure() {
        return StorageError::Conflict {
            op,
            key: key.to_owned(),
        };
    }
    if failure.is_missing_object() && op != Operation::Put {
        return StorageError::NotFound {
            op,
            key: key.to_owned(),
        };
    }
    if failure.status == Some(416) {
        return StorageError::RangeNotSatisfiable {
            op,
            key: key.to_owned(),
            size: 0,
        };
    }
    backend(op, key, err)
}

/// The status and error code of `err`.
pub(super) fn failure<E: ProvideErrorMetadata>(err: &SdkError<E>) -> Failure<'_> {
    Failure {
        status: err.raw_response().map(|r| r.status().as_u16()),
        code: err.code(),
    }
}

/// A `Backend` error carrying the SDK's whole error chain in its message.
pub(super) fn backend<E>(op: Operation, key: &str, err: SdkError<E>) -> StorageError
where
    E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
{
    // A service error is summed up by status, code and message; the raw response stays in the
    // source chain. Anything else (connect, timeout, credentials) needs the SDK's whole chain.
    let message = match (err.raw_response().map(|r| r.status().as_u16()), err.code()) {
        (Some(status), Some(code)) => {
            format!(
                "HTTP {status} {code}: {}",
                err.message().unwrap_or("(no message)")
            )
        }
        (Some(status), None) => format!("HTTP {status} without an S3 error code"),
        (None, _) => DisplayErrorContext(&err).to_string(),
    };
    StorageError::Backend {
        op,
        key: key.to_owned(),
        message,
        source: Some(Box::new(err)),
    }
}

/// A `Backend` error for a response that broke the protocol (missing etag, bad header).
pub(super) fn protocol(op: Operation, key: &str, message: impl Into<String>) -> StorageError {
    StorageError::Backend {
        op,
        key: key.to_owned(),
        message: message.into(),
        source: None,
    }
}
