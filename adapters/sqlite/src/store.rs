//! [`SqliteStore`]: opening the file, the connection pools, waiting out
//! contention, and [`WriteTx`] for callers that write their own rows with an
//! outbox entry.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use spacepos_sync::{NewOperation, QueuedOperation, StoreError};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Sqlite, SqlitePool, Transaction};

use crate::error::{ErrorKind, Fail, SqliteError};

/// Waits out contention: runs `$body` (an expression evaluating to a future of
/// `Result<T, Fail>`) again while it fails with `SQLITE_BUSY`/`SQLITE_LOCKED`,
/// with backoff, for up to [`StoreOptions::retry_for`]; then maps the failure to
/// a [`StoreError`] naming the file and `$action`.
macro_rules! with_retry {
    ($store:expr, $action:expr, $body:expr) => {{
        let store: &$crate::store::SqliteStore = $store;
        let mut retry = store.retry();
        loop {
            let fail = match $body.await {
                Ok(value) => break Ok(value),
                Err(fail) => fail,
            };
            if !(fail.is_busy() && retry.wait().await) {
                break Err(fail.into_store(store.path(), &*$action, retry.waited()));
            }
        }
    }};
}
pub(crate) use with_retry;

/// Tuning of a [`SqliteStore`]; the defaults suit a till.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// How long one statement waits inside SQLite for a lock another
    /// connection or process holds (SQLite's `busy_timeout`), before the
    /// store's own retry takes over. Default 50 ms: SQLite's busy handler polls
    /// at 1, 2, 5, 10, 15, 20 and 25 ms and then only every 100 ms, and nobody
    /// queues, so under steady contention (a snapshot committing page after
    /// page) a long `busy_timeout` let a till wait 2 s for one enqueue; 50 ms
    /// plus retries every 2-40 ms kept the longest wait to about one page's
    /// commit (measured in `tests/processes.rs`).
    pub busy_timeout: Duration,
    /// How long a call keeps trying again while the database is busy, before
    /// it reports [`StoreError::Unavailable`]; also how long a write waits for
    /// this process's write connection. Default 60 s.
    pub retry_for: Duration,
    /// Connections for reads (WAL lets them run beside the one writer). Default 4.
    pub readers: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            busy_timeout: Duration::from_millis(50),
            retry_for: Duration::from_secs(60),
            readers: 4,
        }
    }
}

/// The shared local store in one SQLite file. Clones share the connections.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    options: StoreOptions,
    /// One connection with `synchronous=FULL`: what must survive a power cut
    /// (enqueued operations, the caller's `WriteTx`). This process's writes
    /// queue here (fairly) instead of spinning on SQLite's lock; other
    /// processes are waited out by `busy_timeout` and [`with_retry!`].
    writer: SqlitePool,
    /// One connection with `synchronous=NORMAL`: what can be derived again if
    /// a power cut loses the last commits (dataset pages, changes and events
    /// with their inbox ids: the sequences bring them back; results and
    /// failures of operations: a resend is answered `duplicate`; runtime
    /// facts). A commit is still atomic and survives a crash of the process;
    /// the next `FULL` commit also makes it durable (the WAL is synced in order).
    relaxed: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Open (or create) the store at `path` with the default options; see
    /// [`open_with`](Self::open_with).
    pub async fn open(path: impl AsRef<Path>) -> Result<SqliteStore, SqliteError> {
        Self::open_with(path, StoreOptions::default()).await
    }

    /// Open (or create, with its directory) the store at `path` and bring its
    /// schema up to date. Several processes may open the same file at once;
    /// the schema is migrated by one of them inside a write transaction.
    pub async fn open_with(
        path: impl AsRef<Path>,
        options: StoreOptions,
    ) -> Result<SqliteStore, SqliteError> {
        let path = path.as_ref().to_owned();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            tokio::fs::create_dir_all(dir).await.map_err(|e| {
                let kind = if e.kind() == std::io::ErrorKind::StorageFull {
                    ErrorKind::DiskFull
                } else {
                    ErrorKind::CantOpen
                };
                SqliteError::new(&path, "create its directory", kind, Some(Box::new(e)))
            })?;
        }
        let connect = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(options.busy_timeout);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(options.retry_for)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(connect.clone());
        let relaxed = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .acquire_timeout(options.retry_for)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_lazy_with(
                connect
                    .clone()
                    .synchronous(SqliteSynchronous::Normal)
                    // Bulk writes touch random pages of large tables: keep them in
                    // memory (up to 64 MiB, allocated as used) and checkpoint the WAL
                    // less often (every ~40 MiB instead of ~4 MiB).
                    .pragma("cache_size", "-65536")
                    .pragma("wal_autocheckpoint", "10000"),
            );
        let reader = SqlitePoolOptions::new()
            .max_connections(options.readers.max(1))
            .min_connections(0)
            .acquire_timeout(options.retry_for)
            .connect_lazy_with(connect);
        let store = SqliteStore {
            inner: Arc::new(Inner {
                path,
                options,
                writer,
                relaxed,
                reader,
            }),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), SqliteError> {
        let mut retry = self.retry();
        loop {
            let e = match self.try_migrate().await {
                Ok(()) => return Ok(()),
                Err(e) => e,
            };
            let busy = crate::error::is_busy(&e);
            if !(busy && retry.wait().await) {
                return Err(
                    SqliteError::from_sqlx(self.path(), "open the database file", e)
                        .with_waited(retry.waited()),
                );
            }
        }
    }

    async fn try_migrate(&self) -> Result<(), sqlx::Error> {
        let mut migrator = sqlx::migrate!();
        // A newer component sharing the file may have migrated it further:
        // migrations are additive, so an older one keeps working.
        migrator.set_ignore_missing(true);
        // The immediate transaction makes a second process opening the file
        // wait until the first has migrated (sqlx takes no lock on SQLite);
        // sqlx runs each migration in a savepoint inside it.
        let mut tx = self.inner.writer.begin_with("BEGIN IMMEDIATE").await?;
        migrator.run_direct(&mut *tx).await?;
        tx.commit().await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// `PRAGMA integrity_check`: `"ok"`, or SQLite's list of problems.
    pub async fn integrity_check(&self) -> Result<String, SqliteError> {
        let rows: Vec<(String,)> = sqlx::query_as("PRAGMA integrity_check")
            .fetch_all(&self.inner.reader)
            .await
            .map_err(|e| SqliteError::from_sqlx(self.path(), "check the integrity", e))?;
        Ok(rows
            .into_iter()
            .map(|(line,)| line)
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// Start a write transaction (`BEGIN IMMEDIATE`, contention waited out),
    /// for a caller that stores its own rows and their outbox entries
    /// together. See [`WriteTx`].
    pub async fn begin_write(&self) -> Result<WriteTx, SqliteError> {
        let mut retry = self.retry();
        loop {
            let e = match self.begin_immediate().await {
                Ok(tx) => {
                    return Ok(WriteTx {
                        store: self.clone(),
                        tx,
                    });
                }
                Err(e) => e,
            };
            let busy = crate::error::is_busy(&e);
            if !(busy && retry.wait().await) {
                return Err(
                    SqliteError::from_sqlx(self.path(), "start a write transaction", e)
                        .with_waited(retry.waited()),
                );
            }
        }
    }

    /// Close the connections (the last one to close checkpoints the WAL).
    pub async fn close(&self) {
        self.inner.writer.close().await;
        self.inner.relaxed.close().await;
        self.inner.reader.close().await;
    }

    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.inner.reader
    }

    /// A write transaction that holds SQLite's write lock from its start, so
    /// no statement inside it can fail with `SQLITE_BUSY` (a deferred
    /// transaction that upgrades to a write fails at once in WAL mode,
    /// whatever `busy_timeout` says).
    /// A write transaction whose commit is durable (`synchronous=FULL`).
    pub(crate) async fn begin_immediate(
        &self,
    ) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.inner.writer.begin_with("BEGIN IMMEDIATE").await
    }

    /// A write transaction for data that can be derived again
    /// (`synchronous=NORMAL`); see [`Inner::relaxed`].
    pub(crate) async fn begin_relaxed(&self) -> Result<Transaction<'static, Sqlite>, sqlx::Error> {
        self.inner.relaxed.begin_with("BEGIN IMMEDIATE").await
    }

    pub(crate) fn retry(&self) -> Retry {
        Retry::new(self.inner.options.retry_for)
    }
}

/// Backoff while the database is busy: 2 ms doubling to 20 ms, plus jitter of
/// up to as much again so that two processes do not retry in lockstep. Short,
/// because SQLite does not queue waiters: whoever asks first after a commit
/// gets the lock, so a waiter that sleeps long keeps losing.
#[derive(Debug)]
pub(crate) struct Retry {
    start: Instant,
    limit: Duration,
    delay: Duration,
}

impl Retry {
    fn new(limit: Duration) -> Self {
        Retry {
            start: Instant::now(),
            limit,
            delay: Duration::from_millis(2),
        }
    }

    /// Sleep before the next attempt; `false` (at once) when the time is up.
    pub(crate) async fn wait(&mut self) -> bool {
        let elapsed = self.start.elapsed();
        if elapsed >= self.limit {
            return false;
        }
        // Jitter of up to the delay itself; uuid's random bits spare a dependency.
        let jitter_ms = (uuid::Uuid::new_v4().as_u128() % (self.delay.as_millis().max(1))) as u64;
        let pause = (self.delay + Duration::from_millis(jitter_ms)).min(self.limit - elapsed);
        tracing::debug!(
            pause_ms = pause.as_millis() as u64,
            waited_ms = elapsed.as_millis() as u64,
            "local store busy, trying again"
        );
        tokio::time::sleep(pause).await;
        self.delay = (self.delay * 2).min(Duration::from_millis(20));
        true
    }

    pub(crate) fn waited(&self) -> Duration {
        self.start.elapsed()
    }
}

/// A write transaction on the store's file, for a caller that keeps its own
/// rows in the same database and must queue operations atomically with them
/// (SpaceFuel stores a fuel sale and its `fuel.sale.completed` operation
/// together: both or neither).
///
/// Started by [`SqliteStore::begin_write`] with `BEGIN IMMEDIATE`: it holds the
/// database's write lock until [`commit`](Self::commit) or
/// [`rollback`](Self::rollback) (dropping it rolls back), so keep it short, and
/// do not call the store's other write methods while holding it (they would
/// wait for it, up to [`StoreOptions::retry_for`], and then fail). Reads
/// through the store meanwhile see the state before the transaction.
///
/// The caller's own tables are the caller's business: create them with
/// `CREATE TABLE IF NOT EXISTS` (or migrations of its own) under names that do
/// not start with `entities`, `checkpoints`, `inbox`, `outbox`, `config_state`
/// or `_sqlx`.
#[derive(Debug)]
pub struct WriteTx {
    store: SqliteStore,
    tx: Transaction<'static, Sqlite>,
}

impl WriteTx {
    /// The connection, to run the caller's own statements inside the
    /// transaction (`sqlx::query(..).execute(tx.connection())`).
    pub fn connection(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }

    /// Queue operations inside this transaction, with the same rules as
    /// [`Outbox::enqueue`](spacepos_sync::Outbox::enqueue) (idempotent by id; a
    /// different operation under a queued id is [`StoreError::Conflict`] and
    /// queues none of `operations`, leaving the rest of the transaction as it
    /// was). Durable once [`commit`](Self::commit) returns.
    pub async fn enqueue(
        &mut self,
        operations: &[NewOperation],
    ) -> Result<Vec<QueuedOperation>, StoreError> {
        let action = format!("queue {} operation(s)", operations.len());
        let path = self.store.path().to_owned();
        let result = async {
            let mut savepoint = sqlx::Connection::begin(&mut *self.tx).await?;
            let queued = crate::outbox::enqueue_in(&mut savepoint, operations, Utc::now()).await?;
            savepoint.commit().await?;
            Ok::<_, Fail>(queued)
        }
        .await;
        result.map_err(|fail| fail.into_store(&path, &action, Duration::ZERO))
    }

    /// Commit: the caller's rows and the queued operations become durable together.
    pub async fn commit(self) -> Result<(), SqliteError> {
        let path = self.store.path().to_owned();
        self.tx
            .commit()
            .await
            .map_err(|e| SqliteError::from_sqlx(&path, "commit a write transaction", e))
    }

    /// Roll back: nothing of the transaction stays.
    pub async fn rollback(self) -> Result<(), SqliteError> {
        let path = self.store.path().to_owned();
        self.tx
            .rollback()
            .await
            .map_err(|e| SqliteError::from_sqlx(&path, "roll back a write transaction", e))
    }
}
