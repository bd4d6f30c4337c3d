//! `state.json` schema migrations on disk: a v1 file loads as migrated and is
//! stored again as the current version (v3), with everything it held.

use std::fs;

use serde_json::Value;
use spacepos_config::{STATE_SCHEMA_VERSION, Slot, StateOrigin, StateStore, UpdatesState};
use spacepos_fs::FileStateStore;

#[tokio::test]
async fn a_v1_state_file_loads_as_migrated_and_is_stored_as_the_current_version() {
    assert_eq!(STATE_SCHEMA_VERSION, 3);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.json");
    let v1 = r#"{
  "schema_version": 1,
  "instance_id": "5b0c6a53-62b7-4f0e-9a4f-3a3f1c1e2d4b",
  "spacefuel": {
    "active_slot": "blue",
    "blue": {"version": "2.1.0", "verified": true, "installed_at": "2025-03-01T09:30:00Z"},
    "green": null
  },
  "reset_after_corruption": null
}
"#;
    fs::write(&path, v1).expect("write v1");
    let store = FileStateStore::new(dir.path());
    let loaded = store.load().await.expect("load");
    assert_eq!(loaded.origin, StateOrigin::Migrated { from: 1 });
    assert_eq!(
        loaded.state.instance_id.to_string(),
        "5b0c6a53-62b7-4f0e-9a4f-3a3f1c1e2d4b"
    );
    assert_eq!(loaded.state.spacefuel.active_slot, Some(Slot::Blue));
    assert_eq!(
        loaded
            .state
            .spacefuel
            .blue
            .as_ref()
            .map(|r| r.version.as_str()),
        Some("2.1.0")
    );
    assert_eq!(loaded.state.updates, UpdatesState::default());

    let stored: Value = serde_json::from_slice(&fs::read(&path).expect("read")).expect("json");
    assert_eq!(stored["schema_version"], 3);
    assert!(stored["spacefuel"]["switch"].is_null(), "{stored}");
    assert!(stored["updates"]["spacepos"].is_object(), "{stored}");
    assert_eq!(stored["spacefuel"]["active_slot"], "blue");
    let again = store.load().await.expect("load again");
    assert_eq!(again.origin, StateOrigin::Loaded);
    assert_eq!(again.state, loaded.state);
}
