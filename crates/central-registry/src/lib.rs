//! The strata central registry: the source of truth for hosted (`local`) and cached (`remote`)
//! Go modules.
//!
//! Layers, bottom up: [`storage`] (one object-store trait, fs and S3 backends), [`index`] (the
//! per-module version index, updated by compare-and-swap), [`repository`] (local repositories),
//! [`registry`] (repositories behind [`auth`] and their module patterns), the front ends
//! ([`http`], [`grpc`]), change [`events`], and [`server`] which wires them from a [`config`].

pub mod auth;
pub mod change_events;
pub mod cli;
mod coalesce;
pub mod config;
pub mod error;
pub mod events;
pub mod grpc;
pub mod http;
pub mod index;
pub mod keys;
pub mod maintenance;
pub mod metrics;
pub mod registry;
pub mod repository;
pub mod server;
pub mod storage;
pub mod sumdb;
pub mod upload;
pub mod upstream;
