//! Choosing `@latest` from a version list, with the go command's rules (spec §3.4, §2.3, §2.5).
//!
//! 1. Only valid, tagged (non-pseudo) versions that are not retracted take part.
//! 2. `+incompatible` versions are ignored once the highest compatible version below them has a
//!    real go.mod (`modload.filterVersions`).
//! 3. The highest release wins; with no release, the highest pre-release.
//! 4. With no tagged version at all, a proxy answers with the most recent pseudo-version.
//!
//! Retractions come from one go.mod only: that of the latest version *ignoring* retractions
//! ([`latest_ignoring_retractions`]); the caller reads it and passes the predicate in.

use crate::{pseudo, semver};

/// What the selection needs to know about individual versions beyond their names.
pub trait VersionFacts {
    /// Whether `version` is retracted by the module's latest go.mod.
    fn is_retracted(&self, version: &str) -> bool;
    /// Whether `version` has a go.mod of its own (not the synthesized `module path` line).
    /// Consulted only for the `+incompatible` rule.
    fn has_go_mod(&self, version: &str) -> bool;
}

/// Facts for a module with no retractions whose versions all have a go.mod.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainFacts;

impl VersionFacts for PlainFacts {
    fn is_retracted(&self, _: &str) -> bool {
        false
    }
    fn has_go_mod(&self, _: &str) -> bool {
        true
    }
}

/// The `@latest` version of a module whose known versions are `versions` (any order, any
/// validity; duplicates allowed), or `None` when there is none at all.
pub fn select_latest<S: AsRef<str>>(versions: &[S], facts: &impl VersionFacts) -> Option<String> {
    let mut tagged: Vec<&str> = versions
        .iter()
        .map(AsRef::as_ref)
        .filter(|v| semver::is_valid(v) && !pseudo::is_pseudo_version(v))
        .filter(|v| !facts.is_retracted(v))
        .collect();
    semver::sort(&mut tagged);
    let (releases, prereleases) = filter_incompatible(&tagged, facts);
    if let Some(v) = releases.last().or(prereleases.last()) {
        return Some((*v).to_string());
    }
    latest_pseudo(versions, facts)
}

/// The latest version when retractions are ignored: the version whose go.mod holds the
/// retractions that apply to the module.
pub fn latest_ignoring_retractions<S: AsRef<str>>(
    versions: &[S],
    facts: &impl VersionFacts,
) -> Option<String> {
    struct IgnoreRetractions<'a, F>(&'a F);
    impl<F: VersionFacts> VersionFacts for IgnoreRetractions<'_, F> {
        fn is_retracted(&self, _: &str) -> bool {
            false
        }
        fn has_go_mod(&self, version: &str) -> bool {
            self.0.has_go_mod(version)
        }
    }
    select_latest(versions, &IgnoreRetractions(facts))
}

/// Splits sorted tagged versions into releases and pre-releases, dropping `+incompatible`
/// versions above a compatible version that has a go.mod.
fn filter_incompatible<'a>(
    sorted: &[&'a str],
    facts: &impl VersionFacts,
) -> (Vec<&'a str>, Vec<&'a str>) {
    let (mut releases, mut prereleases) = (Vec::new(), Vec::new());
    let mut need_incompatible = false;
    let mut last_compatible: Option<&str> = None;
    for &v in sorted {
        if !need_incompatible {
            if !v.ends_with("+incompatible") {
                last_compatible = Some(v);
            } else if let Some(compatible) = last_compatible {
                if facts.has_go_mod(compatible) {
                    // Everything from here on is +incompatible and the author supports modules.
                    break;
                }
                need_incompatible = true;
            }
        }
        if semver::prerelease(v).is_empty() {
            releases.push(v);
        } else {
            prereleases.push(v);
        }
    }
    (releases, prereleases)
}

/// The most recent non-retracted pseudo-version by its timestamp (the first wins on ties).
fn latest_pseudo<S: AsRef<str>>(versions: &[S], facts: &impl VersionFacts) -> Option<String> {
    let mut best: Option<(pseudo::Timestamp, &str)> = None;
    for v in versions.iter().map(AsRef::as_ref) {
        if facts.is_retracted(v) {
            continue;
        }
        if let Ok(t) = pseudo::pseudo_version_time(v)
            && best.is_none_or(|(bt, _)| t > bt)
        {
            best = Some((t, v));
        }
    }
    best.map(|(_, v)| v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Facts {
        retracted: &'static [&'static str],
        without_go_mod: &'static [&'static str],
    }

    impl VersionFacts for Facts {
        fn is_retracted(&self, v: &str) -> bool {
            self.retracted.contains(&v)
        }
        fn has_go_mod(&self, v: &str) -> bool {
            !self.without_go_mod.contains(&v)
        }
    }

    #[test]
    fn release_beats_prerelease() {
        let vs = ["v1.2.2", "v1.2.3-pre", "v1.0.0", "bad"];
        assert_eq!(select_latest(&vs, &PlainFacts).as_deref(), Some("v1.2.2"));
        assert_eq!(
            select_latest(&["v1.2.3-pre", "v1.2.3-alpha"], &PlainFacts).as_deref(),
            Some("v1.2.3-pre")
        );
    }

    #[test]
    fn retracted_versions_are_skipped() {
        let facts = Facts {
            retracted: &["v1.3.0"],
            without_go_mod: &[],
        };
        let vs = ["v1.2.0", "v1.3.0"];
        assert_eq!(select_latest(&vs, &facts).as_deref(), Some("v1.2.0"));
        assert_eq!(
            latest_ignoring_retractions(&vs, &facts).as_deref(),
            Some("v1.3.0")
        );
    }

    #[test]
    fn incompatible_rule() {
        let vs = ["v1.5.0", "v2.0.0+incompatible", "v3.1.0+incompatible"];
        assert_eq!(select_latest(&vs, &PlainFacts).as_deref(), Some("v1.5.0"));
        let legacy = Facts {
            retracted: &[],
            without_go_mod: &["v1.5.0"],
        };
        assert_eq!(
            select_latest(&vs, &legacy).as_deref(),
            Some("v3.1.0+incompatible")
        );
        let only = ["v2.0.0+incompatible"];
        assert_eq!(
            select_latest(&only, &PlainFacts).as_deref(),
            Some("v2.0.0+incompatible")
        );
        // A compatible pre-release with a go.mod beats an incompatible release.
        let pre = ["v1.0.0-rc.1", "v2.0.0+incompatible"];
        assert_eq!(
            select_latest(&pre, &PlainFacts).as_deref(),
            Some("v1.0.0-rc.1")
        );
    }

    #[test]
    fn pseudo_versions_only_when_nothing_is_tagged() {
        let vs = [
            "v0.0.0-20200101000000-aaaaaaaaaaaa",
            "v0.0.0-20210101000000-bbbbbbbbbbbb",
        ];
        assert_eq!(select_latest(&vs, &PlainFacts).as_deref(), Some(vs[1]));
        let mixed = ["v0.1.0", vs[1]];
        assert_eq!(
            select_latest(&mixed, &PlainFacts).as_deref(),
            Some("v0.1.0")
        );
        assert_eq!(select_latest::<&str>(&[], &PlainFacts), None);
    }
}
