//! HTTP conditional and range requests, as every GOPROXY front end answers them: whether an
//! `If-None-Match` header lets a `304 Not Modified` stand in for the body ([`if_none_match`]),
//! and the single byte range of a `Range` header ([`parse_range`], [`ByteRange::resolve`]).
//!
//! Pure functions over header *values* (`&str`), so that services built on different HTTP
//! stacks share them. Invariants:
//! - `If-None-Match` uses the weak comparison of RFC 9110 §13.1.2: a `W/` prefix on either tag
//!   is ignored, `*` matches any current representation;
//! - a `Range` value is either one satisfiable-or-not `bytes=` range or ignored (`None`: serve
//!   the whole body with 200, as RFC 9110 §14.2 allows): several ranges, other units, garbage
//!   and inverted ranges (`bytes=5-2`, invalid by §14.1.1) are all ignored, never refused;
//! - whether a parsed range is satisfiable depends only on the representation's size
//!   ([`ByteRange::resolve`]), so a service that pushes the range down to storage without
//!   knowing the size gets the same answer from its store as one that knows it.

use std::ops::Range;

/// Whether an `If-None-Match` request header lists `etag`, the current representation's
/// entity tag (quoted, as sent in `ETag`), or `*`. `values` are the header's field values (it
/// may be sent several times); each is a comma-separated list.
pub fn if_none_match<'a>(values: impl IntoIterator<Item = &'a str>, etag: &str) -> bool {
    let current = opaque(etag);
    values
        .into_iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|tag| tag == "*" || opaque(tag) == current)
}

/// An entity tag without its weakness indicator (`W/"x"` → `"x"`).
fn opaque(tag: &str) -> &str {
    tag.strip_prefix("W/").unwrap_or(tag)
}

/// One byte range of a `Range: bytes=…` header, before the representation's size is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `bytes=start-`: from `start` to the end.
    From(u64),
    /// `bytes=start-last`: `start` through `last`, both inclusive (`last` may lie past the
    /// end, meaning "to the end"); [`parse_range`] yields only `start <= last`.
    Inclusive(u64, u64),
    /// `bytes=-n`: the last `n` bytes.
    Suffix(u64),
}

impl ByteRange {
    /// The half-open range of a representation of `size` bytes this selects, or `None` if it
    /// is not satisfiable (starts at or past the end, is inverted, or is an empty suffix, or
    /// any suffix of an empty representation): answer `416` with `Content-Range: bytes */size`.
    pub fn resolve(self, size: u64) -> Option<Range<u64>> {
        match self {
            Self::From(start) if start < size => Some(start..size),
            Self::Inclusive(start, last) if start <= last && start < size => {
                Some(start..last.saturating_add(1).min(size))
            }
            Self::Suffix(n) if n > 0 && size > 0 => Some(size.saturating_sub(n)..size),
            _ => None,
        }
    }
}

/// The single `bytes=` range of a `Range` header value; `None` when it is to be ignored and the
/// whole body served: several ranges, another unit, anything unparsable, an inverted range.
pub fn parse_range(value: &str) -> Option<ByteRange> {
    let spec = value.trim().strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (start, last) = spec.split_once('-')?;
    match (start.trim(), last.trim()) {
        ("", n) => n.parse().ok().map(ByteRange::Suffix),
        (start, "") => start.parse().ok().map(ByteRange::From),
        (start, last) => {
            let (start, last): (u64, u64) = (start.parse().ok()?, last.parse().ok()?);
            (start <= last).then_some(ByteRange::Inclusive(start, last))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TAG: &str = "\"abc\"";

    #[test]
    fn if_none_match_compares_weakly_and_accepts_lists_and_star() {
        assert!(if_none_match(["\"abc\""], TAG));
        assert!(if_none_match(["W/\"abc\""], TAG), "a weak tag matches");
        assert!(
            if_none_match(["\"abc\""], "W/\"abc\""),
            "so does a weak current tag"
        );
        assert!(if_none_match(["*"], TAG));
        assert!(
            if_none_match(["\"x\", W/\"abc\""], TAG),
            "anywhere in a list"
        );
        assert!(
            if_none_match(["\"x\"", " \"abc\" "], TAG),
            "in any of several headers"
        );
        assert!(if_none_match(["\"x\",*"], TAG));
        assert!(!if_none_match(["\"x\", \"y\""], TAG));
        assert!(
            !if_none_match(["abc"], TAG),
            "an unquoted tag is another tag"
        );
        assert!(
            !if_none_match(["W/W/\"abc\""], TAG),
            "one weakness indicator at most"
        );
        assert!(!if_none_match(["W/*"], TAG), "`*` stands alone");
        assert!(!if_none_match(["", " , "], TAG));
        assert!(!if_none_match([], TAG));
    }

    #[test]
    fn ranges_parse_without_a_size() {
        assert_eq!(parse_range("bytes=0-99"), Some(ByteRange::Inclusive(0, 99)));
        assert_eq!(
            parse_range(" bytes= 5 - 7 "),
            Some(ByteRange::Inclusive(5, 7))
        );
        assert_eq!(parse_range("bytes=100-"), Some(ByteRange::From(100)));
        assert_eq!(parse_range("bytes=-5"), Some(ByteRange::Suffix(5)));
        assert_eq!(parse_range("bytes=-0"), Some(ByteRange::Suffix(0)));
        assert_eq!(
            parse_range("bytes=0-18446744073709551615"),
            Some(ByteRange::Inclusive(0, u64::MAX))
        );
        // Ignored: the whole body is served.
        assert_eq!(parse_range("bytes=0-1,5-6"), None, "several ranges");
        assert_eq!(parse_range("items=0-1"), None, "another unit");
        assert_eq!(parse_range("bytes=5-2"), None, "inverted");
        assert_eq!(parse_range("bytes=-"), None);
        assert_eq!(parse_range("bytes=5"), None);
        assert_eq!(parse_range("bytes=a-9"), None);
        assert_eq!(parse_range("bytes=0-x"), None);
        assert_eq!(parse_range("bytes=18446744073709551616-"), None, "past u64");
        assert_eq!(parse_range(""), None);
    }

    /// The edge's cases: the range of a `size`-byte body, or `Err` for 416, `None` to ignore.
    fn range(value: &str, size: u64) -> Option<Result<(u64, u64), ()>> {
        let range = parse_range(value)?;
        Some(range.resolve(size).map(|r| (r.start, r.end)).ok_or(()))
    }

    #[test]
    fn ranges_resolve_against_a_size() {
        assert_eq!(range("bytes=0-9", 100), Some(Ok((0, 10))));
        assert_eq!(range("bytes=90-", 100), Some(Ok((90, 100))));
        assert_eq!(range("bytes=-10", 100), Some(Ok((90, 100))));
        assert_eq!(
            range("bytes=-500", 100),
            Some(Ok((0, 100))),
            "a suffix past the start"
        );
        assert_eq!(range("bytes=50-500", 100), Some(Ok((50, 100))));
        assert_eq!(range("bytes=99-99", 100), Some(Ok((99, 100))));
        assert_eq!(range("bytes=0-0", 1), Some(Ok((0, 1))));
        assert_eq!(
            range("bytes=0-18446744073709551615", 100),
            Some(Ok((0, 100)))
        );
        // Not satisfiable.
        assert_eq!(range("bytes=100-", 100), Some(Err(())));
        assert_eq!(range("bytes=100-200", 100), Some(Err(())));
        assert_eq!(range("bytes=18446744073709551615-", 100), Some(Err(())));
        assert_eq!(range("bytes=-0", 100), Some(Err(())), "an empty suffix");
        assert_eq!(range("bytes=-5", 0), Some(Err(())), "any suffix of nothing");
        assert_eq!(range("bytes=0-", 0), Some(Err(())));
        // Ignored, whatever the size.
        assert_eq!(range("bytes=0-1,5-6", 100), None);
        assert_eq!(range("items=0-1", 100), None);
        assert_eq!(range("bytes=5-2", 100), None);
        assert_eq!(range("bytes=5-2", 0), None);
    }

    #[test]
    fn a_hand_made_inverted_range_is_not_satisfiable() {
        assert_eq!(ByteRange::Inclusive(5, 2).resolve(100), None);
    }
}
