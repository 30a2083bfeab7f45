//! A checksum-database client (`golang.org/x/mod/sumdb` client.go, protocol §6.8): looks up
//! `module version`, and returns the go.sum lines only after verifying the signed tree head
//! with the configured key, the record's inclusion through authenticated tiles, and the
//! consistency of every tree head seen with the latest one (a fork is a security error that
//! reports both signed heads and a proof).
//!
//! I/O goes through [`ClientOps`], a **synchronous** trait like x/mod's `ClientOps`. The
//! verification interleaves several fetches whose set depends on earlier results, so a
//! sans-I/O state machine would move most of this file into its callers; instead an async
//! caller (the registry) runs [`Client::lookup`] on a blocking thread (`spawn_blocking`) and
//! implements `read_remote` with a blocking HTTP client or `Handle::block_on`. The client is
//! `Send + Sync` when its ops are and may serve concurrent lookups; apart from the one-time
//! merge of the persisted tree head (serialised like a `Once`), no lock is held across I/O.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::key::VerifierKey;
use super::note::{NoteError, open};
use super::record::{FormatError, Tree, parse_record, parse_tree, record_lines};
use super::tile::{Tile, TileHashReader};
use super::tlog::{
    HashReader, TlogError, check_tree, empty_tree_hash, prove_tree, record_hash, stored_hash_index,
    tree_hash,
};
use crate::path::{EscapeError, escape_path, escape_version};
use crate::pattern::match_prefix_patterns;

pub use super::ops::{ClientOps, OpsError, WriteConfigError};

/// Errors of [`Client`]; messages follow x/mod's.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The configured verifier key is invalid.
    #[error("invalid checksum database key: {0}")]
    Key(#[source] NoteError),
    /// The module matches the no-sum patterns.
    #[error("skipped (listed in GONOSUMDB)")]
    Skipped,
    /// A lookup failed; `source` says why.
    #[error("{module}@{version}: {source}")]
    Lookup {
        /// Module path.
        module: String,
        /// Version as asked (possibly with `/go.mod`).
        version: String,
        /// The failure.
        source: Box<ClientError>,
    },
    /// Merging the persisted latest tree failed.
    #[error("initializing sumdb.Client: {0}")]
    Init(#[source] Box<ClientError>),
    /// The module path or version cannot be escaped.
    #[error(transparent)]
    Escape(#[from] EscapeError),
    /// Fetching from the database failed.
    #[error("reading {path}: {source}")]
    Remote {
        /// The remote path.
        path: String,
        /// The failure.
        source: OpsError,
    },
    /// Reading or writing the persisted latest tree failed.
    #[error("sumdb config: {0}")]
    Config(#[source] OpsError),
    /// The lookup response is malformed.
    #[error(transparent)]
    Record(#[from] FormatError),
    /// The signed tree note does not verify with the configured key.
    #[error("reading tree note: {source}\nnote:\n{note}")]
    TreeNote {
        /// The note error.
        source: NoteError,
        /// The note as received.
        note: String,
    },
    /// The signed text is not a tree description.
    #[error("reading tree: {source}\ntree:\n{text}")]
    Tree {
        /// The format error.
        source: FormatError,
        /// The signed text.
        text: String,
    },
    /// Proving one tree head against another failed (e.g. inconsistent tiles).
    #[error("checking tree#{older}{}: {source}", if older == newer { String::new() } else { format!(" against tree#{newer}") })]
    CheckTree {
        /// Size of the older tree.
        older: u64,
        /// Size of the newer tree.
        newer: u64,
        /// The failure.
        source: TlogError,
    },
    /// The record id is not in the latest tree.
    #[error("cannot validate record {id} in tree of size {n}")]
    RecordNotInTree {
        /// Record id.
        id: u64,
        /// Tree size.
        n: u64,
    },
    /// Reading the record's hash from tiles failed.
    #[error(transparent)]
    Tiles(#[from] TlogError),
    /// The record text does not hash to the authenticated leaf hash.
    #[error("cannot authenticate record data in server response")]
    RecordMismatch,
    /// The server showed two inconsistent signed tree heads (a fork of its log).
    #[error("security error: misbehaving server")]
    Security {
        /// Both signed notes and the proof of misbehaviour, as x/mod prints them.
        report: String,
    },
}

/// The latest trusted tree head and its signed note.
#[derive(Debug)]
struct Latest {
    tree: Tree,
    msg: Vec<u8>,
}

/// Where a note stands relative to the latest tree head.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum When {
    Past,
    Now,
    Future,
}

/// A verifying checksum-database client.
#[derive(Debug)]
pub struct Client<O> {
    pub(super) ops: O,
    verifier: VerifierKey,
    pub(super) tile_height: u32,
    nosumdb: String,
    initialized: Mutex<bool>,
    latest: Mutex<Latest>,
    pub(super) tiles: Mutex<HashMap<Tile, Vec<u8>>>,
    pub(super) cached_tiles: Mutex<HashSet<Tile>>,
}

pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<O: ClientOps> Client<O> {
    /// A client for the database whose verifier key is `vkey` (`name+hash+keydata`), using
    /// tile height 8 and no no-sum patterns.
    pub fn new(ops: O, vkey: &str) -> Result<Self, ClientError> {
        let verifier = VerifierKey::parse(vkey.trim()).map_err(ClientError::Key)?;
        Ok(Client {
            ops,
            verifier,
            tile_height: 8,
            nosumdb: String::new(),
            initialized: Mutex::new(false),
            latest: Mutex::new(Latest {
                tree: Tree {
                    n: 0,
                    hash: empty_tree_hash(),
                },
                msg: Vec::new(),
            }),
            tiles: Mutex::new(HashMap::new()),
            cached_tiles: Mutex::new(HashSet::new()),
        })
    }

    /// Uses tiles of height `h` (1..=30; the go command uses 8, x/mod's tests 2).
    pub fn with_tile_height(mut self, h: u32) -> Self {
        self.tile_height = h.clamp(1, 30);
        self
    }

    /// Skips modules matching the comma-separated GONOSUMDB-style `globs`.
    pub fn with_nosumdb(mut self, globs: &str) -> Self {
        self.nosumdb = globs.to_owned();
        self
    }

    /// The database name (the verifier key's name).
    pub fn name(&self) -> &str {
        crate::sumdb::key::Verifier::name(&self.verifier)
    }

    /// The latest verified tree head and its signed note.
    pub fn latest(&self) -> (Tree, Vec<u8>) {
        let l = lock(&self.latest);
        (l.tree, l.msg.clone())
    }

    /// The verified go.sum lines for `module version` (`version` may end in `/go.mod`).
    pub fn lookup(&self, module: &str, version: &str) -> Result<Vec<String>, ClientError> {
        if match_prefix_patterns(&self.nosumdb, module) {
            return Err(ClientError::Skipped);
        }
        self.lookup_verified(module, version)
            .map_err(|source| ClientError::Lookup {
                module: module.to_owned(),
                version: version.to_owned(),
                source: Box::new(source),
            })
    }

    /// Merges a signed tree note (e.g. the body of `/latest`) into the timeline.
    pub fn merge_latest_note(&self, msg: &[u8]) -> Result<(), ClientError> {
        self.init()?;
        self.merge_latest(msg)
    }

    fn lookup_verified(&self, module: &str, version: &str) -> Result<Vec<String>, ClientError> {
        self.init()?;
        let epath = escape_path(module)?;
        let evers = escape_version(version.strip_suffix("/go.mod").unwrap_or(version))?;
        let remote = format!("/lookup/{epath}@{evers}");
        let file = format!("{}{remote}", self.name());
        let (data, from_remote) = match self.ops.read_cache(&file) {
            Some(data) => (data, false),
            None => {
                let data = self
                    .ops
                    .read_remote(&remote)
                    .map_err(|source| ClientError::Remote {
                        path: remote.clone(),
                        source,
                    })?;
                (data, true)
            }
        };
        let record = parse_record(&data)?;
        self.merge_latest(record.rest)?;
        self.check_record(record.id, record.text)?;
        if from_remote {
            self.ops.write_cache(&file, &data);
        }
        Ok(record_lines(record.text, module, version))
    }

    /// Merges the persisted latest tree into memory, once it has succeeded.
    fn init(&self) -> Result<(), ClientError> {
        let mut done = lock(&self.initialized);
        if *done {
            return Ok(());
        }
        let msg = self
            .ops
            .read_config(&self.latest_file())
            .map_err(|e| ClientError::Init(Box::new(ClientError::Config(e))))?;
        self.merge_latest(&msg)
            .map_err(|e| ClientError::Init(Box::new(e)))?;
        *done = true;
        Ok(())
    }

    fn latest_file(&self) -> String {
        format!("{}/latest", self.name())
    }

    /// Merges `msg` into the in-memory timeline and, if it moved forward, into the config
    /// file, re-merging whatever a concurrent writer stored there.
    fn merge_latest(&self, msg: &[u8]) -> Result<(), ClientError> {
        if self.merge_latest_mem(msg)? != When::Future {
            return Ok(());
        }
        let file = self.latest_file();
        loop {
            let stored = self.ops.read_config(&file).map_err(ClientError::Config)?;
            if self.merge_latest_mem(&stored)? != When::Past {
                return Ok(());
            }
            let latest = lock(&self.latest).msg.clone();
            match self.ops.write_config(&file, &stored, &latest) {
                Ok(()) => return Ok(()),
                Err(WriteConfigError::Conflict) => continue,
                Err(WriteConfigError::Failed(e)) => return Err(ClientError::Config(e)),
            }
        }
    }

    fn merge_latest_mem(&self, msg: &[u8]) -> Result<When, ClientError> {
        if msg.is_empty() {
            // The unsigned empty timeline.
            return Ok(if lock(&self.latest).tree.n == 0 {
                When::Now
            } else {
                When::Past
            });
        }
        let note = open(msg, &self.verifier_list()).map_err(|source| ClientError::TreeNote {
            source,
            note: String::from_utf8_lossy(msg).into_owned(),
        })?;
        let tree = parse_tree(note.text.as_bytes()).map_err(|source| ClientError::Tree {
            source,
            text: note.text.clone(),
        })?;
        loop {
            let (latest, latest_msg) = self.latest();
            if tree.n <= latest.n {
                self.check_trees(tree, msg, latest, &latest_msg)?;
                return Ok(if tree.n < latest.n {
                    When::Past
                } else {
                    When::Now
                });
            }
            self.check_trees(latest, &latest_msg, tree, msg)?;
            // Install unless another lookup moved the head meanwhile; then check again.
            let mut l = lock(&self.latest);
            if l.tree == latest {
                l.tree = tree;
                l.msg = msg.to_vec();
                return Ok(When::Future);
            }
        }
    }

    fn verifier_list(&self) -> SingleVerifier<'_> {
        SingleVerifier(&self.verifier)
    }

    /// Checks that `older` is a prefix of `newer`; a mismatch is reported as a fork.
    fn check_trees(
        &self,
        older: Tree,
        older_note: &[u8],
        newer: Tree,
        newer_note: &[u8],
    ) -> Result<(), ClientError> {
        let thr = TileHashReader::new(newer, self);
        let h = tree_hash(older.n, &thr).map_err(|source| ClientError::CheckTree {
            older: older.n,
            newer: newer.n,
            source,
        })?;
        if h == older.hash {
            return Ok(());
        }
        let indent = |b: &[u8]| String::from_utf8_lossy(b).replace('\n', "\n\t");
        let mut report = format!(
            "SECURITY ERROR\ngo.sum database server misbehavior detected!\n\n\
             old database:\n\t{}\nnew database:\n\t{}\nproof of misbehavior:\n\t{h}",
            indent(older_note),
            indent(newer_note)
        );
        match prove_tree(newer.n, older.n, &thr) {
            Err(e) => report.push_str(&format!("\tinternal error: {e}\n")),
            Ok(p) if check_tree(&p, newer.n, newer.hash, older.n, h).is_err() => {
                report.push_str("\tinternal error: generated inconsistent proof\n");
            }
            Ok(p) => p.iter().for_each(|x| report.push_str(&format!("\n\t{x}"))),
        }
        self.ops.security_error(&report);
        Err(ClientError::Security { report })
    }

    /// Checks that record `id` of the latest tree hashes to `text`.
    fn check_record(&self, id: u64, text: &[u8]) -> Result<(), ClientError> {
        let (latest, _) = self.latest();
        if id >= latest.n {
            return Err(ClientError::RecordNotInTree { id, n: latest.n });
        }
        let thr = TileHashReader::new(latest, self);
        let hashes = thr.read_hashes(&[stored_hash_index(0, id)])?;
        match hashes.first() {
            Some(h) if *h == record_hash(text) => Ok(()),
            _ => Err(ClientError::RecordMismatch),
        }
    }
}

/// The configured key as the only known verifier.
struct SingleVerifier<'a>(&'a VerifierKey);

impl super::key::Verifiers for SingleVerifier<'_> {
    fn verifier(&self, name: &str, hash: u32) -> Result<&dyn super::key::Verifier, NoteError> {
        use super::key::Verifier as _;
        if self.0.name() == name && self.0.key_hash() == hash {
            Ok(self.0)
        } else {
            Err(NoteError::UnknownKey {
                name: name.to_owned(),
                hash,
            })
        }
    }
}
