//! A test checksum database: a transparent log of go.sum records signed with a key the test
//! generates, built on `strata_core::sumdb` (record hashes, stored hashes, tree hashes, tiles,
//! signed notes) and answering the endpoints of sum.golang.org (spec §6.3):
//! `/supported`, `/latest`, `/lookup/<M>@<V>`, `/tile/H/L/N[.p/W]` and `/tile/H/data/N[.p/W]`.
//!
//! Mount it under a fixture proxy's `/sumdb/<name>/` (see [`crate::upstream`]) so the go command
//! reaches it through `GOPROXY` with `GOSUMDB=<verifier key>`.

use std::collections::HashMap;
use std::sync::Mutex;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use strata_core::path::{unescape_path, unescape_version};
use strata_core::sumdb::key::Signer as _;
use strata_core::sumdb::note::{self, Note};
use strata_core::sumdb::record::{format_record, format_tree};
use strata_core::sumdb::tile::{Tile, read_tile_data};
use strata_core::sumdb::tlog::{Hash, stored_hashes, tree_hash};
use strata_core::sumdb::{SignerKey, Tree};

use crate::modules::BuiltModule;

/// The tile height sum.golang.org and the go command use.
pub const DEFAULT_TILE_HEIGHT: u32 = 8;

/// An in-memory checksum database.
#[derive(Debug)]
pub struct TestSumDb {
    signer: SignerKey,
    tile_height: u32,
    log: Mutex<Log>,
}

/// The log's records and the hashes stored for them (Crosby–Wallach order, spec §6.7).
#[derive(Debug, Default)]
struct Log {
    records: Vec<Vec<u8>>,
    ids: HashMap<(String, String), u64>,
    hashes: Vec<Hash>,
}

impl TestSumDb {
    /// A database named `name` (a host name like `sum.strata.test`) with a freshly generated key.
    pub fn new(name: &str) -> Self {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("random seed for the test key");
        Self::from_seed(name, &seed)
    }

    /// A database with the Ed25519 key from `seed` (reproducible signatures).
    pub fn from_seed(name: &str, seed: &[u8; 32]) -> Self {
        TestSumDb {
            signer: SignerKey::from_seed(name, seed).expect("valid sumdb name"),
            tile_height: DEFAULT_TILE_HEIGHT,
            log: Mutex::new(Log::default()),
        }
    }

    /// Uses tile height `h` (1..=30) instead of 8.
    pub fn with_tile_height(mut self, h: u32) -> Self {
        assert!((1..=30).contains(&h), "tile height {h}");
        self.tile_height = h;
        self
    }

    /// The database's name (the key name).
    pub fn name(&self) -> &str {
        self.signer.name()
    }

    /// The tile height served.
    pub fn tile_height(&self) -> u32 {
        self.tile_height
    }

    /// The verifier key `name+hash+keydata`: the value of `GOSUMDB` when the database is reached
    /// through a proxy; append `" <url>"` to name the database URL directly.
    pub fn verifier_key(&self) -> String {
        self.signer.verifier().encode()
    }

    /// The signer key (`PRIVATE+KEY+…`), e.g. to build a second server with the same key.
    pub fn signer_key(&self) -> String {
        self.signer.encode()
    }

    /// Appends the record `text` for `path@version` and returns its id. Adding a version twice
    /// keeps the first record, as a real database does.
    pub fn add(&self, path: &str, version: &str, text: &str) -> u64 {
        let mut log = self.log.lock().unwrap();
        let key = (path.to_owned(), version.to_owned());
        if let Some(&id) = log.ids.get(&key) {
            return id;
        }
        let id = log.records.len() as u64;
        let new = stored_hashes(id, text.as_bytes(), &log.hashes).expect("stored hashes");
        log.hashes.extend(new);
        log.records.push(text.as_bytes().to_vec());
        log.ids.insert(key, id);
        id
    }

    /// Appends the record of a built fixture module (its two go.sum lines).
    pub fn add_module(&self, m: &BuiltModule) -> u64 {
        self.add(m.path(), m.version(), &m.go_sum)
    }

    /// The number of records.
    pub fn size(&self) -> u64 {
        self.log.lock().unwrap().records.len() as u64
    }

    /// The current tree head.
    pub fn tree(&self) -> Tree {
        let log = self.log.lock().unwrap();
        let n = log.records.len() as u64;
        Tree {
            n,
            hash: tree_hash(n, &log.hashes).expect("tree hash"),
        }
    }

    /// The signed tree note served at `/latest`.
    pub fn latest_note(&self) -> Vec<u8> {
        let text = format_tree(&self.tree());
        let note = Note {
            text,
            ..Note::default()
        };
        note::sign(&note, &[&self.signer]).expect("sign tree note")
    }

    /// Answers a request for `path`, relative to the database URL (`latest`, `lookup/…`,
    /// `tile/…`, `supported`; a leading `/` is ignored).
    pub fn respond(&self, path: &str) -> Response {
        let path = path.trim_start_matches('/');
        if path == "supported" {
            return StatusCode::OK.into_response();
        }
        if path == "latest" {
            return text(self.latest_note());
        }
        if let Some(key) = path.strip_prefix("lookup/") {
            return self.lookup(key);
        }
        if path.starts_with("tile/") {
            return self.tile(path);
        }
        (StatusCode::NOT_FOUND, "not found\n").into_response()
    }

    /// `/lookup/<escaped module>@<escaped version>`.
    fn lookup(&self, key: &str) -> Response {
        let bad = || (StatusCode::BAD_REQUEST, "invalid module@version syntax\n").into_response();
        let Some((escaped_path, escaped_version)) = key.rsplit_once('@') else {
            return bad();
        };
        let (Ok(path), Ok(version)) = (
            unescape_path(escaped_path),
            unescape_version(escaped_version),
        ) else {
            return bad();
        };
        if !version.starts_with('v') || path.contains('@') {
            return bad();
        }
        let body = {
            let log = self.log.lock().unwrap();
            let Some(&id) = log.ids.get(&(path.clone(), version.clone())) else {
                return (
                    StatusCode::NOT_FOUND,
                    format!("{path}@{version}: not found\n"),
                )
                    .into_response();
            };
            format_record(id, &log.records[id as usize]).expect("valid record text")
        };
        let mut body = body;
        body.extend(self.latest_note());
        text(body)
    }

    /// `/tile/H/L/N[.p/W]` (hashes) and `/tile/H/data/N[.p/W]` (record texts).
    fn tile(&self, path: &str) -> Response {
        let bad = || (StatusCode::BAD_REQUEST, "invalid tile syntax\n").into_response();
        let Ok(tile) = Tile::parse_path(path) else {
            return bad();
        };
        if tile.h != self.tile_height {
            return (StatusCode::NOT_FOUND, "wrong tile height\n").into_response();
        }
        let log = self.log.lock().unwrap();
        let data = if tile.l == -1 {
            data_tile(&tile, &log.records)
        } else {
            read_tile_data(&tile, &log.hashes).ok()
        };
        match data {
            Some(data) => {
                ([(header::CONTENT_TYPE, "application/octet-stream")], data).into_response()
            }
            None => (StatusCode::NOT_FOUND, "tile not found\n").into_response(),
        }
    }
}

/// A data tile: each leaf's record text followed by `\n` (the lookup format without the id line).
fn data_tile(tile: &Tile, records: &[Vec<u8>]) -> Option<Vec<u8>> {
    let start = usize::try_from(tile.n.checked_mul(1 << tile.h)?).ok()?;
    let end = start.checked_add(tile.w as usize)?;
    let mut out = Vec::new();
    for record in records.get(start..end)? {
        out.extend_from_slice(record);
        out.push(b'\n');
    }
    Some(out)
}

/// A `text/plain; charset=UTF-8` response.
fn text(body: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], body).into_response()
}

#[cfg(test)]
mod tests {
    use strata_core::sumdb::record::parse_record;
    use strata_core::sumdb::{
        Client, ClientOps, MemoryState, OpsError, VerifierList, WriteConfigError,
    };

    use super::*;

    #[test]
    fn lookup_and_latest_verify() {
        let db = TestSumDb::from_seed("sum.strata.test", &[7; 32]).with_tile_height(2);
        for i in 0..11 {
            db.add(
                &format!("example.com/M{i}"),
                "v1.0.0",
                &format!("example.com/M{i} v1.0.0 h1:x{i}=\n"),
            );
        }
        let verifiers = VerifierList::new([db.signer.verifier()]);
        let latest = note::open(&db.latest_note(), &verifiers).unwrap();
        assert!(latest.text.starts_with("go.sum database tree\n11\n"));

        let body = body_of(db.respond("/lookup/example.com/!m3@v1.0.0"));
        let record = parse_record(&body).unwrap();
        assert_eq!(record.id, 3);
        assert_eq!(record.text, b"example.com/M3 v1.0.0 h1:x3=\n");
        assert_eq!(
            db.respond("lookup/example.com/M3@v1.0.0").status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            db.respond("lookup/example.com/nope@v1.0.0").status(),
            StatusCode::NOT_FOUND
        );
        let data = body_of(db.respond("tile/2/data/001"));
        assert!(data.starts_with(b"example.com/M4 v1.0.0 h1:x4=\n\n"));
        assert_eq!(body_of(db.respond("tile/2/0/002.p/3")).len(), 3 * 32);
        assert_eq!(db.respond("tile/2/0/003").status(), StatusCode::NOT_FOUND);
    }

    /// The core crate's own client accepts the database: lookups, proofs through tiles, notes.
    #[test]
    fn core_client_verifies_lookups() {
        let db = std::sync::Arc::new(TestSumDb::new("sum.strata.test"));
        for i in 0..300 {
            db.add(
                &format!("example.com/m{i}"),
                "v1.0.0",
                &format!(
                    "example.com/m{i} v1.0.0 h1:h{i}=\nexample.com/m{i} v1.0.0/go.mod h1:g{i}=\n"
                ),
            );
        }
        let client = Client::new(Ops::new(db.clone()), &db.verifier_key()).unwrap();
        let lines = client.lookup("example.com/m257", "v1.0.0").unwrap();
        assert_eq!(lines, vec!["example.com/m257 v1.0.0 h1:h257=".to_owned()]);
        let lines = client.lookup("example.com/m3", "v1.0.0/go.mod").unwrap();
        assert_eq!(
            lines,
            vec!["example.com/m3 v1.0.0/go.mod h1:g3=".to_owned()]
        );
    }

    fn body_of(r: Response) -> Vec<u8> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(axum::body::to_bytes(r.into_body(), usize::MAX))
            .unwrap()
            .to_vec()
    }

    /// Client operations served straight from a [`TestSumDb`], with in-memory config and cache.
    struct Ops {
        db: std::sync::Arc<TestSumDb>,
        state: MemoryState,
    }

    impl Ops {
        fn new(db: std::sync::Arc<TestSumDb>) -> Self {
            Ops {
                db,
                state: MemoryState::default(),
            }
        }
    }

    impl ClientOps for Ops {
        fn read_remote(&self, path: &str) -> Result<Vec<u8>, OpsError> {
            let r = self.db.respond(path);
            if r.status() != StatusCode::OK {
                return Err(format!("{path}: {}", r.status()).into());
            }
            Ok(body_of(r))
        }
        fn read_config(&self, file: &str) -> Result<Vec<u8>, OpsError> {
            Ok(self.state.read_config(file))
        }
        fn write_config(&self, file: &str, old: &[u8], new: &[u8]) -> Result<(), WriteConfigError> {
            self.state.write_config(file, old, new)
        }
        fn read_cache(&self, file: &str) -> Option<Vec<u8>> {
            self.state.read_cache(file)
        }
        fn write_cache(&self, file: &str, data: &[u8]) {
            self.state.write_cache(file, data)
        }
        fn security_error(&self, msg: &str) {
            panic!("security error: {msg}");
        }
    }
}
