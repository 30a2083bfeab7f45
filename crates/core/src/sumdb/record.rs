//! The checksum database's text formats: the tree description signed in `/latest` notes
//! ([`Tree`]) and the `/lookup` response body (record id, record text, signed tree note).

use base64::Engine as _;

use super::tlog::Hash;

/// A tree head: the number of records `n` and the tree hash over them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Tree {
    /// Number of records in the tree.
    pub n: u64,
    /// [`super::tlog::tree_hash`] of those records.
    pub hash: Hash,
}

/// A tree description or record that does not follow the format.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The tree description is malformed.
    #[error("malformed tree note")]
    MalformedTree,
    /// The record (or lookup response) is malformed.
    #[error("malformed record data")]
    MalformedRecord,
}

const TREE_PREFIX: &str = "go.sum database tree\n";

/// The tree description `go.sum database tree\nN\nHASH\n` that a server signs.
pub fn format_tree(tree: &Tree) -> String {
    format!("{TREE_PREFIX}{}\n{}\n", tree.n, tree.hash)
}

/// Parses a tree description; lines after the hash are ignored for forward compatibility.
pub fn parse_tree(text: &[u8]) -> Result<Tree, FormatError> {
    if !text.starts_with(TREE_PREFIX.as_bytes())
        || text.iter().filter(|&&b| b == b'\n').count() < 3
        || text.len() > 1_000_000
    {
        return Err(FormatError::MalformedTree);
    }
    let mut lines = text.splitn(4, |&b| b == b'\n').skip(1);
    let (Some(n), Some(hash)) = (lines.next(), lines.next()) else {
        return Err(FormatError::MalformedTree);
    };
    let n = parse_canonical_u63(n).ok_or(FormatError::MalformedTree)?;
    let hash = base64::engine::general_purpose::STANDARD
        .decode(hash)
        .ok()
        .and_then(|raw| Hash::from_slice(&raw))
        .ok_or(FormatError::MalformedTree)?;
    Ok(Tree { n, hash })
}

/// A non-negative int64 in canonical decimal (no sign, no leading zeros).
fn parse_canonical_u63(s: &[u8]) -> Option<u64> {
    let s = std::str::from_utf8(s).ok()?;
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) || (s.len() > 1 && s.starts_with('0'))
    {
        return None;
    }
    let n: u64 = s.parse().ok()?;
    (n <= i64::MAX as u64).then_some(n)
}

/// Whether `text` may be a record: valid UTF-8, no control characters but `\n`, non-empty,
/// ends in `\n`, no blank line.
pub fn is_valid_record_text(text: &[u8]) -> bool {
    let Ok(s) = std::str::from_utf8(text) else {
        return false;
    };
    s.ends_with('\n') && !s.contains("\n\n") && !s.chars().any(|c| c < ' ' && c != '\n')
}

/// The lookup-response prefix for record `id`: `id\ntext\n` (the signed tree note follows).
pub fn format_record(id: u64, text: &[u8]) -> Result<Vec<u8>, FormatError> {
    if !is_valid_record_text(text) {
        return Err(FormatError::MalformedRecord);
    }
    let mut msg = format!("{id}\n").into_bytes();
    msg.extend_from_slice(text);
    msg.push(b'\n');
    Ok(msg)
}

/// A parsed lookup response.
#[derive(Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The record's index in the log.
    pub id: u64,
    /// The record text (ends in one `\n`).
    pub text: &'a [u8],
    /// What follows the record: for `/lookup`, the signed tree note.
    pub rest: &'a [u8],
}

/// Splits a lookup response into record id, record text and the rest.
pub fn parse_record(msg: &[u8]) -> Result<Record<'_>, FormatError> {
    let i = msg
        .iter()
        .position(|&b| b == b'\n')
        .ok_or(FormatError::MalformedRecord)?;
    let id = std::str::from_utf8(&msg[..i])
        .ok()
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|&id| id <= i64::MAX as u64)
        .ok_or(FormatError::MalformedRecord)?;
    let msg = &msg[i + 1..];
    let j = msg
        .windows(2)
        .position(|w| w == b"\n\n")
        .ok_or(FormatError::MalformedRecord)?;
    let (text, rest) = (&msg[..j + 1], &msg[j + 2..]);
    if !is_valid_record_text(text) {
        return Err(FormatError::MalformedRecord);
    }
    Ok(Record { id, text, rest })
}

/// The record texts of a data tile (each ends in one `\n`; a blank line follows it). A record
/// has no blank line, so the first `\n\n` after a record's start ends it; bytes after the last
/// blank line are not a record.
pub fn split_data_tile(data: &[u8]) -> Vec<&[u8]> {
    let mut records = Vec::new();
    let mut rest = data;
    while let Some(j) = rest.windows(2).position(|w| w == b"\n\n") {
        records.push(&rest[..=j]);
        rest = &rest[j + 2..];
    }
    records
}

/// The go.sum lines of a record that belong to `module version` (`version` may end in
/// `/go.mod`): the lines starting with `"module version "`.
pub fn record_lines(text: &[u8], module: &str, version: &str) -> Vec<String> {
    let prefix = format!("{module} {version} ");
    String::from_utf8_lossy(text)
        .split('\n')
        .filter(|line| line.starts_with(&prefix))
        .map(str::to_owned)
        .collect()
}
