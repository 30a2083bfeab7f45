//! The strata central registry service: the HTTP ([`http`]) and gRPC ([`grpc`]) front ends of
//! the registry engine (`strata-registry-engine`), and [`server`], which opens the engine from a
//! configuration and binds the listeners.
//!
//! The engine's modules are re-exported under their old paths (`strata_central_registry::storage`
//! and so on), so front-end code and tests name them as before; new code outside this crate
//! should depend on the engine directly (the sync worker does).

pub mod cli;
pub mod grpc;
pub mod http;
pub mod server;

pub use strata_registry_engine::{
    auth, change_events, config, error, events, index, keys, ledger, maintenance, metrics,
    registry, repository, storage, sumdb, upload, upstream,
};
