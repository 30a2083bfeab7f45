//! Registry configuration: TOML, then `STRATA_…` environment overrides, then validation into
//! typed values. Nothing outside this module reads the environment.
//!
//! ```toml
//! storage = { kind = "fs", root = "./data" }     # or { kind = "s3", bucket = …, … }
//! events = { kind = "memory" }                   # or { kind = "redis", url = "redis://…" }
//!
//! [server]
//! http = "127.0.0.1:8080"          # GOPROXY, publish API, health, metrics
//! grpc = "127.0.0.1:9090"          # edge and worker API
//! max_upload_bytes = 536870912     # publish body limit (413 past it)
//!
//! [[repositories]]
//! name = "private"
//! kind = "local"
//! include = ["example.com/team/*"]  # GOPRIVATE-style patterns; empty = every module
//! exclude = []
//! anonymous_read = false
//!
//! [[tokens]]
//! name = "ci"
//! sha256 = "…"                      # `strata token new` prints a token and its hash
//! permissions = { private = ["read", "deploy"] }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use strata_core::pattern::match_prefix_patterns;

use crate::auth::TokenConfig;
use crate::events::{EventsConfig, RedisEventsConfig};
use crate::keys::RepoName;
use crate::storage::StorageConfig;
use crate::storage::fs::FsConfig;

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
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum RepositoryConfig {
    /// Hosted modules, written through the publish API.
    Local {
        /// The repository name (in URLs: `/go/{name}/…`).
        name: RepoName,
        /// Module path patterns (GOPRIVATE syntax) this repository accepts; empty = all.
        #[serde(default)]
        include: Vec<String>,
        /// Module path patterns it refuses, even if included.
        #[serde(default)]
        exclude: Vec<String>,
        /// Whether anyone may read without a token.
        #[serde(default)]
        anonymous_read: bool,
    },
}

impl RepositoryConfig {
    /// The repository's name.
    pub fn name(&self) -> &RepoName {
        match self {
            RepositoryConfig::Local { name, .. } => name,
        }
    }

    /// Whether anonymous clients may read.
    pub fn anonymous_read(&self) -> bool {
        match self {
            RepositoryConfig::Local { anonymous_read, .. } => *anonymous_read,
        }
    }

    /// Whether `module` is within the repository's include/exclude patterns.
    pub fn accepts(&self, module: &str) -> bool {
        let RepositoryConfig::Local {
            include, exclude, ..
        } = self;
        let included =
            include.is_empty() || include.iter().any(|p| match_prefix_patterns(p, module));
        included && !exclude.iter().any(|p| match_prefix_patterns(p, module))
    }
}

/// A configuration that cannot be used; main exits with status 64 on it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// TOML syntax or a field of the wrong type, unknown or missing.
    #[error("{path}: {message}")]
    Parse {
        /// The file (or `<embedded>`).
        path: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// An environment override that does not parse.
    #[error("environment variable {name}={value:?}: {reason}")]
    Env {
        /// Variable name.
        name: &'static str,
        /// Its value.
        value: String,
        /// Why it is rejected.
        reason: String,
    },
    /// Values that parse but do not fit together.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl RegistryConfig {
    /// Reads a TOML file, applies environment overrides and validates.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(
            &text,
            &path.display().to_string(),
            &std::env::vars().collect::<Vec<_>>(),
        )
    }

    /// Parses TOML text with the given environment (`(name, value)` pairs) and validates.
    pub fn from_toml(
        text: &str,
        origin: &str,
        env: &[(String, String)],
    ) -> Result<Self, ConfigError> {
        let mut config: RegistryConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        config.apply_env(env)?;
        config.validate()?;
        Ok(config)
    }

    fn apply_env(&mut self, env: &[(String, String)]) -> Result<(), ConfigError> {
        for (name, value) in env {
            match name.as_str() {
                "STRATA_HTTP_LISTEN" => self.server.http = parse_addr("STRATA_HTTP_LISTEN", value)?,
                "STRATA_GRPC_LISTEN" => self.server.grpc = parse_addr("STRATA_GRPC_LISTEN", value)?,
                "STRATA_REDIS_URL" => {
                    self.events = EventsConfig::Redis(RedisEventsConfig::with_url(value.clone()))
                }
                "STRATA_STORAGE_ROOT" => {
                    self.storage = StorageConfig::Fs(FsConfig {
                        root: PathBuf::from(value),
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let mut seen = std::collections::HashSet::new();
        for repo in &self.repositories {
            if !seen.insert(repo.name().clone()) {
                return Err(ConfigError::Invalid(format!(
                    "repository {:?} is defined twice",
                    repo.name().as_str()
                )));
            }
            let RepositoryConfig::Local {
                include, exclude, ..
            } = repo;
            for p in include.iter().chain(exclude) {
                if p.trim().is_empty() {
                    return Err(ConfigError::Invalid(format!(
                        "repository {:?}: empty module pattern",
                        repo.name().as_str()
                    )));
                }
            }
        }
        if let EventsConfig::Redis(redis) = &self.events {
            redis
                .validate()
                .map_err(|e| ConfigError::Invalid(format!("events: {e}")))?;
        }
        if self.server.max_upload_bytes == 0 {
            return Err(ConfigError::Invalid(
                "server.max_upload_bytes must be positive".into(),
            ));
        }
        let names: Vec<RepoName> = self.repositories.iter().map(|r| r.name().clone()).collect();
        crate::auth::Auth::new(&self.tokens, &names).map_err(ConfigError::Invalid)?;
        Ok(())
    }
}

fn parse_addr(name: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    value
        .parse()
        .map_err(|e: std::net::AddrParseError| ConfigError::Env {
            name,
            value: value.to_string(),
            reason: e.to_string(),
        })
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
            "STRATA_GRPC_LISTEN".to_string(),
            "127.0.0.1:7000".to_string(),
        )];
        let c = RegistryConfig::from_toml(EXAMPLE, "test", &env).unwrap();
        assert_eq!(c.server.grpc.port(), 7000);
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
        assert_eq!(c.repositories.len(), 1);
        assert!(matches!(c.storage, StorageConfig::Fs(_)));
        assert!(matches!(c.events, EventsConfig::Memory(_)));
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
