//! Module versions: canonical form, the major-version rule that ties a version to its module path
//! (`module.Check`), and the [`Version`] / [`ModuleVersion`] types the services pass around.

use std::cmp::Ordering;
use std::fmt;

use thiserror::Error;

use crate::path::{self, PathError, quote};
use crate::{pseudo, semver};

/// `module.CanonicalVersion`: [`semver::canonical`] that keeps a `+incompatible` suffix, the only
/// build suffix that survives in proxies, zips and go.sum. `""` for an invalid version.
pub fn canonical_version(v: &str) -> String {
    let canonical = semver::canonical(v);
    if semver::build(v) == "+incompatible" {
        canonical + "+incompatible"
    } else {
        canonical
    }
}

/// A version that cannot be used where a canonical module version is required.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum VersionError {
    /// Not Go semver at all.
    #[error("version {} invalid: not a semantic version", quote(.0))]
    NotSemver(String),
    /// Valid semver, but not in the one spelling proxies and go.sum use.
    #[error("version {} is not canonical (should be {})", quote(.version), quote(.canonical))]
    NotCanonical {
        /// The version as given.
        version: String,
        /// Its canonical spelling.
        canonical: String,
    },
}

/// A module version that does not fit its module path (`module.Check` failures).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ModuleError {
    /// The path itself is malformed.
    #[error(transparent)]
    Path(#[from] PathError),
    /// The version is malformed or its major version contradicts the path's suffix.
    #[error("{path}@{version}: invalid version: {reason}")]
    InvalidVersion {
        /// The module path.
        path: String,
        /// The offending version.
        version: String,
        /// The rule it broke, e.g. `should be v0 or v1, not v2`.
        reason: String,
    },
    /// A version that must be canonical (zips, proxies, go.sum) is not; x/mod's wording.
    #[error("version {} is not canonical (should be {})", quote(.version), quote(.canonical))]
    NotCanonical {
        /// The version as given.
        version: String,
        /// Its canonical spelling (`""` when it is not semver at all).
        canonical: String,
    },
}

/// `module.CheckPathMajor`: whether `version`'s major version fits the path's major suffix
/// (`""`, `/vN` or gopkg.in's `.vN`). The error is the go command's reason text.
pub fn check_path_major(version: &str, path_major: &str) -> Result<(), String> {
    let path_major = match path_major.strip_suffix("-unstable") {
        Some(stripped) if path_major.starts_with(".v") => stripped,
        _ => path_major,
    };
    // Legacy pseudo-versions generated for gopkg.in/x.v1 paths.
    if version.starts_with("v0.0.0-") && path_major == ".v1" {
        return Ok(());
    }
    let major = semver::major(version);
    let want = if path_major.is_empty() {
        if major == "v0" || major == "v1" || semver::build(version) == "+incompatible" {
            return Ok(());
        }
        "v0 or v1"
    } else if path_major.starts_with('/') || path_major.starts_with('.') {
        if major == &path_major[1..] {
            return Ok(());
        }
        &path_major[1..]
    } else {
        path_major
    };
    Err(format!("should be {want}, not {major}"))
}

/// `module.MatchPathMajor`.
pub fn match_path_major(version: &str, path_major: &str) -> bool {
    check_path_major(version, path_major).is_ok()
}

/// `module.Check`: the path is a valid module path and the version is valid semver whose major
/// version fits the path. Does not require the canonical form (see [`Version`] for that).
pub fn check(path: &str, version: &str) -> Result<(), ModuleError> {
    path::check_path(path)?;
    let invalid = |reason: String| ModuleError::InvalidVersion {
        path: path.to_string(),
        version: version.to_string(),
        reason,
    };
    if !semver::is_valid(version) {
        return Err(invalid("not a semantic version".into()));
    }
    let (_, path_major) = path::split_path_version(path).unwrap_or((path, ""));
    check_path_major(version, path_major).map_err(invalid)
}

/// A canonical module version: valid Go semver, shorthands expanded, no build suffix other than
/// `+incompatible`. Ordered by semver precedence.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Version(String);

impl Version {
    /// Parses a version that must already be canonical (as in URLs, zips and go.sum).
    pub fn new(v: &str) -> Result<Self, VersionError> {
        if !semver::is_valid(v) {
            return Err(VersionError::NotSemver(v.to_string()));
        }
        let canonical = canonical_version(v);
        if canonical != v {
            return Err(VersionError::NotCanonical {
                version: v.to_string(),
                canonical,
            });
        }
        Ok(Self(canonical))
    }

    /// The version string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-encoded form used in proxy URLs and storage keys.
    pub fn escaped(&self) -> String {
        // A canonical version is always a valid file-path element without `!`.
        path::escape_version(&self.0).unwrap_or_else(|_| self.0.clone())
    }

    /// Whether this is a pre-release (has a `-…` part), pseudo-versions included.
    pub fn is_prerelease(&self) -> bool {
        !semver::prerelease(&self.0).is_empty()
    }

    /// Whether this is a pseudo-version naming an untagged commit.
    pub fn is_pseudo(&self) -> bool {
        pseudo::is_pseudo_version(&self.0)
    }

    /// Whether this is a `+incompatible` version.
    pub fn is_incompatible(&self) -> bool {
        self.0.ends_with("+incompatible")
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        semver::compare(&self.0, &other.0).then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Version {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for Version {
    type Err = VersionError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

/// A module path and version as plain strings (`module.Version`), before or without validation:
/// zip creation and checks take one of these and report what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModuleVersion {
    /// The module path.
    pub path: String,
    /// The version.
    pub version: String,
}

impl ModuleVersion {
    /// Pairs a path and a version.
    pub fn new(path: impl Into<String>, version: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            version: version.into(),
        }
    }

    /// Checks what module zips require: a canonical version that passes [`check`].
    pub fn check_canonical(&self) -> Result<(), ModuleError> {
        let canonical = canonical_version(&self.version);
        if canonical != self.version {
            return Err(ModuleError::NotCanonical {
                version: self.version.clone(),
                canonical,
            });
        }
        check(&self.path, &self.version)
    }
}

impl fmt::Display for ModuleVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.path, self.version)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_messages() {
        let e = check("example.com/m", "v2.0.0").unwrap_err();
        assert_eq!(
            e.to_string(),
            "example.com/m@v2.0.0: invalid version: should be v0 or v1, not v2"
        );
        assert!(check("example.com/m", "v2.0.0+incompatible").is_ok());
        assert!(check("gopkg.in/check.v1", "v0.0.0-20160102150405-abcdef123456").is_ok());
        assert!(check("gopkg.in/check.v1", "v0.0.0").is_err());
        assert!(check("example.com/m/v3", "v3.1.0-pre").is_ok());
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical_version("v1.2"), "v1.2.0");
        assert_eq!(
            canonical_version("v2.0.0+incompatible"),
            "v2.0.0+incompatible"
        );
        assert_eq!(canonical_version("v1.0.0+meta"), "v1.0.0");
        assert!(matches!(
            Version::new("v1.0.0+bad"),
            Err(VersionError::NotCanonical { .. })
        ));
        assert_eq!(
            Version::new("v1.0.0+bad").unwrap_err().to_string(),
            r#"version "v1.0.0+bad" is not canonical (should be "v1.0.0")"#
        );
        let mut vs: Vec<Version> = ["v1.10.0", "v1.2.0", "v1.2.0-rc.1"]
            .iter()
            .map(|v| Version::new(v).unwrap())
            .collect();
        vs.sort();
        assert_eq!(
            vs.iter().map(Version::as_str).collect::<Vec<_>>(),
            ["v1.2.0-rc.1", "v1.2.0", "v1.10.0"]
        );
    }
}
