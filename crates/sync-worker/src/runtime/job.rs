//! The jobs the sync worker runs, as one serde-tagged enum.
//!
//! Every kind issue 6 needs is declared here, so later work only adds handlers. On the wire a
//! job is adjacently tagged — `{"kind": "prefetch", "payload": {…}}` — so that an envelope can
//! name the kind of a payload this build cannot read (a newer producer) and dead-letter it
//! with a reason instead of losing it.
//!
//! Module paths and versions are the core crate's validated newtypes, so a job that parses
//! names a real module version; [`Job::validate`] adds the checks that span fields.

use std::fmt;

use serde::{Deserialize, Serialize};
use strata_core::path::ModulePath;
use strata_core::version::Version;
use strata_registry_engine::keys::RepoName;

/// One unit of background work.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "payload", rename_all = "snake_case")]
pub enum Job {
    /// Fetch one module version into a remote repository: `.info` and `.mod`, and the `.zip`
    /// unless `mod_only` (a `/go.mod` line of a go.sum needs only the go.mod).
    Prefetch {
        /// The remote repository that caches it.
        repository: RepoName,
        /// The module path.
        #[serde(with = "as_text")]
        module: ModulePath,
        /// The canonical version.
        #[serde(with = "as_text")]
        version: Version,
        /// Fetch only `.info` and `.mod`.
        #[serde(default)]
        mod_only: bool,
    },
    /// Refresh `list` and `@latest` of a module in a remote repository before their TTL ends.
    RefreshMetadata {
        /// The remote repository.
        repository: RepoName,
        /// The module path.
        #[serde(with = "as_text")]
        module: ModulePath,
    },
    /// Re-hash stored artifacts against their recorded `h1:`; one repository, or all of them.
    Scrub {
        /// Only this repository (all when absent).
        #[serde(default)]
        repository: Option<RepoName>,
    },
    /// Drop cached artifacts of a remote repository that were not read for its retention
    /// period; with `dry_run`, only list them.
    Retention {
        /// The remote repository.
        repository: RepoName,
        /// List what would be removed without removing it.
        #[serde(default)]
        dry_run: bool,
    },
    /// Read the next page of an upstream index feed and enqueue prefetches of what is new.
    IndexPoll {
        /// The configured feed's name.
        feed: String,
    },
}

/// The kinds of [`Job`], for routing to handlers and for metric labels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobKind {
    /// [`Job::Prefetch`].
    Prefetch,
    /// [`Job::RefreshMetadata`].
    RefreshMetadata,
    /// [`Job::Scrub`].
    Scrub,
    /// [`Job::Retention`].
    Retention,
    /// [`Job::IndexPoll`].
    IndexPoll,
}

impl JobKind {
    /// Every kind.
    pub const ALL: [JobKind; 5] = [
        JobKind::Prefetch,
        JobKind::RefreshMetadata,
        JobKind::Scrub,
        JobKind::Retention,
        JobKind::IndexPoll,
    ];

    /// The name used on the wire, in idempotency keys and in metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Prefetch => "prefetch",
            JobKind::RefreshMetadata => "refresh_metadata",
            JobKind::Scrub => "scrub",
            JobKind::Retention => "retention",
            JobKind::IndexPoll => "index_poll",
        }
    }

    /// The kind named `name` on the wire, if this build knows it.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Job {
    /// A prefetch of `module@version` into `repository`, checked like [`Job::validate`].
    pub fn prefetch(
        repository: RepoName,
        module: ModulePath,
        version: Version,
        mod_only: bool,
    ) -> Result<Self, String> {
        let job = Job::Prefetch {
            repository,
            module,
            version,
            mod_only,
        };
        job.validate()?;
        Ok(job)
    }

    /// The job's kind.
    pub fn kind(&self) -> JobKind {
        match self {
            Job::Prefetch { .. } => JobKind::Prefetch,
            Job::RefreshMetadata { .. } => JobKind::RefreshMetadata,
            Job::Scrub { .. } => JobKind::Scrub,
            Job::Retention { .. } => JobKind::Retention,
            Job::IndexPoll { .. } => JobKind::IndexPoll,
        }
    }

    /// Checks that span fields (serde checks each field on its own): a prefetched version
    /// must fit the module path's major version (`/v2` needs `v2.x.y`), and a feed name
    /// must be non-empty.
    pub fn validate(&self) -> Result<(), String> {
        match self {
            Job::Prefetch {
                module, version, ..
            } => strata_core::version::check(module.as_str(), version.as_str())
                .map_err(|e| e.to_string()),
            Job::IndexPoll { feed } if feed.trim().is_empty() => {
                Err("index_poll: the feed name is empty".into())
            }
            _ => Ok(()),
        }
    }

    /// The idempotency key that follows from the job itself, when running it twice can only
    /// repeat the same effect: a module version is immutable, so prefetching it is done once
    /// (`prefetch/gocache/example.com/m@v1.2.3`, `…@v1.2.3/mod` for go.mod only).
    ///
    /// The other kinds observe state that changes (a module's latest version, stored bytes,
    /// access times, a feed), so each enqueue is its own job unless the producer names a key
    /// (see [`crate::runtime::queue::NewJob::with_key`]), e.g. a scheduler tick.
    pub fn natural_key(&self) -> Option<String> {
        match self {
            Job::Prefetch {
                repository,
                module,
                version,
                mod_only,
            } => Some(format!(
                "prefetch/{}/{module}@{version}{}",
                repository.as_str(),
                if *mod_only { "/mod" } else { "" }
            )),
            _ => None,
        }
    }
}

/// Serialises a validated newtype as its text and parses it back through `FromStr`, so a job
/// that deserialises holds valid values.
mod as_text {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub(super) fn serialize<T: Display, S: Serializer>(
        value: &T,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        serializer.collect_str(value)
    }

    pub(super) fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn repo(name: &str) -> RepoName {
        RepoName::new(name).unwrap()
    }

    fn prefetch(module: &str, version: &str, mod_only: bool) -> Job {
        Job::prefetch(
            repo("gocache"),
            ModulePath::new(module).unwrap(),
            Version::new(version).unwrap(),
            mod_only,
        )
        .unwrap()
    }

    #[test]
    fn jobs_are_adjacently_tagged_and_round_trip() {
        let job = prefetch("example.com/m", "v1.2.3", false);
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "prefetch", "payload": {
                "repository": "gocache", "module": "example.com/m", "version": "v1.2.3",
                "mod_only": false}})
        );
        assert_eq!(serde_json::from_value::<Job>(json).unwrap(), job);
        for job in [
            Job::RefreshMetadata {
                repository: repo("gocache"),
                module: ModulePath::new("example.com/m").unwrap(),
            },
            Job::Scrub { repository: None },
            Job::Retention {
                repository: repo("gocache"),
                dry_run: true,
            },
            Job::IndexPoll {
                feed: "golang".into(),
            },
        ] {
            let json = serde_json::to_string(&job).unwrap();
            assert!(json.contains(job.kind().as_str()), "{json}");
            assert_eq!(serde_json::from_str::<Job>(&json).unwrap(), job);
        }
    }

    #[test]
    fn invalid_fields_are_rejected_when_parsed() {
        for (payload, want) in [
            (
                r#"{"repository":"gocache","module":"example.com/m","version":"1.2.3"}"#,
                "semantic",
            ),
            (
                r#"{"repository":"gocache","module":"no-dot/m","version":"v1.0.0"}"#,
                "dot",
            ),
            (
                r#"{"repository":"Bad Name","module":"example.com/m","version":"v1.0.0"}"#,
                "invalid repository name",
            ),
        ] {
            let text = format!(r#"{{"kind":"prefetch","payload":{payload}}}"#);
            let error = serde_json::from_str::<Job>(&text).unwrap_err().to_string();
            assert!(error.contains(want), "{payload}: {error}");
        }
        let unknown = serde_json::from_str::<Job>(r#"{"kind":"reindex","payload":{}}"#);
        assert!(unknown.is_err());
    }

    #[test]
    fn validation_checks_the_major_version() {
        let error = Job::prefetch(
            repo("gocache"),
            ModulePath::new("example.com/m/v2").unwrap(),
            Version::new("v1.0.0").unwrap(),
            false,
        )
        .unwrap_err();
        assert!(error.contains("v2"), "{error}");
        let empty_feed = Job::IndexPoll { feed: " ".into() };
        assert!(empty_feed.validate().is_err());
    }

    #[test]
    fn natural_keys_name_the_effect() {
        assert_eq!(
            prefetch("example.com/m", "v1.2.3", false).natural_key(),
            Some("prefetch/gocache/example.com/m@v1.2.3".to_owned())
        );
        assert_eq!(
            prefetch("example.com/m", "v1.2.3", true).natural_key(),
            Some("prefetch/gocache/example.com/m@v1.2.3/mod".to_owned())
        );
        assert_eq!(Job::Scrub { repository: None }.natural_key(), None);
        for kind in JobKind::ALL {
            assert_eq!(JobKind::from_name(kind.as_str()), Some(kind));
        }
        assert_eq!(JobKind::from_name("nope"), None);
    }
}
