//! [`EdgeError`]: every way a request can fail at the edge, each mapped to one [`ErrorKind`]
//! (and so to one HTTP status and cache policy).

use strata_core::protocol::{ERROR_KIND_METADATA, ErrorKind, GrpcCode};

/// The kind a strata service named in an error status it sent; `None` for a status that did
/// not come from a strata handler (a transport failure, a deadline, a proxy in between).
pub fn answered_kind(status: &tonic::Status) -> Option<ErrorKind> {
    status
        .metadata()
        .get(ERROR_KIND_METADATA)
        .and_then(|v| v.to_str().ok())
        .and_then(ErrorKind::from_name)
}

/// A failure while answering a request.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EdgeError {
    /// A registry answered with a definite error (not found, forbidden, invalid…).
    #[error("{message}")]
    Registry {
        /// The kind the registry's gRPC code stands for.
        kind: ErrorKind,
        /// Which registry answered.
        registry: String,
        /// Its message.
        message: String,
    },
    /// No registry could answer: all failed, timed out or have their circuit open.
    #[error("no registry could answer {what}: {reasons}")]
    NoUpstream {
        /// The request.
        what: String,
        /// What happened with each registry tried, or why none was tried.
        reasons: String,
        /// Whether the last failure was a timeout.
        timeout: bool,
    },
    /// Bytes that do not match their recorded hash.
    #[error("integrity check failed for {what}: {detail}")]
    Integrity {
        /// The artifact.
        what: String,
        /// What differed.
        detail: String,
    },
    /// The disk tier failed.
    #[error("cache: {0}")]
    Cache(String),
    /// A fallback GOPROXY answered with an error.
    #[error("fallback {url}: {message}")]
    Fallback {
        /// The fallback's base URL.
        url: String,
        /// What it answered.
        message: String,
        /// 404/410 from the fallback.
        not_found: bool,
    },
    /// The edge is shutting down or over its limits.
    #[error("{0}")]
    Unavailable(String),
}

impl EdgeError {
    /// The kind this error is reported as.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EdgeError::Registry { kind, .. } => *kind,
            EdgeError::NoUpstream { timeout: true, .. } => ErrorKind::UpstreamTimeout,
            EdgeError::NoUpstream { timeout: false, .. } => ErrorKind::UpstreamUnavailable,
            EdgeError::Integrity { .. } => ErrorKind::IntegrityViolation,
            EdgeError::Cache(_) => ErrorKind::Internal,
            EdgeError::Fallback {
                not_found: true, ..
            } => ErrorKind::NotFound,
            EdgeError::Fallback { .. } => ErrorKind::UpstreamUnavailable,
            EdgeError::Unavailable(_) => ErrorKind::Unavailable,
        }
    }

    /// A definite answer from a registry for `status`: the kind it names in its
    /// `strata-error-kind` metadata, else the one its code stands for.
    pub fn from_status(registry: &str, status: &tonic::Status) -> Self {
        let kind = answered_kind(status)
            .unwrap_or_else(|| ErrorKind::from_grpc_code(GrpcCode::from_i32(status.code() as i32)));
        EdgeError::Registry {
            kind,
            registry: registry.to_owned(),
            message: status.message().to_owned(),
        }
    }

    /// Whether the registry refused the caller (401/403): the answer that must never be
    /// replaced by cached content.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self.kind(),
            ErrorKind::Unauthenticated | ErrorKind::Forbidden
        )
    }

    /// Whether no registry answered (as opposed to a definite answer).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, EdgeError::NoUpstream { .. })
    }
}
