//! Property tests: case-encoding round-trips, canonical versions are fixed points, and semver
//! ordering is a total order consistent with canonical forms.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cmp::Ordering;

use proptest::prelude::*;
use strata_core::path::{self, ModulePath};
use strata_core::{semver, version};

/// Module paths from an alphabet rich in the characters case-encoding cares about.
fn module_path() -> impl Strategy<Value = String> {
    let first = "[a-z0-9][a-z0-9-]{0,8}\\.[a-z]{2,4}";
    let elem = "[A-Za-z0-9_~][A-Za-z0-9._~-]{0,10}[A-Za-z0-9_~]";
    (first, prop::collection::vec(elem, 0..4), prop::option::of(2u32..20)).prop_map(
        |(first, elems, major)| {
            let mut p = first;
            for e in elems {
                p.push('/');
                p.push_str(&e);
            }
            if let Some(m) = major {
                p.push_str(&format!("/v{m}"));
            }
            p
        },
    )
}

fn version_string() -> impl Strategy<Value = String> {
    (0u32..30, 0u32..30, 0u32..30, prop::option::of("[0-9A-Za-z-]{1,6}(\\.[0-9A-Za-z-]{1,6}){0,2}"))
        .prop_map(|(a, b, c, pre)| match pre {
            Some(p) => format!("v{a}.{b}.{c}-{p}"),
            None => format!("v{a}.{b}.{c}"),
        })
}

proptest! {
    #[test]
    fn escape_round_trips(p in module_path()) {
        if path::check_path(&p).is_ok() {
            let escaped = path::escape_path(&p).unwrap();
            prop_assert!(!escaped.chars().any(|c| c.is_ascii_uppercase()));
            prop_assert_eq!(path::unescape_path(&escaped).unwrap(), p.clone());
            let m = ModulePath::new(&p).unwrap();
            prop_assert_eq!(ModulePath::from_escaped(&m.escaped()).unwrap(), m);
        }
    }

    #[test]
    fn escaped_versions_round_trip(v in "[A-Za-z0-9.+-]{1,20}") {
        if let Ok(e) = path::escape_version(&v) {
            prop_assert_eq!(path::unescape_version(&e).unwrap(), v);
        }
    }

    #[test]
    fn canonical_is_a_fixed_point(v in version_string(), build in prop::option::of("[0-9a-z]{1,5}")) {
        let v = match build { Some(b) => format!("{v}+{b}"), None => v };
        let c = version::canonical_version(&v);
        if semver::is_valid(&v) {
            prop_assert_eq!(version::canonical_version(&c), c.clone());
            prop_assert_eq!(semver::compare(&v, &c), Ordering::Equal);
            prop_assert!(version::Version::new(&c).is_ok());
        }
    }

    #[test]
    fn compare_is_antisymmetric_and_transitive(a in version_string(), b in version_string(), c in version_string()) {
        prop_assert_eq!(semver::compare(&a, &b), semver::compare(&b, &a).reverse());
        if semver::compare(&a, &b) != Ordering::Greater && semver::compare(&b, &c) != Ordering::Greater {
            prop_assert_ne!(semver::compare(&a, &c), Ordering::Greater);
        }
    }
}
