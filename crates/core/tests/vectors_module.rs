//! golang.org/x/mod's `module` and `semver` test tables (from `../shared/vectors`), run against
//! `strata_core::{path, version, semver, pseudo, pattern}`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::cmp::Ordering;

use common::{bytes, load, str_field, text};
use serde_json::Value;
use strata_core::path::{self, PathKind};
use strata_core::pseudo::{self, Timestamp};
use strata_core::{pattern, semver, version};

fn cases(v: &Value, key: &str) -> Vec<Value> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{key} is not a list"))
        .clone()
}

#[test]
fn check_path_table() {
    let Some(v) = load("module_check_path.json") else {
        return;
    };
    let rows = cases(&v, "cases");
    assert_eq!(rows.len(), 105);
    for row in rows {
        let raw = bytes(&row["path"]);
        let want = |k: &str| row[k].as_bool().unwrap();
        for (kind, key) in [
            (PathKind::Module, "module_ok"),
            (PathKind::Import, "import_ok"),
            (PathKind::File, "file_ok"),
        ] {
            let got = path::check_path_bytes(&raw, kind);
            assert_eq!(got.is_ok(), want(key), "{kind} path {raw:?}: {got:?}");
        }
        let Some(p) = text(&row["path"]) else {
            continue;
        };
        if let Some((prefix, major)) = path::split_path_version(&p) {
            assert_eq!(format!("{prefix}{major}"), p);
        }
        if !want("module_ok") {
            assert!(path::escape_path(&p).is_err(), "escape {p:?}");
            assert!(path::unescape_path(&p).is_err(), "unescape {p:?}");
        }
    }
}

#[test]
fn split_path_version_table() {
    let Some(v) = load("module_split_path_version.json") else {
        return;
    };
    for row in cases(&v, "cases") {
        let (prefix, major) = (
            str_field(&row, "path_prefix"),
            str_field(&row, "path_major"),
        );
        let full = format!("{prefix}{major}");
        assert_eq!(
            path::split_path_version(&full),
            Some((prefix, major)),
            "{full}"
        );
    }
}

#[test]
fn escape_table() {
    let Some(v) = load("module_escape_path.json") else {
        return;
    };
    for row in cases(&v, "escape") {
        let (p, e) = (str_field(&row, "path"), str_field(&row, "escaped"));
        assert_eq!(path::escape_path(p).unwrap(), e);
        assert_eq!(path::unescape_path(e).unwrap(), p);
    }
    for bad in cases(&v, "bad_unescape") {
        let bad = bad.as_str().unwrap();
        assert!(
            path::unescape_path(bad).is_err(),
            "{bad:?} must not unescape"
        );
    }
}

#[test]
fn check_table() {
    let Some(v) = load("module_check.json") else {
        return;
    };
    for row in cases(&v, "cases") {
        let (p, ver) = (str_field(&row, "path"), str_field(&row, "version"));
        let got = version::check(p, ver);
        assert_eq!(
            got.is_ok(),
            row["ok"].as_bool().unwrap(),
            "Check({p}, {ver}): {got:?}"
        );
    }
}

#[test]
fn match_path_major_table() {
    let Some(v) = load("module_match_path_major.json") else {
        return;
    };
    for row in cases(&v, "cases") {
        let (ver, major) = (str_field(&row, "version"), str_field(&row, "path_major"));
        assert_eq!(
            version::match_path_major(ver, major),
            row["want"].as_bool().unwrap(),
            "{ver} {major}"
        );
    }
}

#[test]
fn prefix_patterns_table() {
    let Some(v) = load("module_match_prefix_patterns.json") else {
        return;
    };
    for row in cases(&v, "cases") {
        let (globs, target) = (str_field(&row, "globs"), str_field(&row, "target"));
        let want = row["want"].as_bool().unwrap();
        assert_eq!(
            pattern::match_prefix_patterns(globs, target),
            want,
            "{globs:?} {target:?}"
        );
    }
    let client = &v["gonosumdb_client"];
    let globs = str_field(client, "globs");
    for p in cases(client, "skipped") {
        assert!(
            pattern::match_prefix_patterns(globs, p.as_str().unwrap()),
            "{p}"
        );
    }
    for p in cases(client, "not_skipped") {
        assert!(
            !pattern::match_prefix_patterns(globs, p.as_str().unwrap()),
            "{p}"
        );
    }
}

#[test]
fn semver_table() {
    let Some(v) = load("semver.json") else { return };
    let rows = cases(&v, "cases");
    for row in &rows {
        let input = str_field(row, "in");
        assert_eq!(
            semver::is_valid(input),
            row["is_valid"].as_bool().unwrap(),
            "{input}"
        );
        assert_eq!(
            semver::canonical(input),
            str_field(row, "canonical"),
            "{input}"
        );
        assert_eq!(semver::major(input), str_field(row, "major"), "{input}");
        assert_eq!(
            semver::major_minor(input),
            str_field(row, "major_minor"),
            "{input}"
        );
        assert_eq!(
            semver::prerelease(input),
            str_field(row, "prerelease"),
            "{input}"
        );
        assert_eq!(semver::build(input), str_field(row, "build"), "{input}");
    }
    for (i, a) in rows.iter().enumerate() {
        for (j, b) in rows.iter().enumerate() {
            let (ai, bi) = (str_field(a, "in"), str_field(b, "in"));
            let want = if str_field(a, "canonical") == str_field(b, "canonical") {
                Ordering::Equal
            } else {
                i.cmp(&j)
            };
            assert_eq!(semver::compare(ai, bi), want, "Compare({ai}, {bi})");
            let want_max = if i < j {
                str_field(b, "canonical")
            } else {
                str_field(a, "canonical")
            };
            assert_eq!(semver::max(ai, bi), want_max, "Max({ai}, {bi})");
        }
    }
    let mut all: Vec<&str> = rows.iter().map(|r| str_field(r, "in")).collect();
    semver::sort(&mut all);
    let golden: Vec<&str> = v["sort_golden"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert_eq!(all, golden);
}

#[test]
fn pseudo_version_table() {
    let Some(v) = load("module_pseudo_version.json") else {
        return;
    };
    assert_eq!(str_field(&v, "time"), "2006-01-02T15:04:05Z");
    let time = Timestamp::parse_compact("20060102150405").unwrap();
    let rev = str_field(&v, "rev");
    for row in cases(&v, "pseudo_tests") {
        let (major, older, want) = (
            str_field(&row, "major"),
            str_field(&row, "older"),
            str_field(&row, "version"),
        );
        assert_eq!(pseudo::pseudo_version(major, older, time, rev), want);
        assert!(pseudo::is_pseudo_version(want), "{want}");
        assert!(!pseudo::is_pseudo_version(older), "{older}");
        assert_eq!(pseudo::pseudo_version_time(want).unwrap(), time);
        assert!(pseudo::pseudo_version_time(older).is_err());
        assert_eq!(pseudo::pseudo_version_rev(want).unwrap(), rev);
        assert!(pseudo::pseudo_version_rev(older).is_err());
        assert_eq!(
            pseudo::pseudo_version_base(want).unwrap(),
            older,
            "base of {want}"
        );
    }
    for bad in cases(&v, "invalid_base") {
        assert!(
            pseudo::pseudo_version_base(bad.as_str().unwrap()).is_err(),
            "{bad}"
        );
    }
    for bad in cases(&v, "invalid_time") {
        assert!(
            pseudo::pseudo_version_time(bad.as_str().unwrap()).is_err(),
            "{bad}"
        );
    }
    for row in cases(&v, "inc_decimal") {
        assert_eq!(
            pseudo::inc_decimal(str_field(&row, "in")),
            str_field(&row, "want")
        );
    }
    for row in cases(&v, "dec_decimal") {
        assert_eq!(
            pseudo::dec_decimal(str_field(&row, "in")),
            str_field(&row, "want")
        );
    }
}
