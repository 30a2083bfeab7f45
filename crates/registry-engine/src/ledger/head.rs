//! The signed tree head: the object `ledger/<name>/head` that says how many records the log
//! has, and the note served at `/latest`.
//!
//! The stored document is JSON `{"size": N, "root": "<base64>", "note": "<signed note>",
//! "prev": P, "prev_root": "<base64>", "batch": ["<record text>", …], "tiles": {"<tile path>":
//! "<base64>", …}}`. Size and root are the
//! note's tree, repeated so a reader sees them without parsing the note; every read checks that
//! the note verifies with the ledger's own key and signs exactly that tree, so a head written
//! by anyone without the key is rejected as corrupt.
//!
//! `batch` holds the records this head added to the tree of size `prev` (root `prev_root`), and
//! `tiles` the partial tiles of that tree (its frontier: the last, incomplete tile of every
//! level, the data tile included). Together they give the whole frontier of the signed tree, so
//! storing the head is the one write that makes new records durable; tiles reach the object
//! store only once complete (see `commit.rs`). Nothing in `batch`, `tiles` or `prev_root` is
//! trusted: it is used only after checking that it grows to the signed root. A head without
//! `tiles` (as written by the first version of the ledger, which stored every tile and index
//! entry before its head) has its partial tiles in the store and added nothing to write.

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use strata_core::sumdb::Tile;
use strata_core::sumdb::note::{self, Note};
use strata_core::sumdb::tlog::Hash;
use strata_core::sumdb::{SignerKey, Tree, VerifierList, format_tree, parse_tree};

use super::frontier::partial_tiles;
use super::record::Entry;
use crate::storage::ETag;

/// A verified tree head as stored, with the etag to replace it by (none for the empty log,
/// which has no head object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Head {
    /// The tree the note signs.
    pub(super) tree: Tree,
    /// The signed note `go.sum database tree\nN\nROOT\n` + signature.
    pub(super) note: Bytes,
    /// The stored object's etag; `None` when there is no head object yet (size 0).
    pub(super) etag: Option<ETag>,
    /// The tree this head grew from (equal to `tree` when it added nothing to write).
    pub(super) prev: Tree,
    /// The records it added: records `prev.n ..tree.n`, in order.
    pub(super) batch: Vec<Entry>,
    /// The partial tiles of `prev` ([`partial_tiles`] order), carried by the head; `None`
    /// when they are in the store.
    pub(super) prev_tiles: Option<Vec<(Tile, Bytes)>>,
}

impl Head {
    /// The head of the empty log (no head object yet): signs size 0 with `note`.
    pub(super) fn empty(note: Bytes) -> Head {
        let tree = Tree {
            n: 0,
            hash: strata_core::sumdb::tlog::empty_tree_hash(),
        };
        Head {
            tree,
            note,
            etag: None,
            prev: tree,
            batch: Vec::new(),
            prev_tiles: Some(Vec::new()),
        }
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadDoc {
    size: u64,
    root: String,
    note: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prev: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prev_root: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    batch: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tiles: Option<BTreeMap<String, String>>,
}

/// A decoded, verified head document (without the etag of the object it came from).
pub(super) struct Decoded {
    pub(super) tree: Tree,
    pub(super) note: Bytes,
    pub(super) prev: Tree,
    pub(super) batch: Vec<Entry>,
    pub(super) prev_tiles: Option<Vec<(Tile, Bytes)>>,
}

/// The note signing `tree` with `signer`. Ed25519 signatures are deterministic, so every
/// writer that signs the same tree produces the same bytes: one signed tree per size, ever.
pub(super) fn sign(tree: &Tree, signer: &SignerKey) -> Result<Bytes, String> {
    let text = Note {
        text: format_tree(tree),
        ..Note::default()
    };
    note::sign(&text, &[signer])
        .map(Bytes::from)
        .map_err(|e| format!("signing tree {}: {e}", tree.n))
}

/// The stored form of a head signing `tree` with `note`, which grew the tree `prev` (whose
/// partial tiles are `prev_tiles`) by the records `batch`.
pub(super) fn encode(
    tree: &Tree,
    note: &Bytes,
    prev: &Tree,
    batch: &[&Entry],
    prev_tiles: Option<&[(Tile, Bytes)]>,
) -> Result<Bytes, String> {
    let grew = !batch.is_empty();
    let b64 = base64::engine::general_purpose::STANDARD;
    let doc = HeadDoc {
        size: tree.n,
        root: tree.hash.to_string(),
        note: String::from_utf8(note.to_vec()).map_err(|_| "signed note is not UTF-8")?,
        prev: grew.then_some(prev.n),
        prev_root: grew.then(|| prev.hash.to_string()),
        batch: batch.iter().map(|e| e.text.clone()).collect(),
        tiles: prev_tiles.map(|tiles| {
            (tiles.iter())
                .map(|(tile, data)| (tile.path(), b64.encode(data)))
                .collect()
        }),
    };
    serde_json::to_vec(&doc)
        .map(Bytes::from)
        .map_err(|e| format!("encoding the head: {e}"))
}

/// Parses and verifies a stored head; the reason it is corrupt otherwise.
pub(super) fn decode(bytes: &[u8], verifiers: &VerifierList) -> Result<Decoded, String> {
    let doc: HeadDoc =
        serde_json::from_slice(bytes).map_err(|e| format!("head is not a head document: {e}"))?;
    let root = parse_hash(&doc.root)?;
    let opened = note::open(doc.note.as_bytes(), verifiers)
        .map_err(|e| format!("head note does not verify with the ledger's key: {e}"))?;
    let tree = parse_tree(opened.text.as_bytes()).map_err(|e| format!("head note: {e}"))?;
    if tree
        != (Tree {
            n: doc.size,
            hash: root,
        })
    {
        return Err(format!(
            "head says size {} root {root} but its note signs size {} root {}",
            doc.size, tree.n, tree.hash
        ));
    }
    let batch = (doc.batch.iter())
        .map(|text| Entry::parse(text.as_bytes()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("head batch: {e}"))?;
    let prev = match (doc.prev, &doc.prev_root) {
        (None, None) if batch.is_empty() => tree,
        (Some(n), Some(hash)) if !batch.is_empty() && n + batch.len() as u64 == tree.n => Tree {
            n,
            hash: parse_hash(hash)?,
        },
        _ => {
            return Err(format!(
                "head of size {} has {} batch records after a previous size of {:?}",
                tree.n,
                batch.len(),
                doc.prev
            ));
        }
    };
    let prev_tiles = match doc.tiles {
        None if batch.is_empty() => None,
        None => return Err("head has records but no tiles".to_owned()),
        Some(tiles) => Some(decode_tiles(prev.n, tiles)?),
    };
    Ok(Decoded {
        tree,
        note: Bytes::from(doc.note),
        prev,
        batch,
        prev_tiles,
    })
}

/// The partial tiles of a tree of `size` from a head document: exactly [`partial_tiles`].
fn decode_tiles(size: u64, tiles: BTreeMap<String, String>) -> Result<Vec<(Tile, Bytes)>, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let want = partial_tiles(size);
    if tiles.len() != want.len() {
        return Err(format!(
            "head carries {} tiles, the tree of size {size} has {} partial tiles",
            tiles.len(),
            want.len()
        ));
    }
    want.into_iter()
        .map(|tile| {
            let data = tiles
                .get(&tile.path())
                .ok_or_else(|| format!("head lacks tile {}", tile.path()))?;
            let data = b64
                .decode(data)
                .map_err(|e| format!("head tile {}: {e}", tile.path()))?;
            Ok((tile, Bytes::from(data)))
        })
        .collect()
}

fn parse_hash(b64: &str) -> Result<Hash, String> {
    Hash::from_base64(b64).ok_or_else(|| format!("head root {b64:?} is not a base64 hash"))
}
