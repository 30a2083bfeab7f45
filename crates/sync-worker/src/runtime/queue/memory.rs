//! The in-process queue for `strata up` and tests: the same semantics as the Redis queue
//! (backlog bound, retries after a delay, dead letters, completion markers with a TTL) in a
//! mutex-guarded state. Nothing survives the process; nothing needs claiming, since a
//! delivery cannot outlive the worker that holds it.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{
    Broker, DeadLetter, Delivery, Enqueued, JobQueue, NewJob, QueueError, QueueStats, Settled,
    Settlement, envelopes,
};
use crate::runtime::envelope::Envelope;

/// How long `receive` waits for work before returning empty (the worker loop calls again).
const IDLE_WAIT: Duration = Duration::from_secs(1);
/// Completion markers are swept of expired ones every this many completions.
const SWEEP_EVERY: u64 = 1024;

/// Limits of the in-process queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemoryQueueSettings {
    /// Jobs waiting, delayed or in flight before `enqueue` answers [`QueueError::Full`].
    pub max_backlog: u64,
    /// Dead letters kept (the oldest are dropped past it).
    pub dead_letter_max: usize,
    /// How long a completion marker lasts.
    pub completed_ttl: Duration,
}

impl Default for MemoryQueueSettings {
    fn default() -> Self {
        Self {
            max_backlog: 100_000,
            dead_letter_max: 10_000,
            completed_ttl: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// The in-process queue.
#[derive(Debug)]
pub struct MemoryQueue {
    settings: MemoryQueueSettings,
    state: Mutex<State>,
    arrived: Notify,
}

#[derive(Debug, Default)]
struct State {
    ready: VecDeque<Envelope>,
    delayed: BinaryHeap<Reverse<Delayed>>,
    in_flight: HashMap<String, Envelope>,
    completed: HashMap<String, Instant>,
    dead: VecDeque<DeadLetter>,
    next_tag: u64,
    completions: u64,
}

/// A retry, ordered by due time then by arrival.
#[derive(Debug)]
struct Delayed {
    due: Instant,
    seq: u64,
    envelope: Envelope,
}

impl PartialEq for Delayed {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.seq) == (other.due, other.seq)
    }
}
impl Eq for Delayed {}
impl PartialOrd for Delayed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Delayed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

impl State {
    fn backlog(&self) -> u64 {
        (self.ready.len() + self.delayed.len() + self.in_flight.len()) as u64
    }

    fn is_completed(&self, key: &str, now: Instant) -> bool {
        self.completed.get(key).is_some_and(|expiry| *expiry > now)
    }

    fn promote_due(&mut self, now: Instant) {
        while let Some(Reverse(next)) = self.delayed.peek() {
            if next.due > now {
                break;
            }
            if let Some(Reverse(due)) = self.delayed.pop() {
                self.ready.push_back(due.envelope);
            }
        }
    }

    fn next_tag(&mut self) -> String {
        self.next_tag += 1;
        self.next_tag.to_string()
    }
}

impl MemoryQueue {
    /// An empty queue.
    pub fn new(settings: MemoryQueueSettings) -> Self {
        Self {
            settings,
            state: Mutex::new(State::default()),
            arrived: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent collections behind (every update
        // is a single push/pop/insert), so a poisoned lock is still usable.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn push(&self, new: Vec<Envelope>) -> Result<Vec<Enqueued>, QueueError> {
        let mut state = self.lock();
        let backlog = state.backlog();
        if backlog + new.len() as u64 > self.settings.max_backlog {
            return Err(QueueError::Full {
                backlog,
                limit: self.settings.max_backlog,
            });
        }
        let accepted = new
            .iter()
            .map(|e| Enqueued {
                id: e.id.clone(),
                key: e.key.clone(),
            })
            .collect();
        state.ready.extend(new);
        drop(state);
        self.arrived.notify_one();
        Ok(accepted)
    }

    /// Takes up to `max` ready jobs, after moving due retries to the ready queue; otherwise
    /// says how long to wait for the next retry.
    fn take(&self, max: usize) -> Result<Vec<Delivery>, Duration> {
        let now = Instant::now();
        let mut state = self.lock();
        state.promote_due(now);
        let mut out = Vec::new();
        while out.len() < max {
            let Some(envelope) = state.ready.pop_front() else {
                break;
            };
            let tag = state.next_tag();
            state.in_flight.insert(tag.clone(), envelope.clone());
            out.push(Delivery {
                tag,
                deliveries: envelope.attempts.saturating_add(1),
                reclaimed: false,
                document: envelope.encode(),
                envelope: Ok(envelope),
            });
        }
        if !state.ready.is_empty() {
            // Another waiting consumer can take the rest.
            self.arrived.notify_one();
        }
        if out.is_empty() {
            let next_due = state.delayed.peek().map(|Reverse(d)| d.due);
            return Err(next_due.map_or(IDLE_WAIT, |due| {
                due.saturating_duration_since(now).min(IDLE_WAIT)
            }));
        }
        Ok(out)
    }
}

impl Default for MemoryQueue {
    fn default() -> Self {
        Self::new(MemoryQueueSettings::default())
    }
}

#[async_trait]
impl JobQueue for MemoryQueue {
    async fn enqueue(&self, job: NewJob) -> Result<Enqueued, QueueError> {
        let envelope = job.into_envelope()?;
        let mut accepted = self.push(vec![envelope])?;
        accepted
            .pop()
            .ok_or_else(|| QueueError::Unavailable("nothing was enqueued".into()))
    }

    async fn enqueue_batch(&self, jobs: Vec<NewJob>) -> Result<Vec<Enqueued>, QueueError> {
        self.push(envelopes(jobs)?)
    }

    async fn is_completed(&self, key: &str) -> Result<bool, QueueError> {
        Ok(self.lock().is_completed(key, Instant::now()))
    }

    async fn forget_completed(&self, key: &str) -> Result<bool, QueueError> {
        let mut state = self.lock();
        let was = state.is_completed(key, Instant::now());
        state.completed.remove(key);
        Ok(was)
    }

    async fn stats(&self) -> Result<QueueStats, QueueError> {
        let state = self.lock();
        Ok(QueueStats {
            waiting: state.ready.len() as u64,
            pending: state.in_flight.len() as u64,
            delayed: state.delayed.len() as u64,
            dead: state.dead.len() as u64,
        })
    }

    async fn dead_letters(&self, limit: usize) -> Result<Vec<DeadLetter>, QueueError> {
        Ok(self.lock().dead.iter().take(limit).cloned().collect())
    }

    async fn check_ready(&self) -> Result<(), QueueError> {
        Ok(())
    }
}

#[async_trait]
impl Broker for MemoryQueue {
    async fn receive(
        &self,
        max: usize,
        shutdown: &CancellationToken,
    ) -> Result<Vec<Delivery>, QueueError> {
        loop {
            if shutdown.is_cancelled() {
                return Ok(Vec::new());
            }
            let wait = match self.take(max) {
                Ok(deliveries) => return Ok(deliveries),
                Err(wait) => wait,
            };
            // `notify_one` stores a permit when nobody waits, so an enqueue between `take`
            // and here is not missed.
            tokio::select! {
                () = self.arrived.notified() => {}
                () = tokio::time::sleep(wait) => {}
                () = shutdown.cancelled() => return Ok(Vec::new()),
            }
        }
    }

    async fn settle(
        &self,
        delivery: &Delivery,
        settlement: Settlement,
    ) -> Result<Settled, QueueError> {
        let now = Instant::now();
        let mut state = self.lock();
        let Some(envelope) = state.in_flight.remove(&delivery.tag) else {
            return Ok(Settled::Superseded);
        };
        let settled = match settlement {
            Settlement::Complete { .. } => {
                if state.is_completed(&envelope.key, now) {
                    Settled::AlreadyCompleted
                } else {
                    state
                        .completed
                        .insert(envelope.key.clone(), now + self.settings.completed_ttl);
                    state.completions += 1;
                    if state.completions.is_multiple_of(SWEEP_EVERY) {
                        state.completed.retain(|_, expiry| *expiry > now);
                    }
                    Settled::Completed
                }
            }
            Settlement::Skip => Settled::Done,
            Settlement::Retry { delay, error } => {
                if state.is_completed(&envelope.key, now) {
                    Settled::AlreadyCompleted
                } else {
                    let seq = state.next_tag;
                    state.next_tag += 1;
                    state.delayed.push(Reverse(Delayed {
                        due: now + delay,
                        seq,
                        envelope: envelope.for_retry(delivery.deliveries, &error),
                    }));
                    Settled::Done
                }
            }
            Settlement::DeadLetter { reason } => {
                if state.is_completed(&envelope.key, now) {
                    Settled::AlreadyCompleted
                } else {
                    if state.dead.len() >= self.settings.dead_letter_max {
                        state.dead.pop_front();
                    }
                    state.dead.push_back(DeadLetter {
                        document: envelope.for_retry(delivery.deliveries, &reason).encode(),
                        reason,
                        deliveries: delivery.deliveries,
                        consumer: self.consumer().to_owned(),
                    });
                    Settled::Done
                }
            }
            Settlement::Release => {
                state.ready.push_front(envelope);
                Settled::Done
            }
            Settlement::Interrupt => {
                let envelope =
                    envelope.for_retry(delivery.deliveries, "interrupted by a worker shutdown");
                state.ready.push_front(envelope);
                Settled::Done
            }
        };
        drop(state);
        self.arrived.notify_one();
        Ok(settled)
    }

    async fn keep_alive(&self, _tags: &[String]) -> Result<(), QueueError> {
        Ok(())
    }

    fn keep_alive_interval(&self) -> Option<Duration> {
        None
    }

    fn consumer(&self) -> &str {
        "in-process"
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::runtime::job::Job;

    fn poll(feed: &str) -> NewJob {
        NewJob::new(Job::IndexPoll { feed: feed.into() })
    }

    #[tokio::test]
    async fn backlog_bound_refuses_and_batches_are_all_or_nothing() {
        let queue = MemoryQueue::new(MemoryQueueSettings {
            max_backlog: 3,
            ..MemoryQueueSettings::default()
        });
        queue
            .enqueue_batch(vec![poll("a"), poll("b")])
            .await
            .unwrap();
        let full = queue.enqueue_batch(vec![poll("c"), poll("d")]).await;
        assert!(
            matches!(
                full,
                Err(QueueError::Full {
                    backlog: 2,
                    limit: 3
                })
            ),
            "{full:?}"
        );
        queue.enqueue(poll("c")).await.unwrap();
        assert_eq!(queue.stats().await.unwrap().waiting, 3);
        let invalid = queue.enqueue(poll("")).await;
        assert!(matches!(invalid, Err(QueueError::InvalidJob(_))));
    }

    #[tokio::test]
    async fn settlements_move_jobs_between_states() {
        let queue = MemoryQueue::default();
        let shutdown = CancellationToken::new();
        let first = queue.enqueue(poll("a").with_key("k")).await.unwrap();
        queue.enqueue(poll("b")).await.unwrap();
        let got = queue.receive(10, &shutdown).await.unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].deliveries, 1);
        assert_eq!(queue.stats().await.unwrap().pending, 2);

        let settled = queue
            .settle(&got[0], Settlement::Complete { detail: None })
            .await
            .unwrap();
        assert_eq!(settled, Settled::Completed);
        assert!(queue.is_completed(&first.key).await.unwrap());
        // Forgetting the marker lets the key run again (retention removed what it fetched).
        assert!(queue.forget_completed(&first.key).await.unwrap());
        assert!(!queue.is_completed(&first.key).await.unwrap());
        assert!(!queue.forget_completed(&first.key).await.unwrap());
        // The same delivery again is no longer in flight.
        let again = queue.settle(&got[0], Settlement::Skip).await.unwrap();
        assert_eq!(again, Settled::Superseded);

        let retry = Settlement::Retry {
            delay: Duration::ZERO,
            error: "boom".into(),
        };
        assert_eq!(queue.settle(&got[1], retry).await.unwrap(), Settled::Done);
        let redelivered = queue.receive(10, &shutdown).await.unwrap();
        assert_eq!(redelivered.len(), 1);
        assert_eq!(redelivered[0].deliveries, 2);
        let envelope = redelivered[0].envelope.as_ref().unwrap();
        assert_eq!(envelope.last_error.as_deref(), Some("boom"));

        let dead = Settlement::DeadLetter {
            reason: "gave up".into(),
        };
        queue.settle(&redelivered[0], dead).await.unwrap();
        let letters = queue.dead_letters(10).await.unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(
            (letters[0].reason.as_str(), letters[0].deliveries),
            ("gave up", 2)
        );
        assert_eq!(letters[0].envelope().unwrap().id, envelope.id);
        let stats = queue.stats().await.unwrap();
        assert_eq!(
            stats,
            QueueStats {
                waiting: 0,
                pending: 0,
                delayed: 0,
                dead: 1
            }
        );
    }

    #[tokio::test]
    async fn a_second_completion_of_a_key_is_not_recorded() {
        let queue = MemoryQueue::default();
        let shutdown = CancellationToken::new();
        queue.enqueue(poll("a").with_key("same")).await.unwrap();
        queue.enqueue(poll("b").with_key("same")).await.unwrap();
        let got = queue.receive(2, &shutdown).await.unwrap();
        let complete = || Settlement::Complete { detail: None };
        assert_eq!(
            queue.settle(&got[0], complete()).await.unwrap(),
            Settled::Completed
        );
        assert_eq!(
            queue.settle(&got[1], complete()).await.unwrap(),
            Settled::AlreadyCompleted
        );
    }

    #[tokio::test]
    async fn released_jobs_come_back_first_and_uncounted() {
        let queue = MemoryQueue::default();
        let shutdown = CancellationToken::new();
        queue.enqueue(poll("a")).await.unwrap();
        queue.enqueue(poll("b")).await.unwrap();
        let got = queue.receive(1, &shutdown).await.unwrap();
        queue.settle(&got[0], Settlement::Release).await.unwrap();
        let again = queue.receive(1, &shutdown).await.unwrap();
        assert_eq!(again[0].document, got[0].document);
        assert_eq!(again[0].deliveries, 1);
        queue
            .settle(&again[0], Settlement::Interrupt)
            .await
            .unwrap();
        let third = queue.receive(1, &shutdown).await.unwrap();
        assert_eq!(third[0].deliveries, 2);
    }

    #[tokio::test]
    async fn receive_returns_when_shut_down() {
        let queue = MemoryQueue::default();
        let shutdown = CancellationToken::new();
        let waiting = {
            let shutdown = shutdown.clone();
            let queue = std::sync::Arc::new(queue);
            let q = queue.clone();
            tokio::spawn(async move { q.receive(1, &shutdown).await })
        };
        shutdown.cancel();
        let got = tokio::time::timeout(Duration::from_secs(30), waiting)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(got.is_empty());
    }
}
