//! The Go-module domain of strata, shared by every service.
//!
//! Everything here agrees with the go command (and golang.org/x/mod) byte for byte: module paths and
//! their case-encoding ([`path`]), semantic and pseudo-versions ([`semver`], [`version`],
//! [`pseudo`]), `@latest` selection ([`latest`]), go.mod reading ([`gomod`]), module zips
//! ([`zip`]), `h1:` checksums ([`dirhash`]), go.sum lines ([`gosum`]), checksum-database notes,
//! Merkle proofs, tiles and client verification ([`sumdb`]), and the GOPROXY protocol as data
//! ([`protocol`]).
//!
//! Nothing in this crate does network I/O; file I/O is limited to reading module trees and zips
//! the caller points at.

pub mod dirhash;
pub mod gomod;
pub mod gosum;
pub mod latest;
pub mod path;
pub mod pattern;
pub mod protocol;
pub mod pseudo;
pub mod repo;
pub mod semver;
pub mod sumdb;
pub mod version;
pub mod zip;
