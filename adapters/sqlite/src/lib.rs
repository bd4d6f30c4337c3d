//! The shared local store of a SpacePOS node, in one SQLite file (sqlx).
//!
//! Owns the node's durable sync data: the entities of the ERP's datasets
//! (`entities`, tombstones included), where each dataset stands (`checkpoints`:
//! last sequence, a snapshot in progress with its next cursor, the generation
//! used to sweep entities a reseed no longer contains), the ids of the events
//! applied (`inbox`), the queue of outbound operations (`outbox`, creation order
//! across processes in `seq`), and small runtime facts (`config_state`). The
//! schema lives in `migrations/`, embedded with `sqlx::migrate!` and applied
//! when the file is opened; migrations stay additive, and versions the binary
//! does not know are ignored, so an older process sharing the file keeps working.
//!
//! Ports implemented by [`SqliteStore`]: [`spacepos_sync::LocalStore`],
//! [`spacepos_sync::Outbox`] and [`spacepos_config::ConfigStateStore`]. A
//! caller that keeps its own rows in the same file (SpaceFuel: a fuel sale and
//! its outbox operation, both or neither) uses [`SqliteStore::begin_write`] and
//! [`WriteTx`].
//!
//! Pragmas on every connection, and why:
//! - `journal_mode=WAL`: readers never block the writer nor the writer them;
//! - `synchronous=FULL` on the connection that enqueues operations (and on
//!   [`WriteTx`]): such a commit survives a power cut (an enqueued sale is
//!   money); it costs an fsync (about 3 ms). `synchronous=NORMAL` on a second
//!   write connection for what can be derived again if a power cut loses the
//!   last commits: dataset pages, changes and events with their inbox ids (the
//!   sequences bring them back through catch-up), operation results and
//!   failures (a resend is answered `duplicate`), `config_state`. Every commit
//!   is atomic and survives a crash of the process; WAL frames are synced in
//!   order, so the next `FULL` commit makes the earlier ones durable too. Bulk
//!   paths write a whole snapshot page, changes page or event batch in one
//!   transaction, with multi-row statements of up to 500 rows;
//! - `foreign_keys=ON`;
//! - `busy_timeout` ([`StoreOptions::busy_timeout`], 50 ms): SQLite's own
//!   wait, short because the store's retries poll more finely (see there).
//!
//! **Two processes share the file** (the till app and the SpaceFuel service),
//! so contention is normal and never reaches a caller as an error: every write
//! transaction starts with `BEGIN IMMEDIATE` (a deferred transaction that
//! upgrades to a write fails at once with `SQLITE_BUSY` in WAL mode, whatever
//! `busy_timeout` says), a unit of work that meets `SQLITE_BUSY` or
//! `SQLITE_LOCKED` beyond `busy_timeout` runs again with a short backoff for up to
//! [`StoreOptions::retry_for`] (60 s), and only then becomes
//! [`StoreError::Unavailable`](spacepos_sync::StoreError::Unavailable). Within
//! one process, writes queue for a single write connection. Disk full and I/O
//! errors are `Unavailable` too: the caller tries again later and drops
//! nothing. Every error names the database file; a file that is not a
//! database says so and what to do.

mod codec;
mod config_state;
mod error;
mod local_store;
mod outbox;
mod store;

pub use error::{ErrorKind, SqliteError};
pub use store::{SqliteStore, StoreOptions, WriteTx};

/// The sqlx this crate is built with, for statements run through
/// [`WriteTx::connection`].
pub use sqlx;
