use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use spacepos_sync::{
    ChangesPage, Checkpoint, DatasetEvent, Entity, EventOutcome, LocalStore, SnapshotPage,
    SnapshotProgress, SnapshotStep, StoreError,
};
use uuid::Uuid;

use crate::suites::Reopen;

const LOCATION: &str = "memory://local-store";

/// An in-memory [`LocalStore`], with the same rules as the SQLite store
/// (generations for reseeding included).
///
/// Clones share the same data, like two processes sharing one database file
/// (so [`Reopen`] hands out a clone). A test can make every call fail with
/// [`StoreError::Unavailable`] ([`set_unavailable`](Self::set_unavailable)),
/// as a full disk would, and count the event ids kept
/// ([`inbox_len`](Self::inbox_len)).
#[derive(Debug, Clone, Default)]
pub struct MemoryLocalStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    datasets: BTreeMap<String, Dataset>,
    /// Event id -> when it was recorded.
    inbox: HashMap<Uuid, DateTime<Utc>>,
    unavailable: Option<String>,
}

#[derive(Debug, Default, Clone)]
struct Dataset {
    last_sequence: Option<u64>,
    snapshot: Option<SnapshotProgress>,
    /// Grows with every snapshot started; every write stamps it.
    generation: u64,
    last_applied_at: Option<DateTime<Utc>>,
    /// Id -> (entity, generation of its last write).
    entities: BTreeMap<String, (Entity, u64)>,
}

impl Dataset {
    /// The apply rule: data only when the version is greater; the generation always.
    fn write(&mut self, entity: &Entity) {
        let generation = self.generation;
        let incoming = Entity {
            data: if entity.deleted {
                serde_json::Value::Null
            } else {
                entity.data.clone()
            },
            ..entity.clone()
        };
        match self.entities.get_mut(&entity.id) {
            Some((stored, stamped)) => {
                *stamped = generation;
                if incoming.version > stored.version {
                    *stored = incoming;
                }
            }
            None => {
                self.entities
                    .insert(entity.id.clone(), (incoming, generation));
            }
        }
    }

    fn checkpoint(&self, name: &str) -> Checkpoint {
        Checkpoint {
            dataset: name.to_owned(),
            last_sequence: self.last_sequence,
            snapshot: self.snapshot.clone(),
            entities: self.entities.values().filter(|(e, _)| !e.deleted).count() as u64,
            last_applied_at: self.last_applied_at,
        }
    }
}

impl MemoryLocalStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Make every call fail with [`StoreError::Unavailable`] carrying `detail`
    /// (`None` heals the store). Nothing changes while it fails.
    pub fn set_unavailable(&self, detail: Option<&str>) {
        self.lock().unavailable = detail.map(str::to_owned);
    }

    /// How many event ids the inbox holds.
    pub fn inbox_len(&self) -> usize {
        self.lock().inbox.len()
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
impl LocalStore for MemoryLocalStore {
    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        let inner = self.available()?;
        Ok(inner
            .datasets
            .iter()
            .map(|(name, d)| d.checkpoint(name))
            .collect())
    }

    async fn checkpoint(&self, dataset: &str) -> Result<Checkpoint, StoreError> {
        let inner = self.available()?;
        Ok(inner
            .datasets
            .get(dataset)
            .map(|d| d.checkpoint(dataset))
            .unwrap_or_else(|| Checkpoint {
                dataset: dataset.to_owned(),
                ..Checkpoint::default()
            }))
    }

    async fn apply_snapshot_page(
        &self,
        page: &SnapshotPage,
        fetched_with: Option<String>,
    ) -> Result<SnapshotStep, StoreError> {
        let mut inner = self.available()?;
        let d = inner.datasets.entry(page.dataset.clone()).or_default();
        if let Some(cursor) = &fetched_with {
            let stored = d
                .snapshot
                .as_ref()
                .filter(|s| s.as_of_sequence == page.as_of_sequence);
            if stored.and_then(|s| s.next_cursor.as_ref()) != Some(cursor) {
                return Ok(SnapshotStep::Stale);
            }
        } else {
            // A first page starts a new snapshot, with a new generation.
            d.generation += 1;
            d.snapshot = Some(SnapshotProgress {
                as_of_sequence: page.as_of_sequence,
                next_cursor: None,
                pages_done: 0,
                items_done: 0,
            });
        }
        for entity in &page.items {
            d.write(entity);
        }
        d.last_applied_at = Some(Utc::now());
        match &page.next_cursor {
            Some(cursor) => {
                if let Some(progress) = d.snapshot.as_mut() {
                    progress.next_cursor = Some(cursor.clone());
                    progress.pages_done += 1;
                    progress.items_done += page.items.len() as u64;
                }
                Ok(SnapshotStep::Continue)
            }
            None => {
                let generation = d.generation;
                d.entities.retain(|_, (_, stamped)| *stamped >= generation);
                d.last_sequence = Some(page.as_of_sequence);
                d.snapshot = None;
                Ok(SnapshotStep::Complete)
            }
        }
    }

    async fn restart_snapshot(&self, dataset: &str) -> Result<(), StoreError> {
        let mut inner = self.available()?;
        if let Some(d) = inner.datasets.get_mut(dataset) {
            d.snapshot = None;
        }
        Ok(())
    }

    async fn apply_changes(&self, page: &ChangesPage) -> Result<(), StoreError> {
        let mut inner = self.available()?;
        let d = inner.datasets.entry(page.dataset.clone()).or_default();
        for change in &page.items {
            d.write(&change.entity);
        }
        d.last_sequence = Some(
            d.last_sequence
                .map_or(page.last_sequence, |s| s.max(page.last_sequence)),
        );
        d.last_applied_at = Some(Utc::now());
        Ok(())
    }

    async fn apply_events(&self, events: &[DatasetEvent]) -> Result<Vec<EventOutcome>, StoreError> {
        let mut inner = self.available()?;
        let inner = &mut *inner;
        // Nothing below can fail, so the batch is all or nothing, like one transaction.
        let mut recorded: HashSet<Uuid> = HashSet::new();
        let now = Utc::now();
        let mut outcomes = Vec::with_capacity(events.len());
        for event in events {
            if inner.inbox.contains_key(&event.event_id) || !recorded.insert(event.event_id) {
                outcomes.push(EventOutcome::Duplicate);
                continue;
            }
            let d = inner.datasets.entry(event.dataset.clone()).or_default();
            if d.last_sequence.is_some_and(|last| event.sequence <= last) {
                outcomes.push(EventOutcome::AlreadyApplied);
                continue;
            }
            for entity in &event.items {
                d.write(entity);
            }
            d.last_applied_at = Some(now);
            let next = d.last_sequence.map(|last| last + 1);
            if d.snapshot.is_none() && next == Some(event.sequence) {
                d.last_sequence = Some(event.sequence);
                outcomes.push(EventOutcome::Applied);
            } else {
                outcomes.push(EventOutcome::Gap);
            }
        }
        inner.inbox.extend(recorded.into_iter().map(|id| (id, now)));
        Ok(outcomes)
    }

    async fn entity(&self, dataset: &str, id: &str) -> Result<Option<Entity>, StoreError> {
        let inner = self.available()?;
        Ok(inner
            .datasets
            .get(dataset)
            .and_then(|d| d.entities.get(id))
            .map(|(e, _)| e.clone()))
    }

    async fn entities(
        &self,
        dataset: &str,
        after_id: Option<String>,
        limit: u32,
    ) -> Result<Vec<Entity>, StoreError> {
        let inner = self.available()?;
        let Some(d) = inner.datasets.get(dataset) else {
            return Ok(Vec::new());
        };
        let range: Box<dyn Iterator<Item = (&String, &(Entity, u64))>> = match after_id {
            Some(after) => Box::new(d.entities.range::<String, _>((
                std::ops::Bound::Excluded(after),
                std::ops::Bound::Unbounded,
            ))),
            None => Box::new(d.entities.iter()),
        };
        Ok(range
            .take(limit as usize)
            .map(|(_, (e, _))| e.clone())
            .collect())
    }

    async fn prune_inbox(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut inner = self.available()?;
        let before = inner.inbox.len();
        inner.inbox.retain(|_, recorded| *recorded >= cutoff);
        Ok((before - inner.inbox.len()) as u64)
    }
}

#[async_trait]
impl Reopen<dyn LocalStore> for MemoryLocalStore {
    async fn reopen(&self) -> Box<dyn LocalStore> {
        Box::new(self.clone())
    }
}
