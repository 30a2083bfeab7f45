//! `strata sumdb audit URL --key VKEY --state DIR [--records] [--proxy GOPROXY]`: an auditor of a
//! checksum database — strata's own (`[ledger]`) or any other speaking the go command's protocol.
//!
//! - Every run fetches `/latest`, checks its signature with VKEY and, against the tree head kept in
//!   DIR from the previous run (the same file layout as the go command's `sumdb` directory), a
//!   consistency proof built from the database's own tiles: a log that was forked, rewritten or
//!   truncated since fails loudly and DIR keeps the old head, so every later run fails too.
//! - `--records` reads every record (the data tiles), recomputes the tree from them and compares
//!   it with the signed root, and checks that no module version has two records.
//! - `--proxy URL` downloads every recorded version's `.mod` and `.zip` from that GOPROXY (e.g. a
//!   repository of the registry) and checks their hashes against the records: stored artifacts
//!   re-verified against the log. Versions the proxy does not serve (404/410) are counted apart.
//!
//! Credentials: `STRATA_TOKEN` (Bearer) or `.netrc`, as for `strata publish`. Exit status 0 when
//! everything checked holds, 1 otherwise.

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use clap::Args;
use strata_core::sumdb::ops::{ClientOps, OpsError, WriteConfigError};
use strata_core::sumdb::record::{Tree, split_data_tile};
use strata_core::sumdb::tile::Tile;
use strata_core::sumdb::tlog::{Hash, stored_hashes, tree_hash};
use strata_core::sumdb::{Client, ClientError};

use crate::Failure;

/// `strata sumdb audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The database's base URL, e.g. https://edge.example/sumdb/sum.corp.example (an edge or
    /// the registry's /go/REPO/sumdb/NAME).
    pub url: String,
    /// The verifier key (what GOSUMDB says: NAME+HASH+KEY).
    #[arg(long)]
    pub key: String,
    /// Directory keeping the last verified tree head between runs (created if missing).
    #[arg(long)]
    pub state: PathBuf,
    /// Also read every record, recompute the tree and check no version has two records.
    #[arg(long)]
    pub records: bool,
    /// Also re-download every recorded version from this GOPROXY and check its hashes.
    #[arg(long)]
    pub proxy: Option<String>,
}

/// Runs the audit and prints what it checked.
pub fn run(args: &AuditArgs) -> Result<(), Failure> {
    let base = args.url.trim_end_matches('/').to_owned();
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| Failure::msg(format!("HTTP client: {e}")))?;
    std::fs::create_dir_all(&args.state)
        .map_err(|e| Failure::msg(format!("--state {}: {e}", args.state.display())))?;
    let ops = AuditOps {
        get: Getter {
            http: http.clone(),
            auth: crate::publish::authorization(&base)?,
        },
        base: base.clone(),
        state: args.state.clone(),
        reports: Mutex::new(Vec::new()),
    };
    let client = Client::new(&ops, &args.key).map_err(|e| Failure::msg(format!("--key: {e}")))?;
    let name = client.name().to_owned();
    let before = read_state(&args.state.join(&name).join("latest"));
    let latest = ops
        .read_remote("/latest")
        .map_err(|e| Failure::msg(format!("{base}/latest: {e}")))?;
    if let Err(e) = client.merge_latest_note(&latest) {
        let mut lines = vec![format!("AUDIT FAILED for {name}: {e}")];
        if let ClientError::Security { report } = &e {
            lines.push(report.clone());
        }
        lines.extend(ops.reports.lock().map(|r| r.clone()).unwrap_or_default());
        lines.push(format!(
            "the last verified tree head stays in {}: every later audit fails the same way \
             until the log is restored",
            args.state.join(&name).join("latest").display()
        ));
        return Err(Failure(lines));
    }
    let (tree, _) = client.latest();
    match before {
        Some(old) if old.n == tree.n => {
            println!(
                "{name}: tree size {} unchanged since the last audit",
                tree.n
            );
        }
        Some(old) => println!(
            "{name}: tree size {} -> {}: consistent with the head kept from the last audit",
            old.n, tree.n
        ),
        None => println!(
            "{name}: tree size {}: signature verified; head kept in {} for the next audit",
            tree.n,
            args.state.display()
        ),
    }
    if args.records || args.proxy.is_some() {
        let records = read_records(&ops.get, &base, tree)?;
        println!(
            "{name}: {} records read; their tree hash is the signed root; no version recorded twice",
            records.len()
        );
        if let Some(proxy) = &args.proxy {
            verify_artifacts(&ops.get, proxy.trim_end_matches('/'), &records)?;
        }
    }
    Ok(())
}

/// One record: the module, its version and the two hashes.
struct Record {
    id: u64,
    module: String,
    version: String,
    zip_h1: String,
    mod_h1: String,
}

/// Authenticated GETs.
struct Getter {
    http: reqwest::blocking::Client,
    auth: Option<String>,
}

impl Getter {
    /// The body at `url`: `Ok(None)` for 404/410, an error for any other non-200 answer.
    fn get(&self, url: &str) -> Result<Option<Vec<u8>>, String> {
        let mut request = self.http.get(url);
        if let Some(auth) = &self.auth {
            request = request.header(reqwest::header::AUTHORIZATION, auth);
        }
        let response = request.send().map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Ok(None);
        }
        let body = response.bytes().map_err(|e| format!("GET {url}: {e}"))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
            return Err(format!("GET {url}: {status}: {}", text.trim()));
        }
        Ok(Some(body.to_vec()))
    }
}

/// The client's I/O: the database over HTTP, the tree head in the state directory, no cache
/// (an audit reads the tiles it needs afresh).
struct AuditOps {
    get: Getter,
    base: String,
    state: PathBuf,
    reports: Mutex<Vec<String>>,
}

impl ClientOps for AuditOps {
    fn read_remote(&self, path: &str) -> Result<Vec<u8>, OpsError> {
        let url = format!("{}{path}", self.base);
        match self.get.get(&url)? {
            Some(body) => Ok(body),
            None => Err(format!("GET {url}: not found").into()),
        }
    }

    fn read_config(&self, file: &str) -> Result<Vec<u8>, OpsError> {
        match std::fs::read(self.state.join(file)) {
            Ok(data) => Ok(data),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Box::new(e)),
        }
    }

    fn write_config(&self, file: &str, old: &[u8], new: &[u8]) -> Result<(), WriteConfigError> {
        let path = self.state.join(file);
        let current = self.read_config(file).map_err(WriteConfigError::Failed)?;
        if current != old {
            return Err(WriteConfigError::Conflict);
        }
        write_atomically(&path, new).map_err(|e| WriteConfigError::Failed(Box::new(e)))
    }

    fn read_cache(&self, _file: &str) -> Option<Vec<u8>> {
        None
    }

    fn write_cache(&self, _file: &str, _data: &[u8]) {}

    fn security_error(&self, report: &str) {
        if let Ok(mut reports) = self.reports.lock() {
            reports.push(report.to_owned());
        }
    }
}

fn write_atomically(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(data)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The tree size and hash of the head kept by an earlier audit, if any.
fn read_state(path: &Path) -> Option<Tree> {
    let note = std::fs::read(path).ok()?;
    // The note's text is the tree (signatures follow a blank line).
    let text_end = note.windows(2).position(|w| w == b"\n\n")? + 1;
    strata_core::sumdb::record::parse_tree(&note[..text_end]).ok()
}

/// Every record of `tree`, from the data tiles, checked: the tree they make is the signed one,
/// each is two well-formed go.sum lines of one version, and no version has two records.
fn read_records(get: &Getter, base: &str, tree: Tree) -> Result<Vec<Record>, Failure> {
    let fail = |m: String| Failure::msg(format!("AUDIT FAILED: {m}"));
    let mut texts: Vec<Vec<u8>> = Vec::with_capacity(tree.n as usize);
    let mut n = 0u64;
    while (texts.len() as u64) < tree.n {
        let left = tree.n - texts.len() as u64;
        let tile = Tile {
            h: 8,
            l: -1,
            n,
            w: left.min(256) as u32,
        };
        let url = format!("{base}/{}", tile.path());
        let data = get.get(&url).map_err(Failure::msg)?.ok_or_else(|| {
            fail(format!(
                "{url}: not found, but the tree has {} records",
                tree.n
            ))
        })?;
        let records = split_data_tile(&data);
        if records.len() != tile.w as usize {
            return Err(fail(format!(
                "{url} holds {} records, not {}",
                records.len(),
                tile.w
            )));
        }
        texts.extend(records.into_iter().map(<[u8]>::to_vec));
        n += 1;
    }
    let mut hashes: Vec<Hash> = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let new =
            stored_hashes(i as u64, text, &hashes).map_err(|e| fail(format!("record {i}: {e}")))?;
        hashes.extend(new);
    }
    let root = tree_hash(tree.n, &hashes).map_err(|e| fail(e.to_string()))?;
    if root != tree.hash {
        return Err(fail(format!(
            "the {} records hash to {}, but the signed tree head says {}",
            tree.n,
            base64(&root),
            base64(&tree.hash)
        )));
    }
    let mut seen: HashMap<(String, String), u64> = HashMap::new();
    let mut out = Vec::with_capacity(texts.len());
    for (id, text) in texts.iter().enumerate() {
        let id = id as u64;
        let record = parse_record(id, text).map_err(|m| fail(format!("record {id}: {m}")))?;
        if let Some(first) = seen.insert((record.module.clone(), record.version.clone()), id) {
            return Err(fail(format!(
                "{}@{} has two records ({first} and {id}): clients may have been shown either",
                record.module, record.version
            )));
        }
        out.push(record);
    }
    Ok(out)
}

fn base64(h: &Hash) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(h.0)
}

/// `module version h1:…\nmodule version/go.mod h1:…\n`.
fn parse_record(id: u64, text: &[u8]) -> Result<Record, String> {
    let text = std::str::from_utf8(text).map_err(|_| "not UTF-8".to_owned())?;
    let lines: Vec<&str> = text.lines().collect();
    let [zip, gomod] = lines.as_slice() else {
        return Err(format!("{} lines, not 2: {text:?}", lines.len()));
    };
    let zf: Vec<&str> = zip.split(' ').collect();
    let mf: Vec<&str> = gomod.split(' ').collect();
    match (zf.as_slice(), mf.as_slice()) {
        ([m1, v1, h1], [m2, v2, h2])
            if m1 == m2
                && format!("{v1}/go.mod") == *v2
                && h1.starts_with("h1:")
                && h2.starts_with("h1:") =>
        {
            Ok(Record {
                id,
                module: (*m1).to_owned(),
                version: (*v1).to_owned(),
                zip_h1: (*h1).to_owned(),
                mod_h1: (*h2).to_owned(),
            })
        }
        _ => Err(format!("not the two go.sum lines of one version: {text:?}")),
    }
}

/// Downloads every recorded version from `proxy` and compares its hashes with the record.
fn verify_artifacts(get: &Getter, proxy: &str, records: &[Record]) -> Result<(), Failure> {
    use strata_core::path::{escape_path, escape_version};
    let mut checked = 0usize;
    let mut absent = 0usize;
    let mut bad = Vec::new();
    for r in records {
        let (Ok(p), Ok(v)) = (escape_path(&r.module), escape_version(&r.version)) else {
            bad.push(format!(
                "record {}: {}@{} cannot be escaped",
                r.id, r.module, r.version
            ));
            continue;
        };
        let base = format!("{proxy}/{p}/@v/{v}");
        let go_mod = get.get(&format!("{base}.mod")).map_err(Failure::msg)?;
        let zip = get.get(&format!("{base}.zip")).map_err(Failure::msg)?;
        let (Some(go_mod), Some(zip)) = (go_mod, zip) else {
            absent += 1;
            continue;
        };
        let mod_h1 = strata_core::dirhash::hash_go_mod(&go_mod);
        let zip_h1 =
            strata_core::dirhash::hash_zip(std::io::Cursor::new(&zip)).map_err(|e| e.to_string());
        if mod_h1 != r.mod_h1 {
            bad.push(format!(
                "{}@{}: go.mod hashes to {mod_h1}, the log (record {}) says {}",
                r.module, r.version, r.id, r.mod_h1
            ));
        }
        match zip_h1 {
            Ok(h) if h == r.zip_h1 => {}
            Ok(h) => bad.push(format!(
                "{}@{}: zip hashes to {h}, the log (record {}) says {}",
                r.module, r.version, r.id, r.zip_h1
            )),
            Err(e) => bad.push(format!("{}@{}: zip unreadable: {e}", r.module, r.version)),
        }
        checked += 1;
    }
    println!(
        "{proxy}: {checked} recorded versions downloaded and hashed, {absent} not served there, {} mismatches",
        bad.len()
    );
    if bad.is_empty() {
        Ok(())
    } else {
        let mut lines = vec![format!(
            "AUDIT FAILED: {} artifacts differ from the log",
            bad.len()
        )];
        lines.extend(bad);
        Err(Failure(lines))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn records_parse_and_split() {
        let a = b"example.com/a v1.0.0 h1:AAA=\nexample.com/a v1.0.0/go.mod h1:BBB=\n";
        let b = b"example.com/b v0.1.0 h1:CCC=\nexample.com/b v0.1.0/go.mod h1:DDD=\n";
        let mut tile = a.to_vec();
        tile.push(b'\n');
        tile.extend_from_slice(b);
        tile.push(b'\n');
        let split = split_data_tile(&tile);
        assert_eq!(split, vec![&a[..], &b[..]]);
        let r = parse_record(0, split[1]).unwrap();
        assert_eq!(
            (r.module.as_str(), r.version.as_str()),
            ("example.com/b", "v0.1.0")
        );
        assert_eq!(
            (r.zip_h1.as_str(), r.mod_h1.as_str()),
            ("h1:CCC=", "h1:DDD=")
        );
        assert!(
            parse_record(
                0,
                b"example.com/a v1.0.0 h1:A=\nexample.com/b v1.0.0/go.mod h1:B=\n"
            )
            .is_err()
        );
        assert!(parse_record(0, b"example.com/a v1.0.0 h1:A=\n").is_err());
    }
}
