//! The vendor rule (spec §4.4): which files of a module tree are vendored packages and stay out
//! of its zip, depending on the language version in the root `go.mod`.
//!
//! Go 1.24 fixed two things, and the fix only applies to modules that declare `go 1.24` or later
//! so that the checksums of older modules never change: `vendor/modules.txt` is omitted, and a
//! file directly in a nested `…/vendor/` directory is no longer mistaken for a vendored package.

/// Go's `isVendoredPackage(name, goVersion)`: whether `name` (slash-separated, relative to the
/// module root) lies in a vendored package and must be omitted from the zip.
///
/// `go_version` is a toolchain version such as `go1.24` or `go1.22.4` (the root `go.mod`'s `go`
/// directive with a `go` prefix), or `""` when there is none. Versions are ordered as
/// `go/version` orders them; an invalid one counts as older than everything.
pub fn is_vendored_package(name: &[u8], go_version: &str) -> bool {
    let at_least_1_24 = go_version_at_least(go_version, 1, 24);
    if at_least_1_24 && name == b"vendor/modules.txt" {
        return true;
    }
    let i = if name.starts_with(b"vendor/") {
        b"vendor/".len()
    } else if let Some(j) = find(name, b"/vendor/") {
        if at_least_1_24 {
            j + b"/vendor/".len()
        } else {
            // The pre-1.24 bug (golang.org/issue/37397), kept for checksum stability: the offset of
            // "/vendor/" is forgotten, so the rest is measured from byte 8 of the whole name.
            b"/vendor/".len()
        }
    } else {
        return false;
    };
    name.get(i..).is_some_and(|rest| rest.contains(&b'/'))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Whether the Go toolchain version `v` is valid and at least `go<major>.<minor>`.
///
/// Within a language version, `go1.24` sorts below `go1.24rc1` and `go1.24.0`, so a valid `v` is
/// at least `go1.24` exactly when its major and minor numbers are.
pub(crate) fn go_version_at_least(v: &str, major: u64, minor: u64) -> bool {
    parse_go_version(v).is_some_and(|(ma, mi)| (ma, mi) >= (major, minor))
}

/// Parses a toolchain version the way `go/version` does (`go1`, `go1.21`, `go1.21.3`,
/// `go1.22rc1`, with an optional `-suffix`), returning its major and minor numbers.
fn parse_go_version(v: &str) -> Option<(u64, u64)> {
    let v = v.split('-').next().unwrap_or("");
    let v = v.strip_prefix("go")?;
    let (major, rest) = cut_int(v)?;
    if rest.is_empty() {
        return Some((major, 0));
    }
    let (minor, rest) = cut_int(rest.strip_prefix('.')?)?;
    if rest.is_empty() {
        return Some((major, minor));
    }
    if let Some(patch) = rest.strip_prefix('.') {
        let (_, rest) = cut_int(patch)?;
        return rest.is_empty().then_some((major, minor));
    }
    // A pre-release: lower-case letters, then an optional number.
    let letters = rest.bytes().take_while(u8::is_ascii_lowercase).count();
    if letters == 0 {
        return None;
    }
    let rest = &rest[letters..];
    if rest.is_empty() {
        return Some((major, minor));
    }
    let (_, rest) = cut_int(rest)?;
    rest.is_empty().then_some((major, minor))
}

/// A leading decimal number without leading zeros, and the rest. Numbers too long for `u64`
/// saturate, which keeps their order against the small numbers compared here.
fn cut_int(s: &str) -> Option<(u64, &str)> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || (s.starts_with('0') && digits != 1) {
        return None;
    }
    let value = s[..digits].parse().unwrap_or(u64::MAX);
    Some((value, &s[digits..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for (v, want) in [
            ("", false),
            ("go1.23.1", false),
            ("go1.24", true),
            ("go1.24rc1", true),
            ("go1.24.0", true),
            ("go1.99.0", true),
            ("go2", true),
            ("go1.024", false),
            ("go1.24.x", false),
            ("1.24", false),
            ("go1.24-bigcorp", true),
        ] {
            assert_eq!(go_version_at_least(v, 1, 24), want, "{v}");
        }
    }

    #[test]
    fn vendor_rule() {
        assert!(is_vendored_package(b"vendor/foo/foo.go", ""));
        assert!(!is_vendored_package(b"vendor/vendor.go", "go1.24"));
        assert!(!is_vendored_package(b"vendor/modules.txt", "go1.23"));
        assert!(is_vendored_package(b"vendor/modules.txt", "go1.24"));
        assert!(is_vendored_package(b"pkg/vendor/vendor.go", "go1.23"));
        assert!(!is_vendored_package(b"pkg/vendor/vendor.go", "go1.24"));
        assert!(!is_vendored_package(b"a/vendor", ""));
    }
}
