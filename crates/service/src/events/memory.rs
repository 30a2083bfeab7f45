//! The in-process transport: a bounded `tokio::sync::broadcast` fan-out, for the embedded
//! deployment where every tier lives in one process.
//!
//! Each subscriber sees every event emitted after it subscribed. A subscriber that falls more
//! than `capacity` events behind loses the oldest ones; its [`Subscription`] counts them as
//! skipped and carries on. Nothing is kept across restarts: edges of the same process start
//! together with the registry and read the version index first.

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use futures::StreamExt;
use tokio::sync::broadcast;

use crate::events::{Event, Subscription};

/// The in-process bus.
#[derive(Debug)]
pub struct MemoryBus {
    sender: broadcast::Sender<(u64, Arc<Event>)>,
    sequence: AtomicU64,
}

impl MemoryBus {
    pub fn new(capacity: usize) -> Self {
        let (sender, _) = broadcast::channel(capacity.max(1));
        Self {
            sender,
            sequence: AtomicU64::new(0),
        }
    }

    /// Hands the event to every current subscriber; never blocks.
    pub fn emit(&self, event: Event) {
        let sequence = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        // An error only means nobody is subscribed right now, which is not a failure.
        let _ = self.sender.send((sequence, Arc::new(event)));
    }

    /// Every event emitted from now on. Stream ids look like Redis ones (`<sequence>-0`) so
    /// consumers can log them the same way; they restart at 1 with the process.
    pub fn subscribe(&self) -> Subscription {
        let skipped = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&skipped);
        let receiver = self.sender.subscribe();
        let stream = futures::stream::unfold(receiver, move |mut receiver| {
            let counter = Arc::clone(&counter);
            async move {
                loop {
                    match receiver.recv().await {
                        Ok((sequence, event)) => {
                            let event = Arc::unwrap_or_clone(event);
                            return Some(((format!("{sequence}-0"), event), receiver));
                        }
                        Err(broadcast::error::RecvError::Lagged(missed)) => {
                            tracing::warn!(missed, "event subscriber fell behind; events lost");
                            counter.fetch_add(missed, Ordering::Relaxed);
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            }
        });
        Subscription::new(stream.boxed(), skipped)
    }
}
