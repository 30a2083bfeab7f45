//! [`TimedStore`]: an [`ObjectStore`] decorator that records each operation's latency in the
//! `strata_registry_storage_operation_duration_seconds` histogram. Streaming bodies are timed to
//! the first byte (gets) or to completion (puts), which is what the store itself controls. With
//! tracing on, each operation is also a `storage` span (`storage.operation`, `storage.key`).

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use futures::stream::BoxStream;
use tracing::Instrument;

use super::{
    ByteRange, ByteStream, GetObject, KeyPrefix, ObjectKey, ObjectMeta, ObjectStore, PutCondition,
    StorageError, Stored,
};
use crate::metrics::{Metrics, OperationLabels};

/// Times every operation of the wrapped store.
#[derive(Debug)]
pub struct TimedStore {
    inner: Arc<dyn ObjectStore>,
    metrics: Arc<Metrics>,
}

impl TimedStore {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn ObjectStore>, metrics: Arc<Metrics>) -> Self {
        Self { inner, metrics }
    }

    fn observe(&self, operation: &'static str, started: Instant) {
        self.metrics
            .storage
            .get_or_create(&OperationLabels { operation })
            .observe(started.elapsed().as_secs_f64());
    }

    /// Runs one operation: timed, and with tracing on in a `storage` span (marked failed unless
    /// the failure is "not found" or a condition not met, which callers expect).
    async fn timed<T>(
        &self,
        operation: &'static str,
        key: &ObjectKey,
        fut: impl Future<Output = Result<T, StorageError>>,
    ) -> Result<T, StorageError> {
        let span = strata_service::span!(
            "storage",
            otel.name = %format!("storage {operation}"),
            storage.operation = operation,
            storage.key = %key,
        );
        let started = Instant::now();
        let result = fut.instrument(span.clone()).await;
        self.observe(operation, started);
        if let Err(e) = &result
            && !e.is_not_found()
            && !e.is_conflict()
        {
            strata_service::trace::set_error(&span, e);
        }
        result
    }
}

#[async_trait]
impl ObjectStore for TimedStore {
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StorageError> {
        self.timed("head", key, self.inner.head(key)).await
    }

    async fn get(&self, key: &ObjectKey) -> Result<GetObject, StorageError> {
        self.timed("get", key, self.inner.get(key)).await
    }

    async fn get_range(
        &self,
        key: &ObjectKey,
        range: ByteRange,
    ) -> Result<GetObject, StorageError> {
        self.timed("get_range", key, self.inner.get_range(key, range))
            .await
    }

    async fn put_with(
        &self,
        key: &ObjectKey,
        body: ByteStream,
        condition: PutCondition,
    ) -> Result<Stored, StorageError> {
        let operation = match condition {
            PutCondition::Overwrite => "put",
            PutCondition::IfAbsent => "put_if_absent",
            PutCondition::IfMatch(_) => "put_if_match",
        };
        self.timed(operation, key, self.inner.put_with(key, body, condition))
            .await
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError> {
        self.timed("delete", key, self.inner.delete(key)).await
    }

    fn list(&self, prefix: &KeyPrefix) -> BoxStream<'static, Result<ObjectMeta, StorageError>> {
        self.inner.list(prefix)
    }

    async fn copy(&self, from: &ObjectKey, to: &ObjectKey) -> Result<Stored, StorageError> {
        self.timed("copy", to, self.inner.copy(from, to)).await
    }
}
