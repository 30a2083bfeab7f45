//! Schedules: named module sets refreshed every `every_ms`, optionally only inside a daily UTC
//! time window.
//!
//! ```toml
//! [[schedules]]
//! name = "nightly-core"
//! repository = "gocache"
//! modules = ["example.com/a", "example.com/b@v1.2.3"]
//! every_ms = 3600000
//! window = "22:00-02:00"   # optional, UTC, may cross midnight; start inclusive, end exclusive
//! ```
//!
//! A bare module path gets a `refresh_metadata` job (its `list` and `@latest` fetched now, new
//! versions prefetched), a `module@version` a `prefetch` job. Time is cut into periods of
//! `every_ms` from the Unix epoch; in each period the schedule fires once, at the first moment
//! that lies inside the window (so `every_ms = 86400000` with `window = "02:00-04:00"` fires
//! daily at 02:00). Jobs are keyed `schedule/<name>/<period>/<module>[@<version>]`, and the
//! period is claimed (see [`super::ticks`]), so N workers enqueue it once.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use strata_core::path::ModulePath;
use strata_core::version::Version;
use strata_registry_engine::keys::RepoName;
use strata_service::config::ConfigError;

use super::ticks::{Periodic, claim_ttl_for, next_period_start, period_of};
use crate::runtime::job::Job;
use crate::runtime::queue::{JobQueue, NewJob};

const DAY_MS: u64 = 86_400_000;
const MINUTE_MS: u64 = 60_000;

/// One `[[schedules]]` entry.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Names the schedule in job keys and logs: 1–64 of `A-Z a-z 0-9 . _ -`.
    pub name: String,
    /// `example.com/a` (refresh its metadata) or `example.com/b@v1.2.3` (prefetch it).
    pub modules: Vec<String>,
    /// The repository (with an upstream) the jobs go to.
    pub repository: RepoName,
    /// Period length in milliseconds (at least 1000).
    pub every_ms: u64,
    /// `HH:MM-HH:MM` in UTC; jobs are enqueued only inside it. Absent: any time.
    #[serde(default)]
    pub window: Option<String>,
}

/// A daily UTC time window `[start, end)`, in minutes after midnight; `start > end` crosses
/// midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    start: u64,
    end: u64,
}

impl Window {
    /// Parses `HH:MM-HH:MM` (`24:00` allowed as the end). Start and end must differ.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (start, end) = text
            .split_once('-')
            .ok_or_else(|| format!("{text:?}: expected HH:MM-HH:MM"))?;
        let start = minutes(start.trim(), false).map_err(|e| format!("{text:?}: {e}"))?;
        let end = minutes(end.trim(), true).map_err(|e| format!("{text:?}: {e}"))?;
        if start == end % (24 * 60) {
            return Err(format!(
                "{text:?}: start and end are the same time (leave the window out for all day)"
            ));
        }
        Ok(Self { start, end })
    }

    /// Whether the time of day of `now_ms` (UTC) lies inside.
    pub fn contains(&self, now_ms: u64) -> bool {
        let minute = now_ms % DAY_MS / MINUTE_MS;
        if self.start < self.end {
            self.start <= minute && minute < self.end
        } else {
            minute >= self.start || minute < self.end
        }
    }

    /// The next moment at or after `now_ms` when the window opens (now if it is open).
    pub fn next_open(&self, now_ms: u64) -> u64 {
        if self.contains(now_ms) {
            return now_ms;
        }
        let midnight = now_ms - now_ms % DAY_MS;
        let opens = midnight + self.start * MINUTE_MS;
        if opens > now_ms {
            opens
        } else {
            opens + DAY_MS
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

fn minutes(text: &str, end: bool) -> Result<u64, String> {
    let (h, m) = text
        .split_once(':')
        .ok_or_else(|| format!("{text:?} is not HH:MM"))?;
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(h) || !two_digits(m) {
        return Err(format!("{text:?} is not HH:MM"));
    }
    let (h, m): (u64, u64) = (
        h.parse().map_err(|_| format!("{text:?} is not HH:MM"))?,
        m.parse().map_err(|_| format!("{text:?} is not HH:MM"))?,
    );
    if m >= 60 || h > 24 || (h == 24 && (m != 0 || !end)) {
        return Err(format!("{text:?} is not a time of day"));
    }
    Ok(h * 60 + m)
}

/// What a schedule entry names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A module: refresh its metadata.
    Module(ModulePath),
    /// A module version: prefetch it.
    Version(ModulePath, Version),
}

impl Target {
    /// Parses `path` or `path@version` (canonical, fitting the path's major version).
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once('@') {
            None => ModulePath::new(text)
                .map(Target::Module)
                .map_err(|e| e.to_string()),
            Some((path, version)) => {
                let module = ModulePath::new(path).map_err(|e| e.to_string())?;
                let version = Version::new(version).map_err(|e| e.to_string())?;
                strata_core::version::check(path, version.as_str()).map_err(|e| e.to_string())?;
                Ok(Target::Version(module, version))
            }
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Module(m) => write!(f, "{m}"),
            Target::Version(m, v) => write!(f, "{m}@{v}"),
        }
    }
}

/// A validated schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    name: String,
    repository: RepoName,
    targets: Vec<Target>,
    every_ms: u64,
    window: Option<Window>,
    queue: Option<Arc<dyn JobQueue>>,
}

impl Schedule {
    /// Validates `config`: a usable name, at least one target, `every_ms` ≥ 1000, a valid window.
    pub fn new(config: &ScheduleConfig) -> Result<Self, String> {
        check_name(&config.name)?;
        if config.modules.is_empty() {
            return Err("modules: must name at least one module".into());
        }
        let targets = config
            .modules
            .iter()
            .map(|m| Target::parse(m).map_err(|e| format!("modules: {m:?}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        if config.every_ms < 1000 {
            return Err("every_ms: must be at least 1000".into());
        }
        let window = config
            .window
            .as_deref()
            .map(Window::parse)
            .transpose()
            .map_err(|e| format!("window: {e}"))?;
        Ok(Self {
            name: config.name.clone(),
            repository: config.repository.clone(),
            targets,
            every_ms: config.every_ms,
            window,
            queue: None,
        })
    }

    /// The same schedule, enqueuing into `queue` when it fires.
    #[must_use]
    pub fn with_queue(mut self, queue: Arc<dyn JobQueue>) -> Self {
        self.queue = Some(queue);
        self
    }

    /// The schedule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The period due at `now_ms`: the current one if `now_ms` is inside the window.
    pub fn due_period(&self, now_ms: u64) -> Option<u64> {
        let inside = self.window.is_none_or(|w| w.contains(now_ms));
        inside.then(|| period_of(now_ms, self.every_ms))
    }

    /// When to look again after handling the period of `now_ms`: the next period's start, or
    /// the window's next opening if that is later.
    pub fn next_check(&self, now_ms: u64) -> u64 {
        let next = next_period_start(now_ms, self.every_ms);
        match self.window {
            Some(w) => w.next_open(next),
            None => next,
        }
    }

    /// The jobs of `period`, keyed by it.
    pub fn jobs(&self, period: u64) -> Vec<NewJob> {
        self.targets
            .iter()
            .map(|target| {
                let job = match target {
                    Target::Module(module) => Job::RefreshMetadata {
                        repository: self.repository.clone(),
                        module: module.clone(),
                    },
                    Target::Version(module, version) => Job::Prefetch {
                        repository: self.repository.clone(),
                        module: module.clone(),
                        version: version.clone(),
                        mod_only: false,
                    },
                };
                NewJob::new(job).with_key(format!("schedule/{}/{period}/{target}", self.name))
            })
            .collect()
    }
}

#[async_trait]
impl Periodic for Schedule {
    fn describe(&self) -> String {
        format!("schedule {:?}", self.name)
    }

    fn due(&self, now_ms: u64) -> Option<u64> {
        self.due_period(now_ms)
    }

    fn next_check(&self, now_ms: u64) -> u64 {
        Schedule::next_check(self, now_ms)
    }

    fn claim_key(&self, period: u64) -> String {
        format!("schedule/{}/{period}", self.name)
    }

    fn claim_ttl(&self) -> Duration {
        claim_ttl_for(self.every_ms)
    }

    async fn fire(&self, period: u64) -> Result<String, String> {
        let Some(queue) = &self.queue else {
            return Err("no queue to enqueue into".into());
        };
        let jobs = self.jobs(period);
        let n = jobs.len();
        queue.enqueue_batch(jobs).await.map_err(|e| e.to_string())?;
        Ok(format!("{n} jobs into {}", self.repository.as_str()))
    }
}

/// A name usable in job keys and storage keys: 1–64 of `A-Z a-z 0-9 . _ -`.
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && name != "."
        && name != "..";
    if ok {
        Ok(())
    } else {
        Err(format!(
            "name {name:?}: use 1-64 of A-Z a-z 0-9 . _ - (not \".\" or \"..\")"
        ))
    }
}

/// Checks every `[[schedules]]` entry (names unique).
pub(crate) fn validate(schedules: &[ScheduleConfig]) -> Result<(), ConfigError> {
    for (i, config) in schedules.iter().enumerate() {
        Schedule::new(config).map_err(|reason| {
            ConfigError::invalid(
                "schedules",
                format!("schedules[{i}] ({:?}): {reason}", config.name),
            )
        })?;
        if schedules[..i].iter().any(|s| s.name == config.name) {
            return Err(ConfigError::invalid(
                "schedules",
                format!("schedules[{i}]: the name {:?} is used twice", config.name),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
