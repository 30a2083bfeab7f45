//! [`Coalescer`]: concurrent requests for the same small answer (`.info`, `.mod`, `list`,
//! `@latest`, tiles) share one upstream fetch. The fetch runs in its own task, so it finishes
//! and fills the cache even if every client that wanted it hangs up. (Zips have their own,
//! streaming mechanism in [`crate::fill`].)

use std::collections::HashMap;
use std::future::Future;
use std::sync::Mutex;

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};

type Flight<T> = Shared<BoxFuture<'static, T>>;

/// Shares in-flight fetches by key.
#[derive(Debug)]
pub struct Coalescer<T: Clone> {
    flights: Mutex<HashMap<String, (u64, Flight<T>)>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl<T: Clone + Send + Sync + 'static> Default for Coalescer<T> {
    fn default() -> Self {
        Self {
            flights: Mutex::new(HashMap::new()),
            next_id: Default::default(),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> Coalescer<T> {
    /// The result of the fetch for `key`: joins one in flight, or starts `fetch()`.
    /// `on_panic` is the answer if the fetch task dies.
    pub async fn run<F, Fut>(&self, key: &str, fetch: F, on_panic: T) -> T
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (id, flight) = {
            let mut flights = match self.flights.lock() {
                Ok(f) => f,
                Err(p) => p.into_inner(),
            };
            match flights.get(key) {
                Some((id, flight)) => (*id, flight.clone()),
                None => {
                    let id = self
                        .next_id
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let task = tokio::spawn(fetch());
                    let flight = async move { task.await.unwrap_or(on_panic) }
                        .boxed()
                        .shared();
                    flights.insert(key.to_owned(), (id, flight.clone()));
                    (id, flight)
                }
            }
        };
        let result = flight.await;
        let mut flights = match self.flights.lock() {
            Ok(f) => f,
            Err(p) => p.into_inner(),
        };
        if flights.get(key).is_some_and(|(current, _)| *current == id) {
            flights.remove(key);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn concurrent_callers_share_one_fetch() {
        let c = Coalescer::<u32>::default();
        let calls = Arc::new(AtomicUsize::new(0));
        let (tx, rx) = tokio::sync::watch::channel(false);
        // join_all polls every call once before the fetch can finish: all ten join one flight.
        let callers = futures::future::join_all((0..10).map(|_| {
            let (calls, rx) = (calls.clone(), rx.clone());
            c.run(
                "k",
                move || async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let mut rx = rx;
                    let _ = rx.wait_for(|go| *go).await;
                    7
                },
                0,
            )
        }));
        let (results, _) = tokio::join!(callers, async { tx.send(true).unwrap() });
        assert!(results.iter().all(|r| *r == 7));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }
}
