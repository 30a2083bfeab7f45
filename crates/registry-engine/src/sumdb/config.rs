//! How to reach and trust one checksum database: its verifier key, URL, tile height, how long
//! the proxied `/latest` is reused, and the HTTP tunables of the connection to it.

use std::time::Duration;

use serde::Deserialize;
use strata_core::sumdb::{Verifier as _, VerifierKey};

use crate::upstream::UpstreamConfig;

/// The verifier key of `sum.golang.org`, the go command's default `GOSUMDB`.
pub const SUM_GOLANG_ORG_KEY: &str =
    "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";

/// A checksum database (TOML, e.g. a `[sumdb]` table). Every field has a default, so an empty
/// table means `sum.golang.org`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SumDbConfig {
    /// The verifier key `name+hash+keydata` (the `GOSUMDB` value of the go command). Every
    /// signed tree head must verify with it. Default: sum.golang.org's key.
    #[serde(default = "default_key")]
    pub key: String,
    /// Where the database is served: `https://sum.golang.org`, or a GOPROXY's
    /// `…/sumdb/<name>`. Default: `https://<key name>`.
    #[serde(default)]
    pub url: Option<String>,
    /// Tile height the verifier reads (the go command and sum.golang.org use 8). Default 8.
    #[serde(default = "default_tile_height")]
    pub tile_height: u32,
    /// Seconds a verified `/latest` fetched for the proxy is served again before asking the
    /// database anew. Default 10.
    #[serde(default = "default_latest_ttl_secs")]
    pub latest_ttl_secs: u64,
    /// Time to establish a connection to the database, in milliseconds. Default: the upstream
    /// default (5000).
    #[serde(default)]
    pub connect_timeout_ms: Option<u64>,
    /// Time to receive a response head (and the longest pause in a body), in milliseconds.
    /// Default: the upstream default (30000).
    #[serde(default)]
    pub read_timeout_ms: Option<u64>,
    /// Attempts per request (1 = no retry). Default: the upstream default (3).
    #[serde(default)]
    pub attempts: Option<u32>,
    /// Requests in flight to the database at once. Default: the upstream default (32).
    #[serde(default)]
    pub max_concurrency: Option<usize>,
}

impl Default for SumDbConfig {
    fn default() -> Self {
        Self {
            key: default_key(),
            url: None,
            tile_height: default_tile_height(),
            latest_ttl_secs: default_latest_ttl_secs(),
            connect_timeout_ms: None,
            read_timeout_ms: None,
            attempts: None,
            max_concurrency: None,
        }
    }
}

impl SumDbConfig {
    /// The configuration of the database with verifier key `key` served at `url`.
    pub fn with_key(key: impl Into<String>, url: Option<String>) -> Self {
        Self {
            key: key.into(),
            url,
            ..Self::default()
        }
    }

    /// Checks values that parse but cannot work; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        self.verifier_key()?;
        if !(1..=30).contains(&self.tile_height) {
            return Err(format!(
                "sumdb tile_height {} must be between 1 and 30 (the go command uses 8)",
                self.tile_height
            ));
        }
        self.upstream_config()?.validate().map_err(|e| {
            format!(
                "sumdb url {:?}: {e}",
                self.url.as_deref().unwrap_or_default()
            )
        })?;
        Ok(())
    }

    /// The parsed verifier key.
    pub(super) fn verifier_key(&self) -> Result<VerifierKey, String> {
        VerifierKey::parse(self.key.trim()).map_err(|e| {
            format!(
                "invalid sumdb key {:?}: {e} (want name+hash+keydata, e.g. {SUM_GOLANG_ORG_KEY})",
                self.key
            )
        })
    }

    /// The database's name: the name of its key.
    pub(super) fn name(&self) -> Result<String, String> {
        Ok(self.verifier_key()?.name().to_owned())
    }

    /// The database URL without a trailing `/`: `url`, or `https://<name>`.
    pub fn base_url(&self) -> Result<String, String> {
        let url = match &self.url {
            Some(url) => url.trim().to_owned(),
            None => format!("https://{}", self.name()?),
        };
        Ok(url.trim_end_matches('/').to_owned())
    }

    /// The HTTP client settings for the database.
    pub(super) fn upstream_config(&self) -> Result<UpstreamConfig, String> {
        let mut config = UpstreamConfig::with_url(self.base_url()?);
        if let Some(ms) = self.connect_timeout_ms {
            config.connect_timeout_ms = ms;
        }
        if let Some(ms) = self.read_timeout_ms {
            config.read_timeout_ms = ms;
        }
        if let Some(n) = self.attempts {
            config.attempts = n;
        }
        if let Some(n) = self.max_concurrency {
            config.max_concurrency = n;
        }
        Ok(config)
    }

    /// How long a proxied `/latest` is reused.
    pub(super) fn latest_ttl(&self) -> Duration {
        Duration::from_secs(self.latest_ttl_secs)
    }
}

fn default_key() -> String {
    SUM_GOLANG_ORG_KEY.to_owned()
}

fn default_tile_height() -> u32 {
    8
}

fn default_latest_ttl_secs() -> u64 {
    10
}
