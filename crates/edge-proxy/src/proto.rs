//! The generated client and messages of `strata.registry.v1`, from the contract crate
//! `strata-proto` (built once for the whole workspace).

pub use strata_proto::*;
