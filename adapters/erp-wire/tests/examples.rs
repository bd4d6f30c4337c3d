//! Every example of the contract round-trips through the wire types unchanged.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;

use pretty_assertions::assert_eq;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use spacepos_erp_wire::{events::*, rest::*};

fn examples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/contract/examples")
}

fn round_trip<T: Serialize + DeserializeOwned>(file: &str) {
    let path = examples_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let original: Value = serde_json::from_str(&text).unwrap();
    let typed: T = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!(
            "{file} does not deserialize into {}: {e}",
            std::any::type_name::<T>()
        )
    });
    let back = serde_json::to_value(&typed).unwrap();
    assert_eq!(back, original, "{file} changed in a round trip");
}

/// Maps each example file to its wire type. A new example without a mapping fails.
fn check(file: &str) -> bool {
    match file {
        "onboard.request.json" => round_trip::<OnboardRequest>(file),
        "onboard.response.json" => round_trip::<OnboardResponse>(file),
        "snapshot.page.json" => round_trip::<SnapshotPage>(file),
        "changes.page.json" => round_trip::<ChangesPage>(file),
        "operations.request.json" => round_trip::<OperationsRequest>(file),
        "operations.response.json" => round_trip::<OperationsResponse>(file),
        "releases.pending.json" => round_trip::<PendingReleases>(file),
        "POSPresenceEvent.json" => round_trip::<PosPresenceEvent>(file),
        "POSComponentReadyEvent.json" => round_trip::<PosComponentReadyEvent>(file),
        "POSComponentAppliedEvent.json" => round_trip::<PosComponentAppliedEvent>(file),
        "POSPresenceIntervalUpdatedIntegrationEvent.json" => {
            round_trip::<PosPresenceIntervalUpdatedIntegrationEvent>(file)
        }
        "DatasetChangedIntegrationEvent.json" => round_trip::<DatasetChangedIntegrationEvent>(file),
        "POSReleasePublishedIntegrationEvent.json" => {
            round_trip::<PosReleasePublishedIntegrationEvent>(file)
        }
        _ => return false,
    }
    true
}

#[test]
fn every_example_round_trips() {
    let mut seen = 0;
    let mut unmapped = Vec::new();
    for entry in std::fs::read_dir(examples_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if !name.ends_with(".json") {
            continue;
        }
        if check(&name) {
            seen += 1;
        } else {
            unmapped.push(name);
        }
    }
    assert!(
        unmapped.is_empty(),
        "examples without a wire type: {unmapped:?}"
    );
    assert_eq!(seen, 13, "expected the 13 examples of contract v1");
}

#[test]
fn event_names_are_the_contract_routing_keys() {
    assert_eq!(PosPresenceEvent::NAME, "POSPresenceEvent");
    assert_eq!(PosComponentAppliedEvent::NAME, "POSComponentAppliedEvent");
    assert_eq!(
        DatasetChangedIntegrationEvent::NAME,
        "DatasetChangedIntegrationEvent"
    );
}

#[test]
fn unknown_properties_are_ignored() {
    let json = r#"{"storeNumber": 12, "terminalNumber": 3, "reportPresence": true,
        "presenceIntervalSeconds": 300, "companyInformation": null, "futureField": [1, 2]}"#;
    let me: TerminalMe = serde_json::from_str(json).unwrap();
    assert_eq!(me.store_number, 12);
}

#[test]
fn presence_secret_does_not_show_in_debug() {
    let text = std::fs::read_to_string(examples_dir().join("POSPresenceEvent.json")).unwrap();
    let ev: PosPresenceEvent = serde_json::from_str(&text).unwrap();
    assert!(!format!("{ev:?}").contains("s3cr3t"));
}
