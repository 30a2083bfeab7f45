//! The consumer side of the Redis queue: receiving (promotion of due retries, claims of
//! idle entries, new entries), settling, keep-alives, pruning of idle consumers.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::streams::StreamReadReply;
use tokio_util::sync::CancellationToken;

use super::{
    BLOCK_MARGIN, Cadence, PROMOTE_BATCH, PROMOTE_INTERVAL, PRUNE_IDLE, PRUNE_INTERVAL, RedisQueue,
    millis, unavailable,
};
use crate::runtime::envelope::{Envelope, unix_millis};
use crate::runtime::queue::{Broker, Delivery, QueueError, Settled, Settlement};

impl RedisQueue {
    /// Whether the periodic step last run at `last` is due again after `every`.
    fn due(last: &mut Option<Instant>, every: Duration) -> bool {
        let now = Instant::now();
        if last.is_some_and(|t| now.duration_since(t) < every) {
            return false;
        }
        *last = Some(now);
        true
    }

    fn claim_interval(&self) -> Duration {
        (self.settings.visibility_timeout / 4)
            .clamp(Duration::from_millis(50), Duration::from_secs(30))
    }

    async fn promote(&self) -> Result<(), QueueError> {
        let _moved: u64 = self
            .invoke(
                "moving due retries",
                &self.scripts.promote,
                &[&self.keys.retry, &self.keys.stream],
                &[PROMOTE_BATCH.to_string()],
            )
            .await?;
        Ok(())
    }

    /// Claims up to `max` entries idle past the visibility timeout.
    async fn claim(&self, max: usize) -> Result<Vec<Delivery>, QueueError> {
        let cursor = self.lock_cadence().claim_cursor.clone();
        let min_idle = millis(self.settings.visibility_timeout).to_string();
        let args = [
            self.settings.group.clone(),
            self.settings.consumer.clone(),
            min_idle,
            cursor,
            max.to_string(),
        ];
        let reply: Vec<String> = self
            .invoke(
                "claiming idle jobs",
                &self.scripts.claim,
                &[&self.keys.stream],
                &args,
            )
            .await?;
        let mut parts = reply.into_iter();
        let next = parts.next().unwrap_or_else(|| "0-0".into());
        let more = next != "0-0";
        {
            let mut cadence = self.lock_cadence();
            cadence.claim_cursor = next;
            if more {
                // The scan is not finished: continue on the next receive.
                cadence.claimed = None;
            }
        }
        let mut out = Vec::new();
        while let (Some(tag), Some(document), Some(count)) =
            (parts.next(), parts.next(), parts.next())
        {
            let count: u32 = count.parse().unwrap_or(1);
            let mut delivery = delivery(tag, document, count);
            delivery.reclaimed = true;
            out.push(delivery);
        }
        Ok(out)
    }

    async fn prune_consumers(&self) -> Result<(), QueueError> {
        let idle = PRUNE_IDLE.max(self.settings.visibility_timeout * 10);
        let removed: u64 = self
            .invoke(
                "pruning idle consumers",
                &self.scripts.prune,
                &[&self.keys.stream],
                &[
                    self.settings.group.clone(),
                    millis(idle).to_string(),
                    self.settings.consumer.clone(),
                ],
            )
            .await?;
        if removed > 0 {
            tracing::info!(removed, group = %self.settings.group, "pruned idle consumers");
        }
        Ok(())
    }

    /// `XREADGROUP … >` for up to `max` new entries, blocking up to `block` if given.
    async fn read_new(
        &self,
        max: usize,
        block: Option<Duration>,
    ) -> Result<Vec<Delivery>, QueueError> {
        // The group is created through the command connection.
        drop(self.commands().await?);
        let mut slot = self.reader.lock().await;
        let mut connection = match slot.as_ref() {
            Some(connection) => connection.clone(),
            None => {
                let response = self.settings.block + BLOCK_MARGIN;
                let connection = self
                    .connect(response)
                    .await
                    .map_err(|e| unavailable("connecting the reader", &e))?;
                slot.insert(connection).clone()
            }
        };
        let mut command = redis::cmd("XREADGROUP");
        command
            .arg("GROUP")
            .arg(&self.settings.group)
            .arg(&self.settings.consumer)
            .arg("COUNT")
            .arg(max);
        if let Some(block) = block {
            command.arg("BLOCK").arg(millis(block));
        }
        command.arg("STREAMS").arg(&self.keys.stream).arg(">");
        let reply: Option<StreamReadReply> = match command.query_async(&mut connection).await {
            Ok(reply) => reply,
            Err(e) => {
                self.note_error(&e);
                if !matches!(e.kind(), redis::ErrorKind::Server(_)) {
                    *slot = None;
                }
                return Err(unavailable("reading jobs", &e));
            }
        };
        let entries = reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids);
        Ok(entries
            .map(|entry| {
                let document: String = entry.get("job").unwrap_or_default();
                delivery(entry.id, document, 1)
            })
            .collect())
    }

    fn lock_cadence(&self) -> std::sync::MutexGuard<'_, Cadence> {
        self.cadence
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn settle_failed(
        &self,
        delivery: &Delivery,
        action: &str,
        target: &str,
        document: String,
        number: u64,
        reason: &str,
    ) -> Result<Settled, QueueError> {
        let marker = match &delivery.envelope {
            Ok(envelope) => self.marker_key(&envelope.key),
            Err(_) => String::new(),
        };
        let args = [
            self.settings.group.clone(),
            delivery.tag.clone(),
            self.settings.consumer.clone(),
            action.to_owned(),
            document,
            number.to_string(),
            reason.to_owned(),
            delivery.deliveries.to_string(),
        ];
        let reply: String = self
            .invoke(
                "settling a job",
                &self.scripts.settle,
                &[&self.keys.stream, &marker, target],
                &args,
            )
            .await?;
        Ok(match reply.as_str() {
            "superseded" => Settled::Superseded,
            "completed" => Settled::AlreadyCompleted,
            _ => Settled::Done,
        })
    }

    async fn complete(
        &self,
        delivery: &Delivery,
        envelope: &Envelope,
        detail: Option<String>,
    ) -> Result<Settled, QueueError> {
        let marker = serde_json::json!({
            "id": envelope.id,
            "consumer": self.settings.consumer,
            "completed_at_ms": unix_millis(),
            "deliveries": delivery.deliveries,
            "detail": detail,
        })
        .to_string();
        let args = [
            self.settings.group.clone(),
            delivery.tag.clone(),
            marker,
            self.settings.completed_ttl.as_secs().max(1).to_string(),
            self.settings.completed_log_maxlen.to_string(),
            envelope.key.clone(),
            envelope.id.to_string(),
            self.settings.consumer.clone(),
            delivery.deliveries.to_string(),
        ];
        let won: u64 = self
            .invoke(
                "completing a job",
                &self.scripts.complete,
                &[
                    &self.keys.stream,
                    &self.marker_key(&envelope.key),
                    &self.keys.completed,
                ],
                &args,
            )
            .await?;
        Ok(if won == 1 {
            Settled::Completed
        } else {
            Settled::AlreadyCompleted
        })
    }
}

/// A delivery of an entry with `document`, delivered `count` times as this entry.
fn delivery(tag: String, document: String, count: u32) -> Delivery {
    let envelope = Envelope::decode(&document).map_err(|e| e.to_string());
    let earlier = envelope.as_ref().map_or(0, |e| e.attempts);
    Delivery {
        tag,
        deliveries: earlier.saturating_add(count.max(1)),
        reclaimed: false,
        envelope,
        document,
    }
}

#[async_trait]
impl Broker for RedisQueue {
    async fn receive(
        &self,
        max: usize,
        shutdown: &CancellationToken,
    ) -> Result<Vec<Delivery>, QueueError> {
        let (promote, claim, prune) = {
            let mut cadence = self.lock_cadence();
            let claim_every = self.claim_interval();
            (
                Self::due(&mut cadence.promoted, PROMOTE_INTERVAL),
                Self::due(&mut cadence.claimed, claim_every),
                Self::due(&mut cadence.pruned, PRUNE_INTERVAL),
            )
        };
        if promote {
            self.promote().await?;
        }
        if prune && let Err(error) = self.prune_consumers().await {
            tracing::warn!(%error, "could not prune idle consumers");
        }
        let mut out = if claim {
            self.claim(max).await?
        } else {
            Vec::new()
        };
        if out.len() < max && !shutdown.is_cancelled() {
            // Block only when nothing was claimed, so claimed entries start at once.
            let block = out.is_empty().then_some(self.settings.block);
            match self.read_new(max - out.len(), block).await {
                Ok(new) => out.extend(new),
                Err(error) if !out.is_empty() => {
                    tracing::warn!(%error, "reading new jobs failed; running the claimed ones");
                }
                Err(error) => return Err(error),
            }
        }
        Ok(out)
    }

    async fn settle(
        &self,
        delivery: &Delivery,
        settlement: Settlement,
    ) -> Result<Settled, QueueError> {
        let retried = |error: &str| match &delivery.envelope {
            Ok(envelope) => envelope.for_retry(delivery.deliveries, error).encode(),
            Err(_) => delivery.document.clone(),
        };
        match settlement {
            Settlement::Complete { detail } => match &delivery.envelope {
                Ok(envelope) => self.complete(delivery, envelope, detail).await,
                Err(reason) => Err(QueueError::InvalidJob(reason.clone())),
            },
            Settlement::Skip => {
                let mut connection = self.commands().await?;
                let mut pipe = redis::pipe();
                pipe.atomic()
                    .cmd("XACK")
                    .arg(&self.keys.stream)
                    .arg(&self.settings.group)
                    .arg(&delivery.tag)
                    .ignore()
                    .cmd("XDEL")
                    .arg(&self.keys.stream)
                    .arg(&delivery.tag)
                    .ignore();
                match pipe.query_async::<()>(&mut connection).await {
                    Ok(()) => Ok(Settled::Done),
                    Err(e) => Err(self.failed("acknowledging a completed job", e).await),
                }
            }
            Settlement::Retry { delay, error } => {
                let document = retried(&error);
                let (retry, delay) = (self.keys.retry.clone(), millis(delay));
                self.settle_failed(delivery, "retry", &retry, document, delay, &error)
                    .await
            }
            Settlement::DeadLetter { reason } => {
                let document = retried(&reason);
                let (dead, maxlen) = (self.keys.dead.clone(), self.settings.dead_letter_maxlen);
                self.settle_failed(delivery, "dead", &dead, document, maxlen, &reason)
                    .await
            }
            Settlement::Release => {
                let document = delivery.document.clone();
                let stream = self.keys.stream.clone();
                self.settle_failed(delivery, "requeue", &stream, document, 0, "")
                    .await
            }
            // Left pending: claimed by a live worker once idle past the visibility timeout.
            Settlement::Interrupt => Ok(Settled::Done),
        }
    }

    async fn keep_alive(&self, tags: &[String]) -> Result<(), QueueError> {
        if tags.is_empty() {
            return Ok(());
        }
        let mut args = Vec::with_capacity(tags.len() + 2);
        args.push(self.settings.group.clone());
        args.push(self.settings.consumer.clone());
        args.extend(tags.iter().cloned());
        let _touched: u64 = self
            .invoke(
                "keeping jobs alive",
                &self.scripts.touch,
                &[&self.keys.stream],
                &args,
            )
            .await?;
        Ok(())
    }

    fn keep_alive_interval(&self) -> Option<Duration> {
        Some((self.settings.visibility_timeout / 3).max(Duration::from_millis(10)))
    }

    fn consumer(&self) -> &str {
        &self.settings.consumer
    }
}
