//! [`FileTerminalStore`]: `terminal.json` in the data directory.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use spacepos_config::{
    TERMINAL_RECORD_VERSION, TerminalConfigStore, TerminalRecord, TerminalStoreError,
};

use crate::atomic::FileMode;
use crate::blocking;
use crate::durable::{DurableError, DurableFile, FileLock, LoadOutcome, Rejection};
use crate::error::FsError;

/// File name of the terminal record in the data directory.
pub const TERMINAL_FILE: &str = "terminal.json";

const REONBOARD: &str = "re-onboard this terminal with `spacepos onboard --code <code> --force` \
                         (ask the ERP for a new onboarding code)";

/// Keeps the [`TerminalRecord`] (client id and secret, identity, endpoints) in
/// `<dir>/terminal.json`, readable by the owner only (0600), with the
/// last-good copy in `terminal.json.bak` (also 0600) and a cross-process lock
/// on `terminal.json.lock`.
///
/// A damaged `terminal.json` is restored from the backup; if both are damaged
/// `load` fails with [`TerminalStoreError::Unreadable`] and leaves both files
/// where they are: credentials are never silently discarded. A missing
/// `terminal.json` whose backup exists is restored too, so to forget the
/// terminal's onboarding delete both files.
#[derive(Debug, Clone)]
pub struct FileTerminalStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    file: DurableFile,
    gate: tokio::sync::Mutex<()>,
    cleaned: AtomicBool,
}

impl FileTerminalStore {
    /// A store for `<dir>/terminal.json`. Nothing is touched until first used;
    /// the directory is created then if missing.
    pub fn new(dir: impl AsRef<Path>) -> Self {
        let file = DurableFile::new(dir.as_ref().join(TERMINAL_FILE), FileMode::OwnerOnly);
        FileTerminalStore {
            inner: Arc::new(Inner {
                file,
                gate: tokio::sync::Mutex::new(()),
                cleaned: AtomicBool::new(false),
            }),
        }
    }

    /// The path of `terminal.json`.
    pub fn path(&self) -> &Path {
        self.inner.file.path()
    }

    async fn locked<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Inner, &FileLock) -> Result<T, TerminalStoreError> + Send + 'static,
    ) -> Result<T, TerminalStoreError> {
        let _gate = self.inner.gate.lock().await;
        let inner = Arc::clone(&self.inner);
        blocking::run(move || {
            let lock = inner.file.lock().map_err(backend)?;
            if !inner.cleaned.load(Ordering::Relaxed) {
                inner.file.remove_stale_temp_files(&lock).map_err(backend)?;
                inner.cleaned.store(true, Ordering::Relaxed);
            }
            tighten_permissions(inner.file.path()).map_err(backend)?;
            tighten_permissions(inner.file.backup_path()).map_err(backend)?;
            op(&inner, &lock)
        })
        .await
        .map_err(|e| TerminalStoreError::Backend {
            location: self.path().display().to_string(),
            source: Box::new(e),
        })?
    }
}

fn backend(e: FsError) -> TerminalStoreError {
    TerminalStoreError::Backend {
        location: e.path().display().to_string(),
        source: Box::new(e),
    }
}

/// If `path` exists and others may read it, restrict it to the owner and warn.
#[cfg(unix)]
fn tighten_permissions(path: &Path) -> Result<(), FsError> {
    use std::os::unix::fs::PermissionsExt as _;
    let mode = match std::fs::metadata(path) {
        Ok(meta) => meta.permissions().mode() & 0o777,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(FsError::io("inspect", path, e)),
    };
    if mode & 0o077 != 0 {
        let wanted = FileMode::OwnerOnly.bits();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(wanted))
            .map_err(|e| FsError::io("restrict the permissions of", path, e))?;
        tracing::warn!(
            "{} holds the terminal's client secret but was readable by other users (mode {mode:03o}); \
             restricted it to the owner (mode {wanted:03o})",
            path.display()
        );
    }
    Ok(())
}

#[cfg(not(unix))]
fn tighten_permissions(_path: &Path) -> Result<(), FsError> {
    Ok(())
}

/// Decode `terminal.json`. Messages never quote the content (it holds a secret).
fn decode(bytes: &[u8]) -> Result<TerminalRecord, Rejection<String>> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Rejection::Corrupt("the file is empty".into()));
    }
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| Rejection::Corrupt(describe(&e)))?;
    let version = value
        .get("schema_version")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| Rejection::Corrupt("the file has no valid `schema_version`".into()))?;
    if version > u64::from(TERMINAL_RECORD_VERSION) {
        return Err(Rejection::Refused(format!(
            "written by a newer SpacePOS (schema_version {version}, this build reads up to \
             {TERMINAL_RECORD_VERSION}); upgrade SpacePOS"
        )));
    }
    if version == 0 {
        return Err(Rejection::Corrupt(
            "the file has no valid `schema_version`".into(),
        ));
    }
    serde_json::from_value(value).map_err(|e| Rejection::Corrupt(describe(&e)))
}

fn describe(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        // serde's data errors may quote the offending value: leave it out.
        Category::Data => "the file does not match the terminal record schema".to_owned(),
        Category::Eof => format!(
            "the file is truncated (at line {} column {})",
            e.line(),
            e.column()
        ),
        Category::Syntax | Category::Io => format!("the file is not valid JSON ({e})"),
    }
}

impl Inner {
    fn load(&self, lock: &FileLock) -> Result<Option<TerminalRecord>, TerminalStoreError> {
        let location = self.file.path().display().to_string();
        let outcome = self.file.load(lock, decode).map_err(|e| match e {
            DurableError::Io(e) => backend(e),
            DurableError::Refused { path, reason } => TerminalStoreError::Unreadable {
                location: path.display().to_string(),
                problem: reason,
            },
        })?;
        match outcome {
            LoadOutcome::Missing => Ok(None),
            LoadOutcome::Loaded(record) | LoadOutcome::Restored { value: record, .. } => {
                Ok(Some(record))
            }
            LoadOutcome::BothUnreadable { problem } => {
                let problem =
                    format!("{problem}; the terminal's credentials are lost: {REONBOARD}");
                tracing::error!("{problem}");
                Err(TerminalStoreError::Unreadable { location, problem })
            }
        }
    }

    fn save(&self, lock: &FileLock, record: &TerminalRecord) -> Result<(), TerminalStoreError> {
        let mut bytes =
            serde_json::to_vec_pretty(record).map_err(|e| TerminalStoreError::Backend {
                location: self.file.path().display().to_string(),
                source: Box::new(e),
            })?;
        bytes.push(b'\n');
        self.file.save(lock, &bytes).map_err(backend)
    }
}

#[async_trait]
impl TerminalConfigStore for FileTerminalStore {
    async fn load(&self) -> Result<Option<TerminalRecord>, TerminalStoreError> {
        self.locked(|inner, lock| inner.load(lock)).await
    }

    async fn save(&self, record: &TerminalRecord) -> Result<(), TerminalStoreError> {
        let record = record.clone();
        self.locked(move |inner, lock| inner.save(lock, &record))
            .await
    }
}
