//! Blue/green slots: the ports the switch drives.

use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use spacepos_config::Slot;

/// What an extracted slot holds, read from its `slot.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotManifest {
    pub version: String,
    /// The program to start, relative to the slot directory.
    pub entry: String,
}

/// Why a slot operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    /// The artifact tries to write outside the slot (`..`, an absolute path,
    /// a link pointing out): nothing was written outside the slot.
    #[error("the artifact {artifact} is unsafe: {entry:?} {problem}; nothing was extracted")]
    Unsafe {
        artifact: String,
        entry: String,
        problem: String,
    },
    /// The artifact is not a usable zip, or lacks `slot.json`.
    #[error("the artifact {artifact} cannot be installed: {problem}")]
    Invalid { artifact: String, problem: String },
    /// The slot has no complete extraction (interrupted, or never staged).
    #[error("slot {slot} holds no complete installation")]
    Incomplete { slot: Slot },
    #[error("slot {slot}: {detail}")]
    Io { slot: Slot, detail: String },
}

/// The two installation directories `extensions/spacefuel/{blue,green}`.
///
/// Contract (checked by `spacepos_testkit::suites::slot_fs`):
/// - `extract` first checks every entry of the zip; an entry that would land
///   outside the slot (`..`, absolute, a link) fails the whole extraction
///   before anything is written, leaving the slot as it was. Then it empties
///   the slot, writes every entry inside it, and only then marks it complete.
/// - `manifest` of a slot that is not complete is [`SlotError::Incomplete`]:
///   a half-extracted slot is never taken for an installation.
/// - `clear` removes the slot's content and its completion mark.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SlotFs: Send + Sync + 'static {
    async fn extract(&self, slot: Slot, artifact: PathBuf) -> Result<SlotManifest, SlotError>;
    async fn manifest(&self, slot: Slot) -> Result<SlotManifest, SlotError>;
    async fn clear(&self, slot: Slot) -> Result<(), SlotError>;
    /// The directory of `slot` (for the service manager to run from).
    fn dir(&self, slot: Slot) -> PathBuf;
}

/// What the service is doing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "camelCase")]
pub enum ServiceState {
    Running {
        slot: Slot,
        pid: Option<u32>,
    },
    Starting {
        slot: Slot,
    },
    Stopped,
    /// The service stopped by itself (crashed, or refused to start).
    Failed {
        reason: String,
    },
    /// Not installed as a service on this machine.
    NotInstalled,
}

/// Why the service manager failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    #[error("the SpaceFuel service could not be started from slot {slot}: {detail}")]
    Start { slot: Slot, detail: String },
    #[error("the SpaceFuel service did not stop: {0}")]
    Stop(String),
    #[error("the service manager failed: {0}")]
    Manager(String),
}

/// Runs the SpaceFuel service from a slot: the Windows Service Control Manager
/// on Windows, a process supervisor elsewhere.
///
/// Contract (checked by `spacepos_testkit::suites::service_manager`):
/// - `start(slot)` runs the slot's entry program; it never starts a slot whose
///   extraction is not complete.
/// - `stop` ends the service gracefully (it finishes its current step), and
///   forcibly after a grace period; stopping a stopped service is fine.
/// - `state` reports what runs now, including a crash after a start.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ServiceManager: Send + Sync + 'static {
    async fn start(&self, slot: Slot) -> Result<(), ServiceError>;
    async fn stop(&self) -> Result<(), ServiceError>;
    async fn state(&self) -> ServiceState;
}

/// Whether the service started from a slot is healthy.
///
/// Contract: `check` answers at once (no waiting inside); the switch polls it
/// until the grace period ends. Healthy means the service runs the expected
/// version and says it is ready (controller connected).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait HealthProbe: Send + Sync + 'static {
    async fn check(&self, slot: Slot, version: &str) -> Result<(), String>;
    /// The service's last report, whatever it says (`None`: there is none,
    /// or it cannot be read).
    async fn report(&self) -> Option<HealthReport>;
}

/// What a running SpaceFuel service says about itself, written by the service
/// to `extensions/spacefuel/health.json` (atomically) and read by the file
/// [`HealthProbe`] of `spacepos-fs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    /// The slot the service was started from.
    pub slot: Slot,
    /// The version the running binary reports (its own build version).
    pub version: String,
    pub pid: u32,
    /// Ready to serve: the fuel controller answers.
    pub ready: bool,
    /// Why it is not ready, when it is not.
    pub detail: Option<String>,
    pub at: chrono::DateTime<chrono::Utc>,
    /// The pumps as the controller last reported them (for the till's status
    /// and the safe point of an update).
    #[serde(default)]
    pub pumps: Vec<crate::forecourt::Pump>,
    /// The controller's sale buffer (finished deliveries not cleared yet).
    #[serde(default)]
    pub sales: Vec<crate::forecourt::FuelSaleTrx>,
}

/// The file name of the health report, in the `extensions/spacefuel` directory.
pub const HEALTH_FILE: &str = "health.json";
/// The file name of a slot's manifest, inside the slot directory.
pub const SLOT_MANIFEST_FILE: &str = "slot.json";
