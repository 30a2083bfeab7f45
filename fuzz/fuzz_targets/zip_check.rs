//! Zip validation: arbitrary bytes never panic the checker, and a zip it accepts hashes the same
//! way through `hash_zip` as through the single-pass check.
#![no_main]

use std::io::Cursor;

use libfuzzer_sys::fuzz_target;
use strata_core::dirhash;
use strata_core::version::ModuleVersion;
use strata_core::zip;

fuzz_target!(|data: &[u8]| {
    let module = ModuleVersion::new("example.com/m", "v1.0.0");
    let _ = zip::infer_module_version(Cursor::new(data));
    let _ = zip::check_zip_report(&module, Cursor::new(data));
    if let Ok(summary) = zip::check_zip(&module, Cursor::new(data)) {
        let hash = dirhash::hash_zip(Cursor::new(data)).expect("a valid zip must hash");
        assert_eq!(hash, summary.hash);
    }
});
