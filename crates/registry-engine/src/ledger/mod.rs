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
//! ledger/<name>/head                          signed tree head, JSON (compare-and-swap)
//! ledger/<name>/record/<id>                   record text: the version's two go.sum lines
//! ledger/<name>/index/<module>@<version>      record id of a module version
//! ledger/<name>/tile/8/<L>/<NNN>[.p/<W>]      hash tiles
//! ledger/<name>/tile/8/data/<NNN>[.p/<W>]     data tiles
//! ```
//!
//! All but the head are written once (`put_if_absent`) and never change. Writing works so:
//!
//! 1. An appender claims the first free record slot at or above the signed size with
//!    `put_if_absent` (or finds its module version already there).
//! 2. Anyone then *commits* the pending slots: computes the new tree from the stored partial
//!    tiles (`frontier.rs`), writes the new tiles and the slots' index entries, signs the tree
//!    and compare-and-swaps the head. Losing the swap means someone else advanced the head:
//!    re-read and repeat until a head covers the record. Appenders help each other, so a
//!    process that dies between its slot and the head leaves work the next append (or
//!    [`Ledger::recover`]) finishes; nothing is lost and nothing recorded twice.
//! 3. Only then does `append` return: a caller makes a version visible only once the signed
//!    head that proves its hashes is stored.
//!
//! Ed25519 signatures are deterministic and the tree is a function of the slots, so two writers
//! committing the same size produce the same tiles and the same signed note: one signed tree
//! per size, ever, which is what lets clients detect forks.

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

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use strata_core::path::ModulePath;
use strata_core::sumdb::key::{Signer as _, is_valid_name};
use strata_core::sumdb::tlog::empty_tree_hash;
use strata_core::sumdb::{SignerKey, Tree, VerifierList};
use strata_core::version::Version;

use self::head::Head;
use self::record::Entry;
use self::store::LedgerStore;
use crate::storage::ObjectStore;

/// One checksum database, signing with its private key and keeping its log in an object store.
/// Share it (`Arc`) between requests; any number of `Ledger`s, in any number of processes, may
/// append to the same log in the same store at once.
#[derive(Debug)]
pub struct Ledger {
    signer: SignerKey,
    /// The signer's own verifier: every head read must verify with it.
    verifiers: VerifierList,
    store: LedgerStore,
    /// The signed note of the empty tree, served before the first record.
    empty_note: Bytes,
    /// The last head read, with the stored bytes it was verified from.
    last_head: Mutex<Option<(Bytes, Head)>>,
    /// Serialises this process's commits: concurrent appenders here queue and then find their
    /// records committed by the one before them (group commit) instead of racing for the head.
    commit_gate: tokio::sync::Mutex<()>,
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
        let empty = Tree {
            n: 0,
            hash: empty_tree_hash(),
        };
        let empty_note = head::sign(&empty, &signer).map_err(LedgerError::Internal)?;
        Ok(Ledger {
            verifiers: VerifierList::new([signer.verifier()]),
            signer,
            store,
            empty_note,
            last_head: Mutex::new(None),
            commit_gate: tokio::sync::Mutex::new(()),
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
        let entry = Entry::new(module, version, zip_h1, mod_h1)?;
        // The head first, then the index: see `claim_slot` for why this order makes every
        // module version land in exactly one slot.
        let head = self.head().await?;
        let id = match self.indexed(&entry).await? {
            Some(id) if id < head.tree.n => return Ok(id),
            Some(id) => id,
            None => self.claim_slot(head.tree.n, &entry).await?,
        };
        self.commit(Some(id)).await?;
        Ok(id)
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

    /// Commits every pending record (those of appenders that died before their head was
    /// stored) and checks the signed head against the stored tiles; the log's size.
    pub async fn recover(&self) -> Result<u64, LedgerError> {
        let head = self.commit(None).await?;
        self.frontier(&head.tree).await?;
        Ok(head.tree.n)
    }

    /// The text of committed record `id` (its go.sum lines), for audits.
    pub async fn record_text(&self, id: u64) -> Result<Option<Bytes>, LedgerError> {
        let head = self.head().await?;
        if id >= head.tree.n {
            return Ok(None);
        }
        match self.slot(id).await? {
            Some(entry) => Ok(Some(Bytes::from(entry.text))),
            None => Err(self.corrupt(format!(
                "record {id} of the signed tree of size {} is missing",
                head.tree.n
            ))),
        }
    }

    /// The current head, verified: the head object, or the empty tree when there is none.
    async fn head(&self) -> Result<Head, LedgerError> {
        let Some((bytes, etag)) = self.store.read(&self.store.head_key()?).await? else {
            return Ok(Head {
                tree: Tree {
                    n: 0,
                    hash: empty_tree_hash(),
                },
                note: self.empty_note.clone(),
                etag: None,
            });
        };
        let cached = self.last_head().clone();
        if let Some((seen, head)) = cached
            && seen == bytes
        {
            return Ok(Head {
                etag: Some(etag),
                ..head
            });
        }
        let (tree, note) = head::decode(&bytes, &self.verifiers).map_err(|r| self.corrupt(r))?;
        let head = Head {
            tree,
            note,
            etag: Some(etag),
        };
        *self.last_head() = Some((bytes, head.clone()));
        Ok(head)
    }

    fn last_head(&self) -> std::sync::MutexGuard<'_, Option<(Bytes, Head)>> {
        // A plain replacement: a poisoned lock still holds a consistent value.
        self.last_head
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn corrupt(&self, reason: impl Into<String>) -> LedgerError {
        LedgerError::Corrupt {
            ledger: self.name().to_owned(),
            reason: reason.into(),
        }
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
