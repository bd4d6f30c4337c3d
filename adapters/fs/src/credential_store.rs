//! [`FileCredentialStore`]: the staff session (`session.json`, owner-only) and
//! the ERP's JWT keys as last fetched (`jwks.json`).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;
use spacepos_auth::{CachedJwks, CredentialStore, CredentialStoreError, StoredSession};

use crate::atomic::FileMode;
use crate::blocking;
use crate::durable::{DurableFile, LoadOutcome, Rejection};
use crate::error::FsError;

/// File name of the staff session in the data directory.
pub const SESSION_FILE: &str = "session.json";
/// File name of the cached JWKS in the data directory.
pub const JWKS_FILE: &str = "jwks.json";

/// Keeps the staff session in `<dir>/session.json` (0600: it holds the access
/// and refresh tokens) and the JWKS in `<dir>/jwks.json`, each with a last-good
/// backup and a cross-process lock. A session or key set that cannot be read
/// is reported once and treated as absent: the staff member logs in again, the
/// keys are fetched again; neither blocks the till.
#[derive(Debug, Clone)]
pub struct FileCredentialStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    session: DurableFile,
    jwks: DurableFile,
    gate: tokio::sync::Mutex<()>,
}

impl FileCredentialStore {
    pub fn new(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        FileCredentialStore {
            inner: Arc::new(Inner {
                session: DurableFile::new(dir.join(SESSION_FILE), FileMode::OwnerOnly),
                jwks: DurableFile::new(dir.join(JWKS_FILE), FileMode::Shared),
                gate: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// The path of `session.json`.
    pub fn session_path(&self) -> &Path {
        self.inner.session.path()
    }

    async fn with_file<T: Send + 'static>(
        &self,
        pick: fn(&Inner) -> &DurableFile,
        op: impl FnOnce(&DurableFile, &crate::durable::FileLock) -> Result<T, FsError> + Send + 'static,
    ) -> Result<T, CredentialStoreError> {
        let _gate = self.inner.gate.lock().await;
        let inner = Arc::clone(&self.inner);
        let location: PathBuf = pick(&inner).path().to_path_buf();
        let result = blocking::run(move || {
            let file = pick(&inner);
            let lock = file.lock()?;
            op(file, &lock)
        })
        .await;
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(CredentialStoreError::Backend {
                location: e.path().display().to_string(),
                source: Box::new(e),
            }),
            Err(e) => Err(CredentialStoreError::Backend {
                location: location.display().to_string(),
                source: Box::new(e),
            }),
        }
    }

    async fn load<T: DeserializeOwned + Send + 'static>(
        &self,
        pick: fn(&Inner) -> &DurableFile,
        what: &'static str,
    ) -> Result<Option<T>, CredentialStoreError> {
        self.with_file(pick, move |file, lock| {
            let outcome = file.load(lock, |bytes| {
                serde_json::from_slice::<T>(bytes)
                    .map_err(|e| Rejection::<()>::Corrupt(e.to_string()))
            });
            match outcome {
                Ok(LoadOutcome::Loaded(v)) | Ok(LoadOutcome::Restored { value: v, .. }) => {
                    Ok(Some(v))
                }
                Ok(LoadOutcome::Missing) => Ok(None),
                Ok(LoadOutcome::BothUnreadable { problem }) => {
                    tracing::warn!("{problem}; treating the {what} as absent");
                    file.remove(lock)?;
                    Ok(None)
                }
                Err(crate::durable::DurableError::Io(e)) => Err(e),
                Err(crate::durable::DurableError::Refused { .. }) => Ok(None),
            }
        })
        .await
    }

    async fn save<T: Serialize>(
        &self,
        pick: fn(&Inner) -> &DurableFile,
        value: &T,
    ) -> Result<(), CredentialStoreError> {
        let mut bytes =
            serde_json::to_vec_pretty(value).map_err(|e| CredentialStoreError::Backend {
                location: pick(&self.inner).path().display().to_string(),
                source: Box::new(e),
            })?;
        bytes.push(b'\n');
        self.with_file(pick, move |file, lock| file.save(lock, &bytes))
            .await
    }
}

fn session(i: &Inner) -> &DurableFile {
    &i.session
}

fn jwks(i: &Inner) -> &DurableFile {
    &i.jwks
}

#[async_trait]
impl CredentialStore for FileCredentialStore {
    async fn load_session(&self) -> Result<Option<StoredSession>, CredentialStoreError> {
        self.load(session, "staff session").await
    }

    async fn save_session(&self, s: &StoredSession) -> Result<(), CredentialStoreError> {
        self.save(session, s).await
    }

    async fn clear_session(&self) -> Result<(), CredentialStoreError> {
        self.with_file(session, |file, lock| file.remove(lock))
            .await
    }

    async fn load_jwks(&self) -> Result<Option<CachedJwks>, CredentialStoreError> {
        self.load(jwks, "cached JWT key set").await
    }

    async fn save_jwks(&self, j: &CachedJwks) -> Result<(), CredentialStoreError> {
        self.save(jwks, j).await
    }
}
