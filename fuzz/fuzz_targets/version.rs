//! Version parsing: no input panics; canonical forms are fixed points and compare consistently.
#![no_main]

use std::cmp::Ordering;

use libfuzzer_sys::fuzz_target;
use strata_core::{pseudo, semver, version};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let (a, b) = s.split_once('\n').unwrap_or((s, "v1.0.0"));
    let canonical = semver::canonical(a);
    if !canonical.is_empty() {
        assert_eq!(semver::canonical(&canonical), canonical);
        assert_eq!(semver::compare(a, &canonical), Ordering::Equal);
    }
    assert_eq!(semver::compare(a, b), semver::compare(b, a).reverse());
    let _ = version::Version::new(a);
    let _ = version::check("example.com/m", a);
    let _ = pseudo::pseudo_version_base(a);
    let _ = pseudo::pseudo_version_time(a);
    let _ = pseudo::pseudo_version_rev(a);
    let _ = strata_core::path::escape_version(a);
});
