//! Writing the log: group commit of this process's appends under a new signed head by
//! compare-and-swap, and *finishing* a stored head — storing the tiles its records completed
//! and the index entries of their records (see the module documentation of [`super`]).

use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures::{FutureExt as _, StreamExt as _, TryStreamExt as _};
use strata_core::sumdb::{Tile, Tree};
use tokio::sync::oneshot;

use strata_core::sumdb::record::split_data_tile as split_records;

use super::frontier::{Frontier, TILE_HEIGHT, partial_tiles};
use super::head::{self, Head};
use super::record::Entry;
use super::store::LedgerStore;
use super::{Ledger, LedgerError, corrupt};

/// Most records one head adds; more waiting appends are committed by the next round.
pub(super) const MAX_BATCH: usize = 1024;

/// Objects written at once while finishing a head: the tiles one in 256 records completes and
/// the index entries of those 256 records, which the next commit waits for (the store's
/// fsyncs share journal commits when they come together).
const WRITE_CONCURRENCY: usize = 32;

/// Index entries read at once while deduplicating a batch against the log.
const LOOKUP_CONCURRENCY: usize = 32;

/// Heads tried before giving up. Every lost swap means another writer stored a head, so this
/// only ends a commit when the store keeps failing conditional writes.
const MAX_ROUNDS: usize = 1000;

/// An append waiting for a commit: its record, and where its outcome goes (`None`: the commit
/// that took it failed as a whole; the appender tries again).
#[derive(Debug)]
pub(super) struct Waiter {
    pub(super) entry: Entry,
    /// The size of the head its look-ahead read against, if it made one that found nothing.
    pub(super) basis: Option<u64>,
    pub(super) done: oneshot::Sender<Option<Result<u64, LedgerError>>>,
}

impl Ledger {
    /// Waits until a stored head covers `entry` and returns its record id: as the leader of
    /// a group commit (taking every append queued in this process) or because the leader
    /// before took it.
    pub(super) async fn commit_entry(
        &self,
        entry: Entry,
        basis: Option<u64>,
    ) -> Result<u64, LedgerError> {
        loop {
            let (done, mut outcome) = oneshot::channel();
            self.queue().push(Waiter {
                entry: entry.clone(),
                basis,
                done,
            });
            let _gate = self.commit_gate.lock().await;
            match outcome.try_recv() {
                Ok(Some(result)) => return result,
                // The commit that took it failed (or its leader was cancelled): try again.
                Ok(None) | Err(oneshot::error::TryRecvError::Closed) => continue,
                // Nobody took it yet: lead. (Leaders hold the gate until every append they
                // took has its outcome, so ours is still in the queue.)
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            let waiters: Vec<Waiter> = {
                let mut queue = self.queue();
                let take = queue.len().min(MAX_BATCH);
                queue.drain(..take).collect()
            };
            let entries: Vec<(&Entry, Option<u64>)> =
                waiters.iter().map(|w| (&w.entry, w.basis)).collect();
            match self.commit_batch(&entries).await {
                Ok(results) => {
                    for (waiter, result) in waiters.into_iter().zip(results) {
                        let _ = waiter.done.send(Some(result));
                    }
                }
                Err(e) => {
                    for waiter in waiters {
                        let _ = waiter.done.send(None);
                    }
                    return Err(e);
                }
            }
            match outcome.await {
                Ok(Some(result)) => return result,
                _ => continue,
            }
        }
    }

    /// Commits `batch` under one new head (its versions deduplicated against the log and
    /// among themselves) and returns each append's outcome: its record id, or a conflict.
    /// An `Err` is a failure of the whole commit.
    async fn commit_batch(
        &self,
        appends: &[(&Entry, Option<u64>)],
    ) -> Result<Vec<Result<u64, LedgerError>>, LedgerError> {
        let batch: Vec<&Entry> = appends.iter().map(|(entry, _)| *entry).collect();
        for round in 0..MAX_ROUNDS {
            // The first round builds on the head this process last saw (usually the one it
            // stored itself) without reading it again: if another writer stored one since,
            // the swap below fails on the etag and the next round reads it. One store round
            // trip less per commit.
            let cached = if round == 0 {
                self.last_head().clone()
            } else {
                None
            };
            let head = match cached {
                Some(head) => head,
                None => self.head().await?,
            };
            // A head is stored only on top of a finished one: a crash after this swap must
            // find the tiles of `head` to finish the next from its batch.
            self.finish(&head).await?;

            let mut results: Vec<Option<Result<u64, LedgerError>>> =
                batch.iter().map(|_| None).collect();
            let mut fresh = Vec::new();
            let mut first: HashMap<(&str, &str), usize> = HashMap::new();
            let mut repeats = Vec::new();
            // Every version's index entry is read at once, not one after the other (a batch of
            // k appends cost k store round trips inside the commit before) — and not at all
            // for an append whose look-ahead found nothing against a head at least this one:
            // then only what this head carries can hold it.
            let lookups: Vec<_> = (appends.iter())
                .map(|(entry, basis)| {
                    let index = !basis.is_some_and(|b| head.tree.n <= b);
                    self.committed_in(&head, &entry.module, &entry.version, index)
                })
                .collect();
            let recorded: Vec<Option<(u64, Entry)>> = futures::stream::iter(lookups)
                .buffered(LOOKUP_CONCURRENCY)
                .try_collect()
                .await?;
            for (i, (entry, recorded)) in batch.iter().zip(recorded).enumerate() {
                if let Some((id, recorded)) = recorded {
                    results[i] = Some(self.same_or_conflict(id, &recorded, entry));
                    continue;
                }
                match first.entry((entry.module.as_str(), entry.version.as_str())) {
                    Slot::Occupied(at) => repeats.push((i, *at.get())),
                    Slot::Vacant(at) => {
                        at.insert(i);
                        fresh.push(i);
                    }
                }
            }

            if !fresh.is_empty() {
                let added: Vec<&Entry> = fresh.iter().map(|&i| batch[i]).collect();
                let texts: Vec<&[u8]> = added.iter().map(|e| e.text.as_bytes()).collect();
                let current = self.current(&head).await?;
                let growth = Frontier::load(head.tree.n, head.tree.hash, &current.partials)
                    .map_err(|r| self.corrupt(r))?
                    .grow(&texts)
                    .map_err(|e| {
                        self.corrupt(format!("growing the tree of size {}: {e}", head.tree.n))
                    })?;
                let note = head::sign(&growth.tree, &self.signer).map_err(LedgerError::Internal)?;
                let doc = head::encode(
                    &growth.tree,
                    &note,
                    &head.tree,
                    &added,
                    Some(&current.partials),
                )
                .map_err(LedgerError::Internal)?;
                let Some(etag) = self.store.swap_head(head.etag.as_ref(), doc).await? else {
                    // Another writer stored a head first: dedupe again against it.
                    continue;
                };
                for (k, &i) in fresh.iter().enumerate() {
                    results[i] = Some(Ok(head.tree.n + k as u64));
                }
                // What the new head carries: the records of the last data tile of the tree it
                // grew, then its own.
                let tile_start = head.tree.n >> TILE_HEIGHT << TILE_HEIGHT;
                let carried = (current.carried.iter())
                    .filter(|(id, _)| *id >= tile_start)
                    .cloned()
                    .chain((head.tree.n..).zip(added.iter().map(|e| (*e).clone())))
                    .collect();
                let next = Arc::new(assemble(
                    self.name(),
                    &growth.tree,
                    &current.partials,
                    growth.tiles,
                    carried,
                )?);
                *self.current_cache() = Some((growth.tree, next.clone()));
                let stored = Head {
                    tree: growth.tree,
                    note,
                    etag: Some(etag),
                    prev: head.tree,
                    batch: added.into_iter().cloned().collect(),
                    prev_tiles: Some(current.partials.clone()),
                };
                // The next read of the head finds this etag: no need to read and decode it.
                *self.last_head() = Some(stored.clone());
                self.finish_in_background(stored, next);
            }
            for (i, j) in repeats {
                results[i] = Some(match &results[j] {
                    Some(Ok(id)) => self.same_or_conflict(*id, batch[j], batch[i]),
                    _ => unreachable!("a repeated version's first append is fresh and committed"),
                });
            }
            return Ok(results.into_iter().flatten().collect());
        }
        Err(LedgerError::Contended {
            ledger: self.name().to_owned(),
            rounds: MAX_ROUNDS,
        })
    }

    /// `Ok(id)` when `recorded` (record `id`) is `entry`'s text, else a
    /// [`LedgerError::Conflict`] naming both.
    pub(super) fn same_or_conflict(
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

    /// Stores the tiles and index entries of `head`'s batch (idempotent; nothing to do for a
    /// head this process finished already), after any finishing still running in the
    /// background.
    pub(super) async fn finish(&self, head: &Head) -> Result<(), LedgerError> {
        let running = self.finishing().take();
        if let Some(running) = running {
            // Its failure is logged where it runs; this call does the work again if needed.
            let _ = running.await;
        }
        if head.batch.is_empty() || self.finished.load(Ordering::Acquire) >= head.tree.n {
            return Ok(());
        }
        let grown = self.current(head).await?;
        finish(&self.store, self.name(), &self.finished, head, &grown).await
    }

    /// Finishes `head` in a task of its own, so the appends it committed return now.
    fn finish_in_background(&self, head: Head, grown: Arc<Grown>) {
        let (store, name, finished) = (
            self.store.clone(),
            self.name().to_owned(),
            self.finished.clone(),
        );
        let task = tokio::spawn(async move {
            if let Err(e) = finish(&store, &name, &finished, &head, &grown).await {
                tracing::warn!(
                    ledger = %name,
                    size = head.tree.n,
                    error = %e,
                    "writing the tiles of a signed head failed; the next append or read retries"
                );
            }
        });
        *self.finishing() = Some(task);
    }

    /// The partial tiles of `head`'s tree (and the complete tiles its records filled),
    /// authenticated against its signed root; remembered for the head last asked about.
    pub(super) async fn current(&self, head: &Head) -> Result<Arc<Grown>, LedgerError> {
        if let Some((tree, grown)) = self.current_cache().clone()
            && tree == head.tree
        {
            return Ok(grown);
        }
        let grown = Arc::new(grown(&self.store, self.name(), head).await?);
        *self.current_cache() = Some((head.tree, grown.clone()));
        Ok(grown)
    }

    fn current_cache(&self) -> std::sync::MutexGuard<'_, Option<(Tree, Arc<Grown>)>> {
        // A plain replacement: a poisoned lock still holds a consistent value.
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The record with id `id` under `head`: from the head itself when it carries it (its
    /// batch, or the partial data tile of the tree it grew from), else from the store.
    pub(super) async fn record(&self, head: &Head, id: u64) -> Result<Entry, LedgerError> {
        let current = self.current(head).await?;
        if let Some((_, entry)) = current.carried.iter().find(|(i, _)| *i == id) {
            return Ok(entry.clone());
        }
        self.record_of(indexed_below(head), id).await
    }

    /// Record `id` of a tree whose data tiles are stored up to `size`.
    async fn record_of(&self, size: u64, id: u64) -> Result<Entry, LedgerError> {
        let missing = || self.corrupt(format!("record {id} of the tree of size {size} is missing"));
        if id >= size {
            return Err(missing());
        }
        let start = id >> TILE_HEIGHT << TILE_HEIGHT;
        let tile = Tile {
            h: TILE_HEIGHT,
            l: -1,
            n: id >> TILE_HEIGHT,
            w: (size - start).min(1 << TILE_HEIGHT) as u32,
        };
        let data = self.store.tile(&tile).await?.ok_or_else(missing)?;
        let records = split_records(&data);
        let text = records.get((id - start) as usize).ok_or_else(missing)?;
        Entry::parse(text).map_err(|r| self.corrupt(format!("record {id}: {r}")))
    }

    /// The id the index records for `module@version`.
    pub(super) async fn index_id(
        &self,
        module: &strata_core::path::ModulePath,
        version: &strata_core::version::Version,
    ) -> Result<Option<u64>, LedgerError> {
        read_index(
            &self.store,
            self.name(),
            &self.store.index_key(module, version)?,
        )
        .await
    }
}

/// What a head's records make of the tree it grew from: the partial tiles of the head's tree
/// and the tiles that became complete.
#[derive(Debug)]
pub(super) struct Grown {
    /// The partial tiles of the head's tree, in [`partial_tiles`] order.
    pub(super) partials: Vec<(Tile, Bytes)>,
    /// The complete tiles the head's records filled (stored by [`finish`]).
    pub(super) full: Vec<(Tile, Bytes)>,
    /// The records the head carries, with their ids: those of the partial data tile of the
    /// tree it grew from, then its batch. Every record below them is indexed and stored in a
    /// complete data tile.
    pub(super) carried: Vec<(u64, Entry)>,
}

/// [`Grown`] of `head`: its batch grown onto the partial tiles of the tree before it (carried
/// by the head, or in the store for a head of the first ledger version), checked against the
/// signed root.
async fn grown(store: &LedgerStore, name: &str, head: &Head) -> Result<Grown, LedgerError> {
    let prev_tiles = match &head.prev_tiles {
        Some(tiles) => tiles.clone(),
        None => stored_partials(store, name, &head.prev).await?,
    };
    let frontier =
        Frontier::load(head.prev.n, head.prev.hash, &prev_tiles).map_err(|r| corrupt(name, r))?;
    let mut carried = Vec::new();
    for (tile, data) in prev_tiles.iter().filter(|(t, _)| t.l == -1) {
        let start = tile.n << TILE_HEIGHT;
        for (i, text) in split_records(data).into_iter().enumerate() {
            let id = start + i as u64;
            let entry =
                Entry::parse(text).map_err(|r| corrupt(name, format!("record {id}: {r}")))?;
            carried.push((id, entry));
        }
    }
    carried.extend((head.prev.n..).zip(head.batch.iter().cloned()));
    if head.batch.is_empty() {
        return Ok(Grown {
            partials: prev_tiles,
            full: Vec::new(),
            carried,
        });
    }
    let texts: Vec<&[u8]> = head.batch.iter().map(|e| e.text.as_bytes()).collect();
    let growth = frontier.grow(&texts).map_err(|e| {
        corrupt(
            name,
            format!("growing the tree of size {}: {e}", head.prev.n),
        )
    })?;
    if growth.tree != head.tree {
        return Err(corrupt(
            name,
            format!(
                "the records of the head of size {} do not grow the tree of size {} to its \
                 signed root",
                head.tree.n, head.prev.n
            ),
        ));
    }
    assemble(name, &head.tree, &prev_tiles, growth.tiles, carried)
}

/// [`Grown`] of a tree of `tree.n` records reached by growing a tree whose partial tiles are
/// `prev_tiles`: `tiles` are the tiles the growth made, `carried` the records its head
/// carries.
fn assemble(
    name: &str,
    tree: &Tree,
    prev_tiles: &[(Tile, Bytes)],
    tiles: Vec<(Tile, Bytes)>,
    carried: Vec<(u64, Entry)>,
) -> Result<Grown, LedgerError> {
    let (full, changed): (Vec<_>, Vec<_>) =
        (tiles.into_iter()).partition(|(t, _)| t.w == 1 << TILE_HEIGHT);
    let partials = partial_tiles(tree.n)
        .into_iter()
        .map(|tile| {
            (changed.iter().chain(prev_tiles))
                .find(|(t, _)| *t == tile)
                .cloned()
                .ok_or_else(|| corrupt(name, format!("no tile {} after growing", tile.path())))
        })
        .collect::<Result<_, _>>()?;
    Ok(Grown {
        partials,
        full,
        carried,
    })
}

/// The partial tiles of `tree` from the store (where the first ledger version kept them).
async fn stored_partials(
    store: &LedgerStore,
    name: &str,
    tree: &Tree,
) -> Result<Vec<(Tile, Bytes)>, LedgerError> {
    let tiles = partial_tiles(tree.n);
    let data = futures::future::try_join_all(tiles.iter().map(|t| store.tile(t))).await?;
    tiles
        .into_iter()
        .zip(data)
        .map(|(tile, data)| {
            data.map(|data| (tile, data)).ok_or_else(|| {
                corrupt(
                    name,
                    format!(
                        "tile {} of the signed tree of size {} is missing",
                        tile.path(),
                        tree.n
                    ),
                )
            })
        })
        .collect()
}

/// The size below which `head`'s records are indexed and their data tiles stored.
pub(super) fn indexed_below(head: &Head) -> u64 {
    match head.prev_tiles {
        Some(_) => head.prev.n >> TILE_HEIGHT << TILE_HEIGHT,
        None => head.prev.n,
    }
}

/// Stores the tiles `head`'s records completed and the index entries of the records in them
/// (see [`Ledger::finish`]); `grown` is [`Grown`] of `head`, checked against its signed root.
async fn finish(
    store: &LedgerStore,
    name: &str,
    finished: &AtomicU64,
    head: &Head,
    grown: &Grown,
) -> Result<(), LedgerError> {
    let lower = indexed_below(head);
    let mut entries = Vec::new();
    for (tile, data) in grown.full.iter().filter(|(t, _)| t.l == -1) {
        let start = tile.n << TILE_HEIGHT;
        for (i, text) in split_records(data).into_iter().enumerate() {
            let entry = Entry::parse(text).map_err(|r| corrupt(name, r))?;
            entries.push((start + i as u64, entry));
        }
    }
    let tiles =
        (grown.full.iter()).map(|(tile, data)| put_tile(store, name, *tile, data.clone()).boxed());
    let indexes =
        (entries.iter()).map(|(id, entry)| put_index(store, name, lower, *id, entry).boxed());
    // (Boxed and collected up front: a lazy `map` over borrowed items would keep a closure the
    // compiler cannot prove `Send` for every lifetime.)
    let writes: Vec<_> = tiles.chain(indexes).collect();
    futures::stream::iter(writes)
        .buffer_unordered(WRITE_CONCURRENCY)
        .try_collect::<()>()
        .await?;
    finished.fetch_max(head.tree.n, Ordering::AcqRel);
    Ok(())
}

/// Stores a tile, or checks that the stored one is the same (the tiles of a signed tree are a
/// function of its records, so any writer computes the same bytes).
async fn put_tile(
    store: &LedgerStore,
    name: &str,
    tile: Tile,
    data: Bytes,
) -> Result<(), LedgerError> {
    let key = store.tile_key(&tile)?;
    if let Some(existing) = store.put_once(&key, data.clone()).await?
        && existing != data
    {
        return Err(corrupt(
            name,
            format!(
                "stored tile {} differs from the one its records give",
                tile.path()
            ),
        ));
    }
    store.remember(&tile, data);
    Ok(())
}

/// Stores the index entry of record `id` (a head's records are indexed from `lower` on). An
/// entry naming a record below `lower` means the version was recorded twice: corrupt. Any
/// other entry is one a crashed writer of the first ledger version left for a record it never
/// committed (it wrote index entries before its head): replaced.
async fn put_index(
    store: &LedgerStore,
    name: &str,
    lower: u64,
    id: u64,
    entry: &Entry,
) -> Result<(), LedgerError> {
    let key = store.index_key(&entry.module, &entry.version)?;
    let data = Bytes::from(id.to_string());
    let Some(existing) = store.put_once(&key, data.clone()).await? else {
        return Ok(());
    };
    match parse_index(name, &key.to_string(), &existing)? {
        found if found == id => Ok(()),
        found if found < lower => Err(corrupt(
            name,
            format!(
                "{}@{} is in record {id} but already in record {found}",
                entry.module, entry.version
            ),
        )),
        _ => Ok(store.put(&key, data).await?),
    }
}

async fn read_index(
    store: &LedgerStore,
    name: &str,
    key: &crate::storage::ObjectKey,
) -> Result<Option<u64>, LedgerError> {
    match store.read(key).await? {
        None => Ok(None),
        Some((data, _)) => parse_index(name, &key.to_string(), &data).map(Some),
    }
}

fn parse_index(name: &str, key: &str, data: &[u8]) -> Result<u64, LedgerError> {
    std::str::from_utf8(data)
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| {
            corrupt(
                name,
                format!(
                    "index entry {key} is not a record id: {:?}",
                    String::from_utf8_lossy(data)
                ),
            )
        })
}
