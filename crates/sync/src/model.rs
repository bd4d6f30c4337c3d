//! The data the sync engine moves: entities of datasets, and operations.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// One entity of a dataset (contract section 3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entity {
    pub id: String,
    /// Grows on every change; the apply rule keeps the highest.
    pub version: u64,
    /// A tombstone: the entity is gone, its version stays so an older update
    /// cannot bring it back.
    pub deleted: bool,
    pub data: Value,
}

/// A dataset the ERP offers and how far its change sequence has gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatasetInfo {
    pub name: String,
    pub last_sequence: u64,
}

/// One page of a snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotPage {
    pub dataset: String,
    /// Every page of one snapshot carries the same value; after the last page
    /// the dataset is consistent with this sequence.
    pub as_of_sequence: u64,
    pub items: Vec<Entity>,
    /// `None` on the last page.
    pub next_cursor: Option<String>,
}

/// One item of a change.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub sequence: u64,
    pub entity: Entity,
}

/// A page of changes after a sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct ChangesPage {
    pub dataset: String,
    /// Ordered by sequence; the items of one change come together.
    pub items: Vec<Change>,
    pub last_sequence: u64,
    pub has_more: bool,
}

/// A `DatasetChangedIntegrationEvent`, decoded: one change of one dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetEvent {
    pub event_id: Uuid,
    pub dataset: String,
    pub sequence: u64,
    pub items: Vec<Entity>,
}

/// What applying one event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// Its items were applied and the dataset's sequence moved to it.
    Applied,
    /// Its id was seen before: nothing changed.
    Duplicate,
    /// Its sequence is not above the dataset's: already applied, nothing changed.
    AlreadyApplied,
    /// Its sequence is beyond the next one expected (or the dataset is still being
    /// seeded): its items were applied under the version rule, the sequence did
    /// not move, and a catch-up must fill the gap.
    Gap,
}

/// Where a dataset stands locally.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Checkpoint {
    pub dataset: String,
    /// The last sequence whose changes are all applied; `None` before the
    /// first complete snapshot.
    pub last_sequence: Option<u64>,
    /// A snapshot in progress: its `asOfSequence` and the cursor of the next page.
    pub snapshot: Option<SnapshotProgress>,
    pub entities: u64,
    pub last_applied_at: Option<DateTime<Utc>>,
}

/// A snapshot in progress, resumable after a crash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotProgress {
    pub as_of_sequence: u64,
    /// `None` before the first page is stored.
    pub next_cursor: Option<String>,
    pub pages_done: u64,
    pub items_done: u64,
}

/// Where an outbox entry goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Destination {
    /// `POST /api/pos/operations` (contract section 4).
    ErpOperations,
    /// Published on the event bus with confirms (contract section 7), e.g.
    /// `POSComponentReadyEvent`.
    EventBus,
}

impl Destination {
    pub fn as_str(self) -> &'static str {
        match self {
            Destination::ErpOperations => "erp",
            Destination::EventBus => "bus",
        }
    }
}

/// An operation to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOperation {
    /// The idempotency key, chosen when the operation is created.
    pub id: Uuid,
    pub destination: Destination,
    /// The operation type (`sale.completed`), or the event name for the bus.
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub store_staff_id: Option<String>,
    pub payload: Value,
}

/// The state of a queued operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationState {
    /// Waiting to be sent (or to be sent again).
    Pending,
    /// Accepted by the ERP (or it already had it).
    Done,
    /// Rejected by the ERP: kept, visible to the operator, never retried automatically.
    Parked,
}

impl OperationState {
    pub fn as_str(self) -> &'static str {
        match self {
            OperationState::Pending => "pending",
            OperationState::Done => "done",
            OperationState::Parked => "parked",
        }
    }
}

impl std::str::FromStr for OperationState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "pending" => Ok(OperationState::Pending),
            "done" => Ok(OperationState::Done),
            "parked" => Ok(OperationState::Parked),
            other => Err(format!(
                "unknown state {other:?}: expected pending, parked or done"
            )),
        }
    }
}

/// An operation in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedOperation {
    /// Creation order, across every process writing the store.
    pub seq: i64,
    pub id: Uuid,
    pub destination: Destination,
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub store_staff_id: Option<String>,
    pub payload: Value,
    pub state: OperationState,
    pub created_at: DateTime<Utc>,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
}

/// The ERP's verdict on one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OperationOutcome {
    Accepted,
    /// The ERP had already accepted this id: done.
    Duplicate,
    /// Will never be accepted as sent: park it with the error.
    Rejected {
        error: String,
    },
}

/// The verdict for one id of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperationResult {
    pub id: Uuid,
    pub outcome: OperationOutcome,
}

/// Counts for status screens and presence.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OutboxStats {
    pub pending: u64,
    pub oldest_pending_created_at: Option<DateTime<Utc>>,
    pub parked: u64,
    pub done: u64,
}
