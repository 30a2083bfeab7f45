//! What the edge answers with: an entry's [`Meta`], its bytes ([`Body`]) and where it came
//! from ([`Source`]).

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::watch;

use crate::cache::{MemEntry, Meta};
use crate::fill::FillState;

/// Where an answer came from, for headers, logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The memory tier.
    Memory,
    /// The disk tier.
    Disk,
    /// A registry, just now.
    Registry,
    /// A cached answer served because no registry answered (past its TTL or invalidated).
    Stale,
    /// A fallback GOPROXY (not cached).
    Fallback,
}

impl Source {
    /// The `X-Strata-Cache` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Memory => "hit-memory",
            Source::Disk => "hit-disk",
            Source::Registry => "miss",
            Source::Stale => "stale",
            Source::Fallback => "fallback",
        }
    }
}

/// The bytes of an answer.
#[derive(Debug)]
pub enum Body {
    /// In memory.
    Bytes(Bytes),
    /// A disk-tier entry.
    File {
        /// Open file.
        file: std::fs::File,
        /// Where the bytes start.
        data_offset: u64,
    },
    /// A zip being filled.
    Fill {
        /// Its progress.
        rx: watch::Receiver<FillState>,
        /// Its disk-tier path.
        rel: String,
    },
    /// A fallback's streamed body.
    Stream(reqwest::Response),
}

/// An answer: facts, bytes, provenance.
#[derive(Debug)]
pub struct Answer {
    /// Kind, size, ETag, h1.
    pub meta: Meta,
    /// The bytes.
    pub body: Body,
    /// Where it came from.
    pub source: Source,
}

#[derive(Serialize)]
pub(crate) struct InfoJson<'a> {
    #[serde(rename = "Version")]
    pub(crate) version: &'a str,
    #[serde(rename = "Time")]
    pub(crate) time: &'a str,
}

pub(crate) fn memory_answer(entry: &MemEntry, source: Source) -> Answer {
    Answer {
        meta: entry.meta.clone(),
        body: Body::Bytes(entry.body.clone()),
        source,
    }
}
