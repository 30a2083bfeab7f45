//! Module-path parsing: no input panics, and every accepted path survives case-encoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata_core::path::{self, ModulePath, PathKind};
use strata_core::pattern;

fuzz_target!(|data: &[u8]| {
    for kind in [PathKind::Module, PathKind::Import, PathKind::File] {
        let _ = path::check_path_bytes(data, kind);
    }
    let Ok(s) = std::str::from_utf8(data) else { return };
    let _ = path::split_path_version(s);
    let _ = path::unescape_path(s);
    let _ = path::unescape_version(s);
    let _ = pattern::match_prefix_patterns(s, "example.com/a/b");
    let _ = pattern::glob_match(s, s);
    if let Ok(p) = ModulePath::new(s) {
        let back = ModulePath::from_escaped(&p.escaped()).expect("escaped path must unescape");
        assert_eq!(back, p);
    }
});
