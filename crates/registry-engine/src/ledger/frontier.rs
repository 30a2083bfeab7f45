//! The arithmetic of growing the log, without I/O: the [`Frontier`] of a tree (what must be
//! known of a tree of size N to append to it) and the tiles and tree hash after appending.
//!
//! Appending records N, N+1, … combines new hashes only with the roots of the maximal
//! complete subtrees of [0, N), and the tiles that change are the last (partial) tile of every
//! tile level, extended. Both are inside the stored partial tiles of size N — one hash tile per
//! tile level plus the partial data tile — so that is all a writer loads, however large the log.
//! Loading them also authenticates them: their subtree roots must fold to the signed root.

use std::collections::HashMap;

use bytes::Bytes;
use strata_core::sumdb::record::split_data_tile as split_records;
use strata_core::sumdb::tile::{new_tiles, read_tile_data};
use strata_core::sumdb::tlog::{
    HASH_SIZE, Hash, HashReader, TlogError, node_hash, record_hash, split_stored_hash_index,
    stored_hash_index, stored_hashes, tree_hash,
};
use strata_core::sumdb::{Tile, Tree};

/// The tile height the go command uses (and sum.golang.org serves).
pub(super) const TILE_HEIGHT: u32 = 8;

/// What a writer knows of a tree: the hashes of the partial tile of each tile level, the hashes
/// it has computed for new records since, and the record texts of the partial data tile.
#[derive(Debug)]
pub(super) struct Frontier {
    size: u64,
    /// Stored hashes by storage index: tile hashes (levels 0, 8, 16, …) of the loaded partial
    /// tiles, and every hash computed for appended records.
    hashes: HashMap<u64, Hash>,
    /// The data tile of the last, partial level-0 tile (records `size & !255 .. size`).
    data: Vec<u8>,
}

/// The tree after appending records, and the tiles to store for it.
#[derive(Debug)]
pub(super) struct Growth {
    /// The new tree head.
    pub(super) tree: Tree,
    /// Every hash and data tile that is new or wider in the new tree.
    pub(super) tiles: Vec<(Tile, Bytes)>,
}

/// The tiles a tree of `size` records stores that extend when it grows: the partial tile of
/// every tile level that has one, then the partial data tile if there is one.
pub(super) fn partial_tiles(size: u64) -> Vec<Tile> {
    let h = TILE_HEIGHT;
    let mut tiles = Vec::new();
    let mut level = 0u32;
    while h * level < 64 && size >> (h * level) > 0 {
        let count = size >> (h * level);
        let w = count & ((1 << h) - 1);
        if w > 0 {
            tiles.push(Tile {
                h,
                l: level as i32,
                n: count >> h,
                w: w as u32,
            });
        }
        level += 1;
    }
    let w = size & ((1 << h) - 1);
    if w > 0 {
        tiles.push(Tile {
            h,
            l: -1,
            n: size >> h,
            w: w as u32,
        });
    }
    tiles
}

impl Frontier {
    /// The frontier of a tree of `size` from its [`partial_tiles`] and their data, checked:
    /// tile lengths, record hashes of the data tile against the level-0 hashes, and the
    /// subtree roots against `root`. The reason it is corrupt otherwise.
    pub(super) fn load(size: u64, root: Hash, tiles: &[(Tile, Bytes)]) -> Result<Self, String> {
        let mut f = Frontier {
            size,
            hashes: HashMap::new(),
            data: Vec::new(),
        };
        for (t, data) in tiles.iter().filter(|(t, _)| t.l >= 0) {
            if data.len() != t.w as usize * HASH_SIZE {
                return Err(format!("tile {} has {} bytes", t.path(), data.len()));
            }
            let level = t.l as u32 * t.h;
            for (i, chunk) in data.chunks_exact(HASH_SIZE).enumerate() {
                let n = (t.n << t.h) + i as u64;
                f.hashes.insert(
                    stored_hash_index(level, n),
                    Hash::from_slice(chunk).unwrap_or_default(),
                );
            }
        }
        if let Some((t, data)) = tiles.iter().find(|(t, _)| t.l == -1) {
            let records = split_records(data);
            if records.len() != t.w as usize || records.concat().len() + records.len() != data.len()
            {
                return Err(format!(
                    "data tile {} does not hold {} records",
                    t.path(),
                    t.w
                ));
            }
            for (i, text) in records.iter().enumerate() {
                let index = stored_hash_index(0, (t.n << t.h) + i as u64);
                if f.hashes.get(&index) != Some(&record_hash(text)) {
                    return Err(format!(
                        "record {} in data tile {} does not match its hash tile",
                        (t.n << t.h) + i as u64,
                        t.path()
                    ));
                }
            }
            f.data = data.to_vec();
        }
        match tree_hash(size, &f) {
            Ok(h) if h == root => Ok(f),
            Ok(h) => Err(format!(
                "the signed root of size {size} is {root} but the stored tiles hash to {h}"
            )),
            Err(e) => Err(format!(
                "the stored tiles of size {size} are incomplete: {e}"
            )),
        }
    }

    /// Appends `texts` (records `size`, `size+1`, …): the new tree and its new tiles.
    pub(super) fn grow(mut self, texts: &[&[u8]]) -> Result<Growth, TlogError> {
        let old = self.size;
        for (i, text) in texts.iter().enumerate() {
            let n = old + i as u64;
            let start = stored_hash_index(0, n);
            for (k, h) in stored_hashes(n, text, &self)?.into_iter().enumerate() {
                self.hashes.insert(start + k as u64, h);
            }
        }
        let new = old + texts.len() as u64;
        let tree = Tree {
            n: new,
            hash: tree_hash(new, &self)?,
        };
        let mut tiles = Vec::new();
        for t in new_tiles(TILE_HEIGHT, old, new) {
            tiles.push((t, Bytes::from(read_tile_data(&t, &self)?)));
            if t.l == 0 {
                let data_tile = Tile { l: -1, ..t };
                tiles.push((data_tile, self.data_tile(&data_tile, texts)));
            }
        }
        Ok(Growth { tree, tiles })
    }

    /// Data tile `t` of the grown tree: the old partial data tile if `t` extends it, then the
    /// new records it covers, each followed by a blank line.
    fn data_tile(&self, t: &Tile, texts: &[&[u8]]) -> Bytes {
        let start = t.n << t.h;
        let end = start + u64::from(t.w);
        let mut out = if start < self.size {
            self.data.clone()
        } else {
            Vec::new()
        };
        for p in start.max(self.size)..end {
            out.extend_from_slice(texts[(p - self.size) as usize]);
            out.push(b'\n');
        }
        Bytes::from(out)
    }

    /// The hash of tree level `level`, position `n`: stored, or folded from the tile level
    /// below (levels between tile levels are not stored in tiles).
    fn hash(&self, level: u32, n: u64) -> Result<Hash, TlogError> {
        if let Some(h) = self.hashes.get(&stored_hash_index(level, n)) {
            return Ok(*h);
        }
        if level.is_multiple_of(TILE_HEIGHT) {
            return Err(TlogError::IndexNotInTree);
        }
        Ok(node_hash(
            self.hash(level - 1, 2 * n)?,
            self.hash(level - 1, 2 * n + 1)?,
        ))
    }
}

impl HashReader for Frontier {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TlogError> {
        indexes
            .iter()
            .map(|&i| {
                let (level, n) = split_stored_hash_index(i);
                self.hash(level, n)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_core::sumdb::tlog::stored_hashes as core_stored_hashes;

    /// A reference log kept the simple way: every stored hash in one vector.
    fn reference(texts: &[Vec<u8>]) -> Vec<Hash> {
        let mut hashes = Vec::new();
        for (n, t) in texts.iter().enumerate() {
            let new = core_stored_hashes(n as u64, t, &hashes).unwrap();
            hashes.extend(new);
        }
        hashes
    }

    fn text(i: usize) -> Vec<u8> {
        format!("example.com/m{i} v1.0.0 h1:x\nexample.com/m{i} v1.0.0/go.mod h1:y\n").into_bytes()
    }

    /// Growing in uneven steps across tile boundaries (levels 0 and 1) gives the reference
    /// tree hashes and exactly the reference tiles.
    #[test]
    fn growth_matches_a_reference_log() {
        let texts: Vec<Vec<u8>> = (0..700).map(text).collect();
        let all = reference(&texts);
        let mut stored: HashMap<Tile, Bytes> = HashMap::new();
        let mut size = 0u64;
        for step in [1usize, 2, 5, 248, 1, 255, 1, 187] {
            let root = tree_hash(size, &all[..]).unwrap();
            let loaded: Vec<(Tile, Bytes)> = partial_tiles(size)
                .into_iter()
                .map(|t| (t, stored[&t].clone()))
                .collect();
            let f = Frontier::load(size, root, &loaded).unwrap();
            let batch: Vec<&[u8]> = texts[size as usize..size as usize + step]
                .iter()
                .map(Vec::as_slice)
                .collect();
            let g = f.grow(&batch).unwrap();
            size += step as u64;
            assert_eq!(
                g.tree,
                Tree {
                    n: size,
                    hash: tree_hash(size, &all[..]).unwrap()
                }
            );
            for (t, data) in g.tiles {
                if t.l >= 0 {
                    assert_eq!(
                        data.as_ref(),
                        read_tile_data(&t, &all[..]).unwrap(),
                        "{}",
                        t.path()
                    );
                } else {
                    let start = (t.n << t.h) as usize;
                    let want: Vec<u8> = texts[start..start + t.w as usize]
                        .iter()
                        .flat_map(|t| t.iter().copied().chain([b'\n']))
                        .collect();
                    assert_eq!(data.as_ref(), want, "{}", t.path());
                }
                stored.insert(t, data);
            }
        }
        assert_eq!(size, 700);
    }

    #[test]
    fn loading_checks_the_root() {
        let texts: Vec<Vec<u8>> = (0..3).map(text).collect();
        let all = reference(&texts);
        let tiles: Vec<(Tile, Bytes)> = partial_tiles(3)
            .into_iter()
            .map(|t| {
                let data = if t.l == -1 {
                    texts
                        .iter()
                        .flat_map(|t| t.iter().copied().chain([b'\n']))
                        .collect()
                } else {
                    read_tile_data(&t, &all[..]).unwrap()
                };
                (t, Bytes::from(data))
            })
            .collect();
        assert!(Frontier::load(3, tree_hash(3, &all[..]).unwrap(), &tiles).is_ok());
        assert!(Frontier::load(3, tree_hash(2, &all[..]).unwrap(), &tiles).is_err());
        // One bit changed in the hash tile, or in the data tile.
        for (i, at) in [(0, 5), (1, 20)] {
            let mut bad = tiles.clone();
            let mut data = bad[i].1.to_vec();
            data[at] ^= 1;
            bad[i].1 = Bytes::from(data);
            assert!(Frontier::load(3, tree_hash(3, &all[..]).unwrap(), &bad).is_err());
        }
    }

    #[test]
    fn partial_tiles_of_sizes() {
        assert!(partial_tiles(0).is_empty());
        assert!(partial_tiles(256).iter().all(|t| t.l == 1 && t.w == 1));
        let p: Vec<String> = partial_tiles(300).iter().map(Tile::path).collect();
        assert_eq!(
            p,
            [
                "tile/8/0/001.p/44",
                "tile/8/1/000.p/1",
                "tile/8/data/001.p/44"
            ]
        );
    }
}
