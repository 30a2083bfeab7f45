//! Shared harness for the official test vectors in `../shared/vectors/`.
//!
//! The vectors are not copied into this repository: tests read them from the `shared/` directory
//! next to the checkout (or from `STRATA_SHARED_DIR`). Where it is absent, each test prints that it
//! skipped and passes, so a bare checkout still builds and tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

#[allow(unused_imports)] // Only the zip vectors read txtar archives.
pub use strata_testkit::txtar;

use std::path::PathBuf;

use serde_json::Value;

/// The `shared/` directory, if it can be found.
pub fn shared_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("STRATA_SHARED_DIR") {
        let dir = PathBuf::from(dir);
        return dir.is_dir().then_some(dir);
    }
    // crates/core -> workspace root -> its parent holds shared/.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let dir = root.join("../shared");
    dir.is_dir().then_some(dir)
}

/// The `shared/vectors` directory, or `None` after printing a skip notice for `test`.
pub fn vectors_dir(test: &str) -> Option<PathBuf> {
    match shared_dir() {
        Some(dir) => Some(dir.join("vectors")),
        None => {
            eprintln!("skipped {test}: ../shared/vectors not found (set STRATA_SHARED_DIR)");
            None
        }
    }
}

/// Loads `vectors/<name>`, or `None` (skip) when the shared directory is absent.
pub fn load(name: &str) -> Option<Value> {
    let dir = vectors_dir(name)?;
    let text = std::fs::read_to_string(dir.join(name))
        .unwrap_or_else(|e| panic!("reading vector file {name}: {e}"));
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {name}: {e}")))
}

/// A vector string field: a JSON string, or `{"hex": "…"}` for bytes that are not valid UTF-8.
pub fn bytes(v: &Value) -> Vec<u8> {
    match v {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Object(o) => hex::decode(o["hex"].as_str().expect("hex field")).expect("hex"),
        other => panic!("expected string or {{hex}}, got {other}"),
    }
}

/// A vector string field that must be valid UTF-8 for the check at hand; `None` when it is not
/// (such inputs are rejected by every Go check with "invalid UTF-8").
pub fn text(v: &Value) -> Option<String> {
    String::from_utf8(bytes(v)).ok()
}

pub fn str_field<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("field {key} missing in {v}"))
}
