//! Tiles (`golang.org/x/mod/sumdb/tlog` tile.go): the stored hashes cut into fixed-height pieces
//! that a checksum database serves at `/tile/H/L/NNN[.p/W]`, and [`TileHashReader`], which reads
//! hashes out of tiles only after authenticating every tile against a trusted tree hash — the
//! property that makes tiles from any server or cache safe to use.

use std::collections::HashMap;

use super::record::Tree;
use super::tlog::{
    HASH_SIZE, Hash, HashReader, TlogError, node_hash, split_stored_hash_index, stored_hash_index,
    sub_tree_index,
};

/// A tile: `w` consecutive hashes of tree level `l·h`, starting at position `n·2^h`.
/// `l == -1` is the data tile holding the record texts of the leaves of tile `(h, 0, n, w)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    /// Height: a full tile has `2^h` hashes (1 ≤ h ≤ 30).
    pub h: u32,
    /// Tile level, or -1 for a data tile.
    pub l: i32,
    /// Index of the tile within its level.
    pub n: u64,
    /// Width: number of hashes present (1 ≤ w ≤ 2^h).
    pub w: u32,
}

impl Tile {
    /// Whether the tile holds all `2^h` hashes.
    pub fn is_full(&self) -> bool {
        u64::from(self.w) == 1u64 << self.h
    }

    /// This tile with its full width.
    pub fn full(&self) -> Tile {
        Tile {
            w: 1 << self.h,
            ..*self
        }
    }

    /// The tile's path, `tile/H/L/x001/x234/067[.p/W]`, relative to the database URL.
    pub fn path(&self) -> String {
        let mut n = self.n;
        let mut groups = format!("{:03}", n % 1000);
        while n >= 1000 {
            n /= 1000;
            groups = format!("x{:03}/{groups}", n % 1000);
        }
        let level = if self.l == -1 {
            "data".to_owned()
        } else {
            self.l.to_string()
        };
        let partial = if self.is_full() {
            String::new()
        } else {
            format!(".p/{}", self.w)
        };
        format!("tile/{}/{level}/{groups}{partial}", self.h)
    }

    /// Parses a tile path; only the canonical spelling produced by [`Tile::path`] is accepted.
    pub fn parse_path(path: &str) -> Result<Tile, TlogError> {
        let bad = || TlogError::BadTilePath(path.to_owned());
        let mut f: Vec<&str> = path.split('/').collect();
        if f.len() < 4 || f[0] != "tile" {
            return Err(bad());
        }
        let h = parse_digits(f[1])
            .filter(|h| (1..=30).contains(h))
            .ok_or_else(bad)? as u32;
        let l: i32 = if f[2] == "data" {
            -1
        } else {
            parse_digits(f[2])
                .and_then(|l| i32::try_from(l).ok())
                .ok_or_else(bad)?
        };
        let mut w = 1u64 << h;
        let dot_p = f[f.len() - 2];
        if let Some(last_group) = dot_p.strip_suffix(".p") {
            w = parse_digits(f[f.len() - 1])
                .filter(|&ww| ww > 0 && ww < w)
                .ok_or_else(bad)?;
            let at = f.len() - 2;
            f[at] = last_group;
            f.pop();
        }
        let mut n = 0u64;
        for group in &f[3..] {
            let g = parse_digits(group.strip_prefix('x').unwrap_or(group))
                .filter(|&g| g < 1000)
                .ok_or_else(bad)?;
            n = n
                .checked_mul(1000)
                .and_then(|n| n.checked_add(g))
                .ok_or_else(bad)?;
        }
        let t = Tile {
            h,
            l,
            n,
            w: w as u32,
        };
        if t.path() != path {
            return Err(bad());
        }
        Ok(t)
    }
}

fn parse_digits(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// The tile (clipped to the smallest width) holding the hash at storage index `index`, with
/// the byte range of that hash's subtree within the tile data.
fn locate_index(h: u32, index: u64) -> (Tile, usize, usize) {
    let (level, n) = split_stored_hash_index(index);
    let l = level / h;
    let r = level - l * h; // level within the tile
    let tile_n = (n << r) >> h;
    let j = n - ((tile_n << h) >> r); // position within the tile at level r
    let w = (j + 1) << r;
    let tile = Tile {
        h,
        l: l as i32,
        n: tile_n,
        w: w as u32,
    };
    let start = (j << r) as usize * HASH_SIZE;
    let end = ((j + 1) << r) as usize * HASH_SIZE;
    (tile, start, end)
}

/// The smallest tile of height `h` holding the hash at storage index `index`.
pub fn tile_for_index(h: u32, index: u64) -> Tile {
    tile_for_index_range(h, index).0
}

fn tile_for_index_range(h: u32, index: u64) -> (Tile, usize, usize) {
    locate_index(h.clamp(1, 30), index)
}

/// The Merkle root of the complete subtree whose level-`l·h` hashes are `data`.
fn tile_hash(data: &[u8]) -> Hash {
    if data.len() <= HASH_SIZE {
        return Hash::from_slice(data).unwrap_or_default();
    }
    let half = data.len() / 2;
    node_hash(tile_hash(&data[..half]), tile_hash(&data[half..]))
}

/// The hash at storage index `index`, computed from the data of tile `t` (which must hold it).
pub fn hash_from_tile(t: &Tile, data: &[u8], index: u64) -> Result<Hash, TlogError> {
    if !(1..=30).contains(&t.h) || !(0..64).contains(&t.l) || t.w < 1 || u64::from(t.w) > 1 << t.h {
        return Err(TlogError::BadTile(format!("invalid tile {}", t.path())));
    }
    if data.len() < t.w as usize * HASH_SIZE {
        return Err(TlogError::BadTile(format!(
            "data len {} too short for tile {}",
            data.len(),
            t.path()
        )));
    }
    let (t1, start, end) = tile_for_index_range(t.h, index);
    if t.l != t1.l || t.n != t1.n || t.w < t1.w {
        return Err(TlogError::BadTile(format!(
            "index {index} is in {} not {}",
            t1.path(),
            t.path()
        )));
    }
    Ok(tile_hash(&data[start..end]))
}

/// The tiles of height `h` that change when the tree grows from `old` to `new` records.
pub fn new_tiles(h: u32, old: u64, new: u64) -> Vec<Tile> {
    let h = h.clamp(1, 30);
    let mut tiles = Vec::new();
    let mut level = 0u32;
    while h * level < 64 && new >> (h * level) > 0 {
        let old_n = old >> (h * level);
        let new_n = new >> (h * level);
        if old_n != new_n {
            for n in (old_n >> h)..(new_n >> h) {
                tiles.push(Tile {
                    h,
                    l: level as i32,
                    n,
                    w: 1 << h,
                });
            }
            let n = new_n >> h;
            let w = new_n - (n << h);
            if w > 0 {
                tiles.push(Tile {
                    h,
                    l: level as i32,
                    n,
                    w: w as u32,
                });
            }
        }
        level += 1;
    }
    tiles
}

/// The data of hash tile `t`, read from `r` (e.g. to serve tiles from a server's hash storage).
pub fn read_tile_data<R: HashReader + ?Sized>(t: &Tile, r: &R) -> Result<Vec<u8>, TlogError> {
    let bad = || TlogError::BadTile(format!("invalid tile {}", t.path()));
    // Tile coordinates may come from a request path: no overflow on absurd ones.
    let start =
        t.n.checked_mul(1 << t.h.min(30))
            .filter(|s| s.checked_add(u64::from(t.w)).is_some_and(|e| e < 1 << 62))
            .ok_or_else(bad)?;
    let level = u32::try_from(t.l)
        .ok()
        .and_then(|l| l.checked_mul(t.h))
        .filter(|&l| l < 64)
        .ok_or_else(bad)?;
    let indexes: Vec<u64> = (0..u64::from(t.w))
        .map(|i| stored_hash_index(level, start + i))
        .collect();
    let hashes = r.read_hashes(&indexes)?;
    if hashes.len() != indexes.len() {
        return Err(TlogError::ShortRead {
            want: indexes.len(),
            got: hashes.len(),
        });
    }
    Ok(hashes.iter().flat_map(|h| h.0).collect())
}

/// Fetches tiles (from a cache or an untrusted server) for a [`TileHashReader`].
pub trait TileReader {
    /// The tile height `h` used for every tile.
    fn height(&self) -> u32;
    /// The data of each tile, in order. A partial tile missing on the server may be answered
    /// with the first `w` hashes of the full tile.
    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError>;
    /// Called with tiles once they are authenticated, so they can be cached.
    fn save_tiles(&self, tiles: &[Tile], data: &[Vec<u8>]);
}

/// The tile of `t`'s ancestor `k` tile levels up, clipped to what exists in a tree of `n`
/// records; `None` when that tile would be empty.
fn tile_parent(t: &Tile, k: u32, n: u64) -> Option<Tile> {
    let l = t.l.checked_add(i32::try_from(k).ok()?)?;
    let shift = u32::try_from(l).ok()?.checked_mul(t.h)?;
    let tn = t.n.checked_shr(k.checked_mul(t.h)?).unwrap_or(0);
    let max = n.checked_shr(shift).unwrap_or(0);
    let start = tn << t.h;
    let mut w = 1u64 << t.h;
    if start.saturating_add(w) >= max {
        if start >= max {
            return None;
        }
        w = max - start;
    }
    Some(Tile {
        h: t.h,
        l,
        n: tn,
        w: w as u32,
    })
}

/// A [`HashReader`] for the tree `tree` that reads hashes from tiles and returns them only after
/// every tile used has been authenticated against `tree.hash`.
#[derive(Debug)]
pub struct TileHashReader<'a, T: ?Sized> {
    tree: Tree,
    tiles: &'a T,
}

impl<'a, T: TileReader + ?Sized> TileHashReader<'a, T> {
    /// Reads hashes of `tree` through `tiles`.
    pub fn new(tree: Tree, tiles: &'a T) -> Self {
        TileHashReader { tree, tiles }
    }
}

impl<T: TileReader + ?Sized> HashReader for TileHashReader<'_, T> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, TlogError> {
        let h = self.tiles.height().clamp(1, 30);
        let n = self.tree.n;
        let mut order: HashMap<Tile, usize> = HashMap::new();
        let mut tiles: Vec<Tile> = Vec::new();

        // The tiles holding the maximal complete subtrees of [0, n): if their hashes fold to the
        // trusted tree hash, those tiles are authenticated.
        let mut stx = Vec::new();
        sub_tree_index(0, n, &mut stx);
        let mut stx_order = Vec::with_capacity(stx.len());
        for &x in &stx {
            let t = tile_parent(&tile_for_index_range(h, x).0, 0, n).ok_or_else(bad_math)?;
            let j = *order.entry(t).or_insert_with(|| {
                tiles.push(t);
                tiles.len() - 1
            });
            stx_order.push(j);
        }

        // For each requested index, its tile and the chain of (full) tiles up to one already
        // planned, parents before children, so each can be checked against its parent.
        let mut index_order = Vec::with_capacity(indexes.len());
        for &x in indexes {
            if x >= stored_hash_index(0, n) {
                return Err(TlogError::IndexNotInTree);
            }
            let base = tile_for_index_range(h, x).0;
            let mut k = 0u32;
            let found = loop {
                if let Some(p) = tile_parent(&base, k, n)
                    && let Some(&j) = order.get(&p)
                {
                    break j;
                }
                k += 1;
                if k * h >= 64 {
                    return Err(bad_math());
                }
            };
            if k == 0 {
                index_order.push(found);
                continue;
            }
            for kk in (0..k).rev() {
                let p = tile_parent(&base, kk, n).ok_or_else(bad_math)?;
                if !p.is_full() {
                    return Err(bad_math());
                }
                order.insert(p, tiles.len());
                tiles.push(p);
            }
            index_order.push(tiles.len() - 1);
        }

        let data = self.tiles.read_tiles(&tiles)?;
        if data.len() != tiles.len() {
            return Err(TlogError::BadTile(format!(
                "TileReader returned bad result slice (len={}, want {})",
                data.len(),
                tiles.len()
            )));
        }
        for (t, d) in tiles.iter().zip(&data) {
            if d.len() != t.w as usize * HASH_SIZE {
                return Err(TlogError::BadTile(format!(
                    "TileReader returned bad result slice ({} len={}, want {})",
                    t.path(),
                    d.len(),
                    t.w as usize * HASH_SIZE
                )));
            }
        }

        // Authenticate the subtree tiles against the tree hash, folding right to left.
        let mut th: Option<Hash> = None;
        for (&x, &j) in stx.iter().zip(&stx_order).rev() {
            let hx = hash_from_tile(&tiles[j], &data[j], x)?;
            th = Some(match th {
                None => hx,
                Some(acc) => node_hash(hx, acc),
            });
        }
        if th.unwrap_or_else(super::tlog::empty_tree_hash) != self.tree.hash {
            return Err(TlogError::InconsistentTile);
        }

        // Then every further (full) tile against the hash its parent tile stores for it.
        for i in stx_order.iter().max().map_or(0, |m| m + 1)..tiles.len() {
            let t = tiles[i];
            let p = tile_parent(&t, 1, n).ok_or_else(bad_math)?;
            let j = *order.get(&p).ok_or_else(bad_math)?;
            let plevel = u32::try_from(p.l).map_err(|_| bad_math())? * p.h;
            let want = hash_from_tile(&p, &data[j], stored_hash_index(plevel, t.n))?;
            if want != tile_hash(&data[i]) {
                return Err(TlogError::InconsistentTile);
            }
        }

        self.tiles.save_tiles(&tiles, &data);

        indexes
            .iter()
            .zip(&index_order)
            .map(|(&x, &j)| hash_from_tile(&tiles[j], &data[j], x))
            .collect()
    }
}

fn bad_math() -> TlogError {
    TlogError::BadTile("bad math in tileHashReader".to_owned())
}
