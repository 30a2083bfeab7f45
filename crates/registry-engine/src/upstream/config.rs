//! How to reach one upstream: its URL, credentials, timeouts, retries and concurrency bounds.
//! Embedded (flattened) in a remote repository's configuration and in a checksum database's.
//!
//! Credentials may also be given in the URL (`https://user:pass@host/`); wherever the URL is
//! shown (errors, logs, `Debug`) its user information is replaced by `***` ([`redact_url`]).

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
    /// Metadata requests (`list`, `@latest`, queries, `.info`, `.mod`, checksum-database
    /// lookups and tiles) in flight to this upstream at once; more wait their turn. Default 32.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: usize,
    /// Zip downloads in flight to this upstream at once, a pool of its own so that slow
    /// downloads cannot hold up metadata requests; more wait their turn. Default 32.
    #[serde(default = "default_max_concurrency")]
    pub max_zip_concurrency: usize,
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
            max_zip_concurrency: default_max_concurrency(),
        }
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> Result<(), String> {
        let url = self.url.trim();
        let shown = redact_url(url);
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(format!(
                "upstream url {shown:?} must start with http:// or https://"
            ));
        }
        let Ok(parsed) = reqwest::Url::parse(url) else {
            return Err(format!("upstream url {shown:?} is not a valid URL"));
        };
        if self.token.is_some() && (self.username.is_some() || self.password.is_some()) {
            return Err("set either token or username/password, not both".into());
        }
        if self.password.is_some() && self.username.is_none() {
            return Err("password needs a username".into());
        }
        let in_url = !parsed.username().is_empty() || parsed.password().is_some();
        if in_url && (self.token.is_some() || self.username.is_some()) {
            return Err(format!(
                "upstream url {shown:?} carries credentials; set them either in the URL or as \
                 username/password/token, not both"
            ));
        }
        if self.attempts == 0 || self.max_concurrency == 0 || self.max_zip_concurrency == 0 {
            return Err(
                "attempts, max_concurrency and max_zip_concurrency must be at least 1".into(),
            );
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
            .field("url", &redact_url(&self.url))
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "…"))
            .field("token", &self.token.as_ref().map(|_| "…"))
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("read_timeout_ms", &self.read_timeout_ms)
            .field("attempts", &self.attempts)
            .field("retry_initial_ms", &self.retry_initial_ms)
            .field("max_concurrency", &self.max_concurrency)
            .field("max_zip_concurrency", &self.max_zip_concurrency)
            .finish()
    }
}

/// `url` as it may be shown: user information (`user:pass@`) replaced by `***@`. Text that is
/// not a URL with an authority comes back unchanged.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let authority_start = scheme_end + 3;
    let rest = &url[authority_start..];
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    // The last `@` ends the user information (one inside it must be percent-encoded).
    match rest[..authority_len].rfind('@') {
        Some(at) => format!(
            "{}***{}",
            &url[..authority_start],
            &url[authority_start + at..]
        ),
        None => url.to_owned(),
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
        let mut z = UpstreamConfig::with_url("http://127.0.0.1:1");
        z.max_zip_concurrency = 0;
        assert!(z.validate().unwrap_err().contains("max_zip_concurrency"));
    }

    #[test]
    fn credentials_in_the_url_are_never_shown() {
        for (url, shown) in [
            ("https://proxy.golang.org", "https://proxy.golang.org"),
            ("https://u:s3cret@host:8443/go", "https://***@host:8443/go"),
            ("http://user@host", "http://***@host"),
            ("https://u:p%40ss@host/a@b?x=@", "https://***@host/a@b?x=@"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
        let c = UpstreamConfig::with_url("https://u:s3cret@host/");
        assert!(c.validate().is_ok());
        assert!(!format!("{c:?}").contains("s3cret"));
        let bad = UpstreamConfig::with_url("ftp://u:s3cret@host/");
        assert!(!bad.validate().unwrap_err().contains("s3cret"));
        let both = UpstreamConfig {
            token: Some("t".into()),
            ..UpstreamConfig::with_url("https://u:s3cret@host/")
        };
        let e = both.validate().unwrap_err();
        assert!(e.contains("not both") && !e.contains("s3cret"), "{e}");
    }
}
