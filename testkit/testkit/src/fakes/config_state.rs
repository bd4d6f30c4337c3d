use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use serde_json::Value;
use spacepos_config::{ConfigStateError, ConfigStateStore};

use crate::suites::Reopen;

/// An in-memory [`ConfigStateStore`]. Clones share the same facts, like two
/// processes sharing one database file (so [`Reopen`] hands out a clone).
#[derive(Debug, Clone, Default)]
pub struct MemoryConfigState {
    inner: Arc<Mutex<BTreeMap<String, Value>>>,
}

impl MemoryConfigState {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Value>> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl ConfigStateStore for MemoryConfigState {
    async fn get(&self, key: &str) -> Result<Option<Value>, ConfigStateError> {
        Ok(self.lock().get(key).cloned())
    }

    async fn put(&self, key: &str, value: &Value) -> Result<(), ConfigStateError> {
        self.lock().insert(key.to_owned(), value.clone());
        Ok(())
    }

    async fn all(&self) -> Result<BTreeMap<String, Value>, ConfigStateError> {
        Ok(self.lock().clone())
    }
}

#[async_trait]
impl Reopen<dyn ConfigStateStore> for MemoryConfigState {
    async fn reopen(&self) -> Box<dyn ConfigStateStore> {
        Box::new(self.clone())
    }
}
