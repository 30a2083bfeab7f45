//! Module, import and file paths: validity checks, major-version suffixes and case-encoding.
//!
//! The rules are those of `golang.org/x/mod/module` (spec §1): one checker with per-kind character
//! sets, the extra first-element rules for module paths, `SplitPathVersion`, and the `!x`
//! escaping that makes module paths safe on case-insensitive file systems and in URLs.
//! [`ModulePath`] is the validated newtype that the rest of strata passes around.

use std::fmt;

use thiserror::Error;
use unicode_general_category::{GeneralCategory, get_general_category};

/// Which kind of path a check is for; the kinds differ only in the characters they allow and in
/// a few element rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PathKind {
    /// A module path (`github.com/x/y`): the strictest kind.
    Module,
    /// An import path: the module set plus `+`.
    Import,
    /// A file path inside a module zip: the most permissive kind.
    File,
}

impl fmt::Display for PathKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PathKind::Module => "module",
            PathKind::Import => "import",
            PathKind::File => "file",
        })
    }
}

/// A path that broke one of the path rules; `reason` is the go command's wording of the rule.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("malformed {kind} path {quoted}: {reason}")]
pub struct PathError {
    /// Which checker rejected the path.
    pub kind: PathKind,
    /// The offending path (invalid UTF-8 replaced by U+FFFD).
    pub path: String,
    /// The rule it broke, e.g. `invalid char '*'` or `missing dot in first path element`.
    pub reason: String,
    /// The path quoted as Go's `%q` would, raw bytes and all.
    quoted: String,
}

/// A string that could not be case-encoded or decoded; messages are x/mod's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EscapeError {
    /// `escape_path` of a path that is not a valid module path.
    #[error(transparent)]
    Path(#[from] PathError),
    /// `escape_version` of a version that is not a single file-path element or contains `!`.
    #[error("version {} invalid: disallowed version string", quote(.0))]
    DisallowedVersion(String),
    /// A character the escaping cannot represent (non-ASCII, `!`).
    #[error("internal error: inconsistency in EscapePath")]
    Unrepresentable,
    /// `unescape_path` of a string with a bare upper-case letter, a dangling or doubled `!`, or
    /// non-ASCII bytes, or whose decoding is not a valid module path.
    #[error("invalid escaped module path {}{}", quote(.escaped), suffix(.source.as_ref()))]
    BadPath {
        /// The escaped string.
        escaped: String,
        /// Why the decoded path is invalid, when it decoded at all.
        source: Option<PathError>,
    },
    /// `unescape_version` of a malformed escaped string, or one whose decoding is not a valid
    /// file-path element.
    #[error("invalid escaped version {}{}", quote(.version), reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default())]
    BadVersion {
        /// The escaped string, or the decoded version when only the element check failed.
        version: String,
        /// Why the decoded version is invalid, when it decoded at all.
        reason: Option<String>,
    },
}

fn suffix(source: Option<&PathError>) -> String {
    source.map(|e| format!(": {e}")).unwrap_or_default()
}

/// Quotes a string as Go's `%q` (`strconv.Quote`) does.
pub(crate) fn quote(s: &str) -> String {
    quote_bytes(s.as_bytes())
}

/// Quotes bytes as Go's `%q` does: invalid UTF-8 bytes as `\xNN`, printable runes as they are.
pub(crate) fn quote_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 2);
    out.push('"');
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                _ => push_escaped_rune(&mut out, c),
            }
        }
        for byte in chunk.invalid() {
            out.push_str(&format!("\\x{byte:02x}"));
        }
    }
    out.push('"');
    out
}

/// Appends `c` as strconv would inside a quoted literal (printable runes verbatim).
fn push_escaped_rune(out: &mut String, c: char) {
    match c {
        '\x07' => out.push_str("\\a"),
        '\x08' => out.push_str("\\b"),
        '\x0c' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\x0b' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if is_go_printable(c) => out.push(c),
        c if (c as u32) <= 0xffff => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// Approximates `strconv.IsPrint`: letters, marks, numbers, punctuation, symbols and U+0020.
fn is_go_printable(c: char) -> bool {
    use GeneralCategory as G;
    c == ' '
        || !matches!(
            get_general_category(c),
            G::Control
                | G::Format
                | G::Surrogate
                | G::PrivateUse
                | G::Unassigned
                | G::SpaceSeparator
                | G::LineSeparator
                | G::ParagraphSeparator
        )
}

fn err(kind: PathKind, path: &str, reason: impl Into<String>) -> PathError {
    PathError {
        kind,
        path: path.to_string(),
        reason: reason.into(),
        quoted: quote(path),
    }
}

/// Checks a module path (`module.CheckPath`).
pub fn check_path(path: &str) -> Result<(), PathError> {
    check_any(path, PathKind::Module)?;
    let first = path.split('/').next().unwrap_or("");
    let bad = |reason: String| Err(err(PathKind::Module, path, reason));
    if first.is_empty() {
        return bad("leading slash".into());
    }
    if !first.contains('.') {
        return bad("missing dot in first path element".into());
    }
    if path.starts_with('-') {
        return bad("leading dash in first path element".into());
    }
    if let Some(c) = first
        .chars()
        .find(|&c| !(c == '-' || c == '.' || c.is_ascii_digit() || c.is_ascii_lowercase()))
    {
        return bad(format!(
            "invalid char {} in first path element",
            quote_char(c)
        ));
    }
    if split_path_version(path).is_none() {
        return bad("invalid version".into());
    }
    Ok(())
}

/// Checks an import path (`module.CheckImportPath`).
pub fn check_import_path(path: &str) -> Result<(), PathError> {
    check_any(path, PathKind::Import)
}

/// Checks a file path inside a module (`module.CheckFilePath`).
pub fn check_file_path(path: &str) -> Result<(), PathError> {
    check_any(path, PathKind::File)
}

/// Checks raw bytes as a path of `kind`: invalid UTF-8 is the first rule.
pub fn check_path_bytes(path: &[u8], kind: PathKind) -> Result<&str, PathError> {
    let s = std::str::from_utf8(path).map_err(|_| PathError {
        kind,
        path: String::from_utf8_lossy(path).into_owned(),
        reason: "invalid UTF-8".into(),
        quoted: quote_bytes(path),
    })?;
    check_any(s, kind)?;
    if kind == PathKind::Module {
        check_path(s)?;
    }
    Ok(s)
}

fn check_any(path: &str, kind: PathKind) -> Result<(), PathError> {
    let bad = |reason: String| Err(err(kind, path, reason));
    if path.is_empty() {
        return bad("empty string".into());
    }
    if path.starts_with('-') && kind != PathKind::File {
        return bad("leading dash".into());
    }
    if path.contains("//") {
        return bad("double slash".into());
    }
    if path.ends_with('/') {
        return bad("trailing slash".into());
    }
    for elem in path.split('/') {
        if let Err(reason) = check_elem(elem, kind) {
            return bad(reason);
        }
    }
    Ok(())
}

fn check_elem(elem: &str, kind: PathKind) -> Result<(), String> {
    if elem.is_empty() {
        return Err("empty path element".into());
    }
    if elem.bytes().all(|b| b == b'.') {
        return Err(format!("invalid path element {}", quote(elem)));
    }
    if elem.starts_with('.') && kind == PathKind::Module {
        return Err("leading dot in path element".into());
    }
    if elem.ends_with('.') {
        return Err("trailing dot in path element".into());
    }
    if let Some(c) = elem.chars().find(|&c| !allowed_char(c, kind)) {
        return Err(format!("invalid char {}", quote_char(c)));
    }
    // Windows disallows a set of device names, with or without an extension.
    let short = elem.split('.').next().unwrap_or(elem);
    if is_windows_reserved(short) {
        return Err(format!(
            "{} disallowed as path element component on Windows",
            quote(short)
        ));
    }
    if kind != PathKind::File {
        // Windows 8.3 short names look like `PROGRA~1`: refuse `~` followed only by digits.
        if let Some(tilde) = short.rfind('~') {
            let tail = &short[tilde + 1..];
            if !tail.is_empty() && tail.bytes().all(|b| b.is_ascii_digit()) {
                return Err("trailing tilde and digits in path element".into());
            }
        }
    }
    Ok(())
}

fn is_windows_reserved(short: &str) -> bool {
    const NAMES: [&str; 22] = [
        "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
        "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
    ];
    NAMES.iter().any(|n| n.eq_ignore_ascii_case(short))
}

fn allowed_char(c: char, kind: PathKind) -> bool {
    if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~') {
        return true;
    }
    match kind {
        PathKind::Module => false,
        PathKind::Import => c == '+',
        PathKind::File => {
            if c.is_ascii() {
                " !#$%&()+,=@[]^{}".contains(c)
            } else {
                is_go_letter(c)
            }
        }
    }
}

/// Go's `unicode.IsLetter`: general categories Lu, Ll, Lt, Lm, Lo.
fn is_go_letter(c: char) -> bool {
    matches!(
        get_general_category(c),
        GeneralCategory::UppercaseLetter
            | GeneralCategory::LowercaseLetter
            | GeneralCategory::TitlecaseLetter
            | GeneralCategory::ModifierLetter
            | GeneralCategory::OtherLetter
    )
}

/// Go's `%q` of a rune.
fn quote_char(c: char) -> String {
    let mut out = String::from("'");
    match c {
        '\'' => out.push_str("\\'"),
        '\\' => out.push_str("\\\\"),
        c => push_escaped_rune(&mut out, c),
    }
    out.push('\'');
    out
}

/// Splits a module path into its prefix and major-version suffix (`module.SplitPathVersion`):
/// `("x.y/z", "/v2")` for `x.y/z/v2`, `("gopkg.in/yaml", ".v2")` for `gopkg.in/yaml.v2`, and
/// `(path, "")` when there is no suffix. `None` when the suffix is malformed (`/v1`, `/v0`,
/// `/v2.0`, a `gopkg.in` path without `.vN`). Always `prefix + major == path`.
pub fn split_path_version(path: &str) -> Option<(&str, &str)> {
    if path.starts_with("gopkg.in/") {
        return split_gopkg_in(path);
    }
    let bytes = path.as_bytes();
    let mut i = bytes.len();
    let mut dot = false;
    while i > 0 && (bytes[i - 1].is_ascii_digit() || bytes[i - 1] == b'.') {
        if bytes[i - 1] == b'.' {
            dot = true;
        }
        i -= 1;
    }
    if i <= 1 || i == bytes.len() || bytes[i - 1] != b'v' || bytes[i - 2] != b'/' {
        return Some((path, ""));
    }
    let (prefix, major) = (&path[..i - 2], &path[i - 2..]);
    if dot || major.len() <= 2 || major.as_bytes()[2] == b'0' || major == "/v1" {
        return None;
    }
    Some((prefix, major))
}

fn split_gopkg_in(path: &str) -> Option<(&str, &str)> {
    let scan = path.strip_suffix("-unstable").unwrap_or(path);
    let bytes = scan.as_bytes();
    let mut i = bytes.len();
    while i > 0 && bytes[i - 1].is_ascii_digit() {
        i -= 1;
    }
    if i <= 1 || bytes[i - 1] != b'v' || bytes[i - 2] != b'.' {
        return None;
    }
    let (prefix, major) = (&path[..i - 2], &path[i - 2..]);
    if major.len() <= 2 || (major.as_bytes()[2] == b'0' && major != ".v0") {
        return None;
    }
    Some((prefix, major))
}

/// Case-encodes a module path for URLs and file systems (`module.EscapePath`): `A` → `!a`.
pub fn escape_path(path: &str) -> Result<String, EscapeError> {
    check_path(path)?;
    escape_string(path)
}

/// Case-encodes a version (`module.EscapeVersion`); the version must be a single file-path
/// element without `!`.
pub fn escape_version(version: &str) -> Result<String, EscapeError> {
    if check_elem(version, PathKind::File).is_err() || version.contains('!') {
        return Err(EscapeError::DisallowedVersion(version.to_string()));
    }
    escape_string(version)
}

/// Replaces each upper-case ASCII letter with `!` and its lower-case form. Refuses what the
/// encoding cannot represent unambiguously (`!` and non-ASCII), as x/mod does.
fn escape_string(s: &str) -> Result<String, EscapeError> {
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c == '!' || !c.is_ascii() {
            return Err(EscapeError::Unrepresentable);
        }
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

/// Decodes a case-encoded module path (`module.UnescapePath`).
pub fn unescape_path(escaped: &str) -> Result<String, EscapeError> {
    let bad = |source| EscapeError::BadPath {
        escaped: escaped.to_string(),
        source,
    };
    let path = unescape_string(escaped).ok_or_else(|| bad(None))?;
    check_path(&path).map_err(|e| bad(Some(e)))?;
    Ok(path)
}

/// Decodes a case-encoded version (`module.UnescapeVersion`).
pub fn unescape_version(escaped: &str) -> Result<String, EscapeError> {
    let version = unescape_string(escaped).ok_or_else(|| EscapeError::BadVersion {
        version: escaped.to_string(),
        reason: None,
    })?;
    check_elem(&version, PathKind::File).map_err(|reason| EscapeError::BadVersion {
        version: version.clone(),
        reason: Some(reason),
    })?;
    Ok(version)
}

fn unescape_string(escaped: &str) -> Option<String> {
    let mut out = String::with_capacity(escaped.len());
    let mut bang = false;
    for c in escaped.chars() {
        if !c.is_ascii() {
            return None;
        }
        if bang {
            bang = false;
            if !c.is_ascii_lowercase() {
                return None;
            }
            out.push(c.to_ascii_uppercase());
        } else if c == '!' {
            bang = true;
        } else if c.is_ascii_uppercase() {
            return None;
        } else {
            out.push(c);
        }
    }
    (!bang).then_some(out)
}

/// A valid module path (`golang.org/x/mod`, `github.com/Azure/azure-sdk-for-go`).
///
/// Construction checks every rule of [`check_path`]; the case-encoded form for URLs and storage
/// keys comes from [`ModulePath::escaped`], so no raw string travels past the parser.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ModulePath(String);

impl ModulePath {
    /// Validates `path` as a module path.
    pub fn new(path: &str) -> Result<Self, PathError> {
        check_path(path)?;
        Ok(Self(path.to_string()))
    }

    /// Decodes and validates a case-encoded path, as found in proxy URLs.
    pub fn from_escaped(escaped: &str) -> Result<Self, EscapeError> {
        unescape_path(escaped).map(Self)
    }

    /// The path as written in go.mod.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-encoded form used in URLs and storage keys.
    pub fn escaped(&self) -> String {
        // A valid module path is ASCII without `!`, so escaping cannot fail.
        escape_string(&self.0).unwrap_or_else(|_| self.0.clone())
    }

    /// The prefix and major-version suffix (see [`split_path_version`]).
    pub fn split_major(&self) -> (&str, &str) {
        split_path_version(&self.0).unwrap_or((&self.0, ""))
    }
}

impl fmt::Display for ModulePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for ModulePath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for ModulePath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_follow_go() {
        let e = check_file_path("bad.go'").unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"malformed file path "bad.go'": invalid char '\''"#
        );
        let e = check_path("rsc io/quote").unwrap_err();
        assert!(e.to_string().contains("invalid char ' '"), "{e}");
        let e = check_path("example/m").unwrap_err();
        assert!(e.to_string().ends_with("missing dot in first path element"));
    }

    #[test]
    fn escapes() {
        let p = ModulePath::new("github.com/GoogleCloudPlatform/omega").unwrap();
        assert_eq!(p.escaped(), "github.com/!google!cloud!platform/omega");
        assert_eq!(ModulePath::from_escaped(&p.escaped()).unwrap(), p);
        assert!(unescape_path("github.com/!!x").is_err());
        assert_eq!(escape_version("v1.0.0-RC1").unwrap(), "v1.0.0-!r!c1");
        assert_eq!(unescape_version("v1.0.0-!r!c1").unwrap(), "v1.0.0-RC1");
        assert!(escape_version("v1/x").is_err());
    }

    #[test]
    fn splits() {
        assert_eq!(split_path_version("x.y/z/v2"), Some(("x.y/z", "/v2")));
        assert_eq!(split_path_version("x.y/z/v1"), None);
        assert_eq!(
            split_path_version("gopkg.in/yaml.v2"),
            Some(("gopkg.in/yaml", ".v2"))
        );
        assert_eq!(split_path_version("gopkg.in/yaml"), None);
        assert_eq!(split_path_version("x.y/v"), Some(("x.y/v", "")));
    }
}

/// Decodes the `%XX` escapes of a request path once (the go command sends the case-encoding's
/// `!` as `%21`). Refused, with the reason: a malformed escape, a result that is not UTF-8, and
/// an encoded `/` (`%2F`), which would otherwise become a new path element after routing
/// decided what the path names. Encoded dots decode to dots; the parsers that run next refuse
/// `.` and `..` elements, so `%2e%2e` is no way around them.
pub fn percent_decode_path(path: &str) -> Result<String, String> {
    if !path.contains('%') {
        return Ok(path.to_owned());
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let byte = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("malformed percent-escape at byte {i}"))?;
            if byte == b'/' {
                return Err("an encoded \"/\" (%2F) is not allowed in a path".to_owned());
            }
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the decoded path is not valid UTF-8".to_owned())
}

#[cfg(test)]
mod percent_tests {
    #![allow(clippy::unwrap_used)]
    use super::percent_decode_path;

    #[test]
    fn decodes_once_and_refuses_encoded_slashes() {
        assert_eq!(
            percent_decode_path("/example.com/%21go/@v/list").unwrap(),
            "/example.com/!go/@v/list"
        );
        assert_eq!(percent_decode_path("/%252e").unwrap(), "/%2e");
        assert_eq!(percent_decode_path("/%2e%2E").unwrap(), "/..");
        for bad in ["/a%2", "/a%zz", "/%ff", "/a%2Fb", "/a%2fb", "/%", "/%c3"] {
            assert!(percent_decode_path(bad).is_err(), "{bad:?}");
        }
    }
}
