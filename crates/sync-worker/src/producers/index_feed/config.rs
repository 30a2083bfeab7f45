//! The `[[feeds]]` configuration entries and their validation.

use serde::Deserialize;
use strata_core::pattern::glob_match;
use strata_registry_engine::keys::RepoName;
use strata_service::config::ConfigError;

use super::entry::FeedTime;
use crate::producers::schedule::check_name;

/// One `[[feeds]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// Names the feed (cursor object, job keys, metric label): 1–64 of `A-Z a-z 0-9 . _ -`.
    pub name: String,
    /// Base URL; the feed is read from `<url>/index`.
    pub url: String,
    /// The repository (with an upstream) the versions are prefetched into.
    pub repository: RepoName,
    /// Module path patterns to follow (GOPRIVATE syntax); empty = all.
    #[serde(default)]
    pub include: Vec<String>,
    /// Module path patterns to skip.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Entries per request (`limit=`). Default 2000.
    #[serde(default = "default_limit")]
    pub limit: usize,
    /// How often a poll is enqueued. Default 60000 ms.
    #[serde(default = "default_poll_interval_ms")]
    pub poll_interval_ms: u64,
    /// RFC 3339: where a feed without a saved cursor starts. Default: the feed's beginning.
    #[serde(default)]
    pub start: Option<String>,
    /// Request timeout. Default 30000 ms.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_limit() -> usize {
    2000
}
fn default_poll_interval_ms() -> u64 {
    60_000
}
fn default_timeout_ms() -> u64 {
    30_000
}

impl FeedConfig {
    /// Checks what serde cannot; the message names the field.
    pub(super) fn check(&self) -> Result<(), String> {
        check_name(&self.name)?;
        let url = reqwest::Url::parse(&self.url).map_err(|e| format!("url {:?}: {e}", self.url))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!("url {:?}: must be an http(s) URL", self.url));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "url {:?}: give the base URL, without a query",
                self.url
            ));
        }
        for (field, patterns) in [("include", &self.include), ("exclude", &self.exclude)] {
            for pattern in patterns {
                for glob in pattern.split(',').map(|g| g.trim_end_matches('/')) {
                    if !glob.is_empty() && glob_match(glob, "").is_err() {
                        return Err(format!("{field}: {pattern:?} is not a valid pattern"));
                    }
                }
            }
        }
        if !(1..=100_000).contains(&self.limit) {
            return Err("limit: must be between 1 and 100000".into());
        }
        if self.poll_interval_ms < 1000 {
            return Err("poll_interval_ms: must be at least 1000".into());
        }
        if self.timeout_ms == 0 {
            return Err("timeout_ms: must be at least 1".into());
        }
        if let Some(start) = &self.start {
            FeedTime::parse(start).map_err(|e| format!("start: {e}"))?;
        }
        Ok(())
    }
}

/// Checks every `[[feeds]]` entry (names unique).
pub(crate) fn validate(feeds: &[FeedConfig]) -> Result<(), ConfigError> {
    for (i, feed) in feeds.iter().enumerate() {
        feed.check().map_err(|reason| {
            ConfigError::invalid("feeds", format!("feeds[{i}] ({:?}): {reason}", feed.name))
        })?;
        if feeds[..i].iter().any(|f| f.name == feed.name) {
            return Err(ConfigError::invalid(
                "feeds",
                format!("feeds[{i}]: the name {:?} is used twice", feed.name),
            ));
        }
    }
    Ok(())
}
