//! [`Coalescer`]: concurrent requests for one key share one piece of work (an upstream fetch),
//! which runs in its own task so that it completes, and its result gets stored, even when every
//! caller that waited for it has hung up. However the task ends — an outcome, a panic, the
//! runtime shutting down — its entry is removed, so the next caller starts fresh work instead
//! of joining a dead one.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::error::RegistryError;

type Outcome<V> = Option<Result<V, Arc<RegistryError>>>;

/// Work in flight by key.
#[derive(Debug)]
pub(crate) struct Coalescer<K, V> {
    inflight: Mutex<HashMap<K, watch::Receiver<Outcome<V>>>>,
}

impl<K, V> Default for Coalescer<K, V> {
    fn default() -> Self {
        Self {
            inflight: Mutex::new(HashMap::new()),
        }
    }
}

impl<K, V> Coalescer<K, V>
where
    K: Eq + Hash + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The result of the work for `key`: joins the work in flight, or spawns `work` when there
    /// is none (`work` is dropped unpolled when joining, so building it must be cheap).
    pub(crate) async fn run<F>(self: &Arc<Self>, key: K, work: F) -> Result<V, RegistryError>
    where
        F: Future<Output = Result<V, RegistryError>> + Send + 'static,
    {
        let mut rx = {
            let mut inflight = self.inflight.lock().unwrap_or_else(PoisonError::into_inner);
            match inflight.get(&key) {
                Some(rx) => rx.clone(),
                None => {
                    let (tx, rx) = watch::channel(None);
                    inflight.insert(key.clone(), rx.clone());
                    let entry = Entry {
                        coalescer: self.clone(),
                        key,
                        rx: rx.clone(),
                    };
                    tokio::spawn(async move {
                        // Dropped after the outcome is sent, or while unwinding from a panic.
                        let _entry = entry;
                        let outcome = work.await.map_err(Arc::new);
                        tx.send_replace(Some(outcome));
                    });
                    rx
                }
            }
        };
        loop {
            if let Some(outcome) = rx.borrow_and_update().clone() {
                return outcome.map_err(RegistryError::Shared);
            }
            if rx.changed().await.is_err() {
                // The task panicked before sending.
                return Err(RegistryError::Internal(
                    "a shared upstream fetch ended without an outcome".into(),
                ));
            }
        }
    }

    /// Keys with work in flight.
    pub(crate) fn in_flight(&self) -> usize {
        self.inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// The in-flight entry of one piece of work; removing it on drop (rather than after the work)
/// also covers a panic in the work.
struct Entry<K: Eq + Hash, V> {
    coalescer: Arc<Coalescer<K, V>>,
    key: K,
    rx: watch::Receiver<Outcome<V>>,
}

impl<K: Eq + Hash, V> Drop for Entry<K, V> {
    fn drop(&mut self) {
        let mut inflight = self
            .coalescer
            .inflight
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Only this work's own entry.
        if inflight
            .get(&self.key)
            .is_some_and(|rx| rx.same_channel(&self.rx))
        {
            inflight.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let coalescer = Arc::new(Coalescer::<&'static str, u32>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..50)
            .map(|_| {
                let (coalescer, runs) = (coalescer.clone(), runs.clone());
                tokio::spawn(async move {
                    coalescer
                        .run("k", async move {
                            runs.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            Ok(7)
                        })
                        .await
                })
            })
            .collect();
        for c in callers {
            assert_eq!(c.await.unwrap().unwrap(), 7);
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(coalescer.in_flight(), 0);
    }

    #[tokio::test]
    async fn work_survives_its_caller_and_errors_are_shared() {
        let coalescer = Arc::new(Coalescer::<u8, u8>::default());
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let first = tokio::spawn({
            let coalescer = coalescer.clone();
            async move {
                coalescer
                    .run(1, async move {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        let _ = done_tx.send(());
                        Err(RegistryError::NotFound("m@v1.0.0".into()))
                    })
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = coalescer.run(1, async { Ok(0) });
        first.abort();
        let e = second.await.unwrap_err();
        assert_eq!(e.to_string(), "m@v1.0.0: not found");
        done_rx.await.unwrap();
    }

    #[tokio::test]
    async fn a_panicking_run_leaves_no_dead_entry() {
        let coalescer = Arc::new(Coalescer::<u8, u8>::default());
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let first = tokio::spawn({
            let coalescer = coalescer.clone();
            async move {
                coalescer
                    .run(1, async move {
                        let _ = go_rx.await;
                        panic!("injected panic in a shared fetch");
                    })
                    .await
            }
        });
        // A second caller joins the doomed work.
        while coalescer.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        let mut joined = Box::pin(coalescer.run(1, async { Ok(9) }));
        assert!(futures::poll!(&mut joined).is_pending(), "joined the work");
        go_tx.send(()).unwrap();
        // Both waiters get an error, not a hang…
        let first = tokio::time::timeout(Duration::from_secs(5), first)
            .await
            .expect("the caller of a panicked run must not hang")
            .unwrap();
        let joined = tokio::time::timeout(Duration::from_secs(5), joined)
            .await
            .expect("a waiter of a panicked run must not hang");
        for result in [first, joined] {
            let e = result.unwrap_err();
            assert!(e.to_string().contains("without an outcome"), "{e}");
        }
        // …and the next caller starts new work instead of joining the dead one.
        assert_eq!(coalescer.in_flight(), 0);
        let again = tokio::time::timeout(Duration::from_secs(5), coalescer.run(1, async { Ok(3) }))
            .await
            .expect("a new run after a panic");
        assert_eq!(again.unwrap(), 3);
        assert_eq!(coalescer.in_flight(), 0);
    }
}
