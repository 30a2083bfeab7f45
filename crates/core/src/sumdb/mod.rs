//! The Go checksum database (`sum.golang.org` protocol, spec §6): signed notes ([`note`],
//! [`key`]), the transparent log ([`tlog`]) with its text formats ([`record`]) and tiles
//! ([`tile`]), and a verifying lookup [`client`].
//!
//! Everything agrees byte for byte with `golang.org/x/mod/sumdb`; the server side (appending
//! records, serving tiles) can be built from the same pieces: [`tlog::stored_hashes`] for the
//! hashes to store, [`tile::read_tile_data`] for tile bodies, [`note::sign`] for tree heads.

pub mod client;
mod client_tiles;
pub mod key;
pub mod note;
pub mod ops;
pub mod proof;
pub mod record;
pub mod request;
pub mod tile;
pub mod tlog;

pub use client::{Client, ClientError, ClientOps, OpsError, WriteConfigError};
pub use key::{SignerKey, Verifier, VerifierKey, VerifierList, Verifiers};
pub use note::{Note, NoteError, Signature};
pub use ops::MemoryState;
pub use record::{Tree, format_tree, parse_tree};
pub use request::SumDbRequest;
pub use tile::{Tile, TileHashReader, TileReader};
pub use tlog::{Hash, HashReader, TlogError};

#[cfg(test)]
mod tests;
