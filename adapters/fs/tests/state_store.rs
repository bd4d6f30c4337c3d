//! `FileStateStore`: recovery from damaged files, newer schemas, modes.

mod common;

use std::fs;

use spacepos_config::{
    SchemaError, StateError, StateOrigin, StateStore, decode_state, encode_state,
};
use spacepos_fs::FileStateStore;

use common::{capture_logs, installed_state, names_in};

/// Save a known state (which also writes the backup), then damage `state.json`
/// with `damage`, and check that the backup is restored with one warning.
async fn restored_from_backup_after(damage: &[u8]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FileStateStore::new(dir.path());
    let saved = installed_state();
    store.save(&saved).await.expect("save");
    let path = dir.path().join("state.json");
    fs::write(&path, damage).expect("damage");

    let logs = capture_logs(dir.path());
    let loaded = store.load().await.expect("load");
    assert_eq!(loaded.state, saved);
    match &loaded.origin {
        StateOrigin::RestoredFromBackup { location, problem } => {
            assert_eq!(location, &path.display().to_string());
            assert!(!problem.is_empty());
        }
        other => panic!("expected RestoredFromBackup, got {other:?}"),
    }
    let warnings = logs.lines_at("WARN");
    assert_eq!(
        warnings.len(),
        1,
        "exactly one warning, got: {}",
        logs.text()
    );
    assert!(
        warnings[0].contains(&path.display().to_string()),
        "{}",
        warnings[0]
    );
    assert!(warnings[0].contains("restored"), "{}", warnings[0]);

    // state.json is whole again, and the next load is quiet.
    assert_eq!(
        decode_state(&fs::read(&path).expect("read"))
            .expect("valid")
            .state,
        saved
    );
    let again = store.load().await.expect("load");
    assert_eq!(again.origin, StateOrigin::Loaded);
    assert_eq!(logs.lines_at("WARN").len(), 1, "{}", logs.text());
}

#[tokio::test]
async fn truncated_state_is_restored_from_backup_with_one_warning() {
    let mut bytes = encode_state(&installed_state());
    bytes.truncate(bytes.len() / 3);
    restored_from_backup_after(&bytes).await;
}

#[tokio::test]
async fn empty_state_is_restored_from_backup_with_one_warning() {
    restored_from_backup_after(b"").await;
}

#[tokio::test]
async fn garbage_state_is_restored_from_backup_with_one_warning() {
    restored_from_backup_after(b"\x00\x01\xffnot json at all\x7f").await;
    restored_from_backup_after(b"{\"schema_version\": 1, \"instance_id\": 42}").await;
}

#[tokio::test]
async fn deleted_state_with_a_backup_is_restored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FileStateStore::new(dir.path());
    let saved = installed_state();
    store.save(&saved).await.expect("save");
    fs::remove_file(dir.path().join("state.json")).expect("delete");
    let loaded = store.load().await.expect("load");
    assert_eq!(loaded.state, saved);
    assert!(
        matches!(loaded.origin, StateOrigin::RestoredFromBackup { .. }),
        "{:?}",
        loaded.origin
    );
}

#[tokio::test]
async fn both_corrupt_resets_with_the_flag_and_no_active_slot() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FileStateStore::new(dir.path());
    let old = installed_state();
    store.save(&old).await.expect("save");
    fs::write(dir.path().join("state.json"), b"{\"schema_").expect("damage");
    fs::write(dir.path().join("state.json.bak"), b"").expect("damage");

    let logs = capture_logs(dir.path());
    let loaded = store.load().await.expect("load never fails on damage");
    let StateOrigin::ResetAfterCorruption {
        location,
        problem,
        quarantined,
    } = &loaded.origin
    else {
        panic!("expected ResetAfterCorruption, got {:?}", loaded.origin)
    };
    assert!(location.ends_with("state.json"));
    assert!(problem.contains("state.json.bak"), "{problem}");
    assert!(loaded.state.reset_after_corruption.is_some());
    assert_eq!(
        loaded.state.spacefuel.active_slot, None,
        "the active slot must not be assumed"
    );
    assert_ne!(loaded.state.instance_id, old.instance_id);
    assert_eq!(logs.lines_at("WARN").len(), 1, "{}", logs.text());

    // Both damaged files were moved aside, byte for byte.
    assert_eq!(quarantined.len(), 2);
    let main = quarantined
        .iter()
        .find(|p| p.contains("state.json.corrupt-"))
        .expect("main quarantined");
    let bak = quarantined
        .iter()
        .find(|p| p.contains("state.json.bak.corrupt-"))
        .expect("backup quarantined");
    assert_eq!(fs::read(main).expect("read"), b"{\"schema_");
    assert_eq!(fs::read(bak).expect("read"), b"");

    // The new state is saved (with its flag) and loads normally.
    let again = store.load().await.expect("load");
    assert_eq!(again.origin, StateOrigin::Loaded);
    assert_eq!(again.state, loaded.state);
}

#[tokio::test]
async fn corrupt_state_without_backup_resets() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("state.json"), b"garbage").expect("write");
    let store = FileStateStore::new(dir.path());
    let loaded = store.load().await.expect("load");
    assert!(
        matches!(loaded.origin, StateOrigin::ResetAfterCorruption { .. }),
        "{:?}",
        loaded.origin
    );
    assert!(loaded.state.reset_after_corruption.is_some());
}

#[tokio::test]
async fn newer_schema_is_an_error_and_left_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.json");
    let newer = b"{\"schema_version\": 99, \"instance_id\": \"x\", \"something_new\": true}\n";
    fs::write(&path, newer).expect("write");
    let store = FileStateStore::new(dir.path());

    let err = store.load().await.expect_err("newer schema");
    assert!(
        matches!(&err, StateError::Schema { source: SchemaError::Newer { found: 99, .. }, location } if location.ends_with("state.json")),
        "{err:?}"
    );
    assert!(err.to_string().contains("upgrade SpacePOS"), "{err}");
    let update = store
        .update(Box::new(|s| s.spacefuel.active_slot = None))
        .await;
    assert!(
        matches!(update, Err(StateError::Schema { .. })),
        "{update:?}"
    );
    let save = store.save(&installed_state()).await;
    assert!(matches!(save, Err(StateError::Schema { .. })), "{save:?}");

    assert_eq!(fs::read(&path).expect("read"), newer);
    assert_eq!(
        names_in(dir.path()),
        ["state.json", "state.json.lock"],
        "no backup, no quarantine"
    );
}

#[tokio::test]
async fn corrupt_state_with_a_newer_backup_is_an_error_and_left_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(dir.path().join("state.json"), b"").expect("write");
    fs::write(
        dir.path().join("state.json.bak"),
        b"{\"schema_version\": 7}",
    )
    .expect("write");
    let store = FileStateStore::new(dir.path());
    let err = store.load().await.expect_err("newer backup");
    assert!(err.to_string().contains("state.json.bak"), "{err}");
    assert_eq!(fs::read(dir.path().join("state.json")).expect("read"), b"");
}

#[tokio::test]
async fn created_state_survives_a_new_store_instance() {
    let dir = tempfile::tempdir().expect("temp dir");
    let first = FileStateStore::new(dir.path().join("nested/data"));
    let created = first.load().await.expect("load");
    assert_eq!(created.origin, StateOrigin::Created);
    let second = FileStateStore::new(dir.path().join("nested/data"));
    let loaded = second.load().await.expect("load");
    assert_eq!(loaded.origin, StateOrigin::Loaded);
    assert_eq!(loaded.state.instance_id, created.state.instance_id);
}

#[cfg(unix)]
#[tokio::test]
async fn state_files_are_0644() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FileStateStore::new(dir.path());
    store.save(&installed_state()).await.expect("save");
    assert_eq!(common::mode(&dir.path().join("state.json")), 0o644);
    assert_eq!(common::mode(&dir.path().join("state.json.bak")), 0o644);
}

#[tokio::test]
async fn io_errors_name_the_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    // A directory where state.json should be: reading it fails (even as root).
    fs::create_dir(dir.path().join("state.json")).expect("mkdir");
    let store = FileStateStore::new(dir.path());
    let err = store.load().await.expect_err("unreadable");
    assert!(matches!(err, StateError::Backend { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains(&dir.path().join("state.json").display().to_string()),
        "{text}"
    );
}
