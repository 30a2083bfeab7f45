//! Pseudo-versions (`module/pseudo.go`): versions that name an untagged commit, in the three forms
//!
//! 1. `vX.0.0-yyyymmddhhmmss-abcdefabcdef` (no earlier tag with major X),
//! 2. `vX.Y.(Z+1)-0.yyyymmddhhmmss-abcdefabcdef` (latest tag before it is the release `vX.Y.Z`),
//! 3. `vX.Y.Z-pre.0.yyyymmddhhmmss-abcdefabcdef` (latest tag before it is `vX.Y.Z-pre`),
//!
//! each optionally followed by `+incompatible`.

use std::fmt;

use thiserror::Error;

use crate::path::quote;
use crate::semver;

/// A pseudo-version that cannot be taken apart as asked.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid pseudo-version {}: {reason}", quote(version))]
pub struct PseudoError {
    /// The offending version.
    pub version: String,
    /// What is wrong with it.
    pub reason: String,
}

fn error(version: &str, reason: impl Into<String>) -> PseudoError {
    PseudoError {
        version: version.to_string(),
        reason: reason.into(),
    }
}

/// A UTC time with one-second resolution, as pseudo-versions carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Year (four digits in pseudo-versions).
    pub year: u16,
    /// Month, 1–12.
    pub month: u8,
    /// Day of month, 1–31.
    pub day: u8,
    /// Hour, 0–23.
    pub hour: u8,
    /// Minute, 0–59.
    pub minute: u8,
    /// Second, 0–59.
    pub second: u8,
}

impl Timestamp {
    /// Parses the 14-digit `yyyymmddhhmmss` form, rejecting impossible dates and times.
    pub fn parse_compact(s: &str) -> Option<Self> {
        if s.len() != 14 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let num = |r: std::ops::Range<usize>| s[r].parse::<u16>().ok();
        let t = Timestamp {
            year: num(0..4)?,
            month: u8::try_from(num(4..6)?).ok()?,
            day: u8::try_from(num(6..8)?).ok()?,
            hour: u8::try_from(num(8..10)?).ok()?,
            minute: u8::try_from(num(10..12)?).ok()?,
            second: u8::try_from(num(12..14)?).ok()?,
        };
        let valid = (1..=12).contains(&t.month)
            && t.day >= 1
            && t.day <= days_in_month(t.year, t.month)
            && t.hour < 24
            && t.minute < 60
            && t.second < 60;
        valid.then_some(t)
    }

    /// The `yyyymmddhhmmss` form used inside pseudo-versions.
    pub fn compact(&self) -> String {
        format!(
            "{:04}{:02}{:02}{:02}{:02}{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }

    /// Seconds since the Unix epoch.
    pub fn unix_seconds(&self) -> i64 {
        let days = days_from_civil(i64::from(self.year), self.month, self.day);
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// The time `secs` seconds after the Unix epoch (years 0–9999; clamped outside).
    pub fn from_unix_seconds(secs: i64) -> Self {
        let secs = secs.clamp(-62_167_219_200, 253_402_300_799);
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        // Each narrowing below is in range by construction of the clamp and the remainders.
        Timestamp {
            year: u16::try_from(year).unwrap_or(0),
            month,
            day,
            hour: (rem / 3600) as u8,
            minute: (rem % 3600 / 60) as u8,
            second: (rem % 60) as u8,
        }
    }
}

/// RFC 3339 in UTC, e.g. `2006-01-02T15:04:05Z`, as `.info` files carry it.
impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u8, u8) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Whether `v` is a pseudo-version (`module.IsPseudoVersion`).
pub fn is_pseudo_version(v: &str) -> bool {
    v.matches('-').count() >= 2 && semver::is_valid(v) && matches_pseudo_syntax(v)
}

/// The regular expression of x/mod, written out:
/// `^v[0-9]+\.(0\.0-|\d+\.\d+-([^+]*\.)?0\.)\d{14}-[A-Za-z0-9]+(\+[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?$`.
fn matches_pseudo_syntax(v: &str) -> bool {
    let (core, build) = match v.find('+') {
        Some(i) => (&v[..i], &v[i + 1..]),
        None => (v, ""),
    };
    if v.contains('+')
        && !build
            .split('.')
            .all(|id| !id.is_empty() && id.bytes().all(is_ident_byte))
    {
        return false;
    }
    let Some(dash) = core.rfind('-') else {
        return false;
    };
    let rev = &core[dash + 1..];
    if rev.is_empty() || !rev.bytes().all(|b| b.is_ascii_alphanumeric()) || dash < 14 {
        return false;
    }
    let stamp = &core[dash - 14..dash];
    if !stamp.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let prefix = &core[..dash - 14];
    let Some(rest) = prefix.strip_prefix('v') else {
        return false;
    };
    let Some(rest) = skip_digits(rest).and_then(|r| r.strip_prefix('.')) else {
        return false;
    };
    // Form 1: `vX.0.0-`.
    if rest == "0.0-" {
        return true;
    }
    // Forms 2 and 3: `vX.Y.Z-` then an optional run ending in `.`, then `0.`.
    let Some(rest) = skip_digits(rest).and_then(|r| r.strip_prefix('.')) else {
        return false;
    };
    let Some(rest) = skip_digits(rest).and_then(|r| r.strip_prefix('-')) else {
        return false;
    };
    match rest.strip_suffix("0.") {
        Some(middle) => middle.is_empty() || middle.ends_with('.'),
        None => false,
    }
}

fn is_ident_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// Skips one or more ASCII digits.
fn skip_digits(s: &str) -> Option<&str> {
    let end = s
        .bytes()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(s.len());
    (end > 0).then(|| &s[end..])
}

/// The parts of a pseudo-version: base (`vX.0.0`, `vX.Y.Z-0` or `vX.Y.Z-pre.0`), timestamp,
/// revision and build suffix.
fn parse(v: &str) -> Result<(&str, &str, &str, &str), PseudoError> {
    if !is_pseudo_version(v) {
        return Err(error(v, "syntax error"));
    }
    let build = semver::build(v);
    let v = &v[..v.len() - build.len()];
    let (v, rev) = v.rsplit_once('-').ok_or_else(|| error(v, "syntax error"))?;
    let i = v.rfind('-').unwrap_or(0);
    match v.rfind('.') {
        Some(j) if j > i => Ok((&v[..j], &v[j + 1..], rev, build)),
        _ => Ok((&v[..i], &v[i + 1..], rev, build)),
    }
}

/// The commit time recorded in a pseudo-version (`module.PseudoVersionTime`).
pub fn pseudo_version_time(v: &str) -> Result<Timestamp, PseudoError> {
    let (_, stamp, _, _) = parse(v)?;
    Timestamp::parse_compact(stamp).ok_or_else(|| error(v, "does not contain a valid timestamp"))
}

/// The revision identifier of a pseudo-version (`module.PseudoVersionRev`).
pub fn pseudo_version_rev(v: &str) -> Result<&str, PseudoError> {
    parse(v).map(|(_, _, rev, _)| rev)
}

/// The tagged version a pseudo-version builds on, `""` for form 1 (`module.PseudoVersionBase`).
pub fn pseudo_version_base(v: &str) -> Result<String, PseudoError> {
    let (base, _, _, build) = parse(v)?;
    match semver::prerelease(base) {
        "" => {
            if !build.is_empty() {
                return Err(error(
                    v,
                    format!(
                        "lacks base version, but has build metadata {}",
                        quote(build)
                    ),
                ));
            }
            Ok(String::new())
        }
        "-0" => {
            let base = &base[..base.len() - 2];
            let i = base
                .rfind('.')
                .ok_or_else(|| error(v, "base version has no patch number"))?;
            let patch = dec_decimal(&base[i + 1..]);
            if patch.is_empty() {
                return Err(error(
                    v,
                    format!("version before {base} would have negative patch number"),
                ));
            }
            Ok(format!("{}{patch}{build}", &base[..=i]))
        }
        _ => Ok(format!(
            "{}{build}",
            base.strip_suffix(".0").unwrap_or(base)
        )),
    }
}

/// Builds a pseudo-version (`module.PseudoVersion`) for a commit at `time` with revision `rev`,
/// on top of the tag `older` (or none: `""`, using `major`, default `v0`).
pub fn pseudo_version(major: &str, older: &str, time: Timestamp, rev: &str) -> String {
    let major = if major.is_empty() { "v0" } else { major };
    let segment = format!("{}-{rev}", time.compact());
    let build = semver::build(older);
    let older = semver::canonical(older);
    if older.is_empty() {
        return format!("{major}.0.0-{segment}");
    }
    if !semver::prerelease(&older).is_empty() {
        return format!("{older}.0.{segment}{build}");
    }
    let i = older.rfind('.').map_or(0, |i| i + 1);
    format!(
        "{}{}-0.{segment}{build}",
        &older[..i],
        inc_decimal(&older[i..])
    )
}

/// `module.ZeroPseudoVersion`: the pseudo-version used when no commit information is known.
pub fn zero_pseudo_version(major: &str) -> String {
    let zero = Timestamp {
        year: 1,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    };
    pseudo_version(major, "", zero, "000000000000")
}

/// Adds one to a decimal string of any length.
pub fn inc_decimal(decimal: &str) -> String {
    let mut digits = decimal.as_bytes().to_vec();
    let mut i = digits.len();
    while i > 0 && digits[i - 1] == b'9' {
        digits[i - 1] = b'0';
        i -= 1;
    }
    if i > 0 {
        digits[i - 1] += 1;
    } else {
        digits.insert(0, b'1');
    }
    String::from_utf8(digits).unwrap_or_default()
}

/// Subtracts one from a decimal string of any length; `""` for zero (or empty).
pub fn dec_decimal(decimal: &str) -> String {
    let mut digits = decimal.as_bytes().to_vec();
    let mut i = digits.len();
    while i > 0 && digits[i - 1] == b'0' {
        digits[i - 1] = b'9';
        i -= 1;
    }
    if i == 0 {
        return String::new();
    }
    if i == 1 && digits[0] == b'1' && digits.len() > 1 {
        digits.remove(0);
    } else {
        digits[i - 1] -= 1;
    }
    String::from_utf8(digits).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert!(is_pseudo_version("v0.0.0-20060102150405-abcdef123456"));
        assert!(is_pseudo_version("v1.2.4-0.20060102150405-abcdef123456"));
        assert!(is_pseudo_version(
            "v1.2.3-pre.0.20060102150405-abcdef123456+incompatible"
        ));
        assert!(!is_pseudo_version("v1.2.3-pre"));
        assert_eq!(
            pseudo_version_base("v1.2.4-0.20060102150405-abc").unwrap(),
            "v1.2.3"
        );
        assert_eq!(
            pseudo_version_base("v1.2.3-pre.0.20060102150405-abc").unwrap(),
            "v1.2.3-pre"
        );
        assert!(pseudo_version_base("v1.2.0-0.20060102150405-abc").is_err());
        assert!(pseudo_version_time("v0.0.0-20061302150405-abc").is_err());
    }

    #[test]
    fn unix_round_trip() {
        let t = Timestamp::parse_compact("20240229235959").unwrap();
        assert_eq!(Timestamp::from_unix_seconds(t.unix_seconds()), t);
        assert_eq!(
            Timestamp::from_unix_seconds(0).to_string(),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(t.unix_seconds(), 1_709_251_199);
    }
}
