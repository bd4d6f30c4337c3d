//! Contract suite of [`TrackingEncoder`]; stamp it with [`crate::tracking_encoder_suite!`].

use chrono::{DateTime, Utc};
use serde_json::Value;
use spacepos_config::{Slot, UpdateResult};
use spacepos_core::{ComponentId, TerminalIdentity};
use spacepos_updates::{AppliedRecord, ReadyRecord, TrackingEncoder};

fn example(name: &str) -> Value {
    let path = format!(
        "{}/../../docs/contract/examples/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn terminal() -> TerminalIdentity {
    TerminalIdentity {
        client_id: "trm_5f1c2a9e0b7d4e31".into(),
        store_number: 12,
        terminal_number: 3,
    }
}

/// The record of the contract's `POSComponentReadyEvent` example.
pub fn example_ready() -> ReadyRecord {
    ReadyRecord {
        event_id: "7a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
            .parse()
            .unwrap_or_default(),
        terminal: terminal(),
        component: ComponentId::SpaceFuel,
        version: "2.2.0".into(),
        staged_at: at("2026-11-24T08:31:12Z"),
        slot: Some(Slot::Green),
    }
}

/// The record of the contract's `POSComponentAppliedEvent` example.
pub fn example_applied() -> AppliedRecord {
    AppliedRecord {
        event_id: "c4d5e6f7-0819-4a2b-9c3d-4e5f60718293"
            .parse()
            .unwrap_or_default(),
        terminal: terminal(),
        component: ComponentId::SpaceFuel,
        version: "2.2.0".into(),
        previous_version: Some("2.1.0".into()),
        result: UpdateResult::RolledBack,
        error: Some("health check failed: service did not report ready within 60 s".into()),
        applied_at: at("2026-11-24T08:45:03Z"),
    }
}

/// Clause: "`ready` gives `POSComponentReadyEvent` with the record's fields in
/// the contract's PascalCase form".
pub async fn case_ready_is_the_contract_event(encoder: &dyn TrackingEncoder) {
    let event = encoder.ready(&example_ready()).expect("encode");
    assert_eq!(event.event_type, "POSComponentReadyEvent");
    assert_eq!(event.payload, example("POSComponentReadyEvent"));
    let mut pos = example_ready();
    pos.component = ComponentId::SpacePos;
    pos.slot = None;
    let event = encoder.ready(&pos).expect("encode");
    assert_eq!(event.payload["Component"], "SpacePOS");
    assert_eq!(event.payload["Slot"], Value::Null);
}

/// Clause: "`applied` gives `POSComponentAppliedEvent` (`Result` = `Applied`,
/// `RolledBack` or `Failed`, ...)".
pub async fn case_applied_is_the_contract_event(encoder: &dyn TrackingEncoder) {
    let event = encoder.applied(&example_applied()).expect("encode");
    assert_eq!(event.event_type, "POSComponentAppliedEvent");
    assert_eq!(event.payload, example("POSComponentAppliedEvent"));
    for (result, text) in [
        (UpdateResult::Applied, "Applied"),
        (UpdateResult::Failed, "Failed"),
    ] {
        let mut r = example_applied();
        r.result = result;
        assert_eq!(encoder.applied(&r).expect("encode").payload["Result"], text);
    }
}

/// Clause: "The same record always gives the same payload".
pub async fn case_encoding_is_deterministic(encoder: &dyn TrackingEncoder) {
    assert_eq!(
        encoder.ready(&example_ready()).expect("encode"),
        encoder.ready(&example_ready()).expect("encode")
    );
    assert_eq!(
        encoder.applied(&example_applied()).expect("encode"),
        encoder.applied(&example_applied()).expect("encode")
    );
}

/// Stamp one `#[tokio::test]` per [`TrackingEncoder`] contract case.
#[macro_export]
macro_rules! tracking_encoder_suite {
    ($factory:expr) => {
        $crate::tracking_encoder_suite!(@cases $factory;
            case_ready_is_the_contract_event,
            case_applied_is_the_contract_event,
            case_encoding_is_deterministic,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let encoder = $factory.await;
                $crate::suites::tracking_encoder::$case(&encoder).await;
            }
        )+
    };
}
