use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use spacepos_config::{TerminalConfigStore, TerminalRecord, TerminalStoreError};

const LOCATION: &str = "memory://terminal.json";

/// An in-memory [`TerminalConfigStore`].
///
/// Clones share the same record. A test can look at what was saved
/// ([`snapshot`](Self::snapshot), [`save_count`](Self::save_count)) and make
/// the stored record unreadable ([`set_unreadable`](Self::set_unreadable)), as
/// a file store does when `terminal.json` and its backup are both damaged.
#[derive(Debug, Clone, Default)]
pub struct MemoryTerminalStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    record: Option<TerminalRecord>,
    unreadable: Option<String>,
    saves: u64,
}

impl MemoryTerminalStore {
    /// An empty store (a terminal never onboarded).
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that already holds `record` (an onboarded terminal).
    pub fn with_record(record: TerminalRecord) -> Self {
        let store = Self::new();
        store.lock().record = Some(record);
        store
    }

    /// The record as last saved, if any.
    pub fn snapshot(&self) -> Option<TerminalRecord> {
        self.lock().record.clone()
    }

    /// How many times `save` succeeded.
    pub fn save_count(&self) -> u64 {
        self.lock().saves
    }

    /// Make `load` fail with [`TerminalStoreError::Unreadable`] carrying
    /// `problem`, until the next `save` (a new onboarding) replaces the record.
    pub fn set_unreadable(&self, problem: impl Into<String>) {
        self.lock().unreadable = Some(problem.into());
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl TerminalConfigStore for MemoryTerminalStore {
    async fn load(&self) -> Result<Option<TerminalRecord>, TerminalStoreError> {
        let inner = self.lock();
        match &inner.unreadable {
            Some(problem) => Err(TerminalStoreError::Unreadable {
                location: LOCATION.into(),
                problem: problem.clone(),
            }),
            None => Ok(inner.record.clone()),
        }
    }

    async fn save(&self, record: &TerminalRecord) -> Result<(), TerminalStoreError> {
        let mut inner = self.lock();
        inner.record = Some(record.clone());
        inner.unreadable = None;
        inner.saves += 1;
        Ok(())
    }
}
