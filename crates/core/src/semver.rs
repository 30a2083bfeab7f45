//! Go's dialect of semantic versioning (`golang.org/x/mod/semver`).
//!
//! Versions carry a leading `v`; the shorthands `vM` and `vM.N` mean `vM.0.0` and `vM.N.0`.
//! Functions take plain strings and mirror the Go API, because version strings arrive from the
//! network and from go.mod files before they are known to be valid: every function answers for
//! invalid input too (`""`, or "less than every valid version"). The typed, always-canonical
//! [`crate::version::Version`] is built on top of this.

use std::cmp::Ordering;

/// A parsed semantic version, borrowing from the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parsed<'a> {
    major: &'a str,
    /// Empty when the input was the `vM` shorthand.
    minor: &'a str,
    /// Empty when the input was a `vM` or `vM.N` shorthand.
    patch: &'a str,
    /// Including the leading `-`, or empty.
    prerelease: &'a str,
    /// Including the leading `+`, or empty.
    build: &'a str,
}

impl Parsed<'_> {
    fn minor_or_zero(&self) -> &str {
        if self.minor.is_empty() {
            "0"
        } else {
            self.minor
        }
    }

    fn patch_or_zero(&self) -> &str {
        if self.patch.is_empty() {
            "0"
        } else {
            self.patch
        }
    }
}

fn parse(v: &str) -> Option<Parsed<'_>> {
    let rest = v.strip_prefix('v')?;
    let (major, rest) = parse_int(rest)?;
    if rest.is_empty() {
        return Some(Parsed {
            major,
            minor: "",
            patch: "",
            prerelease: "",
            build: "",
        });
    }
    let rest = rest.strip_prefix('.')?;
    let (minor, rest) = parse_int(rest)?;
    if rest.is_empty() {
        return Some(Parsed {
            major,
            minor,
            patch: "",
            prerelease: "",
            build: "",
        });
    }
    let rest = rest.strip_prefix('.')?;
    let (patch, mut rest) = parse_int(rest)?;
    let mut prerelease = "";
    if rest.starts_with('-') {
        let end = rest.find('+').unwrap_or(rest.len());
        prerelease = &rest[..end];
        if !valid_identifiers(&prerelease[1..], true) {
            return None;
        }
        rest = &rest[end..];
    }
    let mut build = "";
    if rest.starts_with('+') {
        build = rest;
        if !valid_identifiers(&build[1..], false) {
            return None;
        }
        rest = "";
    }
    if !rest.is_empty() {
        return None;
    }
    Some(Parsed {
        major,
        minor,
        patch,
        prerelease,
        build,
    })
}

/// A decimal number without leading zeros at the start of `s`, and the rest.
fn parse_int(s: &str) -> Option<(&str, &str)> {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    let num = &s[..end];
    if num.is_empty() || (num.len() > 1 && num.starts_with('0')) {
        return None;
    }
    Some((num, &s[end..]))
}

/// Dot-separated non-empty identifiers of `[0-9A-Za-z-]`; in a prerelease, numeric identifiers
/// must not have leading zeros.
fn valid_identifiers(s: &str, prerelease: bool) -> bool {
    s.split('.').all(|id| {
        !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !(prerelease && is_number(id) && id.len() > 1 && id.starts_with('0'))
    })
}

fn is_number(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())
}

/// Whether `v` is a valid semantic version (`IsValid`).
pub fn is_valid(v: &str) -> bool {
    parse(v).is_some()
}

/// The canonical form of `v` (`Canonical`): shorthands expanded, build metadata dropped; `""` if
/// `v` is invalid.
pub fn canonical(v: &str) -> String {
    match parse(v) {
        Some(p) => format!(
            "v{}.{}.{}{}",
            p.major,
            p.minor_or_zero(),
            p.patch_or_zero(),
            p.prerelease
        ),
        None => String::new(),
    }
}

/// The major version prefix, like `v2` (`Major`); `""` if invalid.
pub fn major(v: &str) -> &str {
    match parse(v) {
        Some(p) => &v[..1 + p.major.len()],
        None => "",
    }
}

/// The `vM.N` prefix (`MajorMinor`); for the `vM` shorthand, `vM.0`; `""` if invalid.
pub fn major_minor(v: &str) -> String {
    match parse(v) {
        Some(p) if p.minor.is_empty() => format!("v{}.0", p.major),
        Some(p) => v[..1 + p.major.len() + 1 + p.minor.len()].to_string(),
        None => String::new(),
    }
}

/// The prerelease suffix including its `-` (`Prerelease`); `""` if none or invalid.
pub fn prerelease(v: &str) -> &str {
    parse(v).map_or("", |p| p.prerelease)
}

/// The build suffix including its `+` (`Build`); `""` if none or invalid.
pub fn build(v: &str) -> &str {
    parse(v).map_or("", |p| p.build)
}

/// Compares two versions (`Compare`). Invalid versions are equal to each other and less than every
/// valid one; build metadata is ignored.
pub fn compare(v: &str, w: &str) -> Ordering {
    match (parse(v), parse(w)) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(a), Some(b)) => compare_int(a.major, b.major)
            .then_with(|| compare_int(a.minor_or_zero(), b.minor_or_zero()))
            .then_with(|| compare_int(a.patch_or_zero(), b.patch_or_zero()))
            .then_with(|| compare_prerelease(a.prerelease, b.prerelease)),
    }
}

/// The larger of two versions in canonical form (`Max`); invalid versions are less than every
/// valid one.
pub fn max(v: &str, w: &str) -> String {
    let (v, w) = (canonical(v), canonical(w));
    if compare(&v, &w) == Ordering::Greater {
        v
    } else {
        w
    }
}

/// Sorts versions in increasing order (`Sort`): by [`compare`], ties broken byte-wise.
pub fn sort<S: AsRef<str>>(list: &mut [S]) {
    list.sort_by(|a, b| compare(a.as_ref(), b.as_ref()).then_with(|| a.as_ref().cmp(b.as_ref())));
}

/// Decimal strings without leading zeros compare by length, then lexically.
fn compare_int(a: &str, b: &str) -> Ordering {
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn compare_prerelease(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let mut xs = a[1..].split('.');
    let mut ys = b[1..].split('.');
    loop {
        match (xs.next(), ys.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let ord = match (is_number(x), is_number(y)) {
                    (true, true) => compare_int(x, y),
                    (true, false) => Ordering::Less,
                    (false, true) => Ordering::Greater,
                    (false, false) => x.cmp(y),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shorthands_and_suffixes() {
        assert_eq!(canonical("v1.2"), "v1.2.0");
        assert_eq!(canonical("v1.2.3-pre+meta"), "v1.2.3-pre");
        assert!(!is_valid("v1.2-pre"));
        assert!(!is_valid("v1+meta"));
        assert!(!is_valid("v01.2.3"));
        assert!(!is_valid("v1.2.3-01"));
        assert!(is_valid("v1.2.3+01"));
        assert_eq!(major_minor("v2"), "v2.0");
        assert_eq!(major("v10.1.0"), "v10");
    }

    #[test]
    fn ordering() {
        assert_eq!(compare("v1.0.0-alpha", "v1.0.0"), Ordering::Less);
        assert_eq!(compare("v1.0.0-2", "v1.0.0-10"), Ordering::Less);
        assert_eq!(compare("v1.0.0-a", "v1.0.0-a.1"), Ordering::Less);
        assert_eq!(compare("v1.0.0-1", "v1.0.0-a"), Ordering::Less);
        assert_eq!(compare("v1.2.3+x", "v1.2.3"), Ordering::Equal);
        assert_eq!(compare("bad", "v0.0.0"), Ordering::Less);
        assert_eq!(
            compare("v100000000000000000000.0.0", "v9.0.0"),
            Ordering::Greater
        );
        assert_eq!(max("bad", "v1.0.0"), "v1.0.0");
    }
}
