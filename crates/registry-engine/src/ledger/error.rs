//! [`LedgerError`]: why a checksum-ledger operation failed, each cause mapped to one
//! [`ErrorKind`].

use strata_core::protocol::ErrorKind;

use crate::storage::StorageError;

/// A failed checksum-ledger operation.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The module version already has a record with other hashes. A module version has one
    /// record forever: the database is append-only and clients remember what they verified.
    #[error("checksum database {ledger}: {module}@{version}: {reason}")]
    Conflict {
        /// The ledger (key) name.
        ledger: String,
        /// The module path.
        module: String,
        /// The version.
        version: String,
        /// What is recorded and what was asked.
        reason: String,
    },
    /// Malformed input: a signer key, a hash that is not `h1:` of 32 bytes, a `/lookup` or
    /// `/tile` path that is not protocol syntax.
    #[error("checksum database: {0}")]
    InvalidInput(String),
    /// The object store failed (the operation may be retried: every step is idempotent).
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// What the store holds contradicts itself: a head whose signature does not verify with
    /// the ledger's key or whose root is not the hash of the stored tiles, a tile missing below
    /// the signed head, a record that is no record. Never repaired automatically.
    #[error("checksum database {ledger}: corrupt stored state: {reason}")]
    Corrupt {
        /// The ledger (key) name.
        ledger: String,
        /// What is wrong.
        reason: String,
    },
    /// The signed head kept changing without covering the pending records (a store that
    /// keeps failing conditional writes). Appending again is safe.
    #[error(
        "checksum database {ledger}: the signed head changed {rounds} times while committing; try again"
    )]
    Contended {
        /// The ledger (key) name.
        ledger: String,
        /// How many heads were tried.
        rounds: usize,
    },
    /// A failure that is nobody's input: no randomness for a new key, a tree note that cannot
    /// be signed.
    #[error("checksum database: internal error: {0}")]
    Internal(String),
}

impl LedgerError {
    /// The protocol-level kind of the failure.
    pub fn kind(&self) -> ErrorKind {
        match self {
            LedgerError::Conflict { .. } => ErrorKind::Conflict,
            LedgerError::InvalidInput(_) => ErrorKind::InvalidInput,
            // A key is built from the module path: one the store cannot hold is bad input.
            LedgerError::Storage(StorageError::InvalidKey { .. }) => ErrorKind::InvalidInput,
            LedgerError::Storage(_) | LedgerError::Contended { .. } => ErrorKind::Unavailable,
            LedgerError::Corrupt { .. } | LedgerError::Internal(_) => ErrorKind::Internal,
        }
    }
}
