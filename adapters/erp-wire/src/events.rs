//! Integration events (contract section 7), PascalCase as the ERP's eShop-style
//! event bus writes them. The routing key and the AMQP `type` property of each
//! message is its [`IntegrationEvent::NAME`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use spacepos_core::{ComponentId, Secret};
use uuid::Uuid;

/// What every integration event has: a type name (routing key), an `Id` and a `CreationDate`.
pub trait IntegrationEvent: Serialize + for<'de> Deserialize<'de> {
    /// The event type name: routing key and AMQP `type` property.
    const NAME: &'static str;
    fn id(&self) -> Uuid;
    fn creation_date(&self) -> DateTime<Utc>;
}

macro_rules! integration_event {
    ($ty:ident, $name:literal) => {
        impl IntegrationEvent for $ty {
            const NAME: &'static str = $name;
            fn id(&self) -> Uuid {
                self.id
            }
            fn creation_date(&self) -> DateTime<Utc> {
                self.creation_date
            }
        }
    };
}

/// Component name as events spell it: `SpacePOS` or `SpaceFuel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventComponent {
    #[serde(rename = "SpacePOS")]
    SpacePos,
    #[serde(rename = "SpaceFuel")]
    SpaceFuel,
}

impl From<ComponentId> for EventComponent {
    fn from(c: ComponentId) -> Self {
        match c {
            ComponentId::SpacePos => EventComponent::SpacePos,
            ComponentId::SpaceFuel => EventComponent::SpaceFuel,
        }
    }
}

impl From<EventComponent> for ComponentId {
    fn from(c: EventComponent) -> Self {
        match c {
            EventComponent::SpacePos => ComponentId::SpacePos,
            EventComponent::SpaceFuel => ComponentId::SpaceFuel,
        }
    }
}

/// `Status` of a component in a presence beat.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ComponentStatusKind {
    Running,
    Degraded,
    Stopped,
    Updating,
    NotInstalled,
}

/// `Result` of an applied update.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ApplyResult {
    Applied,
    RolledBack,
    Failed,
}

/// A SpaceFuel slot, lower case on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WireSlot {
    Blue,
    Green,
}

// ---- published by the terminal ---------------------------------------------

/// `POSPresenceEvent`: the periodic heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PosPresenceEvent {
    pub id: Uuid,
    pub creation_date: DateTime<Utc>,
    pub client_id: String,
    pub client_secret: Secret,
    pub store_number: u32,
    pub terminal_number: u32,
    pub instance_id: Uuid,
    pub store_staff_id: Option<String>,
    pub components: Vec<ComponentStatus>,
    pub sync: SyncSummary,
    pub interval_seconds: u32,
    pub next_expected_at: DateTime<Utc>,
}
integration_event!(PosPresenceEvent, "POSPresenceEvent");

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ComponentStatus {
    pub component: EventComponent,
    pub version: String,
    pub status: ComponentStatusKind,
    pub active_slot: Option<WireSlot>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SyncSummary {
    pub pending_operations: u64,
    pub oldest_pending_age_seconds: Option<u64>,
    pub parked_operations: u64,
    pub last_event_applied_at: Option<DateTime<Utc>>,
}

/// `POSComponentReadyEvent`: an update was downloaded, verified and staged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PosComponentReadyEvent {
    pub id: Uuid,
    pub creation_date: DateTime<Utc>,
    pub client_id: String,
    pub store_number: u32,
    pub terminal_number: u32,
    pub component: EventComponent,
    pub version: String,
    pub staged_at: DateTime<Utc>,
    pub slot: Option<WireSlot>,
}
integration_event!(PosComponentReadyEvent, "POSComponentReadyEvent");

/// `POSComponentAppliedEvent`: an update was applied, rolled back or failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PosComponentAppliedEvent {
    pub id: Uuid,
    pub creation_date: DateTime<Utc>,
    pub client_id: String,
    pub store_number: u32,
    pub terminal_number: u32,
    pub component: EventComponent,
    pub version: String,
    pub previous_version: Option<String>,
    pub result: ApplyResult,
    pub error: Option<String>,
    pub applied_at: DateTime<Utc>,
}
integration_event!(PosComponentAppliedEvent, "POSComponentAppliedEvent");

// ---- consumed by the terminal ----------------------------------------------

/// `POSPresenceIntervalUpdatedIntegrationEvent`: the ERP changes the beat.
/// `ClientId` null = every terminal of `StoreNumber`; both null = every terminal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PosPresenceIntervalUpdatedIntegrationEvent {
    pub id: Uuid,
    pub creation_date: DateTime<Utc>,
    pub client_id: Option<String>,
    pub store_number: Option<u32>,
    pub presence_interval_seconds: u32,
    pub report_presence: Option<bool>,
}
integration_event!(
    PosPresenceIntervalUpdatedIntegrationEvent,
    "POSPresenceIntervalUpdatedIntegrationEvent"
);

/// `DatasetChangedIntegrationEvent`: one change of one dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DatasetChangedIntegrationEvent {
    pub id: Uuid,
    pub creation_date: DateTime<Utc>,
    pub dataset: String,
    pub sequence: u64,
    pub store_number: Option<u32>,
    pub items: Vec<DatasetChangedItem>,
}
integration_event!(
    DatasetChangedIntegrationEvent,
    "DatasetChangedIntegrationEvent"
);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct DatasetChangedItem {
    pub id: String,
    pub version: u64,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub data: Value,
}

/// `POSReleasePublishedIntegrationEvent`: check pending releases now.
/// `Component` stays a string so an unknown component is ignored, not dead-lettered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct PosReleasePublishedIntegrationEvent {
    pub id: Uuid,
    pub creation_date: DateTime<Utc>,
    pub component: String,
    pub version: String,
    pub store_number: Option<u32>,
}
integration_event!(
    PosReleasePublishedIntegrationEvent,
    "POSReleasePublishedIntegrationEvent"
);

/// Names of the events a terminal consumes: the bindings of its queue.
pub const CONSUMED_EVENTS: [&str; 3] = [
    PosPresenceIntervalUpdatedIntegrationEvent::NAME,
    DatasetChangedIntegrationEvent::NAME,
    PosReleasePublishedIntegrationEvent::NAME,
];
