//! A txtar parser (golang.org/x/tools/txtar) and the `key=value` test header of x/mod's zip
//! testdata, exactly as `vectors/README.md` describes them.
//!
//! The same parser as `crates/core/tests/common/txtar.rs`, which core's own tests keep (core
//! cannot dev-depend on this crate: it depends on core).

/// A parsed txtar archive.
#[derive(Debug, Clone)]
pub struct Archive {
    /// Everything before the first file marker.
    pub comment: Vec<u8>,
    /// `(name, data)` in archive order; names may repeat.
    pub files: Vec<(String, Vec<u8>)>,
}

/// Parses txtar: a `-- name --` line starts a file that runs to the next marker line (the
/// newline before a marker belongs to the file); only the last part gets a missing final
/// newline added.
pub fn parse(data: &[u8]) -> Archive {
    let (comment, mut name, mut rest) = find_marker(data);
    let mut files = Vec::new();
    while let Some(n) = name {
        let (body, next, after) = find_marker(rest);
        files.push((n, body));
        name = next;
        rest = after;
    }
    Archive { comment, files }
}

/// Splits at the first marker line: (data before it, marker name, data after its line).
fn find_marker(data: &[u8]) -> (Vec<u8>, Option<String>, &[u8]) {
    let mut i = 0;
    loop {
        if let Some((name, after)) = marker(&data[i..]) {
            return (data[..i].to_vec(), Some(name), after);
        }
        match find(&data[i..], b"\n-- ") {
            Some(j) => i += j + 1,
            None => return (fix_newline(data), None, &[]),
        }
    }
}

/// The name of the marker line at the start of `data`, and what follows that line.
fn marker(data: &[u8]) -> Option<(String, &[u8])> {
    if !data.starts_with(b"-- ") {
        return None;
    }
    let (line, after) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if !(line.ends_with(b" --") && line.len() >= 6) {
        return None;
    }
    let name = String::from_utf8_lossy(&line[3..line.len() - 3])
        .trim()
        .to_string();
    (!name.is_empty()).then_some((name, after))
}

fn fix_newline(data: &[u8]) -> Vec<u8> {
    let mut data = data.to_vec();
    if !data.is_empty() && data.last() != Some(&b'\n') {
        data.push(b'\n');
    }
    data
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The `key=value` lines of an x/mod zip test comment (`#` starts a comment, values trimmed).
#[derive(Debug, Clone, Default)]
pub struct TestHeader {
    /// `path=`: the module path, raw bytes (one vector has a 0xFF byte).
    pub path: Vec<u8>,
    /// `version=`.
    pub version: Vec<u8>,
    /// `wantErr=`: a substring of the expected error, empty for success.
    pub want_err: String,
    /// `hash=`: the expected `h1:` hash.
    pub hash: String,
}

/// Parses the header of an x/mod zip test; panics on unknown keys, as the Go test fails.
pub fn header(comment: &[u8]) -> TestHeader {
    let mut h = TestHeader::default();
    for line in comment.split(|&b| b == b'\n') {
        let line = match line.iter().position(|&b| b == b'#') {
            Some(i) => &line[..i],
            None => line,
        };
        let line = line.trim_ascii();
        if line.is_empty() {
            continue;
        }
        let eq = line
            .iter()
            .position(|&b| b == b'=')
            .expect("missing = separator");
        let (key, value) = (line[..eq].trim_ascii(), line[eq + 1..].trim_ascii());
        let text = || String::from_utf8(value.to_vec()).expect("UTF-8 value");
        match key {
            b"path" => h.path = value.to_vec(),
            b"version" => h.version = value.to_vec(),
            b"wantErr" => h.want_err = text(),
            b"hash" => h.hash = text(),
            other => panic!("unknown key {:?}", String::from_utf8_lossy(other)),
        }
    }
    h
}
