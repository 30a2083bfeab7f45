//! [`RepoName`]: the name of a repository, as it appears in URLs (`/go/{repo}/…`), edge routes,
//! events and storage keys — one rule for every tier.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// A repository name: 1–64 of `a-z 0-9 . _ -`, starting with a letter or digit. Appears in URLs
/// (`/go/{repo}/…`) and storage keys.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RepoName(String);

/// A repository name that breaks the naming rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error(
    "invalid repository name {name:?}: use 1-64 of a-z 0-9 . _ - starting with a letter or digit"
)]
pub struct RepoNameError {
    /// The offending name.
    pub name: String,
}

impl RepoName {
    /// Validates a repository name.
    pub fn new(name: &str) -> Result<Self, RepoNameError> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name.as_bytes()[0].is_ascii_alphanumeric()
            && name.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
            });
        if ok {
            Ok(Self(name.to_string()))
        } else {
            Err(RepoNameError {
                name: name.to_string(),
            })
        }
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RepoName {
    type Error = RepoNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<RepoName> for String {
    fn from(n: RepoName) -> String {
        n.0
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::RepoName;

    #[test]
    fn one_rule_for_every_tier() {
        for ok in ["go", "private", "a", "team-1.cache_x", &"a".repeat(64)] {
            assert!(RepoName::new(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-go", "_go", ".go", "Go", "a/b", "a b", &"a".repeat(65)] {
            assert!(RepoName::new(bad).is_err(), "{bad:?}");
        }
    }
}
