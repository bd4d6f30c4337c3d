//! [`WirePresenceEncoder`]: a presence beat in the contract's wire format.

use spacepos_config::Slot;
use spacepos_erp_wire::events::{
    ComponentStatus, ComponentStatusKind, EventComponent, IntegrationEvent, PosPresenceEvent,
    SyncSummary, WireSlot,
};
use spacepos_presence::{ComponentState, PresenceBeat, PresenceEncoder};
use spacepos_sync::OutgoingEvent;

/// Encodes [`PresenceBeat`]s as `POSPresenceEvent` (PascalCase JSON).
/// Implements presence's [`PresenceEncoder`].
#[derive(Debug, Clone, Copy, Default)]
pub struct WirePresenceEncoder;

pub(crate) fn wire_slot(slot: Slot) -> WireSlot {
    match slot {
        Slot::Blue => WireSlot::Blue,
        Slot::Green => WireSlot::Green,
    }
}

impl PresenceEncoder for WirePresenceEncoder {
    fn encode(&self, beat: &PresenceBeat) -> OutgoingEvent {
        let event = PosPresenceEvent {
            id: beat.event_id,
            creation_date: beat.created_at,
            client_id: beat.client_id.clone(),
            client_secret: beat.client_secret.clone(),
            store_number: beat.store_number,
            terminal_number: beat.terminal_number,
            instance_id: beat.instance_id,
            store_staff_id: beat.store_staff_id.clone(),
            components: beat
                .components
                .iter()
                .map(|c| ComponentStatus {
                    component: EventComponent::from(c.component),
                    version: c.version.clone(),
                    status: match c.state {
                        ComponentState::Running => ComponentStatusKind::Running,
                        ComponentState::Degraded => ComponentStatusKind::Degraded,
                        ComponentState::Stopped => ComponentStatusKind::Stopped,
                        ComponentState::Updating => ComponentStatusKind::Updating,
                        ComponentState::NotInstalled => ComponentStatusKind::NotInstalled,
                    },
                    active_slot: c.active_slot.map(wire_slot),
                    detail: c.detail.clone(),
                })
                .collect(),
            sync: SyncSummary {
                pending_operations: beat.sync.pending_operations,
                oldest_pending_age_seconds: beat.sync.oldest_pending_age_seconds,
                parked_operations: beat.sync.parked_operations,
                last_event_applied_at: beat.sync.last_event_applied_at,
            },
            interval_seconds: beat.interval_seconds,
            next_expected_at: beat.next_expected_at,
        };
        OutgoingEvent {
            event_type: PosPresenceEvent::NAME.to_owned(),
            message_id: beat.event_id,
            // Serializing this plain struct cannot fail.
            body: serde_json::to_vec(&event).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use spacepos_core::{ComponentId, Secret};
    use spacepos_presence::{ComponentReport, SyncSummary as DomainSync};
    use uuid::Uuid;

    use super::*;

    #[test]
    fn the_contract_example_is_what_a_beat_encodes_to() {
        let example = include_str!("../../../docs/contract/examples/POSPresenceEvent.json");
        let expected: serde_json::Value = serde_json::from_str(example).unwrap();
        let at = |h, m, s| Utc.with_ymd_and_hms(2026, 11, 24, h, m, s).unwrap();
        let beat = PresenceBeat {
            event_id: Uuid::parse_str("3f0c9a2e-6b1d-4f7e-8c5a-1e2d3c4b5a69").unwrap(),
            created_at: at(8, 20, 0),
            client_id: "trm_5f1c2a9e0b7d4e31".into(),
            client_secret: Secret::new("s3cr3t-7f0e1d2c3b4a59687766554433221100"),
            store_number: 12,
            terminal_number: 3,
            instance_id: Uuid::parse_str("b1e7c0de-2f4a-4c1b-9d3e-5a6f7b8c9d0e").unwrap(),
            store_staff_id: Some("S-0042".into()),
            components: vec![
                ComponentReport {
                    component: ComponentId::SpacePos,
                    version: "1.4.2".into(),
                    state: ComponentState::Running,
                    active_slot: None,
                    detail: None,
                },
                ComponentReport {
                    component: ComponentId::SpaceFuel,
                    version: "2.1.0".into(),
                    state: ComponentState::Running,
                    active_slot: Some(Slot::Blue),
                    detail: None,
                },
            ],
            sync: DomainSync {
                pending_operations: 0,
                oldest_pending_age_seconds: None,
                parked_operations: 1,
                last_event_applied_at: Some(at(8, 19, 41)),
            },
            interval_seconds: 300,
            next_expected_at: at(8, 25, 0),
        };
        let out = WirePresenceEncoder.encode(&beat);
        assert_eq!(out.event_type, "POSPresenceEvent");
        assert_eq!(out.message_id, beat.event_id);
        let got: serde_json::Value = serde_json::from_slice(&out.body).unwrap();
        assert_eq!(got, expected);
    }
}
