use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use spacepos_auth::{CachedJwks, CredentialStore, CredentialStoreError, StoredSession};

#[derive(Debug, Default)]
struct Inner {
    session: Option<StoredSession>,
    jwks: Option<CachedJwks>,
}

/// In-memory [`CredentialStore`].
#[derive(Debug, Clone, Default)]
pub struct MemoryCredentialStore {
    inner: Arc<Mutex<Inner>>,
}

impl MemoryCredentialStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl CredentialStore for MemoryCredentialStore {
    async fn load_session(&self) -> Result<Option<StoredSession>, CredentialStoreError> {
        Ok(self.lock().session.clone())
    }

    async fn save_session(&self, session: &StoredSession) -> Result<(), CredentialStoreError> {
        self.lock().session = Some(session.clone());
        Ok(())
    }

    async fn clear_session(&self) -> Result<(), CredentialStoreError> {
        self.lock().session = None;
        Ok(())
    }

    async fn load_jwks(&self) -> Result<Option<CachedJwks>, CredentialStoreError> {
        Ok(self.lock().jwks.clone())
    }

    async fn save_jwks(&self, jwks: &CachedJwks) -> Result<(), CredentialStoreError> {
        self.lock().jwks = Some(jwks.clone());
        Ok(())
    }
}
