//! go.sum lines: `<module path> <version>[/go.mod] <alg>:<hash>` (protocol spec §5.4).
//!
//! Reading follows cmd/go's `readGoSum`: a line is split into Unicode-whitespace-separated fields,
//! blank lines are skipped and any other field count is an error naming the line. Nothing else is
//! checked on read (cmd/go checks paths and versions when it uses a line, and ignores hashes of
//! algorithms it does not know), so lines with other algorithms parse. Writing follows
//! `modfetch.WriteGoSum`: one line per hash, `\n`-terminated, in `module.Sort` order.

use std::cmp::Ordering;
use std::fmt;

use thiserror::Error;

use crate::semver;

/// The `/go.mod` suffix that marks the hash of a version's go.mod alone.
const GO_MOD_SUFFIX: &str = "/go.mod";

/// The `h1:` hash of an empty go.mod file. Old go commands wrote it by mistake; cmd/go drops
/// lines carrying it when reading go.sum (see [`GoSumLine::is_empty_go_mod_bug`]).
pub const EMPTY_GO_MOD_HASH: &str = "h1:G7mAYYxgmS0lVkHyy2hEOLQCFB0DlQFTMLWggykrydY=";

/// One go.sum line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GoSumLine {
    /// Module path.
    pub path: String,
    /// Module version, without the `/go.mod` suffix.
    pub version: String,
    /// Whether this line hashes only the version's go.mod (`<version>/go.mod`) rather than its
    /// zip.
    pub go_mod_only: bool,
    /// The hash, `<alg>:<base64>`, e.g. `h1:…`.
    pub hash: String,
}

/// A go.sum file that cmd/go would refuse.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GoSumError {
    /// A non-blank line without exactly three fields.
    #[error("malformed go.sum:\ngo.sum:{line}: wrong number of fields {fields}")]
    WrongFieldCount {
        /// 1-based line number.
        line: usize,
        /// How many fields it has.
        fields: usize,
    },
}

impl GoSumLine {
    /// The line for a module version's zip hash.
    pub fn zip(
        path: impl Into<String>,
        version: impl Into<String>,
        hash: impl Into<String>,
    ) -> Self {
        GoSumLine {
            path: path.into(),
            version: version.into(),
            go_mod_only: false,
            hash: hash.into(),
        }
    }

    /// The line for a module version's go.mod hash (`<version>/go.mod`).
    pub fn go_mod(
        path: impl Into<String>,
        version: impl Into<String>,
        hash: impl Into<String>,
    ) -> Self {
        GoSumLine {
            path: path.into(),
            version: version.into(),
            go_mod_only: true,
            hash: hash.into(),
        }
    }

    /// Parses one line; `Ok(None)` for a blank one. `line_no` is used in the error.
    pub fn parse(line: &str, line_no: usize) -> Result<Option<GoSumLine>, GoSumError> {
        let fields: Vec<&str> = line
            .split(char::is_whitespace)
            .filter(|f| !f.is_empty())
            .collect();
        let [path, version, hash] = fields.as_slice() else {
            if fields.is_empty() {
                return Ok(None);
            }
            return Err(GoSumError::WrongFieldCount {
                line: line_no,
                fields: fields.len(),
            });
        };
        let (version, go_mod_only) = match version.strip_suffix(GO_MOD_SUFFIX) {
            Some(v) => (v, true),
            None => (*version, false),
        };
        Ok(Some(GoSumLine {
            path: (*path).to_owned(),
            version: version.to_owned(),
            go_mod_only,
            hash: (*hash).to_owned(),
        }))
    }

    /// The version field as written in go.sum: the version, plus `/go.mod` for a go.mod hash.
    pub fn version_field(&self) -> String {
        if self.go_mod_only {
            format!("{}{GO_MOD_SUFFIX}", self.version)
        } else {
            self.version.clone()
        }
    }

    /// The hash algorithm, the part of the hash before `:` (`h1`); `""` when there is no `:`.
    pub fn algorithm(&self) -> &str {
        self.hash.split_once(':').map_or("", |(alg, _)| alg)
    }

    /// Whether this is the bogus empty-go.mod hash old go commands wrote, which cmd/go ignores.
    pub fn is_empty_go_mod_bug(&self) -> bool {
        self.hash == EMPTY_GO_MOD_HASH
    }
}

impl fmt::Display for GoSumLine {
    /// The line without its terminating newline.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let suffix = if self.go_mod_only { GO_MOD_SUFFIX } else { "" };
        write!(f, "{} {}{suffix} {}", self.path, self.version, self.hash)
    }
}

/// Parses a go.sum file: every non-blank line, in file order. Lines carrying
/// [`EMPTY_GO_MOD_HASH`] are kept (callers decide; cmd/go drops them).
pub fn parse_go_sum(text: &str) -> Result<Vec<GoSumLine>, GoSumError> {
    // cmd/go splits on '\n' only; a '\r' left at the end of a line is white space to the field
    // split.
    let mut lines = Vec::new();
    for (i, line) in text.split('\n').enumerate() {
        if let Some(l) = GoSumLine::parse(line, i + 1)? {
            lines.push(l);
        }
    }
    Ok(lines)
}

/// `module.Sort` order of go.sum lines: path (byte order), then version by semver, then the
/// `/go.mod` suffix (zip line first), then the hash (cmd/go sorts a key's hashes as strings).
/// Versions that semver ranks equal but spell differently are ordered by their text, so the
/// order is total.
pub fn compare_lines(a: &GoSumLine, b: &GoSumLine) -> Ordering {
    a.path
        .cmp(&b.path)
        .then_with(|| {
            if a.version == b.version {
                Ordering::Equal
            } else {
                semver::compare(&a.version, &b.version).then_with(|| a.version.cmp(&b.version))
            }
        })
        .then_with(|| a.go_mod_only.cmp(&b.go_mod_only))
        .then_with(|| a.hash.cmp(&b.hash))
}

/// Sorts lines into the order the go command writes them.
pub fn sort_go_sum(lines: &mut [GoSumLine]) {
    lines.sort_by(compare_lines);
}

/// Formats lines as go.sum text, sorted and without duplicates, each ending in `\n`.
pub fn format_go_sum(lines: &[GoSumLine]) -> String {
    let mut sorted = lines.to_vec();
    sort_go_sum(&mut sorted);
    sorted.dedup();
    let mut out = String::new();
    for line in &sorted {
        out.push_str(&line.to_string());
        out.push('\n');
    }
    out
}

/// The two go.sum lines for one module version, as cmd/go writes them once the zip has been
/// used: `path version <zip hash>` then `path version/go.mod <go.mod hash>`.
pub fn format_module_lines(path: &str, version: &str, zip_hash: &str, go_mod_hash: &str) -> String {
    format!(
        "{}\n{}\n",
        GoSumLine::zip(path, version, zip_hash),
        GoSumLine::go_mod(path, version, go_mod_hash)
    )
}
