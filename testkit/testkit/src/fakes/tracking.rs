//! [`MemoryTrackingEncoder`]: Ready/Applied records in the contract's wire
//! format (through `spacepos-erp-wire`, like the AMQP adapter's encoder).

use spacepos_config::{Slot, UpdateResult};
use spacepos_erp_wire::events::{
    ApplyResult, IntegrationEvent, PosComponentAppliedEvent, PosComponentReadyEvent, WireSlot,
};
use spacepos_updates::{AppliedRecord, ReadyRecord, TrackingEncoder, TrackingError, TrackingEvent};

/// A [`TrackingEncoder`] for tests, writing the same JSON as
/// `spacepos_amqp::WireTrackingEncoder` (both pass the `tracking_encoder` suite).
#[derive(Debug, Clone, Copy, Default)]
pub struct MemoryTrackingEncoder;

fn encode<E: IntegrationEvent>(event: &E) -> Result<TrackingEvent, TrackingError> {
    Ok(TrackingEvent {
        event_type: E::NAME.to_owned(),
        payload: serde_json::to_value(event).map_err(|e| TrackingError(e.to_string()))?,
    })
}

impl TrackingEncoder for MemoryTrackingEncoder {
    fn ready(&self, r: &ReadyRecord) -> Result<TrackingEvent, TrackingError> {
        encode(&PosComponentReadyEvent {
            id: r.event_id,
            creation_date: r.staged_at,
            client_id: r.terminal.client_id.clone(),
            store_number: r.terminal.store_number,
            terminal_number: r.terminal.terminal_number,
            component: r.component.into(),
            version: r.version.clone(),
            staged_at: r.staged_at,
            slot: r.slot.map(|s| match s {
                Slot::Blue => WireSlot::Blue,
                Slot::Green => WireSlot::Green,
            }),
        })
    }

    fn applied(&self, r: &AppliedRecord) -> Result<TrackingEvent, TrackingError> {
        encode(&PosComponentAppliedEvent {
            id: r.event_id,
            creation_date: r.applied_at,
            client_id: r.terminal.client_id.clone(),
            store_number: r.terminal.store_number,
            terminal_number: r.terminal.terminal_number,
            component: r.component.into(),
            version: r.version.clone(),
            previous_version: r.previous_version.clone(),
            result: match r.result {
                UpdateResult::Applied => ApplyResult::Applied,
                UpdateResult::RolledBack => ApplyResult::RolledBack,
                UpdateResult::Failed => ApplyResult::Failed,
            },
            error: r.error.clone(),
            applied_at: r.applied_at,
        })
    }
}
