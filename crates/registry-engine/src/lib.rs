//! The strata registry engine: everything the central registry knows about modules, and no
//! front end. The registry service (HTTP and gRPC, `strata-central-registry`) and the sync worker
//! (warm-ups, scrub, retention) both run on it; neither links the other.
//!
//! Layers, bottom up: [`storage`] (one object-store trait, fs and S3 backends) and its [`keys`],
//! [`index`] (the per-module version index, updated by compare-and-swap), [`upstream`] (fetches
//! from a GOPROXY) and [`sumdb`] (checksum-database verification and proxying), [`ledger`] (the
//! registry's own checksum database: a signed transparent log in the store), [`repository`]
//! (local, remote and virtual repositories), [`upload`] (spooled publishes), [`registry`]
//! (repositories behind [`auth`] and their module patterns), [`maintenance`] (scrub and
//! retention primitives), what a write [`change`]d and who is told, change [`events`] (the
//! outbox over storage) and their [`change_events`] emitter, all configured by [`config`] and counted in [`metrics`].
//!
//! [`open`] assembles a running engine from a [`config::RegistryConfig`]: storage (timed), the
//! event bus of the `events` section, and the [`registry::Registry`].

pub mod audit;
pub mod auth;
pub mod change;
pub mod change_events;
pub mod config;
pub mod error;
pub mod events;
pub mod index;
pub mod keys;
pub mod ledger;
mod ledger_route;
pub mod maintenance;
pub mod metrics;
mod open;
pub mod registry;
pub mod repository;
pub mod storage;
pub mod sumdb;
#[cfg(feature = "test-util")]
pub mod test_util;
pub mod upload;
pub mod upstream;

pub use open::{OpenError, Opened, open};
