//! The contract between the registry and its clients: the generated messages, server and client
//! of `strata.registry.v1` (`proto/strata/registry/v1/registry.proto`, compiled once by
//! `build.rs`). The registry's gRPC front end implements the server; the edge and the tests use
//! the client. Nothing here but generated code: the crate exists so that the proto is built once
//! and so that a client links no server.

#![allow(missing_docs, clippy::all, clippy::unwrap_used, clippy::expect_used)]

include!(concat!(env!("OUT_DIR"), "/strata.registry.v1.rs"));
