use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use spacepos_sync::{
    Destination, NewOperation, OperationOutcome, OperationResult, OperationState, Outbox,
    OutboxStats, QueuedOperation, StoreError,
};
use uuid::Uuid;

use crate::suites::Reopen;

const LOCATION: &str = "memory://outbox";

/// An in-memory [`Outbox`].
///
/// Clones share the same queue and the same `seq` counter, like two
/// processes sharing one database file (so [`Reopen`] hands out a clone):
/// `seq` is the creation order across every handle. A test can look at every
/// entry ([`entries`](Self::entries)) and make every call fail with
/// [`StoreError::Unavailable`] ([`set_unavailable`](Self::set_unavailable)).
#[derive(Debug, Clone, Default)]
pub struct MemoryOutbox {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    /// In `seq` order.
    entries: Vec<QueuedOperation>,
    last_seq: i64,
    unavailable: Option<String>,
}

impl Inner {
    fn find(&self, id: Uuid) -> Option<&QueuedOperation> {
        self.entries.iter().find(|e| e.id == id)
    }

    fn find_mut(&mut self, id: Uuid) -> Option<&mut QueuedOperation> {
        self.entries.iter_mut().find(|e| e.id == id)
    }
}

/// Which field differs between a queued entry and an operation offered under its id.
fn difference(queued: &QueuedOperation, op: &NewOperation) -> Option<&'static str> {
    if queued.destination != op.destination {
        Some("destination")
    } else if queued.kind != op.kind {
        Some("kind")
    } else if queued.occurred_at != op.occurred_at {
        Some("occurred_at")
    } else if queued.store_staff_id != op.store_staff_id {
        Some("store_staff_id")
    } else if queued.payload != op.payload {
        Some("payload")
    } else {
        None
    }
}

/// A pending entry for `op` (its `seq` is set when it is stored).
fn new_entry(op: &NewOperation, now: DateTime<Utc>) -> QueuedOperation {
    QueuedOperation {
        seq: 0,
        id: op.id,
        destination: op.destination,
        kind: op.kind.clone(),
        occurred_at: op.occurred_at,
        store_staff_id: op.store_staff_id.clone(),
        payload: op.payload.clone(),
        state: OperationState::Pending,
        created_at: now,
        attempts: 0,
        next_attempt_at: None,
        last_error: None,
        completed_at: None,
    }
}

impl MemoryOutbox {
    /// An empty outbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every entry, in creation order.
    pub fn entries(&self) -> Vec<QueuedOperation> {
        self.lock().entries.clone()
    }

    /// Make every call fail with [`StoreError::Unavailable`] carrying `detail`
    /// (`None` heals the outbox). Nothing changes while it fails.
    pub fn set_unavailable(&self, detail: Option<&str>) {
        self.lock().unavailable = detail.map(str::to_owned);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn available(&self) -> Result<MutexGuard<'_, Inner>, StoreError> {
        let inner = self.lock();
        match &inner.unavailable {
            Some(detail) => Err(StoreError::Unavailable {
                location: LOCATION.into(),
                detail: detail.clone(),
            }),
            None => Ok(inner),
        }
    }
}

#[async_trait]
impl Outbox for MemoryOutbox {
    async fn enqueue(
        &self,
        operations: &[NewOperation],
    ) -> Result<Vec<QueuedOperation>, StoreError> {
        let mut inner = self.available()?;
        let now = Utc::now();
        // Check everything first: a conflict queues nothing of the call.
        let mut fresh: Vec<QueuedOperation> = Vec::new();
        for op in operations {
            let earlier = inner
                .find(op.id)
                .or_else(|| fresh.iter().find(|f| f.id == op.id));
            match earlier {
                Some(queued) => {
                    if let Some(field) = difference(queued, op) {
                        return Err(StoreError::Conflict(format!(
                            "operation {} is already queued with a different {field} (queued {}); \
                             an id is the operation's idempotency key and cannot be reused for \
                             another operation: nothing of this call was queued",
                            op.id, queued.kind
                        )));
                    }
                }
                None => fresh.push(new_entry(op, now)),
            }
        }
        for mut entry in fresh {
            inner.last_seq += 1;
            entry.seq = inner.last_seq;
            inner.entries.push(entry);
        }
        Ok(operations
            .iter()
            .filter_map(|op| inner.find(op.id).cloned())
            .collect())
    }

    async fn pending(
        &self,
        destination: Destination,
        limit: usize,
    ) -> Result<Vec<QueuedOperation>, StoreError> {
        let inner = self.available()?;
        Ok(inner
            .entries
            .iter()
            .filter(|e| e.state == OperationState::Pending && e.destination == destination)
            .take(limit)
            .cloned()
            .collect())
    }

    async fn pending_after(
        &self,
        destination: Destination,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<QueuedOperation>, StoreError> {
        let inner = self.available()?;
        Ok(inner
            .entries
            .iter()
            .filter(|e| {
                e.state == OperationState::Pending
                    && e.destination == destination
                    && e.seq > after_seq
            })
            .take(limit)
            .cloned()
            .collect())
    }

    async fn record_results(
        &self,
        results: &[OperationResult],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut inner = self.available()?;
        let mut seen = HashSet::new();
        for result in results {
            if !seen.insert(result.id) {
                continue;
            }
            let Some(entry) = inner.find_mut(result.id) else {
                continue;
            };
            if entry.state != OperationState::Pending {
                continue;
            }
            entry.attempts += 1;
            entry.completed_at = Some(at);
            match &result.outcome {
                OperationOutcome::Accepted | OperationOutcome::Duplicate => {
                    entry.state = OperationState::Done;
                }
                OperationOutcome::Rejected { error } => {
                    entry.state = OperationState::Parked;
                    entry.last_error = Some(error.clone());
                }
            }
        }
        Ok(())
    }

    async fn record_failure(
        &self,
        ids: &[Uuid],
        error: &str,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let mut inner = self.available()?;
        let ids: HashSet<Uuid> = ids.iter().copied().collect();
        for entry in &mut inner.entries {
            if entry.state == OperationState::Pending && ids.contains(&entry.id) {
                entry.attempts += 1;
                entry.last_error = Some(error.to_owned());
                entry.next_attempt_at = next_attempt_at;
            }
        }
        Ok(())
    }

    async fn retry(&self, id: Uuid) -> Result<QueuedOperation, StoreError> {
        let mut inner = self.available()?;
        let Some(entry) = inner.find_mut(id) else {
            return Err(StoreError::NotFound(format!(
                "no operation {id} in the outbox of {LOCATION}"
            )));
        };
        match entry.state {
            OperationState::Parked => {
                entry.state = OperationState::Pending;
                entry.next_attempt_at = None;
                entry.completed_at = None;
                Ok(entry.clone())
            }
            OperationState::Pending => Err(StoreError::Conflict(format!(
                "operation {id} is pending already: it is sent with the next batch"
            ))),
            OperationState::Done => Err(StoreError::Conflict(format!(
                "operation {id} is done (the ERP accepted it): there is nothing to retry"
            ))),
        }
    }

    async fn get(&self, id: Uuid) -> Result<Option<QueuedOperation>, StoreError> {
        Ok(self.available()?.find(id).cloned())
    }

    async fn list(
        &self,
        state: Option<OperationState>,
        limit: usize,
    ) -> Result<Vec<QueuedOperation>, StoreError> {
        let inner = self.available()?;
        let matching: Vec<&QueuedOperation> = inner
            .entries
            .iter()
            .filter(|e| state.is_none_or(|s| e.state == s))
            .collect();
        let skip = matching.len().saturating_sub(limit);
        Ok(matching.into_iter().skip(skip).cloned().collect())
    }

    async fn stats(&self) -> Result<OutboxStats, StoreError> {
        let inner = self.available()?;
        let mut stats = OutboxStats::default();
        for entry in &inner.entries {
            match entry.state {
                OperationState::Pending => {
                    stats.pending += 1;
                    stats.oldest_pending_created_at = Some(
                        stats
                            .oldest_pending_created_at
                            .map_or(entry.created_at, |t| t.min(entry.created_at)),
                    );
                }
                OperationState::Parked => stats.parked += 1,
                OperationState::Done => stats.done += 1,
            }
        }
        Ok(stats)
    }
}

#[async_trait]
impl Reopen<dyn Outbox> for MemoryOutbox {
    async fn reopen(&self) -> Box<dyn Outbox> {
        Box::new(self.clone())
    }
}
