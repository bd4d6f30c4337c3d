//! The fault switches of the fakes behave like the file stores they stand for.

use spacepos_config::{
    SchemaError, StateError, StateOrigin, StateStore, TerminalConfigStore, TerminalStoreError,
};
use spacepos_testkit::fakes::{MemoryStateStore, MemoryTerminalStore};
use spacepos_testkit::suites::state_store::installed_state;
use spacepos_testkit::suites::terminal_config_store::onboarded_record;

#[tokio::test]
async fn corrupted_memory_state_resets_with_the_flag_and_no_slot() {
    let store = MemoryStateStore::with_state(installed_state());
    let handle = store.clone();
    handle.corrupt();
    let loaded = store.load().await.expect("load never fails on damage");
    assert!(
        matches!(loaded.origin, StateOrigin::ResetAfterCorruption { .. }),
        "{:?}",
        loaded.origin
    );
    assert!(loaded.state.reset_after_corruption.is_some());
    assert_eq!(loaded.state.spacefuel.active_slot, None);
    assert_eq!(
        handle.snapshot(),
        Some(loaded.state),
        "the reset state was saved"
    );
    assert_eq!(
        store.load().await.expect("load").origin,
        StateOrigin::Loaded
    );
}

#[tokio::test]
async fn newer_memory_state_refuses_everything_and_changes_nothing() {
    let store = MemoryStateStore::with_state(installed_state());
    store.set_newer_schema(9);
    assert!(matches!(
        store.load().await,
        Err(StateError::Schema {
            source: SchemaError::Newer { found: 9, .. },
            ..
        })
    ));
    assert!(store.save(&installed_state()).await.is_err());
    assert!(
        store
            .update(Box::new(|s| s.spacefuel.active_slot = None))
            .await
            .is_err()
    );
    assert_eq!(store.save_count(), 0);
}

#[tokio::test]
async fn unreadable_memory_record_until_onboarded_again() {
    let store = MemoryTerminalStore::with_record(onboarded_record());
    store.set_unreadable("terminal.json and its backup are damaged");
    assert!(matches!(
        store.load().await,
        Err(TerminalStoreError::Unreadable { .. })
    ));
    store.save(&onboarded_record()).await.expect("save");
    assert_eq!(store.load().await.expect("load"), Some(onboarded_record()));
    assert_eq!(store.save_count(), 1);
}
