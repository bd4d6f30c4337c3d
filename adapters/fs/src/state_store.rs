//! [`FileStateStore`]: `state.json` in the data directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use chrono::Utc;
use spacepos_config::{
    LoadedState, STATE_SCHEMA_VERSION, SchemaError, State, StateChange, StateError, StateOrigin,
    StateStore, decode_state, encode_state,
};

use crate::atomic::FileMode;
use crate::blocking;
use crate::durable::{DurableError, DurableFile, FileLock, LoadOutcome, Rejection};
use crate::error::FsError;

/// File name of the state in the data directory.
pub const STATE_FILE: &str = "state.json";

/// Keeps [`State`] in `<dir>/state.json` (mode 0644), with the last-good copy
/// in `state.json.bak` and a cross-process lock on `state.json.lock`.
///
/// Every operation takes the lock, so two processes sharing the data directory
/// (the till app and the SpaceFuel service) never lose each other's updates,
/// and a store that finds no state creates exactly one.
#[derive(Debug, Clone)]
pub struct FileStateStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: DurableFile,
    /// Serializes this process's operations before they take the file lock,
    /// so that waiting callers do not each hold a blocking-pool thread.
    gate: tokio::sync::Mutex<()>,
    cleaned: AtomicBool,
}

impl FileStateStore {
    /// A store for `<dir>/state.json`. Nothing is touched until first used;
    /// the directory is created then if missing.
    pub fn new(dir: impl AsRef<Path>) -> Self {
        let file = DurableFile::new(dir.as_ref().join(STATE_FILE), FileMode::Shared);
        FileStateStore {
            inner: Arc::new(Inner {
                file,
                gate: tokio::sync::Mutex::new(()),
                cleaned: AtomicBool::new(false),
            }),
        }
    }

    /// The path of `state.json`.
    pub fn path(&self) -> &Path {
        self.inner.file.path()
    }

    async fn locked<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Inner, &FileLock) -> Result<T, StateError> + Send + 'static,
    ) -> Result<T, StateError> {
        let _gate = self.inner.gate.lock().await;
        let inner = Arc::clone(&self.inner);
        blocking::run(move || {
            let lock = inner.file.lock().map_err(backend)?;
            if !inner.cleaned.load(Ordering::Relaxed) {
                inner.file.remove_stale_temp_files(&lock).map_err(backend)?;
                inner.cleaned.store(true, Ordering::Relaxed);
            }
            op(&inner, &lock)
        })
        .await
        .map_err(|e| StateError::Backend {
            location: self.path().display().to_string(),
            source: Box::new(e),
        })?
    }
}

fn backend(e: FsError) -> StateError {
    StateError::Backend {
        location: e.path().display().to_string(),
        source: Box::new(e),
    }
}

fn schema(path: PathBuf, source: SchemaError) -> StateError {
    StateError::Schema {
        location: path.display().to_string(),
        source,
    }
}

fn decode(bytes: &[u8]) -> Result<spacepos_config::Decoded, Rejection<SchemaError>> {
    decode_state(bytes).map_err(|e| {
        if e.is_corruption() {
            Rejection::Corrupt(e.to_string())
        } else {
            Rejection::Refused(e)
        }
    })
}

impl Inner {
    /// The stored state, recovered or created as the port's contract says.
    fn load(&self, lock: &FileLock) -> Result<LoadedState, StateError> {
        let location = self.file.path().display().to_string();
        let outcome = self.file.load(lock, decode).map_err(|e| match e {
            DurableError::Io(e) => backend(e),
            DurableError::Refused { path, reason } => schema(path, reason),
        })?;
        let loaded = match outcome {
            LoadOutcome::Missing => {
                let state = State::new();
                self.save(lock, &state)?;
                LoadedState {
                    state,
                    origin: StateOrigin::Created,
                }
            }
            LoadOutcome::Loaded(decoded) if decoded.stored_version < STATE_SCHEMA_VERSION => {
                self.save(lock, &decoded.state)?;
                tracing::info!(
                    "migrated {location} from schema_version {} to {STATE_SCHEMA_VERSION}",
                    decoded.stored_version
                );
                LoadedState {
                    state: decoded.state,
                    origin: StateOrigin::Migrated {
                        from: decoded.stored_version,
                    },
                }
            }
            LoadOutcome::Loaded(decoded) => LoadedState {
                state: decoded.state,
                origin: StateOrigin::Loaded,
            },
            LoadOutcome::Restored { value, problem } => {
                // Rewrite both files in the current schema (the backup may be older).
                self.save(lock, &value.state)?;
                LoadedState {
                    state: value.state,
                    origin: StateOrigin::RestoredFromBackup { location, problem },
                }
            }
            LoadOutcome::BothUnreadable { problem } => {
                let quarantined = self.file.quarantine(lock).map_err(backend)?;
                let mut state = State::new();
                state.reset_after_corruption = Some(Utc::now());
                self.save(lock, &state)?;
                let quarantined: Vec<String> = quarantined
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                tracing::warn!(
                    "{problem}; moved them aside ({}) and started a new state: SpaceFuel's active slot will be \
                     rediscovered from the installed slots",
                    quarantined.join(", ")
                );
                LoadedState {
                    state,
                    origin: StateOrigin::ResetAfterCorruption {
                        location,
                        problem,
                        quarantined,
                    },
                }
            }
        };
        Ok(loaded)
    }

    /// Write the state, unless the file on disk was written by a newer schema
    /// (a newer SpacePOS sharing the data directory): that one is not ours to
    /// overwrite.
    fn save(&self, lock: &FileLock, state: &State) -> Result<(), StateError> {
        if let Some(bytes) = self.file.read().map_err(backend)?
            && let Err(e @ SchemaError::Newer { .. }) = decode_state(&bytes)
        {
            return Err(schema(self.file.path().to_owned(), e));
        }
        self.file.save(lock, &encode_state(state)).map_err(backend)
    }
}

#[async_trait]
impl StateStore for FileStateStore {
    async fn load(&self) -> Result<LoadedState, StateError> {
        self.locked(|inner, lock| inner.load(lock)).await
    }

    async fn save(&self, state: &State) -> Result<(), StateError> {
        let state = state.clone();
        self.locked(move |inner, lock| inner.save(lock, &state))
            .await
    }

    async fn update(&self, change: StateChange) -> Result<State, StateError> {
        self.locked(move |inner, lock| {
            let mut state = inner.load(lock)?.state;
            change(&mut state);
            inner.save(lock, &state)?;
            Ok(state)
        })
        .await
    }
}
