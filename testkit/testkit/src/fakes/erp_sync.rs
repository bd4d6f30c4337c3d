//! [`MemoryDatasets`] and [`MemoryOperations`]: the ERP's side of sync, in memory.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use spacepos_core::RemoteError;
use spacepos_sync::{
    Change, ChangesPage, DatasetApi, DatasetApiError, DatasetEvent, DatasetInfo, Entity,
    OperationOutcome, OperationResult, OperationsApi, QueuedOperation, SnapshotPage,
};
use uuid::Uuid;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug, Default)]
struct Dataset {
    /// Revisions of each entity: (sequence, entity), oldest first.
    history: BTreeMap<String, Vec<(u64, Entity)>>,
    /// The change log: sequence -> entities of that change.
    changes: BTreeMap<u64, Vec<Entity>>,
    last_sequence: u64,
    /// `changes?after=` below this is 410.
    retained_after: u64,
}

impl Dataset {
    fn state_at(&self, sequence: u64) -> impl Iterator<Item = &Entity> {
        self.history.values().filter_map(move |revs| {
            revs.iter()
                .rev()
                .find(|(s, _)| *s <= sequence)
                .map(|(_, e)| e)
        })
    }
}

#[derive(Debug, Default)]
struct DatasetsState {
    datasets: BTreeMap<String, Dataset>,
    failures: VecDeque<RemoteError>,
    snapshot_calls: u64,
    changes_calls: u64,
}

/// An in-memory [`DatasetApi`]: datasets with a change log, snapshots at a
/// fixed sequence (cursor `"<asOf>:<last id>"`), `410` for expired sequences,
/// and a fault switch for the next calls.
#[derive(Debug, Clone, Default)]
pub struct MemoryDatasets {
    state: Arc<Mutex<DatasetsState>>,
}

impl MemoryDatasets {
    pub fn new() -> Self {
        Self::default()
    }

    /// A dataset of `size` entities `<prefix>-<n>` (version 1), at `base_sequence`.
    pub fn add_generated(&self, name: &str, size: usize, base_sequence: u64) {
        let entities = (1..=size).map(|i| Entity {
            id: format!("{}-{i:07}", name.to_uppercase()),
            version: 1,
            deleted: false,
            data: serde_json::json!({"n": i}),
        });
        self.add(name, entities, base_sequence);
    }

    pub fn add(&self, name: &str, entities: impl IntoIterator<Item = Entity>, base_sequence: u64) {
        let mut ds = Dataset {
            last_sequence: base_sequence,
            retained_after: base_sequence,
            ..Default::default()
        };
        for e in entities {
            ds.history
                .entry(e.id.clone())
                .or_default()
                .push((base_sequence, e));
        }
        lock(&self.state).datasets.insert(name.to_owned(), ds);
    }

    /// One change touching `entities` (their versions are set to current + 1
    /// when not higher already). Returns its sequence.
    pub fn change(&self, name: &str, entities: Vec<Entity>) -> u64 {
        let mut state = lock(&self.state);
        let ds = state.datasets.entry(name.to_owned()).or_default();
        ds.last_sequence += 1;
        let seq = ds.last_sequence;
        let mut stored = Vec::new();
        for mut e in entities {
            let current = ds
                .history
                .get(&e.id)
                .and_then(|r| r.last())
                .map(|(_, e)| e.version)
                .unwrap_or(0);
            e.version = e.version.max(current + 1);
            if e.deleted {
                e.data = serde_json::Value::Null;
            }
            ds.history
                .entry(e.id.clone())
                .or_default()
                .push((seq, e.clone()));
            stored.push(e);
        }
        ds.changes.insert(seq, stored);
        seq
    }

    /// Update `id` with new data (a change of its own). Returns its sequence.
    pub fn update(&self, name: &str, id: &str, data: serde_json::Value) -> u64 {
        self.change(
            name,
            vec![Entity {
                id: id.to_owned(),
                version: 0,
                deleted: false,
                data,
            }],
        )
    }

    /// Delete `id` (a change of its own). Returns its sequence.
    pub fn delete(&self, name: &str, id: &str) -> u64 {
        self.change(
            name,
            vec![Entity {
                id: id.to_owned(),
                version: 0,
                deleted: true,
                data: serde_json::Value::Null,
            }],
        )
    }

    /// The live event of change `sequence`.
    pub fn event(&self, name: &str, sequence: u64) -> Option<DatasetEvent> {
        let state = lock(&self.state);
        let items = state.datasets.get(name)?.changes.get(&sequence)?.clone();
        Some(DatasetEvent {
            event_id: Uuid::from_u128((u128::from(sequence) << 32) ^ u128::from(name.len() as u64)),
            dataset: name.to_owned(),
            sequence,
            items,
        })
    }

    /// Forget `id` entirely, tombstone and history (an ERP that purged it): a
    /// snapshot no longer mentions it.
    pub fn purge(&self, name: &str, id: &str) {
        if let Some(ds) = lock(&self.state).datasets.get_mut(name) {
            ds.history.remove(id);
        }
    }

    /// Forget the changes up to `sequence`: `changes?after=` below it is 410.
    pub fn expire_through(&self, name: &str, sequence: u64) {
        if let Some(ds) = lock(&self.state).datasets.get_mut(name) {
            ds.retained_after = ds.retained_after.max(sequence);
        }
    }

    /// The current state, tombstones included.
    pub fn final_state(&self, name: &str) -> BTreeMap<String, Entity> {
        let state = lock(&self.state);
        state
            .datasets
            .get(name)
            .map(|ds| {
                ds.state_at(u64::MAX)
                    .map(|e| (e.id.clone(), e.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Fail the next calls with these errors, in order.
    pub fn fail_next(&self, errors: impl IntoIterator<Item = RemoteError>) {
        lock(&self.state).failures.extend(errors);
    }

    /// (snapshot pages served, changes calls answered).
    pub fn calls(&self) -> (u64, u64) {
        let s = lock(&self.state);
        (s.snapshot_calls, s.changes_calls)
    }

    fn take_failure(&self) -> Result<(), DatasetApiError> {
        match lock(&self.state).failures.pop_front() {
            Some(e) => Err(DatasetApiError::Remote(e)),
            None => Ok(()),
        }
    }
}

#[async_trait]
impl DatasetApi for MemoryDatasets {
    async fn datasets(&self) -> Result<Vec<DatasetInfo>, DatasetApiError> {
        self.take_failure()?;
        Ok(lock(&self.state)
            .datasets
            .iter()
            .map(|(name, ds)| DatasetInfo {
                name: name.clone(),
                last_sequence: ds.last_sequence,
            })
            .collect())
    }

    async fn snapshot(
        &self,
        dataset: &str,
        cursor: Option<String>,
        limit: u32,
    ) -> Result<SnapshotPage, DatasetApiError> {
        self.take_failure()?;
        let mut state = lock(&self.state);
        state.snapshot_calls += 1;
        let ds = state
            .datasets
            .get(dataset)
            .ok_or_else(|| DatasetApiError::UnknownDataset {
                dataset: dataset.into(),
            })?;
        let (as_of, after) = match cursor {
            None => (ds.last_sequence, None),
            Some(c) => {
                let (seq, id) = c.split_once(':').ok_or(DatasetApiError::CursorRejected {
                    dataset: dataset.into(),
                })?;
                let seq = seq.parse().map_err(|_| DatasetApiError::CursorRejected {
                    dataset: dataset.into(),
                })?;
                (seq, Some(id.to_owned()))
            }
        };
        let items: Vec<Entity> = ds
            .state_at(as_of)
            .filter(|e| after.as_ref().is_none_or(|a| e.id.as_str() > a.as_str()))
            .take(limit as usize + 1)
            .cloned()
            .collect();
        let more = items.len() > limit as usize;
        let items: Vec<Entity> = items.into_iter().take(limit as usize).collect();
        let next_cursor = if more {
            items.last().map(|e| format!("{as_of}:{}", e.id))
        } else {
            None
        };
        Ok(SnapshotPage {
            dataset: dataset.to_owned(),
            as_of_sequence: as_of,
            items,
            next_cursor,
        })
    }

    async fn changes(
        &self,
        dataset: &str,
        after: u64,
        limit: u32,
    ) -> Result<ChangesPage, DatasetApiError> {
        self.take_failure()?;
        let mut state = lock(&self.state);
        state.changes_calls += 1;
        let ds = state
            .datasets
            .get(dataset)
            .ok_or_else(|| DatasetApiError::UnknownDataset {
                dataset: dataset.into(),
            })?;
        if after < ds.retained_after || after > ds.last_sequence {
            return Err(DatasetApiError::SequenceExpired {
                dataset: dataset.into(),
                after,
            });
        }
        let mut items = Vec::new();
        let mut has_more = false;
        for (seq, entities) in ds.changes.range(after + 1..) {
            if !items.is_empty() && items.len() + entities.len() > limit as usize {
                has_more = true;
                break;
            }
            items.extend(entities.iter().map(|e| Change {
                sequence: *seq,
                entity: e.clone(),
            }));
        }
        let last_sequence = items.last().map(|c| c.sequence).unwrap_or(after);
        Ok(ChangesPage {
            dataset: dataset.to_owned(),
            items,
            last_sequence,
            has_more,
        })
    }
}

/// How [`MemoryOperations`] fails a call.
#[derive(Debug, Clone)]
pub enum OperationsFault {
    /// Answer this error; nothing applied.
    Fail(RemoteError),
    /// Apply the batch, then answer this error (the answer was "lost").
    ApplyThenFail(RemoteError),
}

#[derive(Debug, Default)]
struct OperationsState {
    accepted: Vec<QueuedOperation>,
    ids: HashSet<Uuid>,
    reject_kinds: BTreeMap<String, String>,
    faults: VecDeque<OperationsFault>,
    duplicates: u64,
    batches: Vec<usize>,
}

/// An in-memory [`OperationsApi`]: idempotent by id, reject rules by type,
/// faults for the next calls.
#[derive(Debug, Clone, Default)]
pub struct MemoryOperations {
    state: Arc<Mutex<OperationsState>>,
}

impl MemoryOperations {
    pub fn new() -> Self {
        Self::default()
    }

    /// Reject every operation of `kind` with `error`.
    pub fn reject_kind(&self, kind: &str, error: &str) {
        lock(&self.state)
            .reject_kinds
            .insert(kind.to_owned(), error.to_owned());
    }

    pub fn clear_rejects(&self) {
        lock(&self.state).reject_kinds.clear();
    }

    pub fn fault_next(&self, faults: impl IntoIterator<Item = OperationsFault>) {
        lock(&self.state).faults.extend(faults);
    }

    /// Accepted operations in acceptance order.
    pub fn accepted(&self) -> Vec<QueuedOperation> {
        lock(&self.state).accepted.clone()
    }

    pub fn duplicate_answers(&self) -> u64 {
        lock(&self.state).duplicates
    }

    /// Sizes of the batches received.
    pub fn batches(&self) -> Vec<usize> {
        lock(&self.state).batches.clone()
    }
}

#[async_trait]
impl OperationsApi for MemoryOperations {
    async fn submit(&self, batch: &[QueuedOperation]) -> Result<Vec<OperationResult>, RemoteError> {
        let mut state = lock(&self.state);
        state.batches.push(batch.len());
        let fault = state.faults.pop_front();
        if let Some(OperationsFault::Fail(e)) = fault {
            return Err(e);
        }
        let mut results = Vec::with_capacity(batch.len());
        for op in batch {
            let outcome = if state.ids.contains(&op.id) {
                state.duplicates += 1;
                OperationOutcome::Duplicate
            } else if let Some(error) = state.reject_kinds.get(&op.kind) {
                OperationOutcome::Rejected {
                    error: error.clone(),
                }
            } else {
                state.ids.insert(op.id);
                state.accepted.push(op.clone());
                OperationOutcome::Accepted
            };
            results.push(OperationResult { id: op.id, outcome });
        }
        match fault {
            Some(OperationsFault::ApplyThenFail(e)) => Err(e),
            _ => Ok(results),
        }
    }
}
