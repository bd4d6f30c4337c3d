//! [`WireTrackingEncoder`]: the updates domain's Ready/Applied records as the
//! contract's `POSComponentReadyEvent` / `POSComponentAppliedEvent` bodies
//! (PascalCase, through `spacepos-erp-wire`), ready for the outbox; the bus
//! sender publishes them with confirms.

use spacepos_config::{Slot, UpdateResult};
use spacepos_erp_wire::events::{
    ApplyResult, IntegrationEvent, PosComponentAppliedEvent, PosComponentReadyEvent, WireSlot,
};
use spacepos_updates::{AppliedRecord, ReadyRecord, TrackingEncoder, TrackingError, TrackingEvent};

/// Encodes tracking events in the contract's wire format. Implements
/// [`TrackingEncoder`] for the updates domain.
#[derive(Debug, Clone, Copy, Default)]
pub struct WireTrackingEncoder;

fn slot(s: Slot) -> WireSlot {
    match s {
        Slot::Blue => WireSlot::Blue,
        Slot::Green => WireSlot::Green,
    }
}

fn result(r: UpdateResult) -> ApplyResult {
    match r {
        UpdateResult::Applied => ApplyResult::Applied,
        UpdateResult::RolledBack => ApplyResult::RolledBack,
        UpdateResult::Failed => ApplyResult::Failed,
    }
}

fn encode<E: IntegrationEvent>(event: &E) -> Result<TrackingEvent, TrackingError> {
    Ok(TrackingEvent {
        event_type: E::NAME.to_owned(),
        payload: serde_json::to_value(event).map_err(|e| TrackingError(e.to_string()))?,
    })
}

impl TrackingEncoder for WireTrackingEncoder {
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
            slot: r.slot.map(slot),
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
            result: result(r.result),
            error: r.error.clone(),
            applied_at: r.applied_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use spacepos_core::{ComponentId, TerminalIdentity};

    use super::*;

    fn example(name: &str) -> serde_json::Value {
        let path = format!(
            "{}/../../docs/contract/examples/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        serde_json::from_str(&std::fs::read_to_string(path).expect("example")).expect("json")
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn terminal() -> TerminalIdentity {
        TerminalIdentity {
            client_id: "trm_5f1c2a9e0b7d4e31".into(),
            store_number: 12,
            terminal_number: 3,
        }
    }

    #[test]
    fn records_encode_exactly_as_the_contract_examples() {
        let ready = WireTrackingEncoder
            .ready(&ReadyRecord {
                event_id: "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".parse().unwrap(),
                terminal: terminal(),
                component: ComponentId::SpaceFuel,
                version: "2.2.0".into(),
                staged_at: at("2026-11-24T08:31:12Z"),
                slot: Some(Slot::Green),
            })
            .unwrap();
        assert_eq!(ready.event_type, "POSComponentReadyEvent");
        assert_eq!(ready.payload, example("POSComponentReadyEvent"));

        let applied = WireTrackingEncoder
            .applied(&AppliedRecord {
                event_id: "c4d5e6f7-0819-4a2b-9c3d-4e5f60718293".parse().unwrap(),
                terminal: terminal(),
                component: ComponentId::SpaceFuel,
                version: "2.2.0".into(),
                previous_version: Some("2.1.0".into()),
                result: UpdateResult::RolledBack,
                error: Some("health check failed: service did not report ready within 60 s".into()),
                applied_at: at("2026-11-24T08:45:03Z"),
            })
            .unwrap();
        assert_eq!(applied.event_type, "POSComponentAppliedEvent");
        assert_eq!(applied.payload, example("POSComponentAppliedEvent"));
    }
}
