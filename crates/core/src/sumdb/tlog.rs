//! The checksum database's transparent log (`golang.org/x/mod/sumdb/tlog`): an RFC 6962 Merkle
//! tree over record texts, its hashes stored in Crosby–Wallach order, and tree hashes; proofs
//! are in [`super::proof`].
//!
//! Everything that needs stored hashes reads them through a [`HashReader`], so the same code runs
//! over a server's own hash storage (a `[Hash]` slice indexed by [`stored_hash_index`]) and over
//! tiles fetched from an untrusted server ([`super::tile::TileHashReader`]).

use std::fmt;

use base64::Engine as _;
use sha2::{Digest, Sha256};

/// Size of a [`Hash`](struct@Hash) in bytes.
pub const HASH_SIZE: usize = 32;

/// A SHA-256 hash in the tree; displayed as standard base64 (as `tlog.Hash.String`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash(pub [u8; HASH_SIZE]);

impl Hash {
    /// The hash in `bytes`, which must be exactly [`HASH_SIZE`] long.
    pub fn from_slice(bytes: &[u8]) -> Option<Hash> {
        <[u8; HASH_SIZE]>::try_from(bytes).ok().map(Hash)
    }

    /// Parses the standard base64 form produced by [`Hash`](struct@Hash)'s `Display`.
    pub fn from_base64(text: &str) -> Option<Hash> {
        let raw = base64::engine::general_purpose::STANDARD
            .decode(text)
            .ok()?;
        Hash::from_slice(&raw)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&base64::engine::general_purpose::STANDARD.encode(self.0))
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

/// What went wrong in tree, proof or tile computations.
#[derive(Debug, thiserror::Error)]
pub enum TlogError {
    /// A proof did not verify (`tlog: invalid transparency proof`).
    #[error("tlog: invalid transparency proof")]
    ProofFailed,
    /// Arguments outside the tree (e.g. record index ≥ tree size).
    #[error("tlog: invalid inputs in {0}")]
    InvalidInputs(&'static str),
    /// A hash reader returned the wrong number of hashes.
    #[error("tlog: ReadHashes({want} indexes) = {got} hashes")]
    ShortRead {
        /// Number of hashes asked for.
        want: usize,
        /// Number of hashes returned.
        got: usize,
    },
    /// A requested stored-hash index is not part of the tree being read.
    #[error("indexes not in tree")]
    IndexNotInTree,
    /// Tiles do not hash to the trusted tree hash (or to their parent tile's hash).
    #[error("downloaded inconsistent tile")]
    InconsistentTile,
    /// A tile is malformed, too short, or does not hold the requested index.
    #[error("{0}")]
    BadTile(String),
    /// A tile path does not have the canonical syntax.
    #[error("malformed tile path {0:?}")]
    BadTilePath(String),
    /// Reading tiles or hashes from storage or the network failed.
    #[error("{0}")]
    Read(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// Reads stored hashes by [`stored_hash_index`]; returns them in the order asked.
pub trait HashReader {
    /// The hashes at `indexes`, one per index, or an error.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TlogError>;
}

/// A server's own complete hash storage: element `i` is the hash stored at index `i`.
impl HashReader for [Hash] {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TlogError> {
        indexes
            .iter()
            .map(|&i| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| self.get(i).copied())
                    .ok_or(TlogError::IndexNotInTree)
            })
            .collect()
    }
}

impl HashReader for Vec<Hash> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TlogError> {
        self.as_slice().read_hashes(indexes)
    }
}

/// Reads `indexes` and checks that exactly one hash came back for each.
pub(super) fn read_exact<R: HashReader + ?Sized>(
    r: &R,
    indexes: &[u64],
) -> Result<Vec<Hash>, TlogError> {
    let hashes = r.read_hashes(indexes)?;
    if hashes.len() != indexes.len() {
        return Err(TlogError::ShortRead {
            want: indexes.len(),
            got: hashes.len(),
        });
    }
    Ok(hashes)
}

/// `SHA256(0x00 || data)`: the hash of a record (leaf).
pub fn record_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    Hash(h.finalize().into())
}

/// `SHA256(0x01 || left || right)`: the hash of an interior node.
pub fn node_hash(left: Hash, right: Hash) -> Hash {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left.0);
    h.update(right.0);
    Hash(h.finalize().into())
}

/// The tree hash of the empty tree, `SHA256("")`.
pub fn empty_tree_hash() -> Hash {
    Hash(Sha256::digest(b"").into())
}

/// Where the hash of tree level `level`, position `n` is stored (Crosby–Wallach order).
pub fn stored_hash_index(level: u32, n: u64) -> u64 {
    // Level `level` node n covers leaves up to (n+1)<<level - 1; its hash is stored right after
    // that leaf's, after the `level` lower interior hashes completed by the same leaf.
    // Wrapping like Go's int64 arithmetic: only absurd (> 2^62) positions could overflow, and
    // those are rejected by range checks against the (bounded) tree size wherever they matter.
    let mut n = n;
    for _ in 0..level {
        n = n.wrapping_mul(2).wrapping_add(1);
    }
    let mut i = 0u64;
    while n > 0 {
        i = i.wrapping_add(n);
        n >>= 1;
    }
    i.wrapping_add(u64::from(level))
}

/// The inverse of [`stored_hash_index`]: `(level, n)` of the hash stored at `index`.
///
/// Indexes are meaningful below 2^62 (trees of up to 2^61 records); larger ones are clamped.
pub fn split_stored_hash_index(index: u64) -> (u32, u64) {
    let index = index.min(1 << 62);
    // Leaf n's hash is stored at ≥ n (and < 2n+…), so start from n = index/2 and walk forward.
    let mut n = index / 2;
    let mut index_n = stored_hash_index(0, n);
    loop {
        let x = index_n + 1 + u64::from((n + 1).trailing_zeros());
        if x > index {
            break;
        }
        n += 1;
        index_n = x;
    }
    let level = (index - index_n) as u32;
    (level, n >> level)
}

/// How many hashes are stored for a tree of `n` records.
pub fn stored_hash_count(n: u64) -> u64 {
    if n == 0 {
        return 0;
    }
    stored_hash_index(0, n - 1) + 1 + u64::from((n - 1).trailing_ones())
}

/// The hashes to append to storage when record `n` (0-based) with text `data` is added:
/// its record hash, then one interior hash per trailing 1-bit of `n`.
pub fn stored_hashes<R: HashReader + ?Sized>(
    n: u64,
    data: &[u8],
    r: &R,
) -> Result<Vec<Hash>, TlogError> {
    stored_hashes_for_record_hash(n, record_hash(data), r)
}

/// Like [`stored_hashes`], given the record hash instead of the record text.
pub fn stored_hashes_for_record_hash<R: HashReader + ?Sized>(
    n: u64,
    h: Hash,
    r: &R,
) -> Result<Vec<Hash>, TlogError> {
    if n >= 1 << 62 {
        return Err(TlogError::InvalidInputs("StoredHashes"));
    }
    let m = (n + 1).trailing_zeros();
    // Left siblings to combine with, innermost first in `old` order reversed below.
    let indexes: Vec<u64> = (0..m)
        .rev()
        .map(|i| stored_hash_index(i, (n >> i) - 1))
        .collect();
    let old = read_exact(r, &indexes)?;
    let mut hashes = vec![h];
    let mut h = h;
    for sibling in old.iter().rev() {
        h = node_hash(*sibling, h);
        hashes.push(h);
    }
    Ok(hashes)
}

/// The largest power of two strictly less than `n` (n ≥ 2), and its log2.
pub(super) fn maxpow2(n: u64) -> (u64, u32) {
    let mut l = 0u32;
    while (1u64 << (l + 1)) < n {
        l += 1;
    }
    (1u64 << l, l)
}

/// Appends the stored-hash indexes of the maximal complete subtrees covering `[lo, hi)`.
pub(super) fn sub_tree_index(mut lo: u64, hi: u64, need: &mut Vec<u64>) {
    while lo < hi {
        let (k, level) = maxpow2(hi - lo + 1);
        need.push(stored_hash_index(level, lo >> level));
        lo += k;
    }
}

/// Folds the hashes of the subtrees listed by [`sub_tree_index`] into the hash of `[lo, hi)`,
/// consuming them from the front of `hashes`.
pub(super) fn sub_tree_hash(
    mut lo: u64,
    hi: u64,
    hashes: &[Hash],
) -> Result<(Hash, &[Hash]), TlogError> {
    let mut num = 0usize;
    while lo < hi {
        lo += maxpow2(hi - lo + 1).0;
        num += 1;
    }
    if num == 0 || hashes.len() < num {
        return Err(TlogError::ShortRead {
            want: num,
            got: hashes.len(),
        });
    }
    let mut h = hashes[num - 1];
    for sibling in hashes[..num - 1].iter().rev() {
        h = node_hash(*sibling, h);
    }
    Ok((h, &hashes[num..]))
}

/// The tree hash of the first `n` records, reading stored hashes from `r`.
pub fn tree_hash<R: HashReader + ?Sized>(n: u64, r: &R) -> Result<Hash, TlogError> {
    if n == 0 {
        return Ok(empty_tree_hash());
    }
    let mut indexes = Vec::new();
    sub_tree_index(0, n, &mut indexes);
    let hashes = read_exact(r, &indexes)?;
    let (h, _) = sub_tree_hash(0, n, &hashes)?;
    Ok(h)
}

pub use super::proof::{
    RecordProof, TreeProof, check_record, check_tree, prove_record, prove_tree,
};
