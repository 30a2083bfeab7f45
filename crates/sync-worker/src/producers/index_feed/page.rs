//! Reading one page of a feed against the saved cursor: validation, deduplication, filtering.

use std::collections::HashSet;

use super::Feed;
use super::cursor::{Cursor, MAX_SEEN};
use super::entry::{FeedTime, parse_line};
use crate::runtime::handler::JobError;
use crate::runtime::job::Job;
use crate::runtime::queue::NewJob;

/// What one page did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(super) struct Tally {
    pub(super) lines: usize,
    pub(super) enqueued: u64,
    pub(super) filtered: u64,
    pub(super) duplicate: u64,
    pub(super) invalid: u64,
}

/// One page, read against the saved cursor.
#[derive(Debug)]
pub(super) struct Page {
    /// The cursor after the page.
    pub(super) cursor: Cursor,
    /// Prefetches of the new versions, in feed order.
    pub(super) jobs: Vec<NewJob>,
    pub(super) tally: Tally,
    /// The page had `limit` lines (more may follow).
    pub(super) full: bool,
}

impl Page {
    pub(super) fn advanced(&self, saved: &Cursor) -> bool {
        self.cursor.entries != saved.entries
    }
}

/// Validates, deduplicates and filters the lines of a page read from `since` (the saved
/// cursor's, or the feed's start): the cursor they lead to and the prefetches they need.
pub(super) fn read_page(
    feed: &Feed,
    lines: &[String],
    saved: &Cursor,
    since: Option<&str>,
) -> Result<Page, JobError> {
    let name = &feed.config.name;
    let mut cursor = saved.clone();
    let mut at = since.and_then(|s| FeedTime::parse(s).ok());
    let mut tally = Tally {
        lines: lines.len(),
        ..Tally::default()
    };
    let mut jobs = Vec::new();
    let mut queued = HashSet::new();
    for line in lines {
        let entry = match parse_line(line) {
            Ok(entry) => entry,
            Err(error) => {
                tracing::warn!(feed = %name, %error, line = %truncated(line),
                    "skipping an invalid index feed line");
                tally.invalid += 1;
                continue;
            }
        };
        let id = entry.id();
        let covered =
            at.is_some_and(|at| entry.at < at || (entry.at == at && cursor.seen.contains(&id)));
        if covered || !queued.insert(id.clone()) {
            tally.duplicate += 1;
            continue;
        }
        if at != Some(entry.at) {
            cursor.seen.clear();
            at = Some(entry.at);
        }
        cursor.since = Some(entry.timestamp.clone());
        if cursor.seen.len() < MAX_SEEN {
            cursor.seen.insert(id);
        }
        cursor.entries += 1;
        if !feed.accepts(&entry.module) {
            tally.filtered += 1;
            continue;
        }
        let job = Job::prefetch(
            feed.config.repository.clone(),
            entry.module,
            entry.version,
            false,
        )
        .map_err(JobError::permanent)?;
        jobs.push(NewJob::new(job));
    }
    tally.enqueued = jobs.len() as u64;
    Ok(Page {
        cursor,
        jobs,
        tally,
        full: false,
    })
}

fn truncated(line: &str) -> &str {
    match line.char_indices().nth(200) {
        Some((i, _)) => &line[..i],
        None => line,
    }
}
