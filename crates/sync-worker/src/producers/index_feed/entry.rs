//! One line of an index feed (`{"Path":…,"Version":…,"Timestamp":…}`) and the feed's RFC 3339
//! timestamps.

use std::fmt;

use serde::Deserialize;
use strata_core::path::ModulePath;
use strata_core::pseudo::Timestamp;
use strata_core::version::Version;

/// An instant of a feed: whole seconds since the Unix epoch and nanoseconds (the public index
/// writes microseconds, other feeds may write any precision up to nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeedTime {
    secs: i64,
    nanos: u32,
}

impl FeedTime {
    /// Parses RFC 3339: `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = || format!("timestamp {text:?} is not RFC 3339");
        let bytes = text.as_bytes();
        if bytes.len() < 20
            || bytes[4] != b'-'
            || bytes[7] != b'-'
            || !matches!(bytes[10], b'T' | b't')
            || bytes[13] != b':'
            || bytes[16] != b':'
        {
            return Err(bad());
        }
        let digits = |range: std::ops::Range<usize>| -> Result<&str, String> {
            let s = &text[range];
            if s.bytes().all(|b| b.is_ascii_digit()) {
                Ok(s)
            } else {
                Err(bad())
            }
        };
        let compact = [
            digits(0..4)?,
            digits(5..7)?,
            digits(8..10)?,
            digits(11..13)?,
            digits(14..16)?,
            digits(17..19)?,
        ]
        .concat();
        let civil = Timestamp::parse_compact(&compact).ok_or_else(bad)?;
        let mut rest = &text[19..];
        let mut nanos = 0u32;
        if let Some(fraction) = rest.strip_prefix('.') {
            let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if len == 0 || len > 9 {
                return Err(bad());
            }
            let padded = format!("{:0<9}", &fraction[..len]);
            nanos = padded.parse().map_err(|_| bad())?;
            rest = &fraction[len..];
        }
        let offset = match rest {
            "Z" | "z" => 0,
            _ => {
                let b = rest.as_bytes();
                if b.len() != 6 || !matches!(b[0], b'+' | b'-') || b[3] != b':' {
                    return Err(bad());
                }
                let h: i64 = rest[1..3].parse().map_err(|_| bad())?;
                let m: i64 = rest[4..6].parse().map_err(|_| bad())?;
                if h > 23 || m > 59 {
                    return Err(bad());
                }
                let sign = if b[0] == b'-' { -1 } else { 1 };
                sign * (h * 3600 + m * 60)
            }
        };
        Ok(Self {
            secs: civil.unix_seconds() - offset,
            nanos,
        })
    }

    /// Seconds since the Unix epoch, with the fraction.
    pub fn as_secs_f64(&self) -> f64 {
        self.secs as f64 + f64::from(self.nanos) / 1e9
    }
}

impl fmt::Display for FeedTime {
    /// RFC 3339 in UTC with nanoseconds.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let civil = Timestamp::from_unix_seconds(self.secs);
        let whole = civil.to_string();
        let date_time = whole.strip_suffix('Z').unwrap_or(&whole);
        write!(f, "{date_time}.{:09}Z", self.nanos)
    }
}

/// A valid feed entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// The module.
    pub module: ModulePath,
    /// Its new version.
    pub version: Version,
    /// The timestamp as the feed wrote it (what the next `since` repeats).
    pub timestamp: String,
    /// The timestamp, parsed.
    pub at: FeedTime,
}

impl FeedEntry {
    /// `module@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.module, self.version)
    }
}

#[derive(Deserialize)]
struct RawEntry {
    #[serde(rename = "Path")]
    path: String,
    #[serde(rename = "Version")]
    version: String,
    #[serde(rename = "Timestamp")]
    timestamp: String,
}

/// Parses one line: a JSON object with `Path`, `Version` (canonical, fitting the path's major
/// version) and `Timestamp` (RFC 3339). Other fields are ignored.
pub fn parse_line(line: &str) -> Result<FeedEntry, String> {
    let raw: RawEntry = serde_json::from_str(line).map_err(|e| format!("not an entry: {e}"))?;
    let module = ModulePath::new(&raw.path).map_err(|e| e.to_string())?;
    let version = Version::new(&raw.version).map_err(|e| e.to_string())?;
    strata_core::version::check(module.as_str(), version.as_str()).map_err(|e| e.to_string())?;
    let at = FeedTime::parse(&raw.timestamp)?;
    Ok(FeedEntry {
        module,
        version,
        timestamp: raw.timestamp,
        at,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn timestamps_parse_with_any_precision_and_offset() {
        let t = FeedTime::parse("2019-04-10T19:08:52.997264Z").unwrap();
        assert_eq!(t.secs, 1_554_923_332);
        assert_eq!(t.nanos, 997_264_000);
        assert_eq!(t.to_string(), "2019-04-10T19:08:52.997264000Z");
        assert_eq!(FeedTime::parse(&t.to_string()).unwrap(), t);
        let whole = FeedTime::parse("2019-04-10T19:08:52Z").unwrap();
        assert_eq!((whole.secs, whole.nanos), (1_554_923_332, 0));
        assert!(whole < t);
        assert_eq!(
            FeedTime::parse("2019-04-10T21:08:52.997264+02:00").unwrap(),
            t,
            "an offset is folded into UTC"
        );
        assert_eq!(
            FeedTime::parse("2019-04-10T17:08:52.997264-02:00").unwrap(),
            t
        );
        assert_eq!(
            FeedTime::parse("2019-04-10T19:08:52.123456789Z")
                .unwrap()
                .nanos,
            123_456_789
        );
        for bad in [
            "",
            "2019-04-10",
            "2019-04-10 19:08:52Z",
            "2019-13-10T19:08:52Z",
            "2019-04-10T19:08:52",
            "2019-04-10T19:08:52.Z",
            "2019-04-10T19:08:52.1234567891Z",
            "2019-04-10T19:08:52+2:00",
            "2019-04-10T24:08:52Z",
            "2019-02-30T19:08:52Z",
            "20x9-04-10T19:08:52Z",
        ] {
            assert!(FeedTime::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn lines_are_validated() {
        let e = parse_line(
            r#"{"Path":"golang.org/x/text","Version":"v0.3.0","Timestamp":"2019-04-10T19:08:52.997264Z","Extra":1}"#,
        )
        .unwrap();
        assert_eq!(e.id(), "golang.org/x/text@v0.3.0");
        assert_eq!(e.timestamp, "2019-04-10T19:08:52.997264Z");
        for (line, want) in [
            ("not json", "not an entry"),
            (r#"{"Path":"a.com/m","Version":"v1.0.0"}"#, "Timestamp"),
            (
                r#"{"Path":"bad path","Version":"v1.0.0","Timestamp":"2019-04-10T19:08:52Z"}"#,
                "malformed module path",
            ),
            (
                r#"{"Path":"a.com/m","Version":"1.0","Timestamp":"2019-04-10T19:08:52Z"}"#,
                "semantic",
            ),
            (
                r#"{"Path":"a.com/m","Version":"v2.0.0","Timestamp":"2019-04-10T19:08:52Z"}"#,
                "should be v0 or v1",
            ),
            (
                r#"{"Path":"a.com/m","Version":"v1.0.0","Timestamp":"yesterday"}"#,
                "RFC 3339",
            ),
        ] {
            let error = parse_line(line).unwrap_err();
            assert!(error.contains(want), "{line}: {error}");
        }
    }
}
