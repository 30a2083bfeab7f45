//! Slash-separated name handling with Go's semantics: `path.Clean`, `path.Split`, case folding
//! and the file/directory collision check shared by every zip rule set.
//!
//! Names are byte strings here because Go strings are: a zip entry or a file on disk may have a
//! name that is not UTF-8, and the rules that run before `CheckFilePath` (cleanliness, vendoring,
//! nested modules) must still see it.

use std::borrow::Cow;
use std::collections::HashMap;

use super::error::FileReason;

/// Go's `path.Clean`: the shortest equivalent slash path (`""` becomes `"."`).
pub(crate) fn clean(path: &[u8]) -> Cow<'_, [u8]> {
    if path.is_empty() {
        return Cow::Borrowed(b".");
    }
    let rooted = path[0] == b'/';
    let n = path.len();
    let mut out: Vec<u8> = Vec::with_capacity(n);
    let (mut r, mut dotdot) = (0, 0);
    if rooted {
        out.push(b'/');
        r = 1;
        dotdot = 1;
    }
    while r < n {
        let at = |i: usize| path.get(i).copied();
        if path[r] == b'/' || (path[r] == b'.' && matches!(at(r + 1), None | Some(b'/'))) {
            // An empty or `.` element.
            r += 1;
        } else if path[r] == b'.'
            && at(r + 1) == Some(b'.')
            && matches!(at(r + 2), None | Some(b'/'))
        {
            r += 2;
            if out.len() > dotdot {
                // Back up to (and drop) the last slash after the `..` floor.
                let mut w = out.len() - 1;
                while w > dotdot && out[w] != b'/' {
                    w -= 1;
                }
                out.truncate(w);
            } else if !rooted {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(b"..");
                dotdot = out.len();
            }
        } else {
            if (rooted && out.len() != 1) || (!rooted && !out.is_empty()) {
                out.push(b'/');
            }
            while r < n && path[r] != b'/' {
                out.push(path[r]);
                r += 1;
            }
        }
    }
    if out.is_empty() {
        return Cow::Borrowed(b".");
    }
    if out == path {
        Cow::Borrowed(path)
    } else {
        Cow::Owned(out)
    }
}

/// Whether `path.Clean(p) == p`.
pub(crate) fn is_clean(path: &[u8]) -> bool {
    matches!(clean(path), Cow::Borrowed(c) if c == path)
}

/// Go's `path.Split`: the directory part keeps its trailing slash (`"a/b"` → `("a/", "b")`).
pub(crate) fn split(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(i) => path.split_at(i + 1),
        None => (&[], path),
    }
}

/// The last element of a clean path.
pub(crate) fn base(path: &[u8]) -> &[u8] {
    split(path).1
}

/// Whether `a` and `b` are equal under ASCII case folding (enough for the name `go.mod`).
pub(crate) fn eq_fold_ascii(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// A key with `fold_key(s) == fold_key(t)` exactly when Go's `strings.EqualFold(s, t)`.
///
/// Go folds each rune to the smallest member of its `unicode.SimpleFold` orbit. The key here is the
/// simple lower case of the simple upper case of each rune, which induces the same equivalence
/// classes on every rune Go 1.26 (Unicode 15) counts as a letter plus all ASCII — checked
/// exhaustively against Go when this was written. The one rune that needs help is dotless `ı`:
/// Rust upper-cases it to `I`, but Go keeps it in an orbit of its own.
pub(crate) fn fold_key(s: &str) -> Cow<'_, str> {
    if s.bytes().all(|b| b.is_ascii() && !b.is_ascii_uppercase()) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(s.chars().map(fold_char).collect())
}

fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    if c == '\u{131}' {
        return c;
    }
    let upper = single(c.to_uppercase()).unwrap_or(c);
    single(upper.to_lowercase()).unwrap_or(upper)
}

/// The only char of a case mapping, or `None` when it expands to several (`ß` → `SS`).
fn single(mut chars: impl Iterator<Item = char>) -> Option<char> {
    let first = chars.next()?;
    chars.next().is_none().then_some(first)
}

/// Finds case-insensitive name collisions and names used both as a file and as a directory
/// (Go's `collisionChecker`): every parent directory of a checked name is registered too.
#[derive(Debug, Default)]
pub(crate) struct CollisionChecker {
    seen: HashMap<String, (String, bool)>,
}

impl CollisionChecker {
    /// Registers `path` (a file, or a directory when `is_dir`) and its parent directories.
    pub(crate) fn check(&mut self, path: &str, is_dir: bool) -> Result<(), FileReason> {
        let mut path = path;
        let mut is_dir = is_dir;
        loop {
            let key = fold_key(path);
            match self.seen.get(key.as_ref()) {
                Some((other, other_is_dir)) => {
                    if other != path {
                        return Err(FileReason::CaseCollision {
                            first: other.clone(),
                            second: path.to_string(),
                        });
                    }
                    if is_dir != *other_is_dir {
                        return Err(FileReason::FileAndDirectory {
                            path: path.to_string(),
                        });
                    }
                    if !is_dir {
                        return Err(FileReason::DuplicateFile {
                            path: path.to_string(),
                        });
                    }
                }
                None => {
                    self.seen
                        .insert(key.into_owned(), (path.to_string(), is_dir));
                }
            }
            // The parent of a clean relative path (Go's `path.Dir`), until the root.
            match path.rfind('/') {
                Some(i) => {
                    path = &path[..i];
                    is_dir = true;
                }
                None => return Ok(()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_go() {
        for (input, want) in [
            ("", "."),
            ("a/../b", "b"),
            ("not/../clean", "clean"),
            ("/a/b/..", "/a"),
            ("../..", "../.."),
            ("a//b/./c/", "a/b/c"),
            ("/..", "/"),
            ("./", "."),
            ("a/b", "a/b"),
        ] {
            assert_eq!(clean(input.as_bytes()).as_ref(), want.as_bytes(), "{input}");
        }
        assert!(is_clean(b"a/b.go"));
        assert!(!is_clean(b"a/./b.go"));
        assert!(!is_clean(b""));
    }

    #[test]
    fn split_and_base() {
        assert_eq!(split(b"a/b/c.go"), (&b"a/b/"[..], &b"c.go"[..]));
        assert_eq!(split(b"c.go"), (&b""[..], &b"c.go"[..]));
        assert_eq!(base(b"a/go.mod"), b"go.mod");
    }

    #[test]
    fn fold_classes() {
        assert_eq!(fold_key("M.GO"), fold_key("m.go"));
        assert_eq!(fold_key("\u{212a}"), fold_key("k")); // Kelvin sign
        assert_eq!(fold_key("\u{b5}"), fold_key("\u{3bc}")); // micro sign, mu
        assert_eq!(fold_key("\u{3c2}"), fold_key("\u{3a3}")); // final sigma
        assert_ne!(fold_key("\u{131}"), fold_key("i")); // dotless i is its own orbit
        assert_ne!(fold_key("\u{130}"), fold_key("i"));
        assert_eq!(fold_key("\u{1f80}"), fold_key("\u{1f88}"));
    }

    #[test]
    fn collisions() {
        let mut c = CollisionChecker::default();
        assert!(c.check("a/b.go", false).is_ok());
        assert!(c.check("a/c.go", false).is_ok());
        assert!(c.check("a", true).is_ok());
        assert_eq!(
            c.check("A/d.go", false).map_err(|e| e.to_string()),
            Err(r#"case-insensitive file name collision: "a" and "A""#.to_string())
        );
        assert_eq!(
            c.check("a/b.go/x", false).map_err(|e| e.to_string()),
            Err(r#"entry "a/b.go" is both a file and a directory"#.to_string())
        );
        assert_eq!(
            c.check("a/b.go", false).map_err(|e| e.to_string()),
            Err(r#"multiple entries for file "a/b.go""#.to_string())
        );
    }
}
