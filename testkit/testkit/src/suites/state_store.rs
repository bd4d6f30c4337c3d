//! Contract suite of [`StateStore`]; stamp it with [`crate::state_store_suite!`].

use chrono::{TimeZone as _, Utc};
use spacepos_config::{Slot, SlotRecord, State, StateOrigin, StateStore};

/// A state with both SpaceFuel slots filled and green active.
pub fn installed_state() -> State {
    let mut state = State::new();
    state.spacefuel.active_slot = Some(Slot::Green);
    state.spacefuel.blue = Some(SlotRecord {
        version: "2.3.0".into(),
        verified: true,
        installed_at: Utc
            .with_ymd_and_hms(2025, 3, 1, 9, 30, 0)
            .single()
            .unwrap_or_default(),
    });
    state.spacefuel.green = Some(SlotRecord {
        version: "2.3.1".into(),
        verified: true,
        installed_at: Utc
            .with_ymd_and_hms(2025, 4, 2, 22, 15, 7)
            .single()
            .unwrap_or_default(),
    });
    state
}

fn counter(state: &State) -> u64 {
    state
        .spacefuel
        .blue
        .as_ref()
        .and_then(|r| r.version.parse().ok())
        .unwrap_or(0)
}

fn bump(state: &mut State) {
    let next = counter(state) + 1;
    state.spacefuel.blue = Some(SlotRecord {
        version: next.to_string(),
        verified: false,
        installed_at: Utc::now(),
    });
}

/// Clause: "`load` on an empty store creates a state, saves it and returns
/// `StateOrigin::Created`; a second `load` returns the same `instance_id`."
pub async fn case_load_on_empty_store_creates_and_saves(store: &dyn StateStore) {
    let first = store.load().await.expect("load on an empty store");
    assert_eq!(first.origin, StateOrigin::Created);
    let second = store.load().await.expect("second load");
    assert_eq!(
        second.origin,
        StateOrigin::Loaded,
        "the created state was saved"
    );
    assert_eq!(second.state.instance_id, first.state.instance_id);
    assert_eq!(second.state, first.state);
}

/// Clause (of `SpaceFuelState::active_slot` and `State::reset_after_corruption`):
/// a created state means "not installed", never a guessed slot, and carries no
/// reset flag (that is only for a state that replaced an unreadable one).
pub async fn case_created_state_has_no_active_slot_and_no_reset_flag(store: &dyn StateStore) {
    let created = store.load().await.expect("load").state;
    assert_eq!(created.spacefuel.active_slot, None);
    assert_eq!(created.spacefuel.blue, None);
    assert_eq!(created.spacefuel.green, None);
    assert_eq!(created.reset_after_corruption, None);
}

/// Clause: "`save` is atomic and durable": after `save`, `load` returns the
/// saved state as stored (`StateOrigin::Loaded`).
pub async fn case_save_then_load_returns_the_saved_state(store: &dyn StateStore) {
    let saved = installed_state();
    store.save(&saved).await.expect("save");
    let loaded = store.load().await.expect("load");
    assert_eq!(loaded.origin, StateOrigin::Loaded);
    assert_eq!(loaded.state, saved);
}

/// Clause: "`save` is atomic: `load` returns the old or the new state", never a
/// mix: fields the new state clears do not survive from the old one.
pub async fn case_save_replaces_the_whole_state(store: &dyn StateStore) {
    store.save(&installed_state()).await.expect("save old");
    let mut new = State::new();
    new.spacefuel.active_slot = Some(Slot::Blue);
    store.save(&new).await.expect("save new");
    let loaded = store.load().await.expect("load").state;
    assert_eq!(loaded, new);
    assert_eq!(
        loaded.spacefuel.green, None,
        "nothing of the old state survives"
    );
}

/// Clause: the reset flag is part of the state: a saved
/// `reset_after_corruption` is returned as saved until someone clears it.
pub async fn case_reset_flag_round_trips(store: &dyn StateStore) {
    let mut flagged = State::new();
    flagged.reset_after_corruption = Some(
        Utc.with_ymd_and_hms(2025, 5, 6, 7, 8, 9)
            .single()
            .unwrap_or_default(),
    );
    store.save(&flagged).await.expect("save");
    assert_eq!(store.load().await.expect("load").state, flagged);
    let cleared = store
        .update(Box::new(|s| s.reset_after_corruption = None))
        .await
        .expect("update");
    assert_eq!(cleared.reset_after_corruption, None);
    assert_eq!(
        store
            .load()
            .await
            .expect("load")
            .state
            .reset_after_corruption,
        None
    );
}

/// Clause: "`update` applies the change to the latest saved state and saves
/// it; it returns the saved state."
pub async fn case_update_applies_the_change_to_the_latest_saved_state(store: &dyn StateStore) {
    let saved = installed_state();
    store.save(&saved).await.expect("save");
    let updated = store
        .update(Box::new(|s| s.spacefuel.active_slot = Some(Slot::Blue)))
        .await
        .expect("update");
    let mut expected = saved;
    expected.spacefuel.active_slot = Some(Slot::Blue);
    assert_eq!(
        updated, expected,
        "the change applied on top of the saved state"
    );
    assert_eq!(
        store.load().await.expect("load").state,
        expected,
        "and saved"
    );
}

/// Clauses: `update` on an empty store works on the state `load` would have
/// created, and that state keeps its `instance_id` afterwards.
pub async fn case_update_on_an_empty_store_starts_from_a_created_state(store: &dyn StateStore) {
    let updated = store
        .update(Box::new(|s| s.spacefuel.active_slot = Some(Slot::Green)))
        .await
        .expect("update");
    assert_eq!(updated.spacefuel.active_slot, Some(Slot::Green));
    assert_eq!(updated.reset_after_corruption, None);
    let loaded = store.load().await.expect("load");
    assert_eq!(loaded.origin, StateOrigin::Loaded);
    assert_eq!(loaded.state, updated);
}

/// Clause: "concurrent updates ... are not lost": 8 concurrent callers each
/// make 5 read-modify-write increments; all 40 are in the final state.
pub async fn case_concurrent_updates_are_not_lost(store: &dyn StateStore) {
    let worker = || async {
        for _ in 0..5 {
            store.update(Box::new(bump)).await.expect("update");
        }
    };
    tokio::join!(
        worker(),
        worker(),
        worker(),
        worker(),
        worker(),
        worker(),
        worker(),
        worker()
    );
    assert_eq!(counter(&store.load().await.expect("load").state), 40);
}

/// Stamp one `#[tokio::test]` per [`StateStore`] contract case. The argument is
/// an expression evaluating to a future of a fresh store (any type
/// implementing `StateStore`); it is evaluated once per test.
#[macro_export]
macro_rules! state_store_suite {
    ($factory:expr) => {
        $crate::state_store_suite!(@cases $factory;
            case_load_on_empty_store_creates_and_saves,
            case_created_state_has_no_active_slot_and_no_reset_flag,
            case_save_then_load_returns_the_saved_state,
            case_save_replaces_the_whole_state,
            case_reset_flag_round_trips,
            case_update_applies_the_change_to_the_latest_saved_state,
            case_update_on_an_empty_store_starts_from_a_created_state,
            case_concurrent_updates_are_not_lost,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let store = $factory.await;
                $crate::suites::state_store::$case(&store).await;
            }
        )+
    };
}
