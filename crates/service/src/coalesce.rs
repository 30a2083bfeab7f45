//! [`Coalescer`]: concurrent requests for one key share one piece of work (an upstream fetch).
//!
//! Invariants:
//! - while work for a key is in flight, every caller with that key waits for it and gets a
//!   clone of its outcome; only the first caller's `work` closure is called (the others are
//!   dropped uncalled, so they cost nothing), and never under the coalescer's lock;
//! - the work runs in a task of its own, so it completes, and whatever it stores gets stored,
//!   even when every caller that waited for it has hung up (been cancelled, dropped);
//! - however that task ends — an outcome, a panic, the runtime shutting down — its key's entry
//!   is removed then: the next caller starts new work instead of joining a dead one or being
//!   handed an outcome from before it asked; the waiters of work that ended without an outcome
//!   get [`Abandoned`], never a hang.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

/// The work a caller waited for ended without an outcome: it panicked, or its runtime shut
/// down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("shared work ended without an outcome (it panicked or its runtime shut down)")]
pub struct Abandoned;

/// What a waiter sees: nothing yet, then the outcome.
type Outcome<V> = watch::Receiver<Option<V>>;

/// The keys with work in flight and how to wait for each.
type InFlight<K, V> = Arc<Mutex<HashMap<K, Outcome<V>>>>;

/// Work in flight by key; `V` is the work's outcome (often a `Result`), handed to every waiter.
pub struct Coalescer<K, V> {
    in_flight: InFlight<K, V>,
}

impl<K, V> Default for Coalescer<K, V> {
    fn default() -> Self {
        Self {
            in_flight: Arc::new(Mutex::new(HashMap::new())),
        }
    }
}

impl<K, V> fmt::Debug for Coalescer<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Coalescer")
            .field("in_flight", &lock(&self.in_flight).len())
            .finish()
    }
}

impl<K, V> Coalescer<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The outcome of the work for `key`: joins the work in flight, or, when there is none,
    /// calls `work()` and runs the future it returns in a task of its own.
    pub async fn run<F, Fut>(&self, key: K, work: F) -> Result<V, Abandoned>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = V> + Send + 'static,
    {
        let (mut rx, lead) = {
            let mut in_flight = lock(&self.in_flight);
            match in_flight.get(&key) {
                Some(rx) => (rx.clone(), None),
                None => {
                    let (tx, rx) = watch::channel(None);
                    in_flight.insert(key.clone(), rx.clone());
                    let entry = Entry {
                        in_flight: Arc::clone(&self.in_flight),
                        key,
                        rx: rx.clone(),
                    };
                    (rx, Some((tx, entry)))
                }
            }
        };
        // The caller's code runs outside the lock; should it panic, `entry` is dropped here and
        // the waiters that joined meanwhile get `Abandoned`.
        if let Some((tx, entry)) = lead {
            let work = work();
            // The work stays in the trace of the caller that started it (tracing on).
            let task = async move {
                // Dropped after the outcome is sent, or while unwinding from a panic, or with
                // the unfinished task when the runtime shuts down.
                let _entry = entry;
                tx.send_replace(Some(work.await));
            };
            tokio::spawn(tracing::Instrument::instrument(
                task,
                crate::trace::current(),
            ));
        }
        loop {
            if let Some(outcome) = rx.borrow_and_update().clone() {
                return Ok(outcome);
            }
            if rx.changed().await.is_err() {
                return Err(Abandoned);
            }
        }
    }

    /// How many keys have work in flight.
    pub fn in_flight(&self) -> usize {
        lock(&self.in_flight).len()
    }
}

/// The map, even if a panic poisoned its lock (every change to it is a single insert or
/// remove, so it is never left half-changed).
fn lock<K, V>(in_flight: &InFlight<K, V>) -> std::sync::MutexGuard<'_, HashMap<K, Outcome<V>>> {
    in_flight.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The in-flight entry of one piece of work, owned by its task; removing the entry when it is
/// dropped (rather than after the work) also covers a panic and a runtime shutting down.
struct Entry<K: Eq + Hash, V> {
    in_flight: InFlight<K, V>,
    key: K,
    rx: Outcome<V>,
}

impl<K: Eq + Hash, V> Drop for Entry<K, V> {
    fn drop(&mut self) {
        let mut in_flight = lock(&self.in_flight);
        // Only this work's own entry, not newer work for the same key.
        if in_flight
            .get(&self.key)
            .is_some_and(|rx| rx.same_channel(&self.rx))
        {
            in_flight.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn concurrent_callers_share_one_run() {
        let c = Coalescer::<&'static str, u32>::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = watch::channel(false);
        // join_all polls every call once before the work can finish: all ten join one run.
        let callers = futures::future::join_all((0..10).map(|_| {
            let (calls, rx) = (calls.clone(), rx.clone());
            c.run("k", move || async move {
                calls.fetch_add(1, Ordering::SeqCst);
                let mut rx = rx;
                let _ = rx.wait_for(|go| *go).await;
                7
            })
        }));
        let (results, _) = tokio::join!(callers, async { tx.send(true).unwrap() });
        assert!(results.iter().all(|r| *r == Ok(7)), "{results:?}");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(c.in_flight(), 0);
    }

    #[tokio::test]
    async fn callers_on_other_tasks_share_one_run_and_keys_do_not_mix() {
        let c = Arc::new(Coalescer::<u8, Result<u32, String>>::default());
        let runs = Arc::new(AtomicUsize::new(0));
        let callers: Vec<_> = (0..50u8)
            .map(|n| {
                let (c, runs) = (c.clone(), runs.clone());
                tokio::spawn(async move {
                    let key = n % 2;
                    c.run(key, move || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        if key == 0 {
                            Ok(7)
                        } else {
                            Err("m@v1.0.0: not found".to_owned())
                        }
                    })
                    .await
                    .map(|outcome| (key, outcome))
                })
            })
            .collect();
        for caller in callers {
            match caller.await.unwrap().unwrap() {
                (0, outcome) => assert_eq!(outcome, Ok(7)),
                (_, outcome) => assert_eq!(outcome, Err("m@v1.0.0: not found".to_owned())),
            }
        }
        assert_eq!(runs.load(Ordering::SeqCst), 2, "one run per key");
        assert_eq!(c.in_flight(), 0);
    }

    #[tokio::test]
    async fn work_survives_its_callers_and_followers_still_get_its_outcome() {
        let c = Arc::new(Coalescer::<u8, Result<u8, String>>::default());
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let leader = tokio::spawn({
            let c = c.clone();
            async move {
                c.run(1, move || async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    let _ = done_tx.send(());
                    Err("m@v1.0.0: not found".to_owned())
                })
                .await
            }
        });
        while c.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        let follower = c.run(1, || async { Ok(0) });
        leader.abort();
        assert_eq!(
            follower.await,
            Ok(Err("m@v1.0.0: not found".to_owned())),
            "the leader's work, not the follower's"
        );
        done_rx
            .await
            .expect("the work ran to its end without its caller");
    }

    #[tokio::test]
    async fn work_whose_callers_all_left_still_completes_and_is_not_served_later() {
        let c = Coalescer::<u8, u32>::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let mut first = Box::pin(c.run(1, {
            let runs = runs.clone();
            move || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(20)).await;
                let _ = done_tx.send(());
                1
            }
        }));
        assert!(futures::poll!(&mut first).is_pending());
        drop(first);
        done_rx
            .await
            .expect("the work completes without any caller");
        while c.in_flight() != 0 {
            tokio::task::yield_now().await;
        }
        // A caller arriving after the work ended gets new work, not the old outcome.
        let again = c.run(1, || async { 2 }).await;
        assert_eq!(again, Ok(2));
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_panicking_run_strands_no_waiter_and_leaves_no_dead_entry() {
        let c = Arc::new(Coalescer::<u8, u8>::default());
        let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
        let first = tokio::spawn({
            let c = c.clone();
            async move {
                c.run(1, move || async move {
                    let _ = go_rx.await;
                    panic!("injected panic in a shared fetch");
                })
                .await
            }
        });
        // A second caller joins the doomed work.
        while c.in_flight() == 0 {
            tokio::task::yield_now().await;
        }
        let mut joined = Box::pin(c.run(1, || async { 9 }));
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
        assert_eq!(first, Err(Abandoned));
        assert_eq!(joined, Err(Abandoned));
        assert!(Abandoned.to_string().contains("without an outcome"));
        // …and the next caller starts new work instead of joining the dead one.
        assert_eq!(c.in_flight(), 0);
        let again = tokio::time::timeout(Duration::from_secs(5), c.run(1, || async { 3 }))
            .await
            .expect("a new run after a panic");
        assert_eq!(again, Ok(3));
        assert_eq!(c.in_flight(), 0);
    }

    #[tokio::test]
    async fn a_panicking_work_builder_leaves_no_dead_entry() {
        let c = Arc::new(Coalescer::<u8, u8>::default());
        let leader = tokio::spawn({
            let c = c.clone();
            async move {
                c.run(1, || -> std::future::Ready<u8> {
                    panic!("injected panic building work")
                })
                .await
            }
        });
        assert!(leader.await.unwrap_err().is_panic());
        assert_eq!(c.in_flight(), 0);
        assert_eq!(c.run(1, || async { 4 }).await, Ok(4));
    }

    #[test]
    fn work_cut_short_by_a_runtime_shutdown_leaves_no_dead_entry() {
        let c = Coalescer::<u8, u8>::default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let mut waiter = Box::pin(c.run(1, std::future::pending::<u8>));
        runtime.block_on(async {
            assert!(futures::poll!(&mut waiter).is_pending());
        });
        assert_eq!(c.in_flight(), 1);
        drop(runtime);
        assert_eq!(
            c.in_flight(),
            0,
            "the unfinished task took its entry with it"
        );
        let other = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(other.block_on(waiter), Err(Abandoned));
    }
}
