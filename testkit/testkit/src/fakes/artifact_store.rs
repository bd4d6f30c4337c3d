//! [`MemoryArtifactStore`]: the staging area of updates, in memory.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use spacepos_updates::{
    ArtifactKey, ArtifactState, ArtifactStore, ArtifactStoreError, StoredArtifact,
};

use crate::suites::Reopen;

#[derive(Debug, Clone, Default)]
struct Entry {
    bytes: Vec<u8>,
    staged: Option<String>,
}

#[derive(Debug, Default)]
struct Inner {
    entries: BTreeMap<ArtifactKey, Entry>,
    unavailable: Option<String>,
    appends: u64,
}

/// An in-memory [`ArtifactStore`]. Clones share the same artifacts (so
/// [`Reopen`] hands out a clone). Staged paths are
/// `memory://updates/<component>/<version>-<sha256>/<file name>`.
/// [`set_unavailable`](Self::set_unavailable) makes every call fail.
#[derive(Debug, Clone, Default)]
pub struct MemoryArtifactStore {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryArtifactStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Every stored key, partial or staged.
    pub fn keys(&self) -> Vec<ArtifactKey> {
        self.lock().entries.keys().cloned().collect()
    }

    /// How many appends were made (to see that a resumed download did not start over).
    pub fn appends(&self) -> u64 {
        self.lock().appends
    }

    /// Fail every call with a backend error carrying `detail` (`None` heals it).
    pub fn set_unavailable(&self, detail: Option<&str>) {
        self.lock().unavailable = detail.map(str::to_owned);
    }

    fn checked(&self, key: &ArtifactKey) -> Result<MutexGuard<'_, Inner>, ArtifactStoreError> {
        let inner = self.lock();
        if let Some(detail) = &inner.unavailable {
            return Err(ArtifactStoreError::Backend {
                location: "memory://updates".into(),
                source: detail.clone().into(),
            });
        }
        key.check()
            .map_err(|detail| ArtifactStoreError::InvalidKey {
                key: key.to_string(),
                detail,
            })?;
        Ok(inner)
    }
}

#[async_trait]
impl ArtifactStore for MemoryArtifactStore {
    async fn len(&self, key: &ArtifactKey) -> Result<u64, ArtifactStoreError> {
        let inner = self.checked(key)?;
        Ok(inner.entries.get(key).map_or(0, |e| e.bytes.len() as u64))
    }

    async fn append(
        &self,
        key: &ArtifactKey,
        offset: u64,
        bytes: &[u8],
    ) -> Result<u64, ArtifactStoreError> {
        let mut inner = self.checked(key)?;
        inner.appends += 1;
        let entry = inner.entries.entry(key.clone()).or_default();
        if entry.staged.is_some() {
            return Err(ArtifactStoreError::Conflict {
                key: key.to_string(),
                detail: "it is staged: a staged artifact never changes".into(),
            });
        }
        let len = entry.bytes.len() as u64;
        if len != offset {
            return Err(ArtifactStoreError::Conflict {
                key: key.to_string(),
                detail: format!("append at {offset}, but {len} bytes are stored"),
            });
        }
        entry.bytes.extend_from_slice(bytes);
        Ok(entry.bytes.len() as u64)
    }

    async fn read(
        &self,
        key: &ArtifactKey,
        offset: u64,
        max_len: u64,
    ) -> Result<Vec<u8>, ArtifactStoreError> {
        let inner = self.checked(key)?;
        let entry = inner
            .entries
            .get(key)
            .ok_or_else(|| ArtifactStoreError::NotFound {
                key: key.to_string(),
                detail: "nothing is stored".into(),
            })?;
        let len = entry.bytes.len();
        let from = usize::try_from(offset).unwrap_or(usize::MAX).min(len);
        let to = from
            .saturating_add(usize::try_from(max_len).unwrap_or(usize::MAX))
            .min(len);
        Ok(entry.bytes[from..to].to_vec())
    }

    async fn stage(
        &self,
        key: &ArtifactKey,
        file_name: &str,
    ) -> Result<String, ArtifactStoreError> {
        let mut inner = self.checked(key)?;
        let entry = inner
            .entries
            .get_mut(key)
            .filter(|e| !e.bytes.is_empty())
            .ok_or_else(|| ArtifactStoreError::NotFound {
                key: key.to_string(),
                detail: "nothing was downloaded to stage".into(),
            })?;
        let path = entry.staged.get_or_insert_with(|| {
            format!(
                "memory://updates/{}/{}-{}/{file_name}",
                key.component, key.version, key.sha256
            )
        });
        Ok(path.clone())
    }

    async fn staged_path(&self, key: &ArtifactKey) -> Result<Option<String>, ArtifactStoreError> {
        let inner = self.checked(key)?;
        Ok(inner.entries.get(key).and_then(|e| e.staged.clone()))
    }

    async fn discard(&self, key: &ArtifactKey) -> Result<(), ArtifactStoreError> {
        let mut inner = self.checked(key)?;
        inner.entries.remove(key);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<StoredArtifact>, ArtifactStoreError> {
        let inner = self.lock();
        Ok(inner
            .entries
            .iter()
            .filter(|(_, e)| !e.bytes.is_empty() || e.staged.is_some())
            .map(|(key, e)| StoredArtifact {
                key: key.clone(),
                len: e.bytes.len() as u64,
                state: match &e.staged {
                    Some(path) => ArtifactState::Staged { path: path.clone() },
                    None => ArtifactState::Partial,
                },
            })
            .collect())
    }
}

#[async_trait]
impl Reopen<dyn ArtifactStore> for MemoryArtifactStore {
    async fn reopen(&self) -> Box<dyn ArtifactStore> {
        Box::new(self.clone())
    }
}
