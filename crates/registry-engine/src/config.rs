//! Registry configuration: TOML, then `STRATA_REGISTRY_…` environment overrides, then validation
//! into typed values, through the loader every service shares ([`strata_service::config`]).
//! Nothing outside this module reads the environment. The overrides are
//! [`RegistryConfig::OVERRIDES`](ServiceConfig::OVERRIDES).
//!
//! ```toml
//! storage = { kind = "fs", root = "./data" }     # or { kind = "s3", bucket = …, … }
//! events = { kind = "memory" }                   # or { kind = "redis", url = "redis://…" }
//!
//! [server]
//! http = "127.0.0.1:8080"          # GOPROXY, publish API, health, metrics
//! grpc = "127.0.0.1:9090"          # edge and worker API
//! max_upload_bytes = 536870912     # publish body limit (413 past it)
//! # gRPC over TLS; with client_ca, every client must present a certificate it signed (mTLS)
//! grpc_tls = { cert = "grpc.crt", key = "grpc.key", client_ca = "edges-ca.crt" }
//!
//! [[repositories]]
//! name = "private"
//! kind = "local"
//! include = ["example.com/team/*"]  # GOPRIVATE-style patterns; empty = every module
//! exclude = []
//! anonymous_read = false
//! allow_shadowing = false           # may publish paths a virtual's remote members serve
//!
//! [[tokens]]
//! name = "ci"
//! sha256 = "…"                      # `strata token new` prints a token and its hash
//! permissions = { private = ["read", "deploy"] }
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use strata_core::pattern::match_prefix_patterns;
use strata_service::config::{self, Override, ServiceConfig};

use crate::auth::TokenConfig;
use crate::events::{EventsConfig, RedisEventsConfig};
use crate::keys::RepoName;
use crate::ledger::LedgerConfig;
use crate::storage::StorageConfig;
use crate::storage::fs::FsConfig;
use crate::sumdb::SumDbConfig;
use crate::upstream::UpstreamConfig;

/// The whole registry configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// Listeners and limits.
    #[serde(default)]
    pub server: ServerConfig,
    /// Where modules are stored (default: the file system under `./data`).
    #[serde(default = "default_storage")]
    pub storage: StorageConfig,
    /// Where change events go (default: in-process).
    #[serde(default)]
    pub events: EventsConfig,
    /// The repositories, in the order they are listed.
    #[serde(default)]
    pub repositories: Vec<RepositoryConfig>,
    /// API tokens.
    #[serde(default)]
    pub tokens: Vec<TokenConfig>,
    /// `[ledger]`: the registry's own checksum database (off when absent).
    #[serde(default)]
    pub ledger: Option<LedgerConfig>,
    /// `[tracing]`: OpenTelemetry traces (off unless an OTLP endpoint is set).
    #[serde(default)]
    pub tracing: strata_service::trace::TracingConfig,
}

/// The `[server]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// HTTP listen address (GOPROXY, publish API, health, metrics).
    #[serde(default = "default_http")]
    pub http: SocketAddr,
    /// gRPC listen address.
    #[serde(default = "default_grpc")]
    pub grpc: SocketAddr,
    /// Largest accepted publish body, in bytes (default 512 MiB, above the 500 MiB zip limit).
    #[serde(default = "default_max_upload")]
    pub max_upload_bytes: u64,
    /// Where uploads are spooled while they are checked (default: the system temp dir).
    #[serde(default)]
    pub spool_dir: Option<PathBuf>,
    /// Serve HTTPS with this certificate (needed for go clients to send credentials).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Serve gRPC over TLS (and with `client_ca`, require client certificates). Independent of
    /// `tls`: the two listeners usually face different clients (go commands, edges).
    #[serde(default)]
    pub grpc_tls: Option<GrpcTlsConfig>,
}

/// `server.grpc_tls`: the gRPC listener's certificate chain and key, and optionally the CA
/// whose certificates clients must present (mutual TLS).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrpcTlsConfig {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates (PEM). When set, a client without a certificate signed by one of them
    /// is refused during the handshake.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// `server.tls`: PEM files of the certificate chain and its private key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Certificate chain (PEM).
    pub cert: PathBuf,
    /// Private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            http: default_http(),
            grpc: default_grpc(),
            max_upload_bytes: default_max_upload(),
            spool_dir: None,
            tls: None,
            grpc_tls: None,
        }
    }
}

fn default_http() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8080))
}

fn default_grpc() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9090))
}

fn default_max_upload() -> u64 {
    512 << 20
}

fn default_storage() -> StorageConfig {
    StorageConfig::Fs(FsConfig {
        root: PathBuf::from("./data"),
    })
}

/// One `[[repositories]]` entry, tagged by `kind`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RepositoryConfig {
    /// Hosted modules, written through the publish API.
    Local(LocalConfig),
    /// A verified caching proxy of an upstream GOPROXY (boxed: it is much larger than the others).
    Remote(Box<RemoteConfig>),
    /// An ordered aggregation of local and remote repositories.
    Virtual(VirtualConfig),
}

/// `kind = "local"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    /// The repository name (in URLs: `/go/{name}/…`).
    pub name: RepoName,
    /// Module path patterns (GOPRIVATE syntax) this repository accepts; empty = all.
    #[serde(default)]
    pub include: Vec<String>,
    /// Module path patterns it refuses, even if included.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Whether anyone may read without a token.
    #[serde(default)]
    pub anonymous_read: bool,
    /// Whether a publish may shadow a public module: put a path that a remote member of a
    /// virtual repository (with this repository as a member) serves into this repository, so
    /// that the virtual repository hides every public version of it. Default false: such a
    /// publish is refused with 403, unless an `include` pattern of this repository (or of its
    /// member entry) names the path, which claims it on purpose.
    #[serde(default)]
    pub allow_shadowing: bool,
}

/// `kind = "remote"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// The repository name.
    pub name: RepoName,
    /// Module path patterns served; empty = all.
    #[serde(default)]
    pub include: Vec<String>,
    /// Module path patterns never fetched, even if included.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Whether anyone may read without a token.
    #[serde(default)]
    pub anonymous_read: bool,
    /// The upstream GOPROXY: `upstream = { url = "https://proxy.golang.org" }` plus optional
    /// credentials, timeouts, retries and concurrency (see [`UpstreamConfig`]).
    pub upstream: UpstreamConfig,
    /// The checksum database every fetched artifact is verified against (default
    /// sum.golang.org with its public key).
    #[serde(default)]
    pub checksum_db: SumDbConfig,
    /// Module path patterns (GONOSUMDB syntax) fetched without checksum-database
    /// verification (private modules of a corporate upstream).
    #[serde(default)]
    pub no_sum: Vec<String>,
    /// How long `list`, `@latest` and queries are answered from storage before they are
    /// fetched again. Default 600.
    #[serde(default = "default_metadata_ttl")]
    pub metadata_ttl_secs: u64,
    /// How long an upstream "not found" is remembered. Default 60.
    #[serde(default = "default_negative_ttl")]
    pub negative_ttl_secs: u64,
    /// Serve only what is stored; never contact the upstream.
    #[serde(default)]
    pub offline: bool,
    /// Answer upstream failures (5xx, timeouts) for uncached requests with 404 + `no-store`,
    /// so that clients with `GOPROXY=…,direct` fall through, instead of 502/504.
    #[serde(default)]
    pub fall_through: bool,
}

/// `kind = "virtual"`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VirtualConfig {
    /// The repository name.
    pub name: RepoName,
    /// Module path patterns served; empty = all.
    #[serde(default)]
    pub include: Vec<String>,
    /// Module path patterns refused.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Whether anyone may read without a token.
    #[serde(default)]
    pub anonymous_read: bool,
    /// The members, in resolution order (local or remote repositories).
    pub members: Vec<MemberConfig>,
}

/// One member of a virtual repository.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberConfig {
    /// The member repository.
    pub repository: RepoName,
    /// Module path patterns this member is asked for; empty = all it accepts.
    #[serde(default)]
    pub include: Vec<String>,
    /// Module path patterns this member is never asked for.
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl MemberConfig {
    /// Whether the member is asked for `module`.
    pub fn accepts(&self, module: &str) -> bool {
        patterns_accept(&self.include, &self.exclude, module)
    }
}

fn default_metadata_ttl() -> u64 {
    600
}

fn default_negative_ttl() -> u64 {
    60
}

fn patterns_accept(include: &[String], exclude: &[String], module: &str) -> bool {
    let included = include.is_empty() || include.iter().any(|p| match_prefix_patterns(p, module));
    included && !exclude.iter().any(|p| match_prefix_patterns(p, module))
}

impl RepositoryConfig {
    /// The repository's name.
    pub fn name(&self) -> &RepoName {
        match self {
            RepositoryConfig::Local(c) => &c.name,
            RepositoryConfig::Remote(c) => &c.name,
            RepositoryConfig::Virtual(c) => &c.name,
        }
    }

    /// Whether anonymous clients may read.
    pub fn anonymous_read(&self) -> bool {
        match self {
            RepositoryConfig::Local(c) => c.anonymous_read,
            RepositoryConfig::Remote(c) => c.anonymous_read,
            RepositoryConfig::Virtual(c) => c.anonymous_read,
        }
    }

    /// The include and exclude patterns.
    pub fn patterns(&self) -> (&[String], &[String]) {
        match self {
            RepositoryConfig::Local(c) => (&c.include, &c.exclude),
            RepositoryConfig::Remote(c) => (&c.include, &c.exclude),
            RepositoryConfig::Virtual(c) => (&c.include, &c.exclude),
        }
    }

    /// Whether `module` is within the repository's include/exclude patterns.
    pub fn accepts(&self, module: &str) -> bool {
        let (include, exclude) = self.patterns();
        patterns_accept(include, exclude, module)
    }

    /// The kind, as written in the configuration.
    pub fn kind(&self) -> &'static str {
        match self {
            RepositoryConfig::Local(_) => "local",
            RepositoryConfig::Remote(_) => "remote",
            RepositoryConfig::Virtual(_) => "virtual",
        }
    }
}

pub use strata_service::config::ConfigError;

impl ServiceConfig for RegistryConfig {
    const SERVICE: &'static str = "REGISTRY";
    const BINARY: &'static str = "strata-registry";

    fn tracing(&self) -> Option<&strata_service::trace::TracingConfig> {
        Some(&self.tracing)
    }
    const CONFIG_WAS: &'static [&'static str] = &["STRATA_CONFIG"];
    const OVERRIDES: &'static [Override] = &[
        Override {
            name: "HTTP_LISTEN",
            key: "server.http",
            note: "",
            was: &["STRATA_HTTP_LISTEN"],
        },
        Override {
            name: "GRPC_LISTEN",
            key: "server.grpc",
            note: "",
            was: &["STRATA_GRPC_LISTEN"],
        },
        Override {
            name: "REDIS_URL",
            key: "events.url",
            note: "switches `events` to Redis Streams",
            was: &["STRATA_REDIS_URL"],
        },
        Override {
            name: "STORAGE_ROOT",
            key: "storage.root",
            note: "switches `storage` to the filesystem at that path",
            was: &["STRATA_STORAGE_ROOT"],
        },
    ];

    fn apply_override(&mut self, name: &str, value: &str) -> Result<(), String> {
        match name {
            "HTTP_LISTEN" => self.server.http = config::parse(value)?,
            "GRPC_LISTEN" => self.server.grpc = config::parse(value)?,
            "REDIS_URL" => {
                self.events = EventsConfig::Redis(RedisEventsConfig::with_url(value.to_string()))
            }
            "STORAGE_ROOT" => {
                self.storage = StorageConfig::Fs(FsConfig {
                    root: PathBuf::from(value),
                })
            }
            other => return Err(format!("{other} is not a registry setting")),
        }
        Ok(())
    }

    fn validate(&mut self) -> Result<(), ConfigError> {
        self.check()
    }

    /// The ledger's signer key from its `key_env` variable or `key_file` (a configuration
    /// error otherwise, exit 64).
    fn read_named_env(&mut self, env: &[(String, String)]) -> Result<(), ConfigError> {
        if let Some(ledger) = &mut self.ledger {
            ledger
                .read_key(env)
                .map_err(|e| ConfigError::Invalid(format!("ledger: {e}")))?;
        }
        Ok(())
    }
}

impl RegistryConfig {
    /// Checks the values together.
    fn check(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for repo in &self.repositories {
            if !seen.insert(repo.name().clone()) {
                return Err(ConfigError::Invalid(format!(
                    "repository {:?} is defined twice",
                    repo.name().as_str()
                )));
            }
            let (include, exclude) = repo.patterns();
            for p in include.iter().chain(exclude) {
                if p.trim().is_empty() {
                    return Err(ConfigError::Invalid(format!(
                        "repository {:?}: empty module pattern",
                        repo.name().as_str()
                    )));
                }
            }
            self.validate_kind(repo)?;
        }
        if let EventsConfig::Redis(redis) = &self.events {
            redis
                .validate()
                .map_err(|e| ConfigError::Invalid(format!("events: {e}")))?;
        }
        if let Some(t) = &self.server.grpc_tls {
            let paths = [("cert", Some(&t.cert)), ("key", Some(&t.key))];
            let ca = [("client_ca", t.client_ca.as_ref())];
            for (key, path) in paths.into_iter().chain(ca) {
                if path.is_some_and(|p| p.as_os_str().is_empty()) {
                    return Err(ConfigError::Invalid(format!(
                        "server.grpc_tls.{key} is an empty path"
                    )));
                }
            }
        }
        if self.server.max_upload_bytes == 0 {
            return Err(ConfigError::Invalid(
                "server.max_upload_bytes must be positive".into(),
            ));
        }
        if let Some(ledger) = &self.ledger {
            ledger
                .validate()
                .map_err(|e| ConfigError::Invalid(format!("ledger: {e}")))?;
            for repo in &self.repositories {
                if let RepositoryConfig::Remote(r) = repo
                    && r.checksum_db.key.trim().split('+').next() == Some(ledger.name.as_str())
                {
                    return Err(ConfigError::Invalid(format!(
                        "ledger: name {:?} is the checksum database repository {:?} verifies \
                         with; the registry's own database needs a name of its own",
                        ledger.name,
                        r.name.as_str()
                    )));
                }
            }
        }
        let names: Vec<RepoName> = self.repositories.iter().map(|r| r.name().clone()).collect();
        crate::auth::Auth::new(&self.tokens, &names).map_err(ConfigError::Invalid)?;
        Ok(())
    }
}

impl RegistryConfig {
    fn validate_kind(&self, repo: &RepositoryConfig) -> Result<(), ConfigError> {
        let invalid =
            |m: String| ConfigError::Invalid(format!("repository {:?}: {m}", repo.name().as_str()));
        match repo {
            RepositoryConfig::Local(_) => {}
            RepositoryConfig::Remote(c) => {
                c.upstream.validate().map_err(invalid)?;
                c.checksum_db
                    .validate()
                    .map_err(|e| invalid(format!("checksum_db: {e}")))?;
                if c.no_sum.iter().any(|p| p.trim().is_empty()) {
                    return Err(invalid("empty no_sum pattern".into()));
                }
            }
            RepositoryConfig::Virtual(c) => {
                if c.members.is_empty() {
                    return Err(invalid(
                        "a virtual repository needs at least one member".into(),
                    ));
                }
                let mut seen = std::collections::HashSet::new();
                for m in &c.members {
                    if !seen.insert(&m.repository) {
                        return Err(invalid(format!(
                            "member {:?} is listed twice",
                            m.repository.as_str()
                        )));
                    }
                    match self.repositories.iter().find(|r| r.name() == &m.repository) {
                        None => {
                            return Err(invalid(format!(
                                "member {:?} is not a configured repository",
                                m.repository.as_str()
                            )));
                        }
                        Some(RepositoryConfig::Virtual(_)) => {
                            return Err(invalid(format!(
                                "member {:?} is virtual; members must be local or remote",
                                m.repository.as_str()
                            )));
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"
        storage = { kind = "fs", root = "/tmp/strata-test" }
        [server]
        http = "127.0.0.1:0"
        [[repositories]]
        name = "private"
        kind = "local"
        include = ["example.com/team/*"]
        [[tokens]]
        name = "ci"
        sha256 = "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
        permissions = { private = ["read", "deploy"] }
    "#;

    #[test]
    fn parses_example_and_env() {
        let env = vec![(
            "STRATA_REGISTRY_GRPC_LISTEN".to_string(),
            "127.0.0.1:7000".to_string(),
        )];
        let c = RegistryConfig::from_toml(EXAMPLE, "test", &env).unwrap();
        assert_eq!(c.server.grpc.port(), 7000);
        // The name from before the convention still works (with a warning).
        let env = vec![(
            "STRATA_GRPC_LISTEN".to_string(),
            "127.0.0.1:7001".to_string(),
        )];
        let loaded = config::from_toml::<RegistryConfig>(EXAMPLE, "test", &env).unwrap();
        assert_eq!(loaded.config.server.grpc.port(), 7001);
        assert_eq!(
            loaded.warnings,
            ["STRATA_GRPC_LISTEN is deprecated: use STRATA_REGISTRY_GRPC_LISTEN"]
        );
        assert_eq!(c.repositories.len(), 1);
        assert!(c.repositories[0].accepts("example.com/team/x"));
        assert!(!c.repositories[0].accepts("example.com/other"));
    }

    #[test]
    fn shipped_example_config_loads() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/config/registry.toml"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let c = RegistryConfig::from_toml(&text, path, &[]).unwrap();
        let kinds: Vec<&str> = c.repositories.iter().map(RepositoryConfig::kind).collect();
        assert_eq!(kinds, ["local", "remote", "virtual"]);
        assert!(matches!(c.storage, StorageConfig::Fs(_)));
        assert!(matches!(c.events, EventsConfig::Memory(_)));
    }

    #[test]
    fn remote_and_virtual_repositories_are_validated() {
        let base = r#"
            [[repositories]]
            name = "private"
            kind = "local"
            [[repositories]]
            name = "gocache"
            kind = "remote"
            upstream = { url = "https://proxy.golang.org" }
        "#;
        let c = RegistryConfig::from_toml(base, "t", &[]).unwrap();
        let RepositoryConfig::Remote(r) = &c.repositories[1] else {
            panic!("remote expected");
        };
        assert_eq!(r.metadata_ttl_secs, 600);
        assert!(r.checksum_db.key.starts_with("sum.golang.org+"));
        for (extra, want) in [
            ("", "at least one member"),
            (
                "members = [{ repository = \"nope\" }]",
                "not a configured repository",
            ),
            (
                "members = [{ repository = \"go\" }]",
                "members must be local or remote",
            ),
            (
                "members = [{ repository = \"private\" }, { repository = \"private\" }]",
                "listed twice",
            ),
        ] {
            let text =
                format!("{base}\n[[repositories]]\nname = \"go\"\nkind = \"virtual\"\n{extra}\n");
            let text = if extra.is_empty() {
                format!("{text}members = []\n")
            } else {
                text
            };
            let e = RegistryConfig::from_toml(&text, "t", &[])
                .unwrap_err()
                .to_string();
            assert!(e.contains(want), "{extra}: {e}");
        }
        let bad_url = base.replace("https://proxy.golang.org", "ftp://x");
        let e = RegistryConfig::from_toml(&bad_url, "t", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("gocache") && e.contains("http"), "{e}");
        let typo = base.replace("upstream =", "upstrem =");
        assert!(RegistryConfig::from_toml(&typo, "t", &[]).is_err());
    }

    #[test]
    fn grpc_tls_and_allow_shadowing_parse() {
        let base = EXAMPLE.replace(
            "http = \"127.0.0.1:0\"",
            "http = \"127.0.0.1:0\"\ngrpc_tls = { cert = \"c.pem\", key = \"k.pem\", client_ca = \"ca.pem\" }",
        );
        let c = RegistryConfig::from_toml(&base, "t", &[]).unwrap();
        let tls = c.server.grpc_tls.unwrap();
        assert_eq!(tls.client_ca, Some(PathBuf::from("ca.pem")));
        let RepositoryConfig::Local(local) = &c.repositories[0] else {
            panic!("local expected");
        };
        assert!(!local.allow_shadowing, "the default refuses shadowing");
        let empty = base.replace("key = \"k.pem\"", "key = \"\"");
        let e = RegistryConfig::from_toml(&empty, "t", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("server.grpc_tls.key is an empty path"), "{e}");
        let allowed = EXAMPLE.replace(
            "kind = \"local\"",
            "kind = \"local\"\nallow_shadowing = true",
        );
        let c = RegistryConfig::from_toml(&allowed, "t", &[]).unwrap();
        assert!(matches!(&c.repositories[0], RepositoryConfig::Local(l) if l.allow_shadowing));
    }

    #[test]
    fn the_ledger_table_reads_its_key_when_loaded() {
        let (signer, _) = crate::ledger::generate_key("sum.corp.example").unwrap();
        let text =
            format!("{EXAMPLE}\n[ledger]\nname = \"sum.corp.example\"\nkey_env = \"LEDGER_KEY\"\n");
        let env = vec![("LEDGER_KEY".to_string(), signer.clone())];
        let c = RegistryConfig::from_toml(&text, "t", &env).unwrap();
        assert_eq!(c.ledger.unwrap().signer_key(), Some(signer.as_str()));
        let e = RegistryConfig::from_toml(&text, "t", &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("ledger: key_env: the variable LEDGER_KEY is not set"),
            "{e}"
        );
        let renamed = text.replace(
            "name = \"sum.corp.example\"",
            "name = \"sum.other.example\"",
        );
        let e = RegistryConfig::from_toml(&renamed, "t", &env)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("not of \"sum.other.example\"") && !e.contains(&signer),
            "{e}"
        );
        assert!(
            RegistryConfig::from_toml(EXAMPLE, "t", &[])
                .unwrap()
                .ledger
                .is_none()
        );
    }

    #[test]
    fn rejects_mistakes_with_reasons() {
        let typo = EXAMPLE
            .replace("anonymous_read", "x")
            .replace("include", "includes");
        let e = RegistryConfig::from_toml(&typo, "test", &[])
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field"), "{e}");
        let dup = format!("{EXAMPLE}\n[[repositories]]\nname = \"private\"\nkind = \"local\"\n");
        assert!(
            RegistryConfig::from_toml(&dup, "t", &[])
                .unwrap_err()
                .to_string()
                .contains("defined twice")
        );
        let env = vec![("STRATA_HTTP_LISTEN".to_string(), "nope".to_string())];
        assert!(
            RegistryConfig::from_toml(EXAMPLE, "t", &env)
                .unwrap_err()
                .to_string()
                .contains("STRATA_HTTP_LISTEN")
        );
        let bad_name = EXAMPLE.replace("name = \"private\"", "name = \"Bad Name\"");
        assert!(
            RegistryConfig::from_toml(&bad_name, "t", &[])
                .unwrap_err()
                .to_string()
                .contains("invalid repository name")
        );
    }
}
