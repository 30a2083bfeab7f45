//! Go string quoting as go.mod uses it: `strconv.Quote`, `strconv.QuoteRune`, `strconv.Unquote`
//! of double-quoted strings, and modfile's `AutoQuote`.

use std::fmt::Write as _;

use super::lexer::decode_rune;
use super::unicode::is_print;

/// Appends `c` escaped the way `strconv` does inside a literal delimited by `quote`.
fn push_escaped(out: &mut String, c: char, quote: char) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if is_print(c) {
        out.push(c);
        return;
    }
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if c < ' ' || c == '\u{7f}' => {
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        }
        c if u32::from(c) < 0x10000 => {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        }
        c => {
            let _ = write!(out, "\\U{:08x}", u32::from(c));
        }
    }
}

/// `strconv.Quote`: a double-quoted Go string literal.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        push_escaped(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// `strconv.Quote` of a Go string holding arbitrary bytes: an invalid byte is written `\xNN`.
pub(crate) fn quote_bytes(b: &[u8]) -> String {
    let mut out = String::with_capacity(b.len() + 2);
    out.push('"');
    let mut rest = b;
    while !rest.is_empty() {
        let (c, n) = decode_rune(rest);
        if c == '\u{FFFD}' && n == 1 {
            let _ = write!(out, "\\x{:02x}", rest[0]);
        } else {
            push_escaped(&mut out, c, '"');
        }
        rest = &rest[n..];
    }
    out.push('"');
    out
}

/// `strconv.QuoteRune`: a single-quoted Go rune literal.
pub(crate) fn quote_rune(c: char) -> String {
    let mut out = String::from("'");
    push_escaped(&mut out, c, '\'');
    out.push('\'');
    out
}

/// modfile's `MustQuote`: whether a token must be quoted to survive the go.mod lexer.
pub(crate) fn must_quote(s: &str) -> bool {
    let multi = s.len() > 1;
    s.chars().any(|c| match c {
        ' ' | '"' | '\'' | '`' => true,
        '(' | ')' | '[' | ']' | '{' | '}' | ',' => multi,
        c => !is_print(c),
    }) || s.is_empty()
        || s.contains("//")
        || s.contains("/*")
}

/// modfile's `AutoQuote`: `s` as a go.mod token, quoted only when it must be.
pub(crate) fn auto_quote(s: &str) -> String {
    if must_quote(s) {
        quote(s)
    } else {
        s.to_owned()
    }
}

/// `strconv.Unquote` for a double-quoted literal (the only quoting modfile interprets), over raw
/// bytes as Go strings are. Escapes that produce bytes (`\xhh`, octal) may yield invalid UTF-8;
/// an invalid byte in the literal itself becomes U+FFFD, as Go's `UnquoteChar` decodes it.
/// Fails with Go's "invalid syntax" on any malformed escape.
pub(crate) fn unquote(s: &[u8]) -> Result<Vec<u8>, UnquoteError> {
    let inner = match s {
        [b'"', inner @ .., b'"'] => inner,
        _ => return Err(UnquoteError),
    };
    if inner.contains(&b'\n') {
        return Err(UnquoteError);
    }
    if !inner.contains(&b'\\') && !inner.contains(&b'"') && std::str::from_utf8(inner).is_ok() {
        return Ok(inner.to_vec());
    }
    let mut out: Vec<u8> = Vec::with_capacity(inner.len());
    let mut rest = inner;
    while let Some((&c, tail)) = rest.split_first() {
        match c {
            b'"' => return Err(UnquoteError),
            b'\\' => rest = tail,
            _ => {
                let (r, n) = decode_rune(rest);
                let mut buf = [0u8; 4];
                out.extend_from_slice(r.encode_utf8(&mut buf).as_bytes());
                rest = &rest[n..];
                continue;
            }
        }
        let (&e, tail) = rest.split_first().ok_or(UnquoteError)?;
        rest = tail;
        let simple = match e {
            b'a' => Some(0x07u8),
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'v' => Some(0x0b),
            b'\\' => Some(b'\\'),
            b'"' => Some(b'"'),
            _ => None,
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        let mut digits = |n: usize, radix: u32| -> Result<u32, UnquoteError> {
            let mut v: u32 = 0;
            for _ in 0..n {
                let (&d, tail) = rest.split_first().ok_or(UnquoteError)?;
                rest = tail;
                v = v * radix + char::from(d).to_digit(radix).ok_or(UnquoteError)?;
            }
            Ok(v)
        };
        match e {
            b'x' => out.push(u8::try_from(digits(2, 16)?).map_err(|_| UnquoteError)?),
            b'u' | b'U' => {
                let v = digits(if e == b'u' { 4 } else { 8 }, 16)?;
                let c = char::from_u32(v).ok_or(UnquoteError)?;
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
            b'0'..=b'7' => {
                let v = u32::from(e - b'0') * 64 + digits(2, 8)?;
                out.push(u8::try_from(v).map_err(|_| UnquoteError)?);
            }
            _ => return Err(UnquoteError),
        }
    }
    Ok(out)
}

/// A malformed Go string literal (`strconv.ErrSyntax`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnquoteError;

impl std::fmt::Display for UnquoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid syntax")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_like_go() {
        assert_eq!(
            quote("a\"b\\c\n\u{7f}\u{200b}\u{10ffff}é"),
            r#""a\"b\\c\n\x7f\u200b\U0010ffffé""#
        );
        assert_eq!(quote_rune('\''), r"'\''");
        assert_eq!(quote_rune('\u{feff}'), r"'\ufeff'");
        assert_eq!(auto_quote("golang.org/x/text"), "golang.org/x/text");
        assert_eq!(auto_quote("a b"), "\"a b\"");
        assert_eq!(auto_quote("("), "(");
        assert_eq!(auto_quote("a(b"), "\"a(b\"");
        assert_eq!(auto_quote("a//b"), "\"a//b\"");
        assert_eq!(auto_quote(""), "\"\"");
    }

    #[test]
    fn unquotes_like_go() {
        let uq = |s: &[u8]| unquote(s);
        let want = "a\tbAAé😀\"".as_bytes().to_vec();
        assert_eq!(uq(br#""a\tb\x41\101\u00e9\U0001F600\"""#), Ok(want));
        assert_eq!(uq(br#""\'""#), Err(UnquoteError));
        assert_eq!(uq(br#""\400""#), Err(UnquoteError));
        assert_eq!(uq(br#""\ud800""#), Err(UnquoteError));
        assert_eq!(uq(br#""\xff""#), Ok(vec![0xff]));
        assert_eq!(uq(b"\"a\xffb\""), Ok("a\u{fffd}b".as_bytes().to_vec()));
        assert_eq!(uq(br#""abc"#), Err(UnquoteError));
        assert_eq!(uq(b"\""), Err(UnquoteError));
        assert_eq!(quote_bytes(b"v1\xc3.2"), r#""v1\xc3.2""#);
    }
}
