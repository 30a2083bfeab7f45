//! A checksum database operated by the registry: a transparent log of the go.sum lines of the
//! versions it publishes, served in exactly the format the go command verifies (protocol §6,
//! like sum.golang.org), so `GOSUMDB="<verifier key> <url>"` checks modules against it.
//!
//! [`Ledger::append`] records `module@version` with its `h1:` hashes once and forever;
//! [`Ledger::latest`], [`Ledger::lookup`] and [`Ledger::tile`] answer `/latest`,
//! `/lookup/<module>@<version>` and `/tile/8/…` byte for byte as golang.org/x/mod's server
//! (which sends `text/plain; charset=UTF-8` for all but hash tiles, `application/octet-stream`
//! for those; `None` is its 404, [`LedgerError::InvalidInput`] its 400).
//!
//! Everything lives in the registry's object store, so replicas sharing a bucket share one log,
//! with no lock service and nothing in memory that matters (`<name>` is the key name as one key
//! segment, module paths and versions are case-encoded; only `store.rs` spells these out):
//!
//! ```text
//! ledger/<name>/head                          signed tree head, the records it added and the
//!                                             last (partial) tile of every level (CAS)
//! ledger/<name>/index/<module>@<version>      record id of a module version
//! ledger/<name>/tile/8/<L>/<NNN>              complete hash tiles
//! ledger/<name>/tile/8/data/<NNN>             complete data tiles (the records)
//! ```
//!
//! Writing works so (`commit.rs`):
//!
//! 1. Appends in one process are committed together (group commit): one of them leads, takes
//!    every append queued, drops versions the log already has (or that repeat in the batch),
//!    grows the tree by the rest, signs it and compare-and-swaps the head — a document that
//!    carries the new records and the partial tiles of the tree they were added to, so
//!    storing it is the one write that makes them durable. Losing the swap means another
//!    writer (process) stored a head first: re-read, dedupe against it, repeat.
//! 2. Then the appends return, and the head is *finished* in the background: the tiles its
//!    records completed (one in 256 records completes a data tile) are stored, with the index
//!    entries of the records in them. Records in no complete tile are found in the head;
//!    partial tiles are served from it. Nothing grows a head that is not finished, so a
//!    process that dies after its swap leaves a head the next writer or reader finishes.
//! 3. A caller makes a version visible only once `append` returned: the signed head that
//!    proves its hashes is stored.
//!
//! Round trips: a commit builds on the head its process last saw (a lost swap re-reads it),
//! and [`Ledger::look_ahead`] reads whether a version is recorded before the append (a publish
//! does it beside its own index read), so that a commit on a head no newer than the one the
//! look-ahead read against needs no index read: an index entry is stored before the head after
//! the one that completed its tile, so one missing then is missing in every tree up to that
//! head but for what the head carries. An append is then, as a rule, only the head's write.
//!
//! Only stored heads are ever served, and each replaces the one it grew from by
//! compare-and-swap: the signed heads form one chain, so there is one signed tree per size and
//! clients can detect any fork. What a head carries is used only after checking that it grows
//! to the signed root; complete tiles and index entries are a function of the chain (written
//! once, compared when found), so several writers finishing one head write the same bytes.
//! (Heads of the first version of the ledger carry neither records nor tiles: every tile,
//! partial ones included, and every index entry were stored before them; both kinds are read.)

mod commit;
mod config;
mod error;
mod frontier;
mod head;
mod record;
mod serve;
mod store;

pub use config::LedgerConfig;
pub use error::LedgerError;

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use strata_core::path::ModulePath;
use strata_core::sumdb::key::{Signer as _, is_valid_name};
use strata_core::sumdb::{SignerKey, VerifierList};
use strata_core::version::Version;

use self::commit::Waiter;
use self::head::Head;
use self::record::Entry;
use self::store::LedgerStore;
use crate::storage::ObjectStore;

/// What the log held of one version when [`Ledger::look_ahead`] read it: its record if any, and
/// the size of the head it read against (a commit on a head no newer need not read the index
/// again: an index entry is stored before the head after the one that completed its tile).
#[derive(Debug, Clone)]
pub struct Lookahead {
    found: Option<(u64, Entry)>,
    basis: u64,
}

/// One checksum database, signing with its private key and keeping its log in an object store.
/// Share it (`Arc`) between requests; any number of `Ledger`s, in any number of processes, may
/// append to the same log in the same store at once.
#[derive(Debug)]
pub struct Ledger {
    signer: SignerKey,
    /// The signer's own verifier: every head read must verify with it.
    verifiers: VerifierList,
    store: Arc<LedgerStore>,
    /// The signed note of the empty tree, served before the first record.
    empty_note: Bytes,
    /// The last head read or stored (with its etag).
    last_head: Mutex<Option<Head>>,
    /// Appends of this process waiting for a commit; the one holding `commit_gate` commits
    /// them all (group commit).
    queue: Mutex<Vec<Waiter>>,
    commit_gate: tokio::sync::Mutex<()>,
    /// The background task storing the tiles and index entries of the last head this process
    /// stored, if it may still run.
    finishing: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// The size of the newest head this process knows is finished.
    finished: Arc<AtomicU64>,
    /// The partial tiles of the last head asked about (see `Ledger::current`).
    current: Mutex<Option<(strata_core::sumdb::Tree, Arc<commit::Grown>)>>,
}

impl Ledger {
    /// The ledger signing with `signer_key` (`PRIVATE+KEY+<name>+<hash>+<keydata>`, as
    /// [`generate_key`] makes), kept in `store` under `ledger/<name>/`. No I/O.
    pub fn new(store: Arc<dyn ObjectStore>, signer_key: &str) -> Result<Self, LedgerError> {
        // The key is secret: errors say what is wrong with it, never what it is.
        let signer = SignerKey::parse(signer_key.trim())
            .map_err(|e| LedgerError::InvalidInput(format!("checksum database signer key: {e}")))?;
        let name = signer.name().to_owned();
        let store = LedgerStore::new(store, &name).map_err(|e| {
            LedgerError::InvalidInput(format!("checksum database name {name:?}: {e}"))
        })?;
        let empty = Head::empty(Bytes::new());
        let empty_note = head::sign(&empty.tree, &signer).map_err(LedgerError::Internal)?;
        Ok(Ledger {
            verifiers: VerifierList::new([signer.verifier()]),
            signer,
            store: Arc::new(store),
            empty_note,
            last_head: Mutex::new(None),
            queue: Mutex::default(),
            commit_gate: tokio::sync::Mutex::new(()),
            finishing: Mutex::default(),
            finished: Arc::default(),
            current: Mutex::default(),
        })
    }

    /// The database name: the key's name (e.g. `sum.corp.example`).
    pub fn name(&self) -> &str {
        self.signer.name()
    }

    /// The verifier key `<name>+<hash>+<keydata>`: what clients put in `GOSUMDB`.
    pub fn verifier_key(&self) -> String {
        self.signer.verifier().encode()
    }

    /// Records `module@version` with the `h1:` hashes of its zip and go.mod and returns the
    /// record id, once a signed head covering it is stored. Appending the same hashes again
    /// returns the same id; other hashes for a recorded version are a
    /// [`LedgerError::Conflict`] and change nothing.
    pub async fn append(
        &self,
        module: &ModulePath,
        version: &Version,
        zip_h1: &str,
        mod_h1: &str,
    ) -> Result<u64, LedgerError> {
        let ahead = self.look_ahead(module, version).await?;
        self.append_with(ahead, module, version, zip_h1, mod_h1)
            .await
    }

    /// What the log holds of `module@version` now, read ahead of [`Ledger::append_with`] —
    /// e.g. while the caller reads its own index — so that the append itself is, in the usual
    /// case, only the head's write. Reads the head only if this process has seen none.
    pub async fn look_ahead(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Lookahead, LedgerError> {
        let cached = self.last_head().clone();
        let head = match cached {
            Some(head) => head,
            None => self.head().await?,
        };
        // `head` was stored before the index read below starts: what that read does not find
        // is not in any tree up to `head`'s size, but what the newer heads carry.
        let found = self.committed(&head, module, version).await?;
        Ok(Lookahead {
            found,
            basis: head.tree.n,
        })
    }

    /// [`Ledger::append`] with the look-ahead made for the same version.
    pub async fn append_with(
        &self,
        ahead: Lookahead,
        module: &ModulePath,
        version: &Version,
        zip_h1: &str,
        mod_h1: &str,
    ) -> Result<u64, LedgerError> {
        let entry = Entry::new(module, version, zip_h1, mod_h1)?;
        if let Some((id, recorded)) = &ahead.found {
            // Records are permanent: found once, found for good.
            return self.same_or_conflict(*id, recorded, &entry);
        }
        self.commit_entry(entry, Some(ahead.basis)).await
    }

    /// The record id and go.sum lines of `module@version`, if a signed head covers them.
    pub async fn find(
        &self,
        module: &ModulePath,
        version: &Version,
    ) -> Result<Option<(u64, Vec<String>)>, LedgerError> {
        let head = self.head().await?;
        Ok(self
            .committed(&head, module, version)
            .await?
            .map(|(id, entry)| (id, entry.lines())))
    }

    /// The signed tree head note (the `/latest` body). The empty log signs size 0.
    pub async fn latest(&self) -> Result<Bytes, LedgerError> {
        Ok(self.head().await?.note)
    }

    /// Finishes the signed head (stores the tiles its records completed and their index
    /// entries, if the writer died before it did) and checks it against its signed root; the
    /// log's size.
    pub async fn recover(&self) -> Result<u64, LedgerError> {
        let head = self.head().await?;
        self.finish(&head).await?;
        self.current(&head).await?;
        Ok(head.tree.n)
    }

    /// The text of committed record `id` (its go.sum lines), for audits.
    pub async fn record_text(&self, id: u64) -> Result<Option<Bytes>, LedgerError> {
        let head = self.head().await?;
        if id >= head.tree.n {
            return Ok(None);
        }
        Ok(Some(Bytes::from(self.record(&head, id).await?.text)))
    }

    /// The current head, verified: the head object, or the empty tree when there is none.
    /// Only its etag is read when it is the head read (or stored) last.
    async fn head(&self) -> Result<Head, LedgerError> {
        let cached = self.last_head().clone();
        let known = cached.as_ref().and_then(|head| head.etag.as_ref());
        let Some((etag, bytes)) = self.store.read_head(known).await? else {
            return Ok(Head::empty(self.empty_note.clone()));
        };
        let Some(bytes) = bytes else {
            // Unchanged: `read_head` only skips the body for the cached etag.
            return cached.ok_or_else(|| LedgerError::Internal("head cache lost".into()));
        };
        let decoded = head::decode(&bytes, &self.verifiers).map_err(|r| self.corrupt(r))?;
        let head = Head {
            tree: decoded.tree,
            note: decoded.note,
            etag: Some(etag),
            prev: decoded.prev,
            batch: decoded.batch,
            prev_tiles: decoded.prev_tiles,
        };
        *self.last_head() = Some(head.clone());
        Ok(head)
    }

    fn last_head(&self) -> std::sync::MutexGuard<'_, Option<Head>> {
        // A plain replacement: a poisoned lock still holds a consistent value.
        self.last_head
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn corrupt(&self, reason: impl Into<String>) -> LedgerError {
        corrupt(self.name(), reason)
    }

    fn queue(&self) -> std::sync::MutexGuard<'_, Vec<Waiter>> {
        // Pushes and drains leave the queue consistent, so a poisoned lock is still usable.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn finishing(&self) -> std::sync::MutexGuard<'_, Option<tokio::task::JoinHandle<()>>> {
        self.finishing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// What the store holds for ledger `name` contradicts itself.
fn corrupt(name: &str, reason: impl Into<String>) -> LedgerError {
    LedgerError::Corrupt {
        ledger: name.to_owned(),
        reason: reason.into(),
    }
}

/// A new signer key for a checksum database named `name` (a host name such as
/// `sum.corp.example`, optionally with a path) from 32 random bytes: `(signer key, verifier
/// key)`. Keep the signer key secret; publish the verifier key for `GOSUMDB`.
pub fn generate_key(name: &str) -> Result<(String, String), LedgerError> {
    if !is_valid_name(name) {
        return Err(LedgerError::InvalidInput(format!(
            "checksum database name {name:?}: must be non-empty, without spaces or `+`"
        )));
    }
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| LedgerError::Internal(format!("no randomness for a new key: {e}")))?;
    let signer = SignerKey::from_seed(name, &seed)
        .map_err(|e| LedgerError::InvalidInput(format!("checksum database name {name:?}: {e}")))?;
    Ok((signer.encode(), signer.verifier().encode()))
}

#[cfg(test)]
mod tests;
