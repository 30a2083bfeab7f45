//! The generated client and messages of `strata.registry.v1` (see `build.rs`).

#![allow(missing_docs, clippy::all, clippy::unwrap_used, clippy::expect_used)]

include!(concat!(env!("OUT_DIR"), "/strata.registry.v1.rs"));
