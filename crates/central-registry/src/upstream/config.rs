//! How to reach one upstream: its URL, credentials, timeouts, retries and concurrency bound.
//! Embedded (flattened) in a remote repository's configuration and in a checksum database's.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;

/// Connection settings of an upstream. Durations are in milliseconds.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Base URL (`https://proxy.golang.org`, `http://goproxy.internal/go`); a trailing `/` is
    /// ignored.
    pub url: String,
    /// HTTP Basic user name (with `password`).
    #[serde(default)]
    pub username: Option<String>,
    /// HTTP Basic password.
    #[serde(default)]
    pub password: Option<String>,
    /// A bearer token (instead of Basic).
    #[serde(default)]
    pub token: Option<String>,
    /// Time to establish a connection. Default 5000.
    #[serde(default = "default_connect_timeout_ms")]
    pub connect_timeout_ms: u64,
    /// Time to receive the response head of a request, and the longest pause between two
    /// chunks of a body. Default 30000.
    #[serde(default = "default_read_timeout_ms")]
    pub read_timeout_ms: u64,
    /// Attempts per request (1 = no retry). Retried: 429, 5xx, timeouts, connection failures.
    /// Default 3.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// First retry delay (doubling, with jitter, capped at 10× this; `Retry-After` is honoured
    /// up to the cap). Default 200.
    #[serde(default = "default_retry_initial_ms")]
    pub retry_initial_ms: u64,
    /// Requests in flight to this upstream at once; more wait their turn. Default 32.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
}

impl UpstreamConfig {
    /// The defaults for `url`.
    pub fn with_url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            username: None,
            password: None,
            token: None,
            connect_timeout_ms: default_connect_timeout_ms(),
            read_timeout_ms: default_read_timeout_ms(),
            attempts: default_attempts(),
            retry_initial_ms: default_retry_initial_ms(),
            max_concurrency: default_max_concurrency(),
        }
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), String> {
        let url = self.url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "upstream url {url:?} must start with http:// or https://"
            ));
        }
        if reqwest::Url::parse(url).is_err() {
            return Err(format!("upstream url {url:?} is not a valid URL"));
        }
        if self.token.is_some() && (self.username.is_some() || self.password.is_some()) {
            return Err("set either token or username/password, not both".into());
        }
        if self.password.is_some() && self.username.is_none() {
            return Err("password needs a username".into());
        }
        if self.attempts == 0 || self.max_concurrency == 0 {
            return Err("attempts and max_concurrency must be at least 1".into());
        }
        if self.connect_timeout_ms == 0 || self.read_timeout_ms == 0 {
            return Err("timeouts must be positive".into());
        }
        Ok(())
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub(crate) fn read_timeout(&self) -> Duration {
        Duration::from_millis(self.read_timeout_ms)
    }

    pub(crate) fn retry_initial(&self) -> Duration {
        Duration::from_millis(self.retry_initial_ms.max(1))
    }
}

// Credentials stay out of logs and error messages.
impl fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("url", &self.url)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("read_timeout_ms", &self.read_timeout_ms)
            .field("attempts", &self.attempts)
            .field("retry_initial_ms", &self.retry_initial_ms)
            .field("max_concurrency", &self.max_concurrency)
            .finish()
    }
}

fn default_connect_timeout_ms() -> u64 {
    5_000
}

fn default_read_timeout_ms() -> u64 {
    30_000
}

fn default_attempts() -> u32 {
    3
}

fn default_retry_initial_ms() -> u64 {
    200
}

fn default_max_concurrency() -> usize {
    32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_urls_and_credentials() {
        assert!(
            UpstreamConfig::with_url("https://proxy.golang.org")
                .validate()
                .is_ok()
        );
        assert!(UpstreamConfig::with_url("ftp://x").validate().is_err());
        assert!(UpstreamConfig::with_url("https://").validate().is_err());
        let mut c = UpstreamConfig::with_url("http://127.0.0.1:1");
        c.token = Some("t".into());
        c.username = Some("u".into());
        assert!(c.validate().unwrap_err().contains("either"));
        c.token = None;
        c.password = Some("p".into());
        assert!(c.validate().is_ok());
        assert!(!format!("{c:?}").contains("\"p\""));
    }
}
