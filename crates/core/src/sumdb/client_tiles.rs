//! How the checksum-database [`Client`] gets tiles: from its memory of authenticated tiles,
//! then the ops cache, then the server, falling back to the full tile's prefix when a partial
//! tile is gone. Nothing read here is trusted until [`super::tile::TileHashReader`] has
//! authenticated it; only then does [`TileReader::save_tiles`] remember and cache it.

use super::client::{Client, lock};
use super::ops::ClientOps;
use super::tile::{Tile, TileReader};
use super::tlog::{HASH_SIZE, TlogError};

/// Authenticated tiles kept in memory; cleared when it grows past this many.
const MEMORY_TILES: usize = 4096;

impl<O: ClientOps> Client<O> {
    fn tile_file(&self, tile: &Tile) -> String {
        format!("{}/{}", self.name(), tile.path())
    }

    /// One tile: memory, then cache (exact, then the full tile's prefix), then the server
    /// (exact, then the full tile's prefix, as partial tiles vanish once complete).
    fn read_tile(&self, tile: &Tile) -> Result<Vec<u8>, TlogError> {
        if let Some(data) = lock(&self.tiles).get(tile) {
            return Ok(data.clone());
        }
        let want = tile.w as usize * HASH_SIZE;
        let full = tile.full();
        let prefix = |data: Vec<u8>| data.get(..want).map(<[u8]>::to_vec);
        if let Some(data) = self.ops.read_cache(&self.tile_file(tile)) {
            lock(&self.cached_tiles).insert(*tile);
            return Ok(data);
        }
        if full != *tile
            && let Some(data) = self.ops.read_cache(&self.tile_file(&full)).and_then(prefix)
        {
            lock(&self.cached_tiles).insert(*tile);
            return Ok(data);
        }
        let err = match self.ops.read_remote(&format!("/{}", tile.path())) {
            Ok(data) => return Ok(data),
            Err(e) => e,
        };
        if full != *tile
            && let Ok(data) = self.ops.read_remote(&format!("/{}", full.path()))
            && let Some(data) = prefix(data)
        {
            return Ok(data);
        }
        Err(TlogError::Read(err))
    }
}

impl<O: ClientOps> TileReader for Client<O> {
    fn height(&self) -> u32 {
        self.tile_height
    }

    fn read_tiles(&self, tiles: &[Tile]) -> Result<Vec<Vec<u8>>, TlogError> {
        tiles.iter().map(|t| self.read_tile(t)).collect()
    }

    fn save_tiles(&self, tiles: &[Tile], data: &[Vec<u8>]) {
        for (tile, data) in tiles.iter().zip(data) {
            let newly_saved = {
                let mut saved = lock(&self.cached_tiles);
                if saved.len() >= MEMORY_TILES {
                    saved.clear();
                }
                saved.insert(*tile)
            };
            if newly_saved {
                self.ops.write_cache(&self.tile_file(tile), data);
            }
            let mut mem = lock(&self.tiles);
            if mem.len() >= MEMORY_TILES {
                mem.clear();
            }
            mem.insert(*tile, data.clone());
        }
    }
}
