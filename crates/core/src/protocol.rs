//! The GOPROXY protocol as data (spec §3): request paths parsed into a typed [`ProxyRequest`]
//! before any I/O, the cache-control policy table, and the one [`ErrorKind`] every service maps
//! exactly once to an HTTP status and once to a gRPC code.

use std::fmt;

use thiserror::Error;

use crate::path::{ModulePath, unescape_version};
use crate::version::{Version, canonical_version, check};

/// What a GOPROXY request asks for, validated: module path unescaped and checked, versions
/// canonical where the protocol requires it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProxyRequest {
    /// `<module>/@v/list`: the known versions, one per line.
    List(ModulePath),
    /// `<module>/@latest`: the `.info` of the latest version.
    Latest(ModulePath),
    /// `<module>/@v/<version>.info` for a canonical version.
    Info(ModulePath, Version),
    /// `<module>/@v/<version>.mod`.
    Mod(ModulePath, Version),
    /// `<module>/@v/<version>.zip`.
    Zip(ModulePath, Version),
    /// `<module>/@v/<query>.info` where the query is not a canonical version (a branch, a tag,
    /// a commit prefix, `v1.2`): resolvable only by an upstream or VCS.
    Query(ModulePath, String),
}

/// The artifact kinds of one version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ArtifactKind {
    /// `.info` JSON.
    Info,
    /// `.mod`: the go.mod.
    Mod,
    /// `.zip`: the module zip.
    Zip,
}

impl ArtifactKind {
    /// The file extension in proxy URLs, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            ArtifactKind::Info => "info",
            ArtifactKind::Mod => "mod",
            ArtifactKind::Zip => "zip",
        }
    }

    /// The `Content-Type` a proxy serves this kind with.
    pub fn content_type(self) -> &'static str {
        match self {
            ArtifactKind::Info => "application/json",
            ArtifactKind::Mod => "text/plain; charset=utf-8",
            ArtifactKind::Zip => "application/zip",
        }
    }
}

/// Longest module path served, in bytes of its escaped form. Together with
/// [`MAX_VERSION_LEN`] this keeps every storage key a request can name within S3's 1,024
/// bytes (`quarantine/<secs>/repos/<repo ≤ 64>/blobs/<module>/@v/<version>/<sha256>.info` has
/// 173 bytes besides module and version).
pub const MAX_MODULE_PATH_LEN: usize = 512;
/// Longest element of a module path (between slashes), escaped: below a file name's 255 bytes
/// with room for the suffixes the tiers add.
pub const MAX_PATH_ELEMENT_LEN: usize = 200;
/// Longest version or query, escaped (the edge's file name is `<version>.info`).
pub const MAX_VERSION_LEN: usize = 200;

/// The length limits above, on the escaped module path and version or query of a request.
pub fn check_lengths(escaped_module: &str, escaped_version: Option<&str>) -> Result<(), String> {
    if escaped_module.len() > MAX_MODULE_PATH_LEN {
        return Err(format!(
            "module path is {} bytes long (at most {MAX_MODULE_PATH_LEN} are served)",
            escaped_module.len()
        ));
    }
    if let Some(elem) = escaped_module
        .split('/')
        .find(|e| e.len() > MAX_PATH_ELEMENT_LEN)
    {
        return Err(format!(
            "module path element of {} bytes (at most {MAX_PATH_ELEMENT_LEN} are served)",
            elem.len()
        ));
    }
    if let Some(v) = escaped_version
        && v.len() > MAX_VERSION_LEN
    {
        return Err(format!(
            "version is {} bytes long (at most {MAX_VERSION_LEN} are served)",
            v.len()
        ));
    }
    Ok(())
}

impl ProxyRequest {
    /// Parses the part of a request path after the proxy's base, e.g.
    /// `github.com/!azure/azure-sdk-for-go/@v/v1.0.0.zip` (no leading `/`). Paths over the
    /// length limits ([`check_lengths`]) are refused here, so no layer behind the parser meets
    /// a request its storage keys cannot name.
    pub fn parse(path: &str) -> Result<Self, RequestError> {
        let bad = |reason: String| RequestError {
            path: path.to_string(),
            reason,
        };
        {
            let (module, version) = match path.strip_suffix("/@latest") {
                Some(module) => (module, None),
                None => match path.rsplit_once("/@v/") {
                    Some((module, file)) => {
                        (module, Some(file.rsplit_once('.').map_or(file, |(v, _)| v)))
                    }
                    None => (path, None),
                },
            };
            check_lengths(module, version).map_err(bad)?;
        }
        if let Some(module) = path.strip_suffix("/@latest") {
            return Ok(ProxyRequest::Latest(module_path(module).map_err(bad)?));
        }
        let (module, file) = path.rsplit_once("/@v/").ok_or_else(|| {
            bad("not a module proxy path (want <module>/@v/… or <module>/@latest)".into())
        })?;
        let module = module_path(module).map_err(bad)?;
        if file == "list" {
            return Ok(ProxyRequest::List(module));
        }
        let (escaped, ext) = file.rsplit_once('.').ok_or_else(|| {
            bad(format!(
                "unknown file {file:?} (want list, .info, .mod or .zip)"
            ))
        })?;
        let kind = match ext {
            "info" => ArtifactKind::Info,
            "mod" => ArtifactKind::Mod,
            "zip" => ArtifactKind::Zip,
            _ => {
                return Err(bad(format!(
                    "unknown file extension {ext:?} (want .info, .mod or .zip)"
                )));
            }
        };
        let version = unescape_version(escaped).map_err(|e| bad(e.to_string()))?;
        if canonical_version(&version) != version {
            return match kind {
                ArtifactKind::Info => Ok(ProxyRequest::Query(module, version)),
                _ => Err(bad(format!(
                    "version {version:?} is not canonical: .{ext} files exist only for canonical versions"
                ))),
            };
        }
        check(module.as_str(), &version).map_err(|e| bad(e.to_string()))?;
        let version = Version::new(&version).map_err(|e| bad(e.to_string()))?;
        Ok(match kind {
            ArtifactKind::Info => ProxyRequest::Info(module, version),
            ArtifactKind::Mod => ProxyRequest::Mod(module, version),
            ArtifactKind::Zip => ProxyRequest::Zip(module, version),
        })
    }

    /// The module the request is about.
    pub fn module(&self) -> &ModulePath {
        match self {
            ProxyRequest::List(m)
            | ProxyRequest::Latest(m)
            | ProxyRequest::Info(m, _)
            | ProxyRequest::Mod(m, _)
            | ProxyRequest::Zip(m, _)
            | ProxyRequest::Query(m, _) => m,
        }
    }

    /// The request's kind as metrics and access logs name it: `list`, `latest`, `query`,
    /// `info`, `mod` or `zip`.
    pub fn kind_name(&self) -> &'static str {
        match self {
            ProxyRequest::List(_) => "list",
            ProxyRequest::Latest(_) => "latest",
            ProxyRequest::Query(..) => "query",
            ProxyRequest::Info(..) => "info",
            ProxyRequest::Mod(..) => "mod",
            ProxyRequest::Zip(..) => "zip",
        }
    }

    /// How a successful answer to this request may be cached.
    pub fn cache_class(&self) -> CacheClass {
        match self {
            ProxyRequest::Info(..) | ProxyRequest::Mod(..) | ProxyRequest::Zip(..) => {
                CacheClass::Immutable
            }
            ProxyRequest::List(_) | ProxyRequest::Latest(_) | ProxyRequest::Query(..) => {
                CacheClass::Mutable
            }
        }
    }

    /// The canonical request path (escaped), the inverse of [`ProxyRequest::parse`].
    pub fn path(&self) -> String {
        let m = self.module().escaped();
        match self {
            ProxyRequest::List(_) => format!("{m}/@v/list"),
            ProxyRequest::Latest(_) => format!("{m}/@latest"),
            ProxyRequest::Info(_, v) => format!("{m}/@v/{}.info", v.escaped()),
            ProxyRequest::Mod(_, v) => format!("{m}/@v/{}.mod", v.escaped()),
            ProxyRequest::Zip(_, v) => format!("{m}/@v/{}.zip", v.escaped()),
            ProxyRequest::Query(_, q) => {
                format!(
                    "{m}/@v/{}.info",
                    crate::path::escape_version(q).unwrap_or_else(|_| q.clone())
                )
            }
        }
    }
}

fn module_path(escaped: &str) -> Result<ModulePath, String> {
    ModulePath::from_escaped(escaped).map_err(|e| e.to_string())
}

/// A request path that is not a valid GOPROXY path. Served as 404 with this text, which the go
/// command shows to the user.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid module proxy path {path:?}: {reason}")]
pub struct RequestError {
    /// The path as requested.
    pub path: String,
    /// Why it is not valid.
    pub reason: String,
}

/// How long an answer may be cached: the policy table of the architecture, as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CacheClass {
    /// `.info`, `.mod`, `.zip` of a canonical version: never change.
    Immutable,
    /// `list`, `@latest`, non-canonical queries: change when versions are published.
    Mutable,
    /// A definite "not here".
    NotFound,
    /// The answer depends on a failing upstream: must not be cached at all.
    UpstreamFailure,
}

impl CacheClass {
    /// The `Cache-Control` header value for this class.
    pub fn cache_control(self) -> &'static str {
        match self {
            CacheClass::Immutable => "public, max-age=31536000, immutable",
            CacheClass::Mutable => "public, max-age=60",
            CacheClass::NotFound => "public, max-age=60",
            CacheClass::UpstreamFailure => "no-store",
        }
    }
}

/// The `Cache-Control` of an answer only its authorized reader may keep: `public` becomes
/// `private` (shared caches must not store it; the reader's own may), `no-store` stays. Sent
/// with `Vary: Authorization` for repositories without anonymous read.
pub fn private_cache_control(cache_control: &str) -> String {
    if cache_control.split(',').any(|d| d.trim() == "no-store") {
        return cache_control.to_owned();
    }
    let rest: Vec<&str> = cache_control
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty() && *d != "public" && *d != "private")
        .collect();
    if rest.is_empty() {
        "private".to_owned()
    } else {
        format!("private, {}", rest.join(", "))
    }
}

/// The kinds of failure every strata service reports, each mapped exactly once to an HTTP
/// status ([`ErrorKind::http_status`]) and a gRPC code ([`ErrorKind::grpc_code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The module, version or file does not exist here (it may exist elsewhere).
    NotFound,
    /// A request path that is not valid GOPROXY protocol (served like not found, with a reason).
    BadPath,
    /// Input that breaks a rule: an invalid zip, a go.mod naming another module.
    InvalidInput,
    /// No or invalid credentials.
    Unauthenticated,
    /// Credentials that lack the needed permission, or a request refused by policy.
    Forbidden,
    /// The thing exists already, or changed concurrently (immutable versions).
    Conflict,
    /// A body over the configured limit.
    TooLarge,
    /// An upstream answered with an error or could not be reached.
    UpstreamUnavailable,
    /// An upstream did not answer in time.
    UpstreamTimeout,
    /// An upstream failed and the repository is set to let clients fall through to their next
    /// `GOPROXY` entry: answered as not found (404) but never cached (`no-store`).
    UpstreamFallThrough,
    /// Bytes that do not match the checksum database or their recorded hash.
    IntegrityViolation,
    /// This service cannot serve right now (shutting down, overloaded, storage down).
    Unavailable,
    /// A bug or an unexpected failure of a dependency.
    Internal,
}

impl ErrorKind {
    /// Every kind, in the order of the table above.
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::NotFound,
        ErrorKind::BadPath,
        ErrorKind::InvalidInput,
        ErrorKind::Unauthenticated,
        ErrorKind::Forbidden,
        ErrorKind::Conflict,
        ErrorKind::TooLarge,
        ErrorKind::UpstreamUnavailable,
        ErrorKind::UpstreamTimeout,
        ErrorKind::UpstreamFallThrough,
        ErrorKind::IntegrityViolation,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
    ];

    /// The HTTP status for this kind.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::NotFound | ErrorKind::BadPath | ErrorKind::UpstreamFallThrough => 404,
            ErrorKind::InvalidInput => 400,
            ErrorKind::Unauthenticated => 401,
            ErrorKind::Forbidden => 403,
            ErrorKind::Conflict => 409,
            ErrorKind::TooLarge => 413,
            ErrorKind::UpstreamUnavailable | ErrorKind::IntegrityViolation => 502,
            ErrorKind::UpstreamTimeout => 504,
            ErrorKind::Unavailable => 503,
            ErrorKind::Internal => 500,
        }
    }

    /// The gRPC status code (numbering of the gRPC specification) for this kind.
    pub fn grpc_code(self) -> GrpcCode {
        match self {
            ErrorKind::NotFound => GrpcCode::NotFound,
            ErrorKind::BadPath | ErrorKind::InvalidInput => GrpcCode::InvalidArgument,
            ErrorKind::Unauthenticated => GrpcCode::Unauthenticated,
            ErrorKind::Forbidden => GrpcCode::PermissionDenied,
            ErrorKind::Conflict => GrpcCode::AlreadyExists,
            ErrorKind::TooLarge => GrpcCode::ResourceExhausted,
            ErrorKind::UpstreamUnavailable
            | ErrorKind::UpstreamFallThrough
            | ErrorKind::Unavailable => GrpcCode::Unavailable,
            ErrorKind::UpstreamTimeout => GrpcCode::DeadlineExceeded,
            ErrorKind::IntegrityViolation => GrpcCode::DataLoss,
            ErrorKind::Internal => GrpcCode::Internal,
        }
    }

    /// The kind a gRPC code stands for when it comes back from another strata service.
    pub fn from_grpc_code(code: GrpcCode) -> Self {
        match code {
            GrpcCode::NotFound => ErrorKind::NotFound,
            GrpcCode::InvalidArgument => ErrorKind::InvalidInput,
            GrpcCode::Unauthenticated => ErrorKind::Unauthenticated,
            GrpcCode::PermissionDenied => ErrorKind::Forbidden,
            GrpcCode::AlreadyExists => ErrorKind::Conflict,
            GrpcCode::ResourceExhausted => ErrorKind::TooLarge,
            GrpcCode::Unavailable => ErrorKind::Unavailable,
            GrpcCode::DeadlineExceeded => ErrorKind::UpstreamTimeout,
            GrpcCode::DataLoss => ErrorKind::IntegrityViolation,
            GrpcCode::Internal | GrpcCode::Other => ErrorKind::Internal,
        }
    }

    /// The kind's stable name, sent as [`ERROR_KIND_METADATA`] with every gRPC error a strata
    /// service answers, so the caller can tell "the service answered with this error" (e.g.
    /// `upstream_unavailable`: the registry is fine, the public mirror is not) from a transport
    /// failure that happens to carry the same gRPC code.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::BadPath => "bad_path",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Forbidden => "forbidden",
            ErrorKind::Conflict => "conflict",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::UpstreamUnavailable => "upstream_unavailable",
            ErrorKind::UpstreamTimeout => "upstream_timeout",
            ErrorKind::UpstreamFallThrough => "upstream_fall_through",
            ErrorKind::IntegrityViolation => "integrity_violation",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Internal => "internal",
        }
    }

    /// The kind named `name` ([`ErrorKind::name`]).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|k| k.name() == name)
    }

    /// How an error answer of this kind may be cached.
    pub fn cache_class(self) -> CacheClass {
        match self {
            ErrorKind::NotFound | ErrorKind::BadPath => CacheClass::NotFound,
            _ => CacheClass::UpstreamFailure,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// The gRPC metadata key carrying [`ErrorKind::name`] on every error status a strata service
/// sends. A status without it did not come from a strata service's handler (a transport
/// failure, a proxy, a deadline).
pub const ERROR_KIND_METADATA: &str = "strata-error-kind";

/// The gRPC status codes strata uses, numbered as in the gRPC specification (so services can
/// convert with `tonic::Code::from_i32(code as i32)` without the core crate depending on tonic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum GrpcCode {
    /// 3
    InvalidArgument = 3,
    /// 4
    DeadlineExceeded = 4,
    /// 5
    NotFound = 5,
    /// 6
    AlreadyExists = 6,
    /// 7
    PermissionDenied = 7,
    /// 8
    ResourceExhausted = 8,
    /// 13
    Internal = 13,
    /// 14
    Unavailable = 14,
    /// 15
    DataLoss = 15,
    /// 16
    Unauthenticated = 16,
    /// Any other code.
    Other = 2,
}

impl GrpcCode {
    /// The code for a number received on the wire.
    pub fn from_i32(code: i32) -> Self {
        match code {
            3 => GrpcCode::InvalidArgument,
            4 => GrpcCode::DeadlineExceeded,
            5 => GrpcCode::NotFound,
            6 => GrpcCode::AlreadyExists,
            7 => GrpcCode::PermissionDenied,
            8 => GrpcCode::ResourceExhausted,
            13 => GrpcCode::Internal,
            14 => GrpcCode::Unavailable,
            15 => GrpcCode::DataLoss,
            16 => GrpcCode::Unauthenticated,
            _ => GrpcCode::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(p: &str) -> ProxyRequest {
        ProxyRequest::parse(p).unwrap()
    }

    #[test]
    fn refuses_paths_over_the_length_limits() {
        let long = "a".repeat(MAX_PATH_ELEMENT_LEN + 1);
        for path in [
            format!("github.com/{long}/@v/list"),
            format!("github.com/{long}/@latest"),
            format!("github.com/{long}/@v/v1.0.0.zip"),
            format!("{}/@v/list", vec!["abc"; 200].join("/")),
            format!(
                "github.com/x/@v/v1.0.0-{}.info",
                "a".repeat(MAX_VERSION_LEN)
            ),
            format!("github.com/x/@v/{}.info", "b".repeat(MAX_VERSION_LEN + 1)),
        ] {
            let e = ProxyRequest::parse(&path).unwrap_err();
            assert!(e.reason.contains("at most"), "{path}: {e}");
        }
        let ok = "a".repeat(MAX_PATH_ELEMENT_LEN);
        assert!(ProxyRequest::parse(&format!("github.com/{ok}/@v/list")).is_ok());
    }

    #[test]
    fn private_cache_control_never_says_public() {
        assert_eq!(
            private_cache_control(CacheClass::Immutable.cache_control()),
            "private, max-age=31536000, immutable"
        );
        assert_eq!(
            private_cache_control("public, max-age=60"),
            "private, max-age=60"
        );
        assert_eq!(private_cache_control("no-store"), "no-store");
        assert_eq!(private_cache_control("public"), "private");
    }

    #[test]
    fn error_kind_names_round_trip() {
        for code in 0..20 {
            let kind = ErrorKind::from_grpc_code(GrpcCode::from_i32(code));
            assert_eq!(ErrorKind::from_name(kind.name()), Some(kind));
        }
        assert_eq!(
            ErrorKind::from_name("upstream_unavailable"),
            Some(ErrorKind::UpstreamUnavailable)
        );
        assert_eq!(ErrorKind::from_name("nonsense"), None);
    }

    #[test]
    fn parses_every_endpoint() {
        let m = ModulePath::new("github.com/Azure/azure-sdk-for-go").unwrap();
        let v = Version::new("v1.0.0-RC1").unwrap();
        assert_eq!(
            parse("github.com/!azure/azure-sdk-for-go/@v/list"),
            ProxyRequest::List(m.clone())
        );
        assert_eq!(
            parse("github.com/!azure/azure-sdk-for-go/@latest"),
            ProxyRequest::Latest(m.clone())
        );
        let zip = parse("github.com/!azure/azure-sdk-for-go/@v/v1.0.0-!r!c1.zip");
        assert_eq!(zip, ProxyRequest::Zip(m.clone(), v.clone()));
        assert_eq!(
            zip.path(),
            "github.com/!azure/azure-sdk-for-go/@v/v1.0.0-!r!c1.zip"
        );
        assert_eq!(
            parse("github.com/!azure/azure-sdk-for-go/@v/master.info"),
            ProxyRequest::Query(m.clone(), "master".into())
        );
        assert_eq!(
            parse("github.com/!azure/azure-sdk-for-go/@v/v1.2.info"),
            ProxyRequest::Query(m, "v1.2".into())
        );
    }

    #[test]
    fn rejects_bad_paths_with_reasons() {
        for (p, want) in [
            ("github.com/Azure/x/@v/list", "invalid escaped module path"),
            ("example.com/m/@v/v1.2.mod", "not canonical"),
            ("example.com/m/@v/v2.0.0.zip", "should be v0 or v1, not v2"),
            ("example.com/m/@v/v1.0.0.tar", "unknown file extension"),
            ("example.com/m", "not a module proxy path"),
            ("example.com/../etc/@v/list", "invalid path element"),
            ("example.com/m/@v/a:b.info", "invalid char"),
            ("example.com/m/@v/.info", "empty path element"),
        ] {
            let e = ProxyRequest::parse(p).unwrap_err();
            assert!(e.to_string().contains(want), "{p}: {e}");
        }
    }

    #[test]
    fn policy_tables() {
        assert_eq!(ErrorKind::BadPath.http_status(), 404);
        assert_eq!(ErrorKind::UpstreamTimeout.http_status(), 504);
        assert_eq!(ErrorKind::UpstreamFallThrough.http_status(), 404);
        assert_eq!(
            ErrorKind::UpstreamFallThrough.cache_class().cache_control(),
            "no-store"
        );
        assert_eq!(ErrorKind::Conflict.grpc_code() as i32, 6);
        assert_eq!(
            ErrorKind::from_grpc_code(GrpcCode::from_i32(5)),
            ErrorKind::NotFound
        );
        assert_eq!(CacheClass::UpstreamFailure.cache_control(), "no-store");
        assert!(
            parse("example.com/m/@v/v1.0.0.zip")
                .cache_class()
                .cache_control()
                .contains("immutable")
        );
    }
}
