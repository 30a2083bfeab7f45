//! Test infrastructure for strata's integration tests: in-process servers that other crates'
//! tests start on `127.0.0.1:0`, with no network needed.
//!
//! * [`modules`]: fixture modules built in memory — zip, `.mod`, `.info` and go.sum lines, all
//!   computed with `strata_core` exactly as the go command would — and a generated dependency
//!   graph for edge-case tests.
//! * [`sumdb`]: a test checksum database signed with a key the test generates, serving
//!   `/latest`, `/lookup/…` and `/tile/…` like sum.golang.org.
//! * [`upstream`]: a fixture GOPROXY server over a set of fixture modules, optionally mounting the
//!   checksum database under `/sumdb/<name>/`, with runtime fault switches (delay, 5xx, hang,
//!   tampered zip) and a request log.
//! * [`redis_server`] and [`s3_server`]: real `redis-server` and MinIO processes on free
//!   loopback ports with temp directories, killed on drop (binaries from scripts/ensure-deps.sh).
//! * [`txtar`]: the txtar archive format and the `key=value` header of x/mod's zip testdata.
//! * [`registry_toml`]: the one writer of test registry configurations (repositories, tokens,
//!   server settings) as the TOML the central registry reads.
//! * [`index_feed`]: a fixture index feed in the index.golang.org format.
//! * [`go_command`]: the real go command run with private caches and a test GOPROXY/GOSUMDB.
//! * [`raw_http`]: a raw HTTP/1.1 client for requests an HTTP library would normalise or refuse.

// A test-support crate: a panic on a broken fixture is the right failure, so `unwrap`/`expect`
// are allowed here (inputs come from the tests themselves, never from users).
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod go_command;
pub mod index_feed;
pub mod modules;
pub mod raw_http;
pub mod redis_server;
pub mod registry_toml;
pub mod s3_server;
pub mod sumdb;
pub mod txtar;
pub mod upstream;

pub use modules::{BuiltModule, FixtureModule, dependency_graph};
pub use sumdb::TestSumDb;
pub use upstream::{FixtureUpstream, Tamper};
