//! Events the terminal consumes, decoded, and the port that decodes them.

use async_trait::async_trait;
use spacepos_core::ComponentId;
use uuid::Uuid;

use crate::model::DatasetEvent;
use crate::ports::Delivery;

/// A consumed integration event (contract section 7), as the domain sees it.
#[derive(Debug, Clone, PartialEq)]
pub enum BusEvent {
    /// `DatasetChangedIntegrationEvent`.
    DatasetChanged(DatasetEvent),
    /// `POSPresenceIntervalUpdatedIntegrationEvent`.
    PresenceIntervalUpdated {
        event_id: Uuid,
        /// `None`: every terminal of `store_number` (or every terminal).
        client_id: Option<String>,
        store_number: Option<u32>,
        interval_seconds: u32,
        report_presence: Option<bool>,
    },
    /// `POSReleasePublishedIntegrationEvent`.
    ReleasePublished {
        event_id: Uuid,
        /// `None` for a component this build does not know.
        component: Option<ComponentId>,
        version: String,
        store_number: Option<u32>,
    },
}

impl BusEvent {
    pub fn event_id(&self) -> Uuid {
        match self {
            BusEvent::DatasetChanged(e) => e.event_id,
            BusEvent::PresenceIntervalUpdated { event_id, .. }
            | BusEvent::ReleasePublished { event_id, .. } => *event_id,
        }
    }
}

/// Why a delivery cannot be decoded: it is poison, to be dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Undecodable(pub String);

/// Turns a delivery's bytes into a [`BusEvent`] (the wire format lives in an adapter).
///
/// Contract: every example event of the contract decodes; a body that is not
/// the contract's JSON for its type, or a type the terminal does not consume,
/// is [`Undecodable`] with a reason a person can act on (never the body itself:
/// it may hold secrets).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait EventDecoder: Send + Sync + 'static {
    fn decode(&self, delivery: &Delivery) -> Result<BusEvent, Undecodable>;
}

/// Why a handler could not apply an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    /// Local trouble (disk full, busy): keep the event, try again.
    #[error("{0}")]
    Transient(String),
    /// The event can never be applied: dead-letter it.
    #[error("{0}")]
    Permanent(String),
}

/// Applies consumed events other than dataset changes (presence settings,
/// release announcements). Their effects are idempotent, so a duplicate
/// delivery is harmless.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait BusEventHandler: Send + Sync + 'static {
    async fn handle(&self, event: &BusEvent) -> Result<(), HandleError>;
}
