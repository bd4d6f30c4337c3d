//! `atomic`: atomic replacement, permissions, and leftovers of crashed writes.

mod common;

use std::fs;

use spacepos_config::{StateOrigin, StateStore, encode_state};
use spacepos_fs::FileStateStore;
use spacepos_fs::atomic::{FileMode, remove_stale_temp_files, write_atomic};

use common::names_in;

#[test]
fn write_atomic_replaces_the_whole_content_and_leaves_no_temp_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("data.json");
    write_atomic(&path, b"a much longer first version", FileMode::Shared).expect("write");
    write_atomic(&path, b"short", FileMode::Shared).expect("write");
    assert_eq!(fs::read(&path).expect("read"), b"short");
    assert_eq!(names_in(dir.path()), ["data.json"]);
}

#[cfg(unix)]
#[test]
fn write_atomic_sets_exact_modes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let secret = dir.path().join("secret.json");
    let shared = dir.path().join("shared.json");
    write_atomic(&secret, b"{}", FileMode::OwnerOnly).expect("write");
    write_atomic(&shared, b"{}", FileMode::Shared).expect("write");
    assert_eq!(common::mode(&secret), 0o600);
    assert_eq!(common::mode(&shared), 0o644);
    // Replacing a looser file yields the mode asked for, not the old one.
    fs::set_permissions(&secret, std::os::unix::fs::PermissionsExt::from_mode(0o666))
        .expect("chmod");
    write_atomic(&secret, b"{}", FileMode::OwnerOnly).expect("write");
    assert_eq!(common::mode(&secret), 0o600);
}

#[test]
fn remove_stale_temp_files_only_removes_leftovers_of_that_target() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("state.json");
    for name in [
        ".state.json.tmp.4242.0",
        ".state.json.tmp.1.17",
        ".other.json.tmp.1.1",
        "state.json.bak",
    ] {
        fs::write(dir.path().join(name), b"partial").expect("write");
    }
    let removed = remove_stale_temp_files(&path).expect("clean");
    assert_eq!(removed.len(), 2);
    assert_eq!(
        names_in(dir.path()),
        [".other.json.tmp.1.1", "state.json.bak"]
    );
}

/// A crash after the temp file was written but before the rename: the target
/// keeps its old content, the store ignores the leftover and removes it.
#[tokio::test]
async fn leftover_temp_file_from_a_crash_is_ignored_and_cleaned() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FileStateStore::new(dir.path());
    let saved = store.load().await.expect("create").state;
    drop(store);

    let mut newer = saved.clone();
    newer.spacefuel.active_slot = Some(spacepos_config::Slot::Blue);
    let mut half = encode_state(&newer);
    half.truncate(half.len() / 2);
    fs::write(dir.path().join(".state.json.tmp.999999.3"), &half).expect("simulate crash");
    fs::write(dir.path().join(".state.json.bak.tmp.999999.4"), b"").expect("simulate crash");

    let store = FileStateStore::new(dir.path());
    let loaded = store.load().await.expect("load");
    assert_eq!(loaded.origin, StateOrigin::Loaded);
    assert_eq!(
        loaded.state, saved,
        "the old state, not the half-written one"
    );
    assert_eq!(
        names_in(dir.path()),
        ["state.json", "state.json.bak", "state.json.lock"]
    );
}

/// A crash while writing the very first state: only a temp file exists. It is
/// not mistaken for a state; a new state is created and the leftover removed.
#[tokio::test]
async fn temp_file_without_a_target_is_not_a_state() {
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(
        dir.path().join(".state.json.tmp.31337.0"),
        b"{\"schema_version\": 1",
    )
    .expect("simulate crash");
    let store = FileStateStore::new(dir.path());
    assert_eq!(
        store.load().await.expect("load").origin,
        StateOrigin::Created
    );
    assert_eq!(
        names_in(dir.path()),
        ["state.json", "state.json.bak", "state.json.lock"]
    );
}
