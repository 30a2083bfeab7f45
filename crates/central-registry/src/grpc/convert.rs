//! Between the wire and the registry: request fields parsed into a typed [`ProxyRequest`] (by
//! the same parser the HTTP front end uses), index entries into messages, and errors into
//! [`Status`] through the one [`ErrorKind`] → gRPC code mapping of `strata_core::protocol`.

use strata_core::path::{escape_path, escape_version};
use strata_core::protocol::{ERROR_KIND_METADATA, ErrorKind, ProxyRequest, RequestError};
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};

use super::proto;
use crate::error::RegistryError;
use crate::index::{BlobRef, Provenance, VersionEntry, VersionState};
use crate::repository::InfoDoc;
use crate::storage::ByteRange;

/// The `authorization` metadata entry (the HTTP `Authorization` value). An entry that is not
/// visible ASCII is refused rather than treated as anonymous.
pub(crate) fn authorization(metadata: &MetadataMap) -> Result<Option<&str>, Status> {
    match metadata.get("authorization") {
        None => Ok(None),
        Some(value) => value.to_str().map(Some).map_err(|_| {
            kind_status(
                ErrorKind::Unauthenticated,
                "the authorization metadata is not readable text",
            )
        }),
    }
}

/// The status of a registry error: its kind's code and its plain-text message.
pub(crate) fn status(e: &RegistryError) -> Status {
    let kind = e.kind();
    if kind == ErrorKind::Internal {
        tracing::error!(error = %e, "internal error");
    }
    kind_status(kind, e.to_string())
}

/// A status of `kind` with `message`, naming the kind in the [`ERROR_KIND_METADATA`] entry:
/// an edge tells from it that the registry answered (an upstream's failure is not the
/// registry's, and must not count against the registry's health).
pub(crate) fn kind_status(kind: ErrorKind, message: impl Into<String>) -> Status {
    let mut status = Status::new(Code::from_i32(kind.grpc_code() as i32), message);
    status.metadata_mut().insert(
        ERROR_KIND_METADATA,
        tonic::metadata::MetadataValue::from_static(kind.name()),
    );
    status
}

/// `<module>/@v/list`.
pub(crate) fn list(module: &str) -> Result<ProxyRequest, Status> {
    parse(module, |m| format!("{m}/@v/list"))
}

/// `<module>/@latest`.
pub(crate) fn latest(module: &str) -> Result<ProxyRequest, Status> {
    parse(module, |m| format!("{m}/@latest"))
}

/// `<module>/@v/<version>.<ext>`: `.info` of a non-canonical version becomes a
/// [`ProxyRequest::Query`]; `.mod` and `.zip` require a canonical version.
pub(crate) fn version(module: &str, version: &str, ext: &str) -> Result<ProxyRequest, Status> {
    let escaped = escape_version(version).map_err(|e| bad_request(module, version, e))?;
    parse(module, |m| format!("{m}/@v/{escaped}.{ext}"))
}

fn parse(module: &str, path: impl FnOnce(&str) -> String) -> Result<ProxyRequest, Status> {
    let escaped = escape_path(module).map_err(|e| bad_request(module, "", e))?;
    ProxyRequest::parse(&path(&escaped)).map_err(|e| status(&RegistryError::BadPath(e)))
}

fn bad_request(module: &str, version: &str, reason: impl std::fmt::Display) -> Status {
    let path = if version.is_empty() {
        module.to_string()
    } else {
        format!("{module}@{version}")
    };
    status(&RegistryError::BadPath(RequestError {
        path,
        reason: reason.to_string(),
    }))
}

/// The byte range of a `Zip` request: `length` 0 means "to the end".
pub(crate) fn zip_range(offset: u64, length: u64) -> Option<ByteRange> {
    match (offset, length) {
        (0, 0) => None,
        (start, 0) => Some(ByteRange::From(start)),
        (start, n) => Some(ByteRange::Inclusive(start, start.saturating_add(n - 1))),
    }
}

/// A `.info` document as a message.
pub(crate) fn info(doc: InfoDoc) -> proto::VersionInfo {
    proto::VersionInfo {
        version: doc.version,
        time: doc.time,
    }
}

/// An index entry as a message.
pub(crate) fn entry(entry: VersionEntry) -> proto::VersionEntry {
    let (state, deleted_at) = match entry.state {
        VersionState::Available => (proto::VersionState::Available, String::new()),
        VersionState::Deleted { deleted_at } => (proto::VersionState::Deleted, deleted_at),
        // Not served either; the message has no separate state for it.
        VersionState::Quarantined { quarantined_at, .. } => {
            (proto::VersionState::Deleted, quarantined_at)
        }
    };
    let provenance = match entry.provenance {
        Provenance::Published => proto::Provenance::Published,
        Provenance::Cached => proto::Provenance::Cached,
    };
    proto::VersionEntry {
        version: entry.version,
        zip: entry.zip.map(blob),
        r#mod: Some(blob(entry.go_mod)),
        time: entry.time,
        state: state.into(),
        deleted_at,
        synthesized_mod: entry.synthesized_mod,
        provenance: provenance.into(),
    }
}

fn blob(blob: BlobRef) -> proto::Blob {
    proto::Blob {
        size: blob.size,
        h1: blob.h1.unwrap_or_default(),
        sha256: blob.sha256.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_parse_like_http_paths() {
        assert!(matches!(
            version("example.com/Team/m", "v1.0.0", "zip"),
            Ok(ProxyRequest::Zip(m, v)) if m.as_str() == "example.com/Team/m" && v.as_str() == "v1.0.0"
        ));
        assert!(matches!(
            version("example.com/m", "main", "info"),
            Ok(ProxyRequest::Query(_, q)) if q == "main"
        ));
        for (module, v) in [
            ("example.com/m", "v1.0"),
            ("not a path", "v1.0.0"),
            ("", "v1"),
        ] {
            let e = version(module, v, "mod").expect_err("invalid");
            assert_eq!(e.code(), Code::InvalidArgument, "{module}@{v}: {e:?}");
        }
        assert_eq!(
            list("example.com/../x").expect_err("bad").code(),
            Code::InvalidArgument
        );
    }

    #[test]
    fn ranges() {
        assert_eq!(zip_range(0, 0), None);
        assert_eq!(zip_range(5, 0), Some(ByteRange::From(5)));
        assert_eq!(zip_range(5, 10), Some(ByteRange::Inclusive(5, 14)));
    }

    #[test]
    fn errors_use_the_kind_mapping() {
        let e = status(&RegistryError::Conflict("taken".into()));
        assert_eq!(e.code(), Code::AlreadyExists);
        assert_eq!(e.message(), "taken");
        assert_eq!(
            status(&RegistryError::NotFound("m@v1".into())).code(),
            Code::NotFound
        );
    }
}
