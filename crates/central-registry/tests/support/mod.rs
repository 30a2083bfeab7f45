//! The registry's integration-test support, one module for every test target (`mod support;`):
//!
//! * [`config`]: the layouts the tests share, written with the workspace's one configuration
//!   writer ([`config::RegistryToml`], from `strata_testkit`), and their token and repository
//!   names;
//! * [`registry`]: [`registry::TestRegistry`], a registry started in-process from such a
//!   configuration (fs or MinIO storage, optionally owning a fixture upstream and test checksum
//!   database), with the requests the tests make and snapshots of what it stored;
//! * [`http`]: answers read whole ([`http::Reply`]), `Authorization` values, and the raw
//!   HTTP/1.1 client of `strata_testkit`;
//! * [`zip`]: module zips built with the core zip writer, raw zips, `h1:` hashes;
//! * [`grpc`]: the gRPC calls as one caller makes them;
//! * [`s3`]: the registry's view of a `strata_testkit` MinIO server;
//! * [`big_module`]: a 100 MiB module streamed through files, and memory readings;
//! * [`suite`] and [`cases_concurrency`]: the storage conformance suite.
//!
//! The server processes (Redis, MinIO), the fixture upstream, the test checksum database and
//! the go command's environment come from `strata_testkit`.

// Every test target compiles all of this and uses its own part.
#![allow(dead_code)]

pub mod big_module;
pub mod cases_concurrency;
pub mod config;
pub mod grpc;
pub mod http;
pub mod registry;
pub mod s3;
pub mod suite;
pub mod zip;
