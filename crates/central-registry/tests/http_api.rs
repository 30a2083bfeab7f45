//! The HTTP API against bad and good input, on a registry started in-process on `127.0.0.1:0`
//! with fs storage in a temp directory.
//!
//! Every refused request must get its exact status, a `text/plain; charset=utf-8` body naming
//! the reason, the cache policy of `strata_core::protocol` for errors, and must leave storage
//! (the `repos/` listing, the fs object and temp files, the upload spool) exactly as it was.
//! Failures are collected per test and reported together, so one wrong answer does not hide the
//! others.
//!
//! The tests are in [`http`] (`tests/http/`), a module tree that mirrors the crate's
//! `src/http/`: what the router does for every route (credentials, traversal, unrouted
//! requests) in `http/mod.rs`, the GOPROXY routes in `http/goproxy.rs`, the publish API in
//! `http/publish.rs`, and the checks of error answers in `http/reply.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod http;
mod support;
