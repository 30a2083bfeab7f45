//! Reading the log as the checksum-database protocol serves it: `/lookup/<module>@<version>`
//! and `/tile/8/…`, byte for byte as golang.org/x/mod's `sumdb.Server` answers them.

use bytes::Bytes;
use strata_core::path::ModulePath;
use strata_core::sumdb::Tile;
use strata_core::sumdb::record::format_record;
use strata_core::sumdb::tlog::HASH_SIZE;
use strata_core::version::Version;

use super::commit::indexed_below;
use strata_core::sumdb::record::split_data_tile as split_records;

use super::frontier::TILE_HEIGHT;
use super::head::Head;
use super::record::{Entry, parse_lookup_key};
use super::{Ledger, LedgerError};

impl Ledger {
    /// The `/lookup/` body for `key` (`<escaped module>@<escaped version>`, the path after
    /// `/lookup/`): the record id, the record text and a blank line, then the signed tree note
    /// of a head covering the record. `None` (404) when no committed record exists;
    /// [`LedgerError::InvalidInput`] (400) for a key that is not `module@version` syntax.
    pub async fn lookup(&self, key: &str) -> Result<Option<Bytes>, LedgerError> {
        let Some((module, version)) = parse_lookup_key(key)? else {
            return Ok(None);
        };
        let head = self.head().await?;
        let Some((id, entry)) = self.committed(&head, &module, &version).await? else {
            return Ok(None);
        };
        let mut body = format_record(id, entry.text.as_bytes())
            .map_err(|e| self.corrupt(format!("record {id}: {e}")))?;
        body.extend_from_slice(&head.note);
        Ok(Some(Bytes::from(body)))
    }

    /// The body of tile `path` (`tile/8/<L>/<NNN>[.p/<W>]` or `tile/8/data/<NNN>[.p/<W>]`,
    /// with or without a leading `/`): `W` hashes of 32 bytes, or the texts of `W` records each
    /// followed by a blank line. Partial tiles are served for any width the current tree has
    /// (a prefix of the stored, wider tile), full tiles once complete. `None` (404) for tiles
    /// beyond the signed tree and for other tile heights; [`LedgerError::InvalidInput`] (400)
    /// for a path that is not tile syntax.
    pub async fn tile(&self, path: &str) -> Result<Option<Bytes>, LedgerError> {
        let path = path.strip_prefix('/').unwrap_or(path);
        let tile = Tile::parse_path(path)
            .map_err(|e| LedgerError::InvalidInput(format!("invalid tile syntax: {e}")))?;
        if tile.h != TILE_HEIGHT {
            return Ok(None);
        }
        let head = self.head().await?;
        let Some(stored) = stored_tile(&tile, head.tree.n) else {
            return Ok(None);
        };
        let data = if stored.w < 1 << TILE_HEIGHT {
            // The last tile of its level: carried by the head, never in the store.
            let current = self.current(&head).await?;
            (current.partials.iter())
                .find(|(t, _)| *t == stored)
                .map(|(_, data)| data.clone())
        } else {
            match self.store.tile(&stored).await? {
                Some(data) => Some(data),
                // Completed by the head's own records, not stored yet (its writer is at it,
                // or died after the head): store it now.
                None => {
                    self.finish(&head).await?;
                    self.store.tile(&stored).await?
                }
            }
        };
        let data = data.ok_or_else(|| {
            self.corrupt(format!(
                "tile {} of the signed tree of size {} is missing",
                stored.path(),
                head.tree.n
            ))
        })?;
        if stored.w == tile.w {
            return Ok(Some(data));
        }
        let len = if tile.l >= 0 {
            Some(tile.w as usize * HASH_SIZE).filter(|&len| len <= data.len())
        } else {
            let records = split_records(&data);
            records
                .get(..tile.w as usize)
                .map(|prefix| prefix.iter().map(|r| r.len() + 1).sum())
        };
        match len {
            Some(len) => Ok(Some(data.slice(..len))),
            None => Err(self.corrupt(format!(
                "stored tile {} is shorter than its width",
                stored.path()
            ))),
        }
    }

    /// The committed record of `module@version` under `head`: its id and entry.
    pub(super) async fn committed(
        &self,
        head: &Head,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Option<(u64, Entry)>, LedgerError> {
        self.committed_in(head, module, version, true).await
    }

    /// [`Ledger::committed`], looking only at what `head` carries unless `index`.
    pub(super) async fn committed_in(
        &self,
        head: &Head,
        module: &ModulePath,
        version: &Version,
        index: bool,
    ) -> Result<Option<(u64, Entry)>, LedgerError> {
        // The head's own records and those of its last data tile are not indexed (yet);
        // every record before them is. What the head carries is used only once it is known
        // to grow to the signed root.
        let current = self.current(head).await?;
        if let Some((id, entry)) =
            (current.carried.iter()).find(|(_, e)| e.module == *module && e.version == *version)
        {
            return Ok(Some((*id, entry.clone())));
        }
        if !index {
            return Ok(None);
        }
        let Some(id) = self.index_id(module, version).await? else {
            return Ok(None);
        };
        if id >= indexed_below(head) {
            // Left by a crashed writer of the first ledger version (which indexed records
            // before its head) for a record it never committed: not in the database.
            return Ok(None);
        }
        let entry = self.record(head, id).await?;
        if entry.module == *module && entry.version == *version {
            Ok(Some((id, entry)))
        } else {
            Err(self.corrupt(format!(
                "the index names record {id} for {module}@{version}, which holds {:?}",
                entry.text
            )))
        }
    }
}

/// The stored tile that `tile` is (a prefix of) in a tree of `size` records: the full tile
/// once complete, else the partial tile of the current width. `None` when the tree does not
/// have `tile.w` entries at that place.
fn stored_tile(tile: &Tile, size: u64) -> Option<Tile> {
    let level = match tile.l {
        -1 => 0,
        l => u32::try_from(l).ok()?.checked_mul(tile.h)?,
    };
    let count = size.checked_shr(level).unwrap_or(0);
    let start = tile.n.checked_mul(1 << tile.h)?;
    let available = count.checked_sub(start)?;
    if available < u64::from(tile.w) {
        return None;
    }
    Some(Tile {
        w: available.min(1 << tile.h) as u32,
        ..*tile
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_tiles_of_a_tree() {
        let t = |l, n, w| Tile { h: 8, l, n, w };
        assert_eq!(stored_tile(&t(0, 0, 256), 300), Some(t(0, 0, 256)));
        assert_eq!(stored_tile(&t(0, 0, 10), 300), Some(t(0, 0, 256)));
        assert_eq!(stored_tile(&t(0, 1, 10), 300), Some(t(0, 1, 44)));
        assert_eq!(stored_tile(&t(-1, 1, 44), 300), Some(t(-1, 1, 44)));
        assert_eq!(stored_tile(&t(0, 1, 45), 300), None);
        assert_eq!(stored_tile(&t(0, 1, 256), 300), None);
        assert_eq!(stored_tile(&t(1, 0, 1), 300), Some(t(1, 0, 1)));
        assert_eq!(stored_tile(&t(1, 0, 2), 300), None);
        assert_eq!(stored_tile(&t(2, 0, 1), 300), None);
        assert_eq!(stored_tile(&t(7, 0, 1), u64::MAX), Some(t(7, 0, 255)));
        assert_eq!(stored_tile(&t(9, 0, 1), u64::MAX), None);
        assert_eq!(stored_tile(&t(0, u64::MAX, 1), u64::MAX), None);
    }
}
