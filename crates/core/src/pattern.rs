//! Module path prefix patterns: the GOPRIVATE / GONOPROXY / GONOSUMDB / GOINSECURE rule
//! (`module.MatchPrefixPatterns`), and Go's `path.Match` glob syntax underneath it.
//!
//! strata uses the same rule for repository include/exclude lists and no-sum patterns, so an
//! operator can paste their `GOPRIVATE` value into the config and get what the go command does.

/// Whether any comma-separated glob in `globs` matches a prefix of `target` with as many path
/// elements as the glob has. Empty entries and one trailing `/` per glob are ignored; a malformed
/// glob matches nothing.
pub fn match_prefix_patterns(globs: &str, target: &str) -> bool {
    globs.split(',').any(|glob| {
        let glob = glob.strip_suffix('/').unwrap_or(glob);
        if glob.is_empty() {
            return false;
        }
        let mut n = glob.matches('/').count();
        let mut prefix = target;
        for (i, b) in target.bytes().enumerate() {
            if b == b'/' {
                if n == 0 {
                    prefix = &target[..i];
                    break;
                }
                n -= 1;
            }
        }
        n == 0 && glob_match(glob, prefix).unwrap_or(false)
    })
}

/// A syntactically invalid glob (`path.ErrBadPattern`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("syntax error in pattern")]
pub struct BadPattern;

/// Go's `path.Match`: `*` matches any run of non-`/` characters, `?` one non-`/` character,
/// `[…]`/`[^…]` a character class with ranges, `\` escapes the next character.
pub fn glob_match(pattern: &str, name: &str) -> Result<bool, BadPattern> {
    // Go works on bytes, decoding runes only for `?` and classes; so do we.
    let mut pattern = pattern.as_bytes();
    let mut name = name.as_bytes();
    'pattern: while !pattern.is_empty() {
        let (star, chunk, rest) = scan_chunk(pattern);
        pattern = rest;
        if star && chunk.is_empty() {
            // A trailing `*` matches the rest of the name unless it has a `/`.
            return Ok(!name.contains(&b'/'));
        }
        // Matching at the current position.
        match match_chunk(chunk, name) {
            Ok(Some(t)) if t.is_empty() || !pattern.is_empty() => {
                name = t;
                continue;
            }
            Err(e) => return Err(e),
            _ => {}
        }
        if star {
            // Try skipping i+1 bytes; a `*` never skips a `/`.
            let mut i = 0;
            while i < name.len() && name[i] != b'/' {
                match match_chunk(chunk, &name[i + 1..])? {
                    // The last chunk must use up the whole name.
                    Some(t) if pattern.is_empty() && !t.is_empty() => {}
                    Some(t) => {
                        name = t;
                        continue 'pattern;
                    }
                    None => {}
                }
                i += 1;
            }
        }
        // No match: still report a malformed remainder of the pattern.
        while !pattern.is_empty() {
            let (_, chunk, rest) = scan_chunk(pattern);
            pattern = rest;
            match_chunk(chunk, b"")?;
        }
        return Ok(false);
    }
    Ok(name.is_empty())
}

/// Splits off leading stars and the chunk up to the next unbracketed `*`.
fn scan_chunk(pattern: &[u8]) -> (bool, &[u8], &[u8]) {
    let start = pattern
        .iter()
        .position(|&b| b != b'*')
        .unwrap_or(pattern.len());
    let (star, pattern) = (start > 0, &pattern[start..]);
    let mut in_range = false;
    let mut i = 0;
    while i < pattern.len() {
        match pattern[i] {
            b'\\' if i + 1 < pattern.len() => i += 1,
            b'[' => in_range = true,
            b']' => in_range = false,
            b'*' if !in_range => break,
            _ => {}
        }
        i += 1;
    }
    (star, &pattern[..i], &pattern[i..])
}

/// Decodes one rune like Go's `utf8.DecodeRune`: U+FFFD and width 1 for invalid bytes, width 0
/// for empty input.
fn decode_rune(b: &[u8]) -> (char, usize) {
    let end = b.len().min(4);
    for width in 1..=end {
        if let Ok(s) = std::str::from_utf8(&b[..width])
            && let Some(c) = s.chars().next()
        {
            return (c, width);
        }
    }
    (char::REPLACEMENT_CHARACTER, usize::from(!b.is_empty()))
}

/// Matches `chunk` (no `*`) against the start of `s`; the rest of `s` on success. After a
/// mismatch it keeps parsing the chunk so that malformed patterns are always reported.
fn match_chunk<'a>(mut chunk: &[u8], mut s: &'a [u8]) -> Result<Option<&'a [u8]>, BadPattern> {
    let mut failed = false;
    while let Some(&c) = chunk.first() {
        if !failed && s.is_empty() {
            failed = true;
        }
        match c {
            b'[' => {
                let mut r = '\0';
                if !failed {
                    let (rune, n) = decode_rune(s);
                    r = rune;
                    s = &s[n..];
                }
                chunk = &chunk[1..];
                let negated = chunk.first() == Some(&b'^');
                if negated {
                    chunk = &chunk[1..];
                }
                let mut matched = false;
                let mut ranges = 0;
                loop {
                    if chunk.first() == Some(&b']') && ranges > 0 {
                        chunk = &chunk[1..];
                        break;
                    }
                    let (lo, rest) = get_esc(chunk)?;
                    chunk = rest;
                    let mut hi = lo;
                    if chunk.first() == Some(&b'-') {
                        let (h, rest) = get_esc(&chunk[1..])?;
                        hi = h;
                        chunk = rest;
                    }
                    if lo <= r && r <= hi {
                        matched = true;
                    }
                    ranges += 1;
                }
                if matched == negated {
                    failed = true;
                }
            }
            b'?' => {
                if !failed {
                    if s[0] == b'/' {
                        failed = true;
                    }
                    let (_, n) = decode_rune(s);
                    s = &s[n..];
                }
                chunk = &chunk[1..];
            }
            _ => {
                if c == b'\\' {
                    chunk = &chunk[1..];
                    if chunk.is_empty() {
                        return Err(BadPattern);
                    }
                }
                if !failed {
                    if chunk[0] != s[0] {
                        failed = true;
                    }
                    s = &s[1..];
                }
                chunk = &chunk[1..];
            }
        }
    }
    Ok(if failed { None } else { Some(s) })
}

/// One possibly escaped character of a class, and the rest of the chunk after it.
fn get_esc(chunk: &[u8]) -> Result<(char, &[u8]), BadPattern> {
    let mut chunk = chunk;
    if chunk.is_empty() || chunk[0] == b'-' || chunk[0] == b']' {
        return Err(BadPattern);
    }
    if chunk[0] == b'\\' {
        chunk = &chunk[1..];
        if chunk.is_empty() {
            return Err(BadPattern);
        }
    }
    let (r, n) = decode_rune(chunk);
    if r == char::REPLACEMENT_CHARACTER && n == 1 {
        return Err(BadPattern);
    }
    let rest = &chunk[n..];
    if rest.is_empty() {
        return Err(BadPattern);
    }
    Ok((r, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert!(match_prefix_patterns(
            "*.corp.example.com",
            "git.corp.example.com/x/y"
        ));
        assert!(match_prefix_patterns(
            "rsc.io/private",
            "rsc.io/private/bar"
        ));
        assert!(!match_prefix_patterns("rsc.io/private", "rsc.io/privateer"));
        assert!(match_prefix_patterns("*/quote", "rsc.io/quote/v3"));
        assert!(!match_prefix_patterns("*quo*", "rsc.io/quote"));
        assert!(!match_prefix_patterns("", "rsc.io/quote"));
    }

    #[test]
    fn globs() {
        assert_eq!(glob_match("a[b-d]e", "ace"), Ok(true));
        assert_eq!(glob_match("a[^b-d]e", "ace"), Ok(false));
        assert_eq!(glob_match("a*", "ab/c"), Ok(false));
        assert_eq!(glob_match("a\\*", "a*"), Ok(true));
        assert_eq!(glob_match("[", "a"), Err(BadPattern));
        assert_eq!(glob_match("a[", "x"), Err(BadPattern));
    }
}
