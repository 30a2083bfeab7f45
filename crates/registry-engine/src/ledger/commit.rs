//! Writing the log: claiming a record slot, and committing pending slots under a new signed
//! head by compare-and-swap (see the module documentation of [`super`] for the protocol).

use bytes::Bytes;
use futures::{StreamExt as _, TryStreamExt as _};
use strata_core::sumdb::{Tile, Tree};

use super::frontier::{Frontier, partial_tiles};
use super::head::{self, Head};
use super::record::Entry;
use super::{Ledger, LedgerError};

/// Most pending records one commit takes; more are committed by the next round.
const MAX_BATCH: usize = 1024;

/// Record slots read at once while collecting pending records.
const READ_AHEAD: usize = 16;

/// Objects written at once while committing.
const WRITE_CONCURRENCY: usize = 8;

/// Heads tried before giving up. Every lost swap means another writer stored a head, so this
/// only ends a commit when the store keeps failing conditional writes.
const MAX_ROUNDS: usize = 1000;

impl Ledger {
    /// The id recorded for `entry`'s module version, if any: `Some` when the recorded text
    /// is `entry`'s, a [`LedgerError::Conflict`] when it has other hashes.
    pub(super) async fn indexed(&self, entry: &Entry) -> Result<Option<u64>, LedgerError> {
        let Some(id) = self.index_id(&entry.module, &entry.version).await? else {
            return Ok(None);
        };
        let recorded = self.slot(id).await?.ok_or_else(|| {
            self.corrupt(format!(
                "the index names record {id} for {}@{}, which does not exist",
                entry.module, entry.version
            ))
        })?;
        self.same_or_conflict(id, &recorded, entry).map(Some)
    }

    /// Writes `entry` into the first free slot at or above `from` (the signed size read
    /// before the index missed) and returns its id — or the id of the slot that already holds
    /// the same module version.
    ///
    /// Why a module version ends up in exactly one slot, even with concurrent appenders of it:
    /// every committed record has its index entry (written before the head covering it), and
    /// the caller read the head *before* the index, so a version whose index it did not see was
    /// not committed by the head it read: if it is anywhere, it is in a slot ≥ `from`. This walk
    /// reads every occupied slot from `from` to the one it claims. So two appenders of the same
    /// version cannot claim two slots: slots are claimed with `put_if_absent` and filled in
    /// order, so whichever claims the higher slot found the lower one occupied and read it —
    /// unless the lower slot was below its `from`, but then a head it read covered that slot,
    /// and its index lookup after that read found the version.
    pub(super) async fn claim_slot(&self, from: u64, entry: &Entry) -> Result<u64, LedgerError> {
        let text = Bytes::from(entry.text.clone());
        let mut id = from;
        loop {
            let key = self.store.record_key(id)?;
            let Some(existing) = self.store.put_once(&key, text.clone()).await? else {
                return Ok(id);
            };
            let other = Entry::parse(&existing).map_err(|r| self.corrupt(r))?;
            if other.same_version(entry) {
                return self.same_or_conflict(id, &other, entry);
            }
            id += 1;
        }
    }

    fn same_or_conflict(
        &self,
        id: u64,
        recorded: &Entry,
        entry: &Entry,
    ) -> Result<u64, LedgerError> {
        if recorded.text == entry.text {
            return Ok(id);
        }
        Err(LedgerError::Conflict {
            ledger: self.name().to_owned(),
            module: entry.module.to_string(),
            version: entry.version.to_string(),
            reason: format!(
                "already recorded (record {id}) with other hashes: a module version's \
                 checksums never change\nrecorded:\n\t{}\nnew:\n\t{}",
                recorded.lines().join("\n\t"),
                entry.lines().join("\n\t")
            ),
        })
    }

    /// Commits pending records until a stored head covers record `id` (all pending records
    /// when `None`) and returns that head.
    pub(super) async fn commit(&self, id: Option<u64>) -> Result<Head, LedgerError> {
        let _gate = self.commit_gate.lock().await;
        for _ in 0..MAX_ROUNDS {
            let head = self.head().await?;
            if id.is_some_and(|id| id < head.tree.n) {
                return Ok(head);
            }
            let pending = self.pending(head.tree.n).await?;
            if pending.is_empty() {
                return match id {
                    None => Ok(head),
                    Some(id) => Err(self.corrupt(format!(
                        "record {id} is pending but slot {} below it is empty",
                        head.tree.n
                    ))),
                };
            }
            // Won or lost, the next round re-reads the head.
            self.try_commit(&head, &pending).await?;
        }
        Err(LedgerError::Contended {
            ledger: self.name().to_owned(),
            rounds: MAX_ROUNDS,
        })
    }

    /// The filled slots from `from` on, in order, up to the first empty one (at most
    /// [`MAX_BATCH`]).
    async fn pending(&self, from: u64) -> Result<Vec<Entry>, LedgerError> {
        let mut pending = Vec::new();
        while pending.len() < MAX_BATCH {
            let next = from + pending.len() as u64;
            let count = READ_AHEAD.min(MAX_BATCH - pending.len()) as u64;
            let slots =
                futures::future::try_join_all((next..next + count).map(|id| self.slot(id))).await?;
            let filled = slots.iter().take_while(|s| s.is_some()).count();
            pending.extend(slots.into_iter().flatten().take(filled));
            if filled < count as usize {
                break;
            }
        }
        Ok(pending)
    }

    /// Commits `pending` (the slots from `head`'s size on) under a new head, unless another
    /// writer replaces `head` first; whether this call stored the head.
    async fn try_commit(&self, head: &Head, pending: &[Entry]) -> Result<bool, LedgerError> {
        let texts: Vec<&[u8]> = pending.iter().map(|e| e.text.as_bytes()).collect();
        let growth =
            self.frontier(&head.tree).await?.grow(&texts).map_err(|e| {
                self.corrupt(format!("growing the tree of size {}: {e}", head.tree.n))
            })?;

        // Everything the new head covers is stored before the head: its tiles, so every
        // signed tree can be served and extended, and its index entries, so every committed
        // record is found by `indexed` (which `claim_slot`'s argument rests on).
        // (The futures are collected up front: a lazy `map` over borrowed items would keep a
        // closure the compiler cannot prove `Send` for every lifetime.)
        let tiles: Vec<_> = (growth.tiles.into_iter())
            .map(|(tile, data)| self.put_tile(tile, data))
            .collect();
        futures::stream::iter(tiles)
            .buffer_unordered(WRITE_CONCURRENCY)
            .try_collect::<()>()
            .await?;
        let indexes: Vec<_> = (head.tree.n..)
            .zip(pending)
            .map(|(id, entry)| self.put_index(id, entry))
            .collect();
        futures::stream::iter(indexes)
            .buffer_unordered(WRITE_CONCURRENCY)
            .try_collect::<()>()
            .await?;

        let note = head::sign(&growth.tree, &self.signer).map_err(LedgerError::Internal)?;
        let doc = head::encode(&growth.tree, &note).map_err(LedgerError::Internal)?;
        Ok(self.store.swap_head(head.etag.as_ref(), doc).await?)
    }

    /// The frontier of `tree` from the stored partial tiles, authenticated against its root.
    pub(super) async fn frontier(&self, tree: &Tree) -> Result<Frontier, LedgerError> {
        let tiles = partial_tiles(tree.n);
        let data = futures::future::try_join_all(tiles.iter().map(|t| self.store.tile(t))).await?;
        let mut loaded = Vec::with_capacity(tiles.len());
        for (tile, data) in tiles.into_iter().zip(data) {
            let data = data.ok_or_else(|| {
                self.corrupt(format!(
                    "tile {} of the signed tree of size {} is missing",
                    tile.path(),
                    tree.n
                ))
            })?;
            loaded.push((tile, data));
        }
        Frontier::load(tree.n, tree.hash, &loaded).map_err(|r| self.corrupt(r))
    }

    /// Stores a tile, or checks that the stored one is the same (tiles are a function of the
    /// records, so any writer computes the same bytes).
    async fn put_tile(&self, tile: Tile, data: Bytes) -> Result<(), LedgerError> {
        let key = self.store.tile_key(&tile)?;
        if let Some(existing) = self.store.put_once(&key, data.clone()).await?
            && existing != data
        {
            return Err(self.corrupt(format!(
                "stored tile {} differs from the one its records give",
                tile.path()
            )));
        }
        self.store.remember(&tile, data);
        Ok(())
    }

    /// Stores the index entry of record `id`, or checks the stored one names `id`.
    async fn put_index(&self, id: u64, entry: &Entry) -> Result<(), LedgerError> {
        let key = self.store.index_key(&entry.module, &entry.version)?;
        match self
            .store
            .put_once(&key, Bytes::from(id.to_string()))
            .await?
        {
            Some(existing) if existing != id.to_string().as_bytes() => Err(self.corrupt(format!(
                "{}@{} is in record {id} but its index entry says {:?}",
                entry.module,
                entry.version,
                String::from_utf8_lossy(&existing)
            ))),
            _ => Ok(()),
        }
    }

    /// The record in slot `id`, if the slot is filled.
    pub(super) async fn slot(&self, id: u64) -> Result<Option<Entry>, LedgerError> {
        let Some((text, _)) = self.store.read(&self.store.record_key(id)?).await? else {
            return Ok(None);
        };
        Entry::parse(&text)
            .map(Some)
            .map_err(|r| self.corrupt(format!("record {id}: {r}")))
    }

    /// The id the index records for `module@version`, committed or not.
    pub(super) async fn index_id(
        &self,
        module: &strata_core::path::ModulePath,
        version: &strata_core::version::Version,
    ) -> Result<Option<u64>, LedgerError> {
        let Some((data, _)) = self
            .store
            .read(&self.store.index_key(module, version)?)
            .await?
        else {
            return Ok(None);
        };
        std::str::from_utf8(&data)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| {
                self.corrupt(format!(
                    "index entry of {module}@{version} is not a record id: {:?}",
                    String::from_utf8_lossy(&data)
                ))
            })
    }
}
