//! The ports of the sync engine. Each trait's doc is its contract; the suites in
//! `spacepos_testkit::suites` check the clauses against the fakes and adapters.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use spacepos_core::RemoteError;
use uuid::Uuid;

use crate::model::{
    ChangesPage, Checkpoint, DatasetEvent, DatasetInfo, Entity, EventOutcome, NewOperation,
    OperationResult, OperationState, OutboxStats, QueuedOperation, SnapshotPage,
};

// ---- the ERP's REST side -----------------------------------------------------

/// Why a dataset call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DatasetApiError {
    /// `410 sequence_expired`: the ERP no longer holds changes after that
    /// sequence; the dataset must be seeded again.
    #[error("the ERP no longer holds changes of {dataset} after sequence {after}: reseeding")]
    SequenceExpired { dataset: String, after: u64 },
    /// The snapshot cursor is no longer valid: start the snapshot again.
    #[error("the ERP refused the snapshot cursor of {dataset}: restarting its snapshot")]
    CursorRejected { dataset: String },
    #[error("the ERP has no dataset {dataset:?}")]
    UnknownDataset { dataset: String },
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

/// Datasets at the ERP (contract section 3).
///
/// Contract (checked by `spacepos_testkit::suites::dataset_api`):
/// - `snapshot` pages all carry the first page's `as_of_sequence`; following
///   `next_cursor` until it is `None` yields every entity exactly once.
/// - `changes(after)` returns items with `sequence > after` in sequence order,
///   never splitting one change across pages; `has_more` says whether to ask again.
/// - An `after` the ERP no longer holds is [`DatasetApiError::SequenceExpired`].
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DatasetApi: Send + Sync + 'static {
    async fn datasets(&self) -> Result<Vec<DatasetInfo>, DatasetApiError>;
    async fn snapshot(
        &self,
        dataset: &str,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<SnapshotPage, DatasetApiError>;
    async fn changes(
        &self,
        dataset: &str,
        after: u64,
        limit: u32,
    ) -> Result<ChangesPage, DatasetApiError>;
}

/// The outbound operations endpoint (contract section 4).
///
/// Contract (checked by `spacepos_testkit::suites::operations_api`):
/// - At most [`MAX_BATCH`] operations per call, sent in the given order.
/// - An `Ok` answer holds a result for ids of the batch; an id already accepted
///   is `Duplicate`. Ids missing from the answer are unknown: still pending.
/// - `Err` means nothing is known: the whole batch is sent again later with the
///   same ids.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OperationsApi: Send + Sync + 'static {
    async fn submit(&self, batch: &[QueuedOperation]) -> Result<Vec<OperationResult>, RemoteError>;
}

/// Most operations one `POST /api/pos/operations` may carry.
pub const MAX_BATCH: usize = 500;

// ---- the local store ---------------------------------------------------------

/// Why the local store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Busy beyond the timeout, disk full, I/O error: try again later. Never a
    /// reason to drop or dead-letter anything.
    #[error("the local store is unavailable ({location}): {detail}")]
    Unavailable { location: String, detail: String },
    /// The request names something that does not exist or is in the wrong state.
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the local store failed ({location}): {source}")]
    Backend {
        location: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl StoreError {
    /// Whether the same call may succeed later.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable { .. } | StoreError::Backend { .. }
        )
    }
}

/// What storing a snapshot page did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotStep {
    /// More pages follow; the cursor of the next one is stored.
    Continue,
    /// That was the last page: the dataset is consistent with the snapshot's
    /// sequence, and entities the snapshot did not contain were removed.
    Complete,
    /// The page was fetched with a cursor that is no longer the stored one
    /// (another process stored that page, or started the snapshot over):
    /// nothing was written; read the checkpoint again and go on from there.
    Stale,
}

/// The datasets, their checkpoints and the inbox, shared by every process of a node.
///
/// Contract (checked by `spacepos_testkit::suites::local_store`):
/// - **Apply rule**: an entity is written only if its version is greater than
///   the stored one; a deletion keeps a tombstone with its version, so an older
///   update cannot bring it back. Snapshots, changes and events alike.
/// - `apply_snapshot_page(page, fetched_with)` stores the page's entities and
///   the next cursor in one transaction, so a killed seed resumes at the first
///   page not stored. `fetched_with = None` (a first page) starts a new
///   snapshot with a new generation; a page fetched with a cursor is stored
///   only if that cursor is the stored one, else it is [`SnapshotStep::Stale`]
///   and nothing is written (two processes seeding at once never sweep each
///   other's pages). The last page removes the entities no write of this
///   generation touched and sets the dataset's sequence to the snapshot's
///   `as_of_sequence`.
/// - `apply_changes` applies a page and raises the dataset's sequence to the
///   page's `last_sequence` in one transaction (never lowers it).
/// - `apply_events` applies a batch in ONE transaction and reports, per event:
///   `Duplicate` if its id was stored before (in this batch or earlier),
///   `AlreadyApplied` if its sequence is not above the dataset's, `Applied`
///   if it is the next one (the sequence moves), `Gap` otherwise (or while the
///   dataset has no complete snapshot): items applied, sequence unchanged. The
///   event ids and their effects are committed together.
/// - Two processes may use the same store at once; contention is waited out,
///   never reported as an error.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait LocalStore: Send + Sync + 'static {
    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError>;
    /// The checkpoint of `dataset` (a blank one if the dataset is new here).
    async fn checkpoint(&self, dataset: &str) -> Result<Checkpoint, StoreError>;
    async fn apply_snapshot_page(
        &self,
        page: &SnapshotPage,
        fetched_with: Option<String>,
    ) -> Result<SnapshotStep, StoreError>;
    /// Forget a snapshot in progress (its cursor was refused); the next page
    /// stored starts a new snapshot. Entities stay until that snapshot completes.
    async fn restart_snapshot(&self, dataset: &str) -> Result<(), StoreError>;
    async fn apply_changes(&self, page: &ChangesPage) -> Result<(), StoreError>;
    async fn apply_events(&self, events: &[DatasetEvent]) -> Result<Vec<EventOutcome>, StoreError>;
    /// One entity, tombstones included.
    async fn entity(&self, dataset: &str, id: &str) -> Result<Option<Entity>, StoreError>;
    /// Entities in id order after `after_id`, tombstones included.
    async fn entities(
        &self,
        dataset: &str,
        after_id: Option<String>,
        limit: u32,
    ) -> Result<Vec<Entity>, StoreError>;
    /// Drop inbox ids recorded before `cutoff` (sequences still guard against replays).
    async fn prune_inbox(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// The durable queue of outbound operations, shared by every process of a node.
///
/// Contract (checked by `spacepos_testkit::suites::outbox`):
/// - `enqueue` is durable when it returns; the operations of one call are
///   stored in one transaction. An id already queued is not queued twice
///   (same content: the existing entry is returned; different content:
///   [`StoreError::Conflict`]).
/// - `pending` returns pending entries of a destination in creation order
///   (`seq`), across every process that enqueued; `pending_after` the same,
///   starting after `seq` (the sender reads the next batch while the
///   previous one is still being recorded).
/// - `record_results` marks `Accepted`/`Duplicate` done and `Rejected` parked
///   with the error, in one transaction; ids not pending are left alone.
/// - `record_failure` counts an attempt and keeps the entries pending; it
///   stores `next_attempt_at` (the ERP's `Retry-After`, or `None` to clear it)
///   so that a restarted sender still honours the wait.
/// - `retry` turns a parked entry pending again (keeping its id); anything
///   else is [`StoreError::NotFound`] or [`StoreError::Conflict`].
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Outbox: Send + Sync + 'static {
    async fn enqueue(
        &self,
        operations: &[NewOperation],
    ) -> Result<Vec<QueuedOperation>, StoreError>;
    async fn pending(
        &self,
        destination: crate::Destination,
        limit: usize,
    ) -> Result<Vec<QueuedOperation>, StoreError>;
    async fn pending_after(
        &self,
        destination: crate::Destination,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<QueuedOperation>, StoreError>;
    async fn record_results(
        &self,
        results: &[OperationResult],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn record_failure(
        &self,
        ids: &[Uuid],
        error: &str,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;
    async fn retry(&self, id: Uuid) -> Result<QueuedOperation, StoreError>;
    async fn get(&self, id: Uuid) -> Result<Option<QueuedOperation>, StoreError>;
    /// Entries in creation order, newest last; `state` filters.
    async fn list(
        &self,
        state: Option<OperationState>,
        limit: usize,
    ) -> Result<Vec<QueuedOperation>, StoreError>;
    async fn stats(&self) -> Result<OutboxStats, StoreError>;
}

// ---- the event bus -------------------------------------------------------------

/// Why the event bus failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BusError {
    /// Not connected now (the adapter keeps reconnecting with backoff).
    #[error("the event bus at {host} is unavailable: {detail}")]
    Unavailable { host: String, detail: String },
    /// The broker did not confirm a publish (nack, or the channel closed first).
    #[error("the event bus at {host} did not confirm the message: {detail}")]
    NotConfirmed { host: String, detail: String },
    /// The broker refused us for good (credentials, permissions, topology).
    #[error("the event bus at {host} refused this terminal: {detail}")]
    Refused { host: String, detail: String },
}

/// Identifies one delivery; acknowledgements of deliveries made on a
/// connection that has since been lost are ignored (the broker redelivers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeliveryTag {
    pub connection: u64,
    pub tag: u64,
}

/// A message taken from the terminal's queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub tag: DeliveryTag,
    /// The AMQP `type` property, or the routing key when `type` is missing.
    pub event_type: String,
    pub message_id: Option<String>,
    pub body: Vec<u8>,
    pub redelivered: bool,
}

/// The terminal's queue (contract section 7).
///
/// Contract (checked by `spacepos_testkit::suites::event_bus`):
/// - `receive` waits for deliveries, returns up to `max` of them, and returns
///   early once `linger` has passed with at least one (or an empty batch after
///   `linger` with none). While disconnected it keeps trying to reconnect and
///   returns [`BusError::Unavailable`] no more often than every `linger`.
/// - A delivery not acknowledged is delivered again (after a reconnect, or
///   when the consumer goes away).
/// - `ack` acknowledges deliveries; `dead_letter` rejects one without requeue,
///   so it lands in the terminal's dead-letter queue.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventSubscriber: Send + Sync + 'static {
    async fn receive(&self, max: usize, linger: Duration) -> Result<Vec<Delivery>, BusError>;
    async fn ack(&self, tags: &[DeliveryTag]) -> Result<(), BusError>;
    async fn dead_letter(&self, tag: DeliveryTag) -> Result<(), BusError>;
}

/// A message to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingEvent {
    /// Routing key and `type` property.
    pub event_type: String,
    /// `message_id` property: the event's `Id`.
    pub message_id: Uuid,
    /// UTF-8 JSON, PascalCase (the wire type's serialization).
    pub body: Vec<u8>,
}

/// Publishing to the ERP's exchange (contract section 7).
///
/// Contract (checked by `spacepos_testkit::suites::event_bus`):
/// - `publish` returns `Ok` only after the broker confirmed the message
///   (persistent, `message_id`, `type`, `content_type` set).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventPublisher: Send + Sync + 'static {
    async fn publish(&self, event: &OutgoingEvent) -> Result<(), BusError>;
}
