//! The adapter's own error, converted to the ports' errors at the boundary.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use spacepos_config::ConfigStateError;
use spacepos_sync::StoreError;

/// What kind of trouble a [`SqliteError`] is; decides whether the caller may
/// try again ([`SqliteError::is_transient`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Another connection or process kept the database locked for longer than
    /// the store waits (`SQLITE_BUSY`/`SQLITE_LOCKED`, or no connection free).
    Busy,
    /// The disk (or the file system's quota) is full.
    DiskFull,
    /// The operating system reported an I/O error.
    Io,
    /// The file exists but is not a SQLite database.
    NotADatabase,
    /// The database file is damaged.
    Corrupt,
    /// The file or its directory cannot be opened, created or written.
    CantOpen,
    /// The schema could not be brought up to date.
    Migrate,
    /// A stored value could not be read back (a bug or a damaged row).
    Decode,
    /// Anything else SQLite or sqlx reported.
    Other,
}

/// A failure of the SQLite store: what was attempted, on which file, what
/// went wrong and what to do about it.
#[derive(Debug)]
pub struct SqliteError {
    path: PathBuf,
    action: String,
    kind: ErrorKind,
    waited: Option<Duration>,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl SqliteError {
    pub(crate) fn new(
        path: &Path,
        action: impl Into<String>,
        kind: ErrorKind,
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        SqliteError {
            path: path.to_owned(),
            action: action.into(),
            kind,
            waited: None,
            source,
        }
    }

    /// Classify a sqlx error.
    pub(crate) fn from_sqlx(path: &Path, action: impl Into<String>, error: sqlx::Error) -> Self {
        let kind = classify(&error);
        Self::new(path, action, kind, Some(Box::new(error)))
    }

    /// Record how long contention was waited out (shown for busy errors only).
    pub(crate) fn with_waited(mut self, waited: Duration) -> Self {
        if self.kind == ErrorKind::Busy {
            self.waited = Some(waited);
        }
        self
    }

    /// The database file concerned.
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// Whether the same call may succeed later (busy, disk full, I/O): never a
    /// reason to drop data.
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Busy | ErrorKind::DiskFull | ErrorKind::Io
        )
    }

    fn problem(&self) -> &'static str {
        match self.kind {
            ErrorKind::Busy => "the database stayed locked by another connection or process",
            ErrorKind::DiskFull => "the disk is full",
            ErrorKind::Io => "the operating system reported an I/O error",
            ErrorKind::NotADatabase => "the file is not a SQLite database",
            ErrorKind::Corrupt => "the database file is damaged",
            ErrorKind::CantOpen => "the file cannot be opened or created",
            ErrorKind::Migrate => "its schema could not be brought up to date",
            ErrorKind::Decode => "a stored value could not be read back",
            ErrorKind::Other => "SQLite reported an error",
        }
    }

    fn hint(&self) -> &'static str {
        match self.kind {
            ErrorKind::Busy => "nothing was written; the call may be repeated",
            ErrorKind::DiskFull => {
                "free disk space; nothing was written and the call may be repeated"
            }
            ErrorKind::Io => "check the disk; nothing was written and the call may be repeated",
            ErrorKind::NotADatabase | ErrorKind::Corrupt => {
                "check that the configured path names the SpacePOS database; if it does, stop \
                 SpacePOS and SpaceFuel, move the file aside (with its -wal and -shm files) and \
                 start again: an empty store is created and the datasets are seeded again; \
                 operations still queued in the old file must be recovered from it by hand"
            }
            ErrorKind::CantOpen => {
                "check that the directory exists, is writable and belongs to the user SpacePOS runs as"
            }
            ErrorKind::Migrate => {
                "the file may come from an incompatible version of SpacePOS; keep it for support"
            }
            ErrorKind::Decode | ErrorKind::Other => "keep the file for support",
        }
    }
}

impl SqliteError {
    /// The message without the file: what was attempted, what went wrong, what to do.
    pub fn detail(&self) -> String {
        let mut detail = format!("cannot {}: {}", self.action, self.problem());
        if let Some(waited) = self.waited {
            detail.push_str(&format!(" (waited {:.1} s)", waited.as_secs_f64()));
        }
        if let Some(source) = &self.source {
            detail.push_str(&format!(" ({source})"));
        }
        detail.push_str("; ");
        detail.push_str(self.hint());
        detail
    }
}

impl fmt::Display for SqliteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "local store {}: {}", self.path.display(), self.detail())
    }
}

impl std::error::Error for SqliteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<SqliteError> for StoreError {
    fn from(e: SqliteError) -> Self {
        let location = e.path.display().to_string();
        if e.is_transient() {
            StoreError::Unavailable {
                location,
                detail: e.detail(),
            }
        } else {
            StoreError::Backend {
                location,
                source: Box::new(e),
            }
        }
    }
}

impl From<SqliteError> for ConfigStateError {
    fn from(e: SqliteError) -> Self {
        ConfigStateError {
            location: e.path.display().to_string(),
            source: Box::new(e),
        }
    }
}

// SQLite primary result codes (the low byte of an extended code).
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;
const SQLITE_READONLY: i64 = 8;
const SQLITE_IOERR: i64 = 10;
const SQLITE_CORRUPT: i64 = 11;
const SQLITE_FULL: i64 = 13;
const SQLITE_CANTOPEN: i64 = 14;
const SQLITE_NOTADB: i64 = 26;

/// The primary SQLite result code of a database error.
fn primary_code(error: &sqlx::Error) -> Option<i64> {
    match error {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i64>().ok())
            .map(|c| c & 0xff),
        _ => None,
    }
}

fn classify(error: &sqlx::Error) -> ErrorKind {
    match error {
        sqlx::Error::PoolTimedOut => ErrorKind::Busy,
        sqlx::Error::Io(e) if e.kind() == std::io::ErrorKind::StorageFull => ErrorKind::DiskFull,
        sqlx::Error::Io(_) => ErrorKind::Io,
        sqlx::Error::Migrate(_) => ErrorKind::Migrate,
        sqlx::Error::Decode(_) | sqlx::Error::ColumnDecode { .. } => ErrorKind::Decode,
        _ => match primary_code(error) {
            Some(SQLITE_BUSY | SQLITE_LOCKED) => ErrorKind::Busy,
            Some(SQLITE_FULL) => ErrorKind::DiskFull,
            Some(SQLITE_IOERR) => ErrorKind::Io,
            Some(SQLITE_NOTADB) => ErrorKind::NotADatabase,
            Some(SQLITE_CORRUPT) => ErrorKind::Corrupt,
            Some(SQLITE_CANTOPEN | SQLITE_READONLY) => ErrorKind::CantOpen,
            _ => ErrorKind::Other,
        },
    }
}

/// Whether an error is contention that waiting may resolve.
pub(crate) fn is_busy(error: &sqlx::Error) -> bool {
    matches!(primary_code(error), Some(SQLITE_BUSY | SQLITE_LOCKED))
}

/// A failure inside one unit of work: a database error (classified later,
/// with the file and the action), or a verdict of the port's contract.
#[derive(Debug)]
pub(crate) enum Fail {
    Sql(sqlx::Error),
    Conflict(String),
    NotFound(String),
    Decode(String),
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Self {
        Fail::Sql(e)
    }
}

impl Fail {
    pub(crate) fn is_busy(&self) -> bool {
        matches!(self, Fail::Sql(e) if is_busy(e))
    }

    pub(crate) fn into_sqlite(self, path: &Path, action: &str) -> Result<SqliteError, StoreError> {
        match self {
            Fail::Sql(e) => Ok(SqliteError::from_sqlx(path, action, e)),
            Fail::Decode(detail) => Ok(SqliteError::new(
                path,
                action,
                ErrorKind::Decode,
                Some(detail.into()),
            )),
            Fail::Conflict(m) => Err(StoreError::Conflict(m)),
            Fail::NotFound(m) => Err(StoreError::NotFound(m)),
        }
    }

    pub(crate) fn into_store(self, path: &Path, action: &str, waited: Duration) -> StoreError {
        match self.into_sqlite(path, action) {
            Ok(e) => StoreError::from(e.with_waited(waited)),
            Err(e) => e,
        }
    }
}
