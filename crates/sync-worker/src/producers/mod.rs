//! The worker's own job producers, wired from their configuration sections: the index
//! follower ([`index_feed`], with its `index_poll` handler), tag-push [`webhooks`], heat-driven
//! refresh ([`heat`]) and [`schedule`]s. The periodic ones claim each period once among all
//! workers ([`ticks`]).
//!
//! Producers use the runtime (jobs, the queue), the registry (repositories, documents) and the
//! HTTP layer's replies (the webhook endpoint); the configuration uses their section types, never
//! the other way round.
//!
//! The process wiring (the crate root's start) builds one [`Producers`] after the queue and the
//! registry, then:
//! 1. [`Producers::handlers`] adds the `index_poll` handler to the registry handlers;
//! 2. [`Producers::register_metrics`] goes into `Metrics::with_extra`;
//! 3. [`Producers::routes`] is merged into the worker's HTTP routes;
//! 4. [`Producers::spawn`] starts the periodic loops once the worker runs.

pub mod heat;
pub mod index_feed;
pub mod schedule;
pub mod ticks;
pub mod webhooks;

use std::sync::Arc;

use axum::Router;
use strata_registry_engine::keys::RepoName;
use strata_registry_engine::registry::Registry;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use self::heat::{HeatConfig, HeatRefresher};
use self::index_feed::{FeedConfig, IndexFollower};
use self::schedule::{Schedule, ScheduleConfig};
use self::ticks::{Clock, TickClaims, system_clock};
use self::webhooks::WebhookConfig;
use crate::runtime::handler::Handlers;
use crate::runtime::job::JobKind;
use crate::runtime::queue::{JobQueue, JobsConfig};

/// The sections of the worker configuration the producers are built from.
#[derive(Debug, Clone, Copy)]
pub struct ProducerConfig<'a> {
    /// `[[feeds]]`.
    pub feeds: &'a [FeedConfig],
    /// `[[webhooks]]`.
    pub webhooks: &'a [WebhookConfig],
    /// `[heat]`.
    pub heat: &'a HeatConfig,
    /// `[[schedules]]`.
    pub schedules: &'a [ScheduleConfig],
    /// The queue (`jobs`): periods are claimed next to a Redis queue, and heat is read from its
    /// Redis unless `heat.redis_url` says otherwise.
    pub jobs: &'a JobsConfig,
}

/// The configured producers.
#[derive(Debug)]
pub struct Producers {
    follower: Option<Arc<IndexFollower>>,
    webhooks: Vec<WebhookConfig>,
    heat: Option<(Arc<HeatRefresher>, TickClaims)>,
    schedules: Vec<Arc<Schedule>>,
    claims: TickClaims,
    queue: Arc<dyn JobQueue>,
}

/// `repo` must exist and have an upstream (remote, or virtual with a remote member).
fn check_upstream(registry: &Registry, what: &str, repo: &RepoName) -> Result<(), String> {
    match registry.remotes_of(repo.as_str()) {
        Ok(remotes) if remotes.is_empty() => Err(format!(
            "{what}: repository {:?} has no upstream to fetch from",
            repo.as_str()
        )),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{what}: {e}")),
    }
}

impl Producers {
    /// Builds what `config` asks for over `registry`, enqueuing into `queue`. Fails when a
    /// feed, webhook, schedule or heat repository names a repository without an upstream.
    pub fn new(
        config: ProducerConfig<'_>,
        registry: &Registry,
        queue: Arc<dyn JobQueue>,
    ) -> Result<Self, String> {
        let follower = if config.feeds.is_empty() {
            None
        } else {
            Some(Arc::new(IndexFollower::new(
                config.feeds,
                registry,
                queue.clone(),
            )?))
        };
        for (i, hook) in config.webhooks.iter().enumerate() {
            check_upstream(registry, &format!("webhooks[{i}]"), &hook.repository)?;
        }
        let mut schedules = Vec::new();
        for schedule in config.schedules {
            check_upstream(
                registry,
                &format!("schedule {:?}", schedule.name),
                &schedule.repository,
            )?;
            let built = Schedule::new(schedule)
                .map_err(|e| format!("schedule {:?}: {e}", schedule.name))?
                .with_queue(queue.clone());
            schedules.push(Arc::new(built));
        }
        let heat = match config.heat.redis(config.jobs) {
            None => None,
            Some(url) => {
                let repositories = if config.heat.repositories.is_empty() {
                    registry
                        .repositories()
                        .iter()
                        .map(|entry| entry.config.name().clone())
                        .filter(|name| {
                            registry
                                .remotes_of(name.as_str())
                                .is_ok_and(|r| !r.is_empty())
                        })
                        .collect()
                } else {
                    for repo in &config.heat.repositories {
                        check_upstream(registry, "heat.repositories", repo)?;
                    }
                    config.heat.repositories.clone()
                };
                if repositories.is_empty() {
                    None
                } else {
                    let refresher =
                        HeatRefresher::new(config.heat, &url, repositories, queue.clone())?;
                    let claims = refresher.claims(&url)?;
                    Some((Arc::new(refresher), claims))
                }
            }
        };
        Ok(Self {
            follower,
            webhooks: config.webhooks.to_vec(),
            heat,
            schedules,
            claims: TickClaims::for_jobs(config.jobs)?,
            queue,
        })
    }

    /// `handlers` with the `index_poll` handler added (when feeds are configured).
    pub fn handlers(&self, handlers: Handlers) -> Handlers {
        match &self.follower {
            Some(follower) => handlers.with(JobKind::IndexPoll, follower.clone()),
            None => handlers,
        }
    }

    /// Registers the producers' metric families (pass to `Metrics::with_extra`).
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        if let Some(follower) = &self.follower {
            follower.metrics().register(registry);
        }
    }

    /// The webhook routes (`POST /api/webhooks/{github,gitlab,gitea}`).
    pub fn routes(&self) -> Router {
        webhooks::routes(&self.webhooks, self.queue.clone())
    }

    /// Whether heat refresh runs (heat on, a Redis, and repositories with an upstream).
    pub fn heat(&self) -> Option<&HeatRefresher> {
        self.heat.as_ref().map(|(refresher, _)| refresher.as_ref())
    }

    /// Starts the periodic loops (feed polls, heat, schedules) on the system clock.
    pub fn spawn(&self, shutdown: &CancellationToken) -> Vec<JoinHandle<()>> {
        self.spawn_with_clock(&system_clock(), shutdown)
    }

    /// [`Producers::spawn`] with another clock.
    pub fn spawn_with_clock(
        &self,
        clock: &Clock,
        shutdown: &CancellationToken,
    ) -> Vec<JoinHandle<()>> {
        let mut tasks = Vec::new();
        if let Some(follower) = &self.follower {
            tasks.extend(follower.spawn_schedulers(&self.claims, clock, shutdown));
        }
        if let Some((refresher, claims)) = &self.heat {
            tasks.push(tokio::spawn(ticks::run(
                refresher.clone(),
                claims.clone(),
                clock.clone(),
                shutdown.clone(),
            )));
        }
        for schedule in &self.schedules {
            tasks.push(tokio::spawn(ticks::run(
                schedule.clone(),
                self.claims.clone(),
                clock.clone(),
                shutdown.clone(),
            )));
        }
        tracing::info!(
            feeds = self.follower.as_ref().map_or(0, |f| f.feed_names().count()),
            webhooks = self.webhooks.len(),
            heat = self.heat.is_some(),
            schedules = self.schedules.len(),
            "job producers started"
        );
        tasks
    }
}
