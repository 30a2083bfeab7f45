//! The arguments of go.mod directives: `go` and `toolchain` versions, quoted strings, module
//! versions and retraction intervals, directory paths, and the comments that carry deprecations,
//! rationales and `// indirect` — each as modfile reads it, with its error texts.

use super::lexer::go_lossy;
use super::quote::{quote_bytes, unquote};
use super::syntax::{Comments, Line, LineBlock};
use crate::path::split_path_version;
use crate::version::canonical_version;

/// Whether `version` is a `go` directive version (`GoVersionRE`):
/// `1.N`, `1.N.P`, optionally followed by a pre-release like `rc1` / `beta2`.
pub(super) fn is_go_version(v: &str) -> bool {
    let mut rest = v;
    let Some(major) = take_number(&mut rest) else {
        return false;
    };
    if major.starts_with('0') {
        return false;
    }
    let Some(r) = rest.strip_prefix('.') else {
        return false;
    };
    rest = r;
    if take_canonical_number(&mut rest).is_none() {
        return false;
    }
    if let Some(r) = rest.strip_prefix('.') {
        rest = r;
        if take_canonical_number(&mut rest).is_none() {
            return false;
        }
    }
    if rest.is_empty() {
        return true;
    }
    let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
    let digits = rest[letters..]
        .bytes()
        .take_while(u8::is_ascii_digit)
        .count();
    letters > 0 && digits > 0 && letters + digits == rest.len()
}

fn take_number<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let n = rest.bytes().take_while(u8::is_ascii_digit).count();
    if n == 0 {
        return None;
    }
    let (num, tail) = rest.split_at(n);
    *rest = tail;
    Some(num)
}

/// `0|[1-9][0-9]*`.
fn take_canonical_number<'a>(rest: &mut &'a str) -> Option<&'a str> {
    let num = take_number(rest)?;
    (num == "0" || !num.starts_with('0')).then_some(num)
}

/// `laxGoVersionRE`: `v?([1-9][0-9]*\.(0|[1-9][0-9]*))` followed by a non-digit and anything;
/// returns the captured `N.M`.
pub(super) fn lax_go_version(v: &str) -> Option<&str> {
    let body = v.strip_prefix('v').unwrap_or(v);
    let mut rest = body;
    let major = take_number(&mut rest)?;
    if major.starts_with('0') {
        return None;
    }
    rest = rest.strip_prefix('.')?;
    take_canonical_number(&mut rest)?;
    let next = rest.chars().next()?;
    if next.is_ascii_digit() {
        return None;
    }
    Some(&body[..body.len() - rest.len()])
}

/// `ToolchainRE`: `default`, or `go1` followed by the end or a dot.
pub(super) fn is_toolchain(name: &str) -> bool {
    name == "default"
        || name
            .strip_prefix("go1")
            .is_some_and(|r| r.is_empty() || r.starts_with('.'))
}

/// modfile's `parseString`: a double-quoted token is unquoted; other quote characters are refused.
pub(super) fn parse_string(token: &[u8]) -> Result<Vec<u8>, String> {
    if token.starts_with(b"\"") {
        return unquote(token).map_err(|e| e.to_string());
    }
    if token.iter().any(|b| matches!(b, b'"' | b'\'' | b'`')) {
        return Err("unquoted string cannot contain quote".into());
    }
    Ok(token.to_vec())
}

/// [`parse_string`] as text.
pub(super) fn parse_text(token: &[u8]) -> Result<String, String> {
    parse_string(token).map(|b| go_lossy(&b))
}

/// `module.InvalidVersionError` text.
pub(super) fn invalid_version(version: &[u8], reason: &str) -> String {
    format!("version {} invalid: {reason}", quote_bytes(version))
}

/// `verb path: ` or `verb: ` as modfile prefixes directive errors.
pub(super) fn directive(verb: &str, path: &str) -> String {
    if path.is_empty() {
        format!("{verb}: ")
    } else {
        format!("{verb} {path}: ")
    }
}

/// modfile's `parseVersion` with no fixer: the version must be valid semver and is returned in
/// canonical form. The error is the full message after the position.
pub(super) fn parse_version(verb: &str, path: &str, token: &[u8]) -> Result<String, String> {
    let t = parse_string(token)
        .map_err(|e| format!("{}{}", directive(verb, path), invalid_version(token, &e)))?;
    let cv = canonical_version(&go_lossy(&t));
    if cv.is_empty() {
        return Err(format!(
            "{}{}",
            directive(verb, path),
            invalid_version(&t, "must be of the form v1.2.3")
        ));
    }
    Ok(cv)
}

/// A retraction version with modfile's `dontFixRetract`: only unquoted.
fn parse_retract_version(token: &[u8]) -> Result<String, String> {
    parse_text(token).map_err(|e| format!("retract: {}", invalid_version(token, &e)))
}

/// modfile's `parseVersionInterval`, consuming the tokens it reads.
pub(super) fn parse_version_interval(args: &mut &[Vec<u8>]) -> Result<(String, String), String> {
    let toks = *args;
    let Some(first) = toks.first() else {
        return Err("expected '[' or version".into());
    };
    if first == b"(" {
        return Err("expected '[' or version".into());
    }
    if first != b"[" {
        let v = parse_retract_version(first)?;
        *args = &toks[1..];
        return Ok((v.clone(), v));
    }
    let toks = &toks[1..];
    let Some(low) = toks.first() else {
        return Err("expected version after '['".into());
    };
    let low = parse_retract_version(low)?;
    let toks = &toks[1..];
    if toks.first().map(Vec::as_slice) != Some(&b","[..]) {
        return Err("expected ',' after version".into());
    }
    let toks = &toks[1..];
    let Some(high) = toks.first() else {
        return Err("expected version after ','".into());
    };
    let high = parse_retract_version(high)?;
    let toks = &toks[1..];
    if toks.first().map(Vec::as_slice) != Some(&b"]"[..]) {
        return Err("expected ']' after version".into());
    }
    *args = &toks[1..];
    Ok((low, high))
}

/// `module.SplitPathVersion`'s major suffix, or modfile's "invalid module path".
pub(super) fn path_major(path: &str) -> Result<&str, String> {
    split_path_version(path)
        .map(|(_, major)| major)
        .ok_or_else(|| "invalid module path".into())
}

/// modfile's `IsDirectoryPath`, for Unix and Windows spellings alike.
pub(super) fn is_directory_path(ns: &str) -> bool {
    let b = ns.as_bytes();
    ns == "."
        || ns.starts_with("./")
        || ns.starts_with(".\\")
        || ns == ".."
        || ns.starts_with("../")
        || ns.starts_with("..\\")
        || ns.starts_with('/')
        || ns.starts_with('\\')
        || (b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':')
}

/// The comment text on a directive: its own before/suffix comments, or the block's when the line
/// has none (modfile's `parseDirectiveComment`).
pub(super) fn directive_comment(block: Option<&LineBlock>, line: &Line) -> String {
    let own = &line.comments;
    let comments: &Comments = match block {
        Some(b) if own.before.is_empty() && own.suffix.is_empty() => &b.comments,
        _ => own,
    };
    comments
        .before
        .iter()
        .chain(&comments.suffix)
        .filter_map(|c| c.token.strip_prefix("//"))
        .map(|t| t.trim_matches(|c: char| c.is_whitespace()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The first paragraph starting with `Deprecated:` (modfile's `deprecatedRE`), without the prefix
/// and the spaces after it.
pub(super) fn deprecation(text: &str) -> Option<String> {
    // Paragraph starts are the text start and every position right after "\n\n".
    // ("\n\n\n" holds two of them, so the search must overlap.)
    let starts = (2..=text.len()).filter(|&i| text.as_bytes()[..i].ends_with(b"\n\n"));
    for start in std::iter::once(0).chain(starts) {
        let Some(rest) = text[start..].strip_prefix("Deprecated:") else {
            continue;
        };
        let rest = rest.trim_start_matches(' ');
        let end = rest.find("\n\n").unwrap_or(rest.len());
        return Some(rest[..end].to_owned());
    }
    None
}

/// modfile's `isIndirect`: the first suffix comment is `// indirect` or `// indirect; …`.
pub(super) fn is_indirect(line: &Line) -> bool {
    let Some(c) = line.comments.suffix.first() else {
        return false;
    };
    let text = c.token.strip_prefix("//").unwrap_or(&c.token);
    let fields: Vec<&str> = text
        .split(|c: char| c.is_whitespace())
        .filter(|f| !f.is_empty())
        .collect();
    matches!(fields.as_slice(), ["indirect"]) || (fields.len() > 1 && fields[0] == "indirect;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_versions() {
        for ok in [
            "1.21",
            "1.21.0",
            "1.21rc1",
            "1.0",
            "10.200.3",
            "1.22.1beta22",
        ] {
            assert!(is_go_version(ok), "{ok}");
        }
        for bad in [
            "1", "01.2", "1.02", "1.2.", "1.2rc", "1.2RC1", "v1.2", "1.2-rc1", "1.2.3.4",
        ] {
            assert!(!is_go_version(bad), "{bad}");
        }
        assert_eq!(lax_go_version("1.21-foo"), Some("1.21"));
        assert_eq!(lax_go_version("v1.21.x"), Some("1.21"));
        assert_eq!(lax_go_version("1.21"), None);
        assert_eq!(lax_go_version("1.21.3.4"), Some("1.21"));
        assert_eq!(lax_go_version("1.2x"), Some("1.2"));
    }

    #[test]
    fn deprecation_paragraphs() {
        assert_eq!(deprecation("Deprecated: use v2"), Some("use v2".into()));
        assert_eq!(
            deprecation("a\n\nDeprecated:   x\ny\n\nz"),
            Some("x\ny".into())
        );
        assert_eq!(deprecation("a\nDeprecated: x"), None);
        assert_eq!(deprecation("deprecated: x"), None);
        assert_eq!(deprecation("a\n\n\nDeprecated: x"), Some("x".into()));
    }

    #[test]
    fn quoting_helpers() {
        assert!(is_directory_path("C:foo") && !is_directory_path("example.com"));
    }
}
