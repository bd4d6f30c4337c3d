//! Presence: the heartbeat every terminal sends so the ERP sees the fleet.
//!
//! Owns the assembly of `POSPresenceEvent` ([`PresenceBeat`]: component
//! statuses, the staff member logged in, the client credentials the ERP
//! correlates by, the installation's `InstanceId`, a sync summary, the interval
//! and `NextExpectedAt`), the [`Heartbeat`] loop (first beat at a random offset
//! within the interval so a fleet restarted together does not beat in
//! lockstep, then every interval ±10%, only while `report_presence` is on, best
//! effort: a missed beat is not queued), and [`PresenceSettingsHandler`], which
//! applies `POSPresenceIntervalUpdatedIntegrationEvent` for this terminal, its
//! store or everyone (interval clamped to 30..=86400 s), persists it, and makes
//! the next beat use it without a restart.
//!
//! Ports declared here: [`ComponentStatusSource`], [`StaffSessionSource`],
//! [`SyncSummarySource`] (answered by the apps and the runtime) and
//! [`PresenceEncoder`] (the wire format, implemented by `spacepos-amqp`); it
//! publishes through sync's `EventPublisher`.

mod beat;
mod heartbeat;
mod settings;

pub use beat::{
    ComponentReport, ComponentState, ComponentStatusSource, PresenceBeat, PresenceEncoder,
    StaffSessionSource, SyncSummary, SyncSummarySource,
};
pub use heartbeat::{BeatRecord, Heartbeat, first_offset, jittered_interval};
pub use settings::{PresenceControl, PresenceSettings, PresenceSettingsHandler, clamp_interval};

#[cfg(any(test, feature = "mocks"))]
pub use beat::{MockComponentStatusSource, MockStaffSessionSource, MockSyncSummarySource};
