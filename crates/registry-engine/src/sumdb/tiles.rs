//! Authenticating tiles the proxy fetched before they are cached for good: a hash tile's hashes
//! (and a data tile's record hashes) must equal the ones read through
//! [`TileHashReader`] for a verified tree head, which authenticates every tile it reads against
//! that head. Tiles are immutable, so a tile that passed once is served from the cache forever;
//! one that fails is never served.
//!
//! Runs on a blocking thread, like the core client, with [`StoreOps`]'s synchronous methods.

use strata_core::sumdb::record::is_valid_record_text;
use strata_core::sumdb::tile::{Tile, TileHashReader, TileReader, read_tile_data};
use strata_core::sumdb::tlog::{HASH_SIZE, TlogError, record_hash};
use strata_core::sumdb::{ClientOps, Tree};

use super::ops::StoreOps;

/// Checks tile `tile` with content `data` against the verified tree `tree`, which must contain
/// it ([`in_tree`]). On success the tiles read on the way are cached; `tile` itself is the
/// caller's to cache.
pub(super) fn authenticate(
    ops: &StoreOps,
    tree: Tree,
    tile: &Tile,
    data: &[u8],
) -> Result<(), TlogError> {
    if tile.l >= 0 {
        check_hash_tile_len(tile, data)?;
        let reader = ProxyTileReader {
            ops,
            height: tile.h,
            candidate: Some((*tile, data)),
        };
        let want = read_tile_data(tile, &TileHashReader::new(tree, &reader))?;
        return if want == data {
            Ok(())
        } else {
            Err(TlogError::InconsistentTile)
        };
    }
    let records = data_tile_records(data, tile.w).ok_or_else(|| {
        TlogError::BadTile(format!(
            "malformed data tile {} (want {} records)",
            tile.path(),
            tile.w
        ))
    })?;
    let leaves = Tile { l: 0, ..*tile };
    let reader = ProxyTileReader {
        ops,
        height: tile.h,
        candidate: None,
    };
    let want = read_tile_data(&leaves, &TileHashReader::new(tree, &reader))?;
    let got: Vec<u8> = records.iter().flat_map(|r| record_hash(r).0).collect();
    if want == got {
        Ok(())
    } else {
        Err(TlogError::InconsistentTile)
    }
}

/// Whether every hash (or record) of `tile` exists in a tree of `n` records.
pub(super) fn in_tree(tile: &Tile, n: u64) -> bool {
    let level = if tile.l < 0 {
        Some(0)
    } else {
        u32::try_from(tile.l)
            .ok()
            .and_then(|l| l.checked_mul(tile.h))
    };
    let end = tile
        .n
        .checked_mul(1u64 << tile.h.min(63))
        .and_then(|start| start.checked_add(u64::from(tile.w)));
    match (level, end) {
        (Some(level), Some(end)) if level < 64 => (u128::from(end) << level) <= u128::from(n),
        _ => false,
    }
}

/// A hash tile must hold exactly its `w` hashes.
pub(super) fn check_hash_tile_len(tile: &Tile, data: &[u8]) -> Result<(), TlogError> {
    if data.len() == tile.w as usize * HASH_SIZE {
        Ok(())
    } else {
        Err(TlogError::BadTile(format!(
            "tile {} has {} bytes, want {}",
            tile.path(),
            data.len(),
            tile.w as usize * HASH_SIZE
        )))
    }
}

/// The first `w` entries of a full tile's data: `w` hashes, or `w` records of a data tile.
pub(super) fn tile_prefix(tile: &Tile, full: &[u8]) -> Option<Vec<u8>> {
    if tile.l >= 0 {
        return full.get(..tile.w as usize * HASH_SIZE).map(<[u8]>::to_vec);
    }
    let mut end = 0;
    for _ in 0..tile.w {
        end += full.get(end..)?.windows(2).position(|w| w == b"\n\n")? + 2;
    }
    Some(full[..end].to_vec())
}

/// The record texts of a data tile (each followed by a blank line), if there are exactly `w`.
fn data_tile_records(data: &[u8], w: u32) -> Option<Vec<&[u8]>> {
    let mut records = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        let j = rest.windows(2).position(|p| p == b"\n\n")?;
        let text = &rest[..=j];
        if !is_valid_record_text(text) {
            return None;
        }
        records.push(text);
        rest = &rest[j + 2..];
    }
    (records.len() == w as usize).then_some(records)
}

/// Tiles for the [`TileHashReader`]: the candidate being checked, then the cache, then the
/// database (a partial tile that is gone is read as a prefix of the full one, as the go
/// command does). Authenticated tiles are cached.
struct ProxyTileReader<'a> {
    ops: &'a StoreOps,
    height: u32,
    candidate: Option<(Tile, &'a [u8])>,
}

impl ProxyTileReader<'_> {
    fn read_tile(&self, tile: &Tile) -> Result<Vec<u8>, TlogError> {
        if let Some((c, data)) = self.candidate
            && (c.h, c.l, c.n) == (tile.h, tile.l, tile.n)
            && c.w >= tile.w
        {
            return tile_prefix(tile, data).ok_or(TlogError::InconsistentTile);
        }
        let full = tile.full();
        let file = |t: &Tile| self.ops.file(&t.path());
        if let Some(data) = self.ops.read_cache(&file(tile)) {
            return Ok(data);
        }
        if full != *tile
            && let Some(data) = self
                .ops
                .read_cache(&file(&full))
                .and_then(|d| tile_prefix(tile, &d))
        {
            return Ok(data);
        }
        let err = match self.ops.read_remote(&format!("/{}", tile.path())) {
            Ok(data) => return Ok(data),
            Err(e) => e,
        };
        if full != *tile
            && let Ok(data) = self.ops.read_remote(&format!("/{}", full.path()))
            && let Some(data) = tile_prefix(tile, &data)
        {
            return Ok(data);
        }
        Err(TlogError::Read(err))
    }
}

impl TileReader for ProxyTileReader<'_> {
    fn height(&self) -> u32 {
        self.height
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError> {
        tiles.iter().map(|t| self.read_tile(t)).collect()
    }

    fn save_tiles(&self, tiles: &[Tile], data: &[Vec<u8>]) {
        for (tile, data) in tiles.iter().zip(data) {
            self.ops.write_cache(&self.ops.file(&tile.path()), data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_extent_in_tree() {
        let t = |l, n, w| Tile { h: 2, l, n, w };
        assert!(in_tree(&t(0, 0, 4), 4));
        assert!(!in_tree(&t(0, 0, 4), 3));
        assert!(in_tree(&t(0, 1, 2), 6));
        assert!(!in_tree(&t(0, 1, 3), 6));
        assert!(in_tree(&t(1, 0, 1), 4));
        assert!(!in_tree(&t(1, 0, 2), 7));
        assert!(in_tree(&t(-1, 1, 2), 6));
        assert!(!in_tree(&t(40, 0, 1), u64::MAX >> 1));
        assert!(!in_tree(&t(0, u64::MAX, 1), u64::MAX >> 1));
    }

    #[test]
    fn data_tiles_split_into_records() {
        let data = b"a 1\nb 2\n\nc 3\n\n";
        assert_eq!(
            data_tile_records(data, 2),
            Some(vec![&b"a 1\nb 2\n"[..], &b"c 3\n"[..]])
        );
        assert_eq!(data_tile_records(data, 3), None);
        assert_eq!(data_tile_records(b"a\n\n\n", 1), None);
        let tile = Tile {
            h: 2,
            l: -1,
            n: 0,
            w: 1,
        };
        assert_eq!(tile_prefix(&tile, data), Some(b"a 1\nb 2\n\n".to_vec()));
    }
}
