//! File-system adapter of SpacePOS.
//!
//! Owns the small JSON files of the data directory: `state.json` (runtime
//! update state, SpaceFuel's blue/green tracking), `terminal.json` (what the
//! ERP assigned to this terminal, client secret included), `session.json` (the
//! staff session's tokens) and `jwks.json` (the ERP's JWT keys). Each is written
//! atomically and durably ([`atomic`]: temp file, fsync, rename, directory
//! fsync), keeps a last-good copy `X.bak`, is guarded by a cross-process lock
//! file `X.lock`, and is recovered when damaged ([`durable`]): restored from
//! the backup with one warning, or, when both copies are unreadable, reset
//! (`state.json`) or refused with instructions to re-onboard (`terminal.json`).
//!
//! Ports implemented: [`spacepos_config::StateStore`] by [`FileStateStore`] and
//! [`spacepos_config::TerminalConfigStore`] by [`FileTerminalStore`],
//! [`spacepos_auth::CredentialStore`] by [`FileCredentialStore`],
//! [`spacepos_updates::ArtifactStore`] by [`FileArtifactStore`] (the staging
//! area of component updates, `<data-dir>/updates/`),
//! [`spacepos_spacefuel::SlotFs`] by [`FsSlots`] (SpaceFuel's blue/green
//! slots in `<data-dir>/extensions/spacefuel/`: zip artifacts checked entry by
//! entry before anything is written, completion markers outside the slots) and
//! [`spacepos_spacefuel::HealthProbe`] by [`FileHealthProbe`] (the service's
//! `health.json` there, written with [`write_health_report`]). Blocking I/O
//! runs on tokio's blocking pool.

mod artifact_store;
pub mod atomic;
mod blocking;
mod credential_store;
pub mod durable;
mod error;
mod health;
mod slots;
mod state_store;
mod terminal_store;

pub use artifact_store::{FileArtifactStore, UPDATES_DIR};
pub use credential_store::{FileCredentialStore, JWKS_FILE, SESSION_FILE};
pub use error::FsError;
pub use health::{FileHealthProbe, write_health_report};
pub use slots::{FsSlots, SLOT_COMPLETE_SUFFIX};
pub use state_store::{FileStateStore, STATE_FILE};
pub use terminal_store::{FileTerminalStore, TERMINAL_FILE};
