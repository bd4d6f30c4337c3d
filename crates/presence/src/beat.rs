//! What a beat says, and the ports that answer it.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use spacepos_config::Slot;
use spacepos_core::{ComponentId, Secret};
use spacepos_sync::OutgoingEvent;
use uuid::Uuid;

/// `Status` of a component in a beat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ComponentState {
    Running,
    Degraded,
    Stopped,
    Updating,
    NotInstalled,
}

/// One component of the terminal, as the beat reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentReport {
    pub component: ComponentId,
    pub version: String,
    pub state: ComponentState,
    /// SpaceFuel's active slot; `None` for SpacePOS.
    pub active_slot: Option<Slot>,
    pub detail: Option<String>,
}

/// The sync part of a beat.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SyncSummary {
    pub pending_operations: u64,
    pub oldest_pending_age_seconds: Option<u64>,
    pub parked_operations: u64,
    pub last_event_applied_at: Option<DateTime<Utc>>,
}

/// A `POSPresenceEvent`, as the domain assembles it.
#[derive(Debug, Clone, PartialEq)]
pub struct PresenceBeat {
    pub event_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub client_id: String,
    /// The ERP correlates beats by the client credentials (contract section 7):
    /// sent only over amqps or loopback, never logged.
    pub client_secret: Secret,
    pub store_number: u32,
    pub terminal_number: u32,
    pub instance_id: Uuid,
    pub store_staff_id: Option<String>,
    pub components: Vec<ComponentReport>,
    pub sync: SyncSummary,
    pub interval_seconds: u32,
    pub next_expected_at: DateTime<Utc>,
}

/// Which components run on this terminal and how they are.
///
/// Contract: SpacePOS is reported where the till runs, SpaceFuel only where it
/// is installed; never fails (an unknown state is reported as such).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ComponentStatusSource: Send + Sync + 'static {
    async fn components(&self) -> Vec<ComponentReport>;
}

/// Who is logged in at the till now (`StoreStaffId`), if anybody.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait StaffSessionSource: Send + Sync + 'static {
    async fn current_staff_id(&self) -> Option<String>;
}

/// The outbox and inbox figures of the beat.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SyncSummarySource: Send + Sync + 'static {
    async fn summary(&self) -> SyncSummary;
}

/// The wire format of a beat (implemented with the ERP's wire types).
///
/// Contract: the result is the contract's `POSPresenceEvent` (PascalCase
/// JSON), type `POSPresenceEvent`, message id = the beat's `event_id`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait PresenceEncoder: Send + Sync + 'static {
    fn encode(&self, beat: &PresenceBeat) -> OutgoingEvent;
}
