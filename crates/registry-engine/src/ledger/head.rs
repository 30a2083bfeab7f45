//! The signed tree head: the object `ledger/<name>/head` that says how many records the log
//! has, and the note served at `/latest`.
//!
//! The stored document is JSON `{"size": N, "root": "<base64>", "note": "<signed note>"}`.
//! Size and root are the note's tree, repeated so a reader sees them without parsing the note;
//! every read checks that the note verifies with the ledger's own key and signs exactly that
//! tree, so a head written by anyone without the key is rejected as corrupt.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use strata_core::sumdb::note::{self, Note};
use strata_core::sumdb::tlog::Hash;
use strata_core::sumdb::{SignerKey, Tree, VerifierList, format_tree, parse_tree};

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
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadDoc {
    size: u64,
    root: String,
    note: String,
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

/// The stored form of a head.
pub(super) fn encode(tree: &Tree, note: &Bytes) -> Result<Bytes, String> {
    let doc = HeadDoc {
        size: tree.n,
        root: tree.hash.to_string(),
        note: String::from_utf8(note.to_vec()).map_err(|_| "signed note is not UTF-8")?,
    };
    serde_json::to_vec(&doc)
        .map(Bytes::from)
        .map_err(|e| format!("encoding the head: {e}"))
}

/// Parses and verifies a stored head; the reason it is corrupt otherwise.
pub(super) fn decode(bytes: &[u8], verifiers: &VerifierList) -> Result<(Tree, Bytes), String> {
    let doc: HeadDoc =
        serde_json::from_slice(bytes).map_err(|e| format!("head is not a head document: {e}"))?;
    let root = Hash::from_base64(&doc.root)
        .ok_or_else(|| format!("head root {:?} is not a base64 hash", doc.root))?;
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
    Ok((tree, Bytes::from(doc.note)))
}
