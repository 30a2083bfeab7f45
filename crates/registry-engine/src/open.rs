//! Opening the engine: the one assembly of storage, change events and the registry from a
//! [`RegistryConfig`], shared by the registry service (which then binds its front ends) and the
//! sync worker (which drives warm-ups, scrub and retention on the same storage).

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::change_events::EventEmitter;
use crate::config::RegistryConfig;
use crate::error::RegistryError;
use crate::events::{EventBus, EventError};
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::storage::{ObjectStore, StorageError, TimedStore, open_store};

/// Why the engine could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Storage could not be opened.
    #[error("opening storage: {0}")]
    Storage(#[from] StorageError),
    /// The event bus of the `events` section could not be set up.
    #[error("starting change events: {0}")]
    Events(#[from] EventError),
    /// The repositories could not be assembled from the configuration.
    #[error("{0}")]
    Registry(#[from] RegistryError),
}

/// An open engine.
#[derive(Debug, Clone)]
pub struct Opened {
    /// The registry: repositories over the storage.
    pub registry: Arc<Registry>,
    /// The engine's metrics (storage timings, upstream fetches, …), for a front end to expose.
    pub metrics: Arc<Metrics>,
    /// The change-event bus the registry emits on (running until the shutdown token ends).
    pub events: EventBus,
}

/// Opens the engine `config` describes: its storage (timed into the metrics), an event bus from
/// its `events` section running until `shutdown`, and the registry emitting on it.
pub async fn open(
    config: &RegistryConfig,
    shutdown: CancellationToken,
) -> Result<Opened, OpenError> {
    let metrics = Arc::new(Metrics::new());
    let store: Arc<dyn ObjectStore> = Arc::new(TimedStore::new(
        open_store(&config.storage).await?,
        metrics.clone(),
    ));
    let events = EventBus::from_config(&config.events, store.clone(), shutdown).await?;
    let registry = Registry::new(
        config,
        store,
        Arc::new(EventEmitter::new(events.clone(), config)),
        metrics.clone(),
    )?;
    Ok(Opened {
        registry: Arc::new(registry),
        metrics,
        events,
    })
}
