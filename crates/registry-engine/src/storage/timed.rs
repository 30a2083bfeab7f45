//! [`TimedStore`]: an [`ObjectStore`] decorator that records each operation's latency in the
//! `strata_registry_storage_operation_duration_seconds` histogram. Streaming bodies are timed to
//! the first byte (gets) or to completion (puts), which is what the store itself controls.

use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use futures::stream::BoxStream;

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
}

#[async_trait]
impl ObjectStore for TimedStore {
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta, StorageError> {
        let started = Instant::now();
        let result = self.inner.head(key).await;
        self.observe("head", started);
        result
    }

    async fn get(&self, key: &ObjectKey) -> Result<GetObject, StorageError> {
        let started = Instant::now();
        let result = self.inner.get(key).await;
        self.observe("get", started);
        result
    }

    async fn get_range(
        &self,
        key: &ObjectKey,
        range: ByteRange,
    ) -> Result<GetObject, StorageError> {
        let started = Instant::now();
        let result = self.inner.get_range(key, range).await;
        self.observe("get_range", started);
        result
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
        let started = Instant::now();
        let result = self.inner.put_with(key, body, condition).await;
        self.observe(operation, started);
        result
    }

    async fn delete(&self, key: &ObjectKey) -> Result<(), StorageError> {
        let started = Instant::now();
        let result = self.inner.delete(key).await;
        self.observe("delete", started);
        result
    }

    fn list(&self, prefix: &KeyPrefix) -> BoxStream<'static, Result<ObjectMeta, StorageError>> {
        self.inner.list(prefix)
    }

    async fn copy(&self, from: &ObjectKey, to: &ObjectKey) -> Result<Stored, StorageError> {
        let started = Instant::now();
        let result = self.inner.copy(from, to).await;
        self.observe("copy", started);
        result
    }
}
