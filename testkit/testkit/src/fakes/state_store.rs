use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::Utc;
use spacepos_config::{
    LoadedState, STATE_SCHEMA_VERSION, SchemaError, State, StateChange, StateError, StateOrigin,
    StateStore,
};

const LOCATION: &str = "memory://state.json";

/// An in-memory [`StateStore`].
///
/// Clones share the same state. Besides the port, it lets a test look at what
/// was saved ([`snapshot`](Self::snapshot), [`save_count`](Self::save_count))
/// and put the store in the situations a file store meets:
/// [`corrupt`](Self::corrupt) (file and backup unreadable) and
/// [`set_newer_schema`](Self::set_newer_schema).
#[derive(Debug, Clone, Default)]
pub struct MemoryStateStore {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug, Default)]
struct Inner {
    state: Option<State>,
    /// The next load finds the state and its backup unreadable.
    corrupt: bool,
    /// The stored state was written by a newer schema.
    newer_schema: Option<u32>,
    saves: u64,
}

impl MemoryStateStore {
    /// An empty store: the first `load` creates a state.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that already holds `state`.
    pub fn with_state(state: State) -> Self {
        let store = Self::new();
        store.lock().state = Some(state);
        store
    }

    /// The state as last saved, if any.
    pub fn snapshot(&self) -> Option<State> {
        self.lock().state.clone()
    }

    /// How many times a state was written (by `save`, `update`, or a `load`
    /// that created, migrated, restored or reset the state).
    pub fn save_count(&self) -> u64 {
        self.lock().saves
    }

    /// Make the stored state and its backup unreadable: the next `load` (or
    /// `update`) starts over with `reset_after_corruption` set, as the file
    /// store does.
    pub fn corrupt(&self) {
        self.lock().corrupt = true;
    }

    /// Pretend a newer SpacePOS wrote the state with schema `found`: every
    /// operation fails with [`SchemaError::Newer`] and changes nothing.
    pub fn set_newer_schema(&self, found: u32) {
        self.lock().newer_schema = Some(found);
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    fn check_schema(&self) -> Result<(), StateError> {
        match self.newer_schema {
            Some(found) => Err(StateError::Schema {
                location: LOCATION.into(),
                source: SchemaError::Newer {
                    found,
                    supported: STATE_SCHEMA_VERSION,
                },
            }),
            None => Ok(()),
        }
    }

    fn store(&mut self, state: State) {
        self.state = Some(state);
        self.saves += 1;
    }

    fn load(&mut self) -> Result<LoadedState, StateError> {
        self.check_schema()?;
        if self.corrupt {
            self.corrupt = false;
            let mut state = State::new();
            state.reset_after_corruption = Some(Utc::now());
            self.store(state.clone());
            let origin = StateOrigin::ResetAfterCorruption {
                location: LOCATION.into(),
                problem: "the state and its backup were made unreadable by the test".into(),
                quarantined: Vec::new(),
            };
            return Ok(LoadedState { state, origin });
        }
        match &self.state {
            Some(state) => Ok(LoadedState {
                state: state.clone(),
                origin: StateOrigin::Loaded,
            }),
            None => {
                let state = State::new();
                self.store(state.clone());
                Ok(LoadedState {
                    state,
                    origin: StateOrigin::Created,
                })
            }
        }
    }
}

#[async_trait]
impl StateStore for MemoryStateStore {
    async fn load(&self) -> Result<LoadedState, StateError> {
        self.lock().load()
    }

    async fn save(&self, state: &State) -> Result<(), StateError> {
        let mut inner = self.lock();
        inner.check_schema()?;
        inner.store(state.clone());
        Ok(())
    }

    async fn update(&self, change: StateChange) -> Result<State, StateError> {
        let mut inner = self.lock();
        let mut state = inner.load()?.state;
        change(&mut state);
        inner.store(state.clone());
        Ok(state)
    }
}
