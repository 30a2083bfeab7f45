//! Storage keys: [`ObjectKey`] names one object, [`KeyPrefix`] selects many for a listing.
//!
//! Both are validated once, on construction, so that no backend ever sees a key that could escape
//! its root (`..`, a leading `/`), collide with another spelling of itself (`a//b`, `a/./b`) or
//! exceed what S3 and common filesystems accept. [`ObjectKey::as_path`] is the single place a key
//! turns into the relative object path that every backend uses.

use std::fmt;

use crate::storage::StorageError;

/// Longest key accepted, in bytes: S3's own limit.
pub const MAX_KEY_LEN: usize = 1024;

/// Longest segment accepted, in bytes: `NAME_MAX` of common Linux filesystems.
pub const MAX_SEGMENT_LEN: usize = 255;

/// The name of one stored object: `/`-separated segments of a conservative ASCII alphabet.
///
/// Allowed bytes are ASCII letters and digits and `-._~!+@=,`: enough for case-encoded Go module
/// paths (`!`), versions (`+`, `-`, `.`) and `@`-marked segments such as `@v`, which no module
/// path element can contain. Segments are non-empty and neither `.` nor `..`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey(String);

impl ObjectKey {
    /// Validates `key` and wraps it.
    pub fn new(key: impl Into<String>) -> Result<Self, StorageError> {
        let key = key.into();
        match check_key(&key) {
            Ok(()) => Ok(Self(key)),
            Err(reason) => Err(StorageError::InvalidKey { key, reason }),
        }
    }

    /// The key as stored: also the relative path of the object, `/`-separated. Backends map keys
    /// to object names through this function only (S3 prepends its configured prefix, fs joins
    /// it under its object directory).
    pub fn as_path(&self) -> &str {
        &self.0
    }

    /// The key's segments, in order.
    pub fn segments(&self) -> impl Iterator<Item = &str> {
        self.0.split('/')
    }

    /// Whether this key falls under `prefix` (plain string-prefix semantics, as in S3).
    pub fn starts_with(&self, prefix: &KeyPrefix) -> bool {
        self.0.starts_with(prefix.as_str())
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ObjectKey({:?})", self.0)
    }
}

/// A string prefix of keys, for listings: empty (everything), a run of whole segments ending in
/// `/`, or whole segments followed by the start of one (`repo/example.com/mo`).
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    /// Validates `prefix` and wraps it. Every complete segment obeys the [`ObjectKey`] rules; the
    /// prefix may end with `/` or in the middle of a segment.
    pub fn new(prefix: impl Into<String>) -> Result<Self, StorageError> {
        let prefix = prefix.into();
        if prefix.is_empty() {
            return Ok(Self(prefix));
        }
        // Checking the prefix as a key (minus its trailing slash) applies every rule to the
        // complete segments; a trailing partial segment only has to use allowed bytes, which
        // the same check enforces, except that a partial `.` or `..` is a legitimate start of a
        // longer segment.
        let body = prefix.strip_suffix('/').unwrap_or(&prefix);
        let last_is_partial = !prefix.ends_with('/');
        let result = match check_key(body) {
            Err(reason) if last_is_partial && reason == DOT_SEGMENT => {
                let complete = body.rsplit_once('/').map_or("", |(head, _)| head);
                if complete.is_empty() {
                    Ok(())
                } else {
                    check_key(complete)
                }
            }
            other => other,
        };
        match result {
            Ok(()) => Ok(Self(prefix)),
            Err(reason) => Err(StorageError::InvalidKey {
                key: prefix,
                reason,
            }),
        }
    }

    /// The prefix as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The directory part: everything up to and including the last `/` (empty if none).
    pub fn directory(&self) -> &str {
        self.0.rfind('/').map_or("", |i| &self.0[..=i])
    }
}

impl From<&ObjectKey> for KeyPrefix {
    fn from(key: &ObjectKey) -> Self {
        Self(key.0.clone())
    }
}

impl fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyPrefix({:?})", self.0)
    }
}

const DOT_SEGMENT: &str = "segment is `.` or `..`";

fn check_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("key is empty");
    }
    if key.len() > MAX_KEY_LEN {
        return Err("key is longer than 1024 bytes");
    }
    if key.starts_with('/') {
        return Err("key starts with `/`");
    }
    for segment in key.split('/') {
        if segment.is_empty() {
            return Err("key has an empty segment (`//` or a trailing `/`)");
        }
        if segment.len() > MAX_SEGMENT_LEN {
            return Err("key has a segment longer than 255 bytes");
        }
        if segment == "." || segment == ".." {
            return Err(DOT_SEGMENT);
        }
        if !segment.bytes().all(is_key_byte) {
            return Err("key has a byte outside [A-Za-z0-9-._~!+@=,]");
        }
    }
    Ok(())
}

fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!+@=,".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_module_keys() {
        for key in [
            "a",
            "local/github.com/!azure/sdk/@v/v1.2.3+incompatible.zip",
            "remote/golang.org/x/mod/@v/v0.0.0-20240101000000-abcdefabcdef.info",
            "idx/example.com/m/@index.json",
            "a/.hidden/b..c",
        ] {
            assert!(ObjectKey::new(key).is_ok(), "{key}");
        }
    }

    #[test]
    fn rejects_unsafe_keys() {
        let long_segment = "s".repeat(256);
        let long_key = vec!["s"; 600].join("/");
        for key in [
            "",
            "/abs",
            "a/../b",
            "..",
            "a/./b",
            "a//b",
            "a/",
            "a\\b",
            "a b",
            "a/b%2f",
            "é",
            "a\0b",
            long_segment.as_str(),
            long_key.as_str(),
        ] {
            assert!(ObjectKey::new(key).is_err(), "{key:?}");
        }
    }

    #[test]
    fn prefixes() {
        for ok in ["", "a/", "a/b", "a/b/", "a/.", "a/..x", "."] {
            assert!(KeyPrefix::new(ok).is_ok(), "{ok:?}");
        }
        for bad in ["/", "/a", "a//", "../", "a/../b", "a/./", "a b"] {
            assert!(KeyPrefix::new(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            KeyPrefix::new("a/b/c")
                .map(|p| p.directory().to_owned())
                .ok(),
            Some("a/b/".into())
        );
        assert_eq!(
            KeyPrefix::new("abc").map(|p| p.directory().to_owned()).ok(),
            Some(String::new())
        );
    }
}
