//! Timing decorators of the sync ports: the product runs unchanged, and the
//! time spent inside each port call is summed, to say where the time goes.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use spacepos_core::RemoteError;
use spacepos_sync::{
    BusError, BusEvent, ChangesPage, Checkpoint, DatasetApi, DatasetApiError, DatasetEvent,
    DatasetInfo, Delivery, DeliveryTag, Destination, Entity, EventDecoder, EventOutcome,
    EventSubscriber, LocalStore, NewOperation, OperationResult, OperationState, OperationsApi,
    Outbox, OutboxStats, QueuedOperation, SnapshotPage, SnapshotStep, StoreError, Undecodable,
};
use uuid::Uuid;

/// Sums of (calls, time) per part, shared by the decorators of one run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Clocks(Arc<Mutex<BTreeMap<&'static str, (u64, Duration)>>>);

impl Clocks {
    fn add(&self, part: &'static str, took: Duration) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = map.entry(part).or_default();
        entry.0 += 1;
        entry.1 += took;
    }

    async fn time<T>(&self, part: &'static str, f: impl Future<Output = T>) -> T {
        let start = Instant::now();
        let out = f.await;
        self.add(part, start.elapsed());
        out
    }

    fn time_sync<T>(&self, part: &'static str, f: impl FnOnce() -> T) -> T {
        let start = Instant::now();
        let out = f();
        self.add(part, start.elapsed());
        out
    }

    /// (part, calls, time), in the order the parts are named in `labels`
    /// (part name -> label), then any others.
    pub(crate) fn breakdown(&self, labels: &[(&str, &str)]) -> Vec<(String, u64, Duration)> {
        let map = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let mut out = Vec::new();
        for (part, label) in labels {
            if let Some((calls, time)) = map.get(part) {
                out.push(((*label).to_owned(), *calls, *time));
            }
        }
        for (part, (calls, time)) in &map {
            if !labels.iter().any(|(p, _)| p == part) {
                out.push(((*part).to_owned(), *calls, *time));
            }
        }
        out
    }
}

/// A port wrapped so that every call is timed.
#[derive(Debug)]
pub(crate) struct Timed<T> {
    inner: Arc<T>,
    clocks: Clocks,
}

impl<T> Timed<T> {
    pub(crate) fn new(inner: Arc<T>, clocks: &Clocks) -> Arc<Timed<T>> {
        Arc::new(Timed {
            inner,
            clocks: clocks.clone(),
        })
    }
}

#[async_trait]
impl<T: DatasetApi> DatasetApi for Timed<T> {
    async fn datasets(&self) -> Result<Vec<DatasetInfo>, DatasetApiError> {
        self.clocks
            .time("api.datasets", self.inner.datasets())
            .await
    }
    async fn snapshot(
        &self,
        dataset: &str,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<SnapshotPage, DatasetApiError> {
        self.clocks
            .time("api.snapshot", self.inner.snapshot(dataset, cursor, limit))
            .await
    }
    async fn changes(
        &self,
        dataset: &str,
        after: u64,
        limit: u32,
    ) -> Result<ChangesPage, DatasetApiError> {
        self.clocks
            .time("api.changes", self.inner.changes(dataset, after, limit))
            .await
    }
}

#[async_trait]
impl<T: OperationsApi> OperationsApi for Timed<T> {
    async fn submit(&self, batch: &[QueuedOperation]) -> Result<Vec<OperationResult>, RemoteError> {
        self.clocks
            .time("api.submit", self.inner.submit(batch))
            .await
    }
}

#[async_trait]
impl<T: LocalStore> LocalStore for Timed<T> {
    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        self.clocks
            .time("store.checkpoints", self.inner.checkpoints())
            .await
    }
    async fn checkpoint(&self, dataset: &str) -> Result<Checkpoint, StoreError> {
        self.clocks
            .time("store.checkpoint", self.inner.checkpoint(dataset))
            .await
    }
    async fn apply_snapshot_page(
        &self,
        page: &SnapshotPage,
        fetched_with: Option<String>,
    ) -> Result<SnapshotStep, StoreError> {
        self.clocks
            .time(
                "store.apply_snapshot_page",
                self.inner.apply_snapshot_page(page, fetched_with),
            )
            .await
    }
    async fn restart_snapshot(&self, dataset: &str) -> Result<(), StoreError> {
        self.clocks
            .time(
                "store.restart_snapshot",
                self.inner.restart_snapshot(dataset),
            )
            .await
    }
    async fn apply_changes(&self, page: &ChangesPage) -> Result<(), StoreError> {
        self.clocks
            .time("store.apply_changes", self.inner.apply_changes(page))
            .await
    }
    async fn apply_events(&self, events: &[DatasetEvent]) -> Result<Vec<EventOutcome>, StoreError> {
        self.clocks
            .time("store.apply_events", self.inner.apply_events(events))
            .await
    }
    async fn entity(&self, dataset: &str, id: &str) -> Result<Option<Entity>, StoreError> {
        self.clocks
            .time("store.entity", self.inner.entity(dataset, id))
            .await
    }
    async fn entities(
        &self,
        dataset: &str,
        after_id: Option<String>,
        limit: u32,
    ) -> Result<Vec<Entity>, StoreError> {
        self.clocks
            .time(
                "store.entities",
                self.inner.entities(dataset, after_id, limit),
            )
            .await
    }
    async fn prune_inbox(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        self.clocks
            .time("store.prune_inbox", self.inner.prune_inbox(cutoff))
            .await
    }
}

#[async_trait]
impl<T: Outbox> Outbox for Timed<T> {
    async fn enqueue(
        &self,
        operations: &[NewOperation],
    ) -> Result<Vec<QueuedOperation>, StoreError> {
        self.clocks
            .time("outbox.enqueue", self.inner.enqueue(operations))
            .await
    }
    async fn pending(
        &self,
        destination: Destination,
        limit: usize,
    ) -> Result<Vec<QueuedOperation>, StoreError> {
        self.clocks
            .time("outbox.pending", self.inner.pending(destination, limit))
            .await
    }
    async fn pending_after(
        &self,
        destination: Destination,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<QueuedOperation>, StoreError> {
        self.clocks
            .time(
                "outbox.pending",
                self.inner.pending_after(destination, after_seq, limit),
            )
            .await
    }
    async fn record_results(
        &self,
        results: &[OperationResult],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.clocks
            .time(
                "outbox.record_results",
                self.inner.record_results(results, at),
            )
            .await
    }
    async fn record_failure(
        &self,
        ids: &[Uuid],
        error: &str,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.clocks
            .time(
                "outbox.record_failure",
                self.inner.record_failure(ids, error, next_attempt_at),
            )
            .await
    }
    async fn retry(&self, id: Uuid) -> Result<QueuedOperation, StoreError> {
        self.clocks.time("outbox.retry", self.inner.retry(id)).await
    }
    async fn get(&self, id: Uuid) -> Result<Option<QueuedOperation>, StoreError> {
        self.clocks.time("outbox.get", self.inner.get(id)).await
    }
    async fn list(
        &self,
        state: Option<OperationState>,
        limit: usize,
    ) -> Result<Vec<QueuedOperation>, StoreError> {
        self.clocks
            .time("outbox.list", self.inner.list(state, limit))
            .await
    }
    async fn stats(&self) -> Result<OutboxStats, StoreError> {
        self.clocks.time("outbox.stats", self.inner.stats()).await
    }
}

#[async_trait]
impl<T: EventSubscriber> EventSubscriber for Timed<T> {
    async fn receive(&self, max: usize, linger: Duration) -> Result<Vec<Delivery>, BusError> {
        self.clocks
            .time("bus.receive", self.inner.receive(max, linger))
            .await
    }
    async fn ack(&self, tags: &[DeliveryTag]) -> Result<(), BusError> {
        self.clocks.time("bus.ack", self.inner.ack(tags)).await
    }
    async fn dead_letter(&self, tag: DeliveryTag) -> Result<(), BusError> {
        self.clocks
            .time("bus.dead_letter", self.inner.dead_letter(tag))
            .await
    }
}

impl<T: EventDecoder> EventDecoder for Timed<T> {
    fn decode(&self, delivery: &Delivery) -> Result<BusEvent, Undecodable> {
        self.clocks
            .time_sync("decode", || self.inner.decode(delivery))
    }
}
