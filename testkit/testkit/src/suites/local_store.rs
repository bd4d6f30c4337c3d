//! Contract suite of [`LocalStore`]; stamp it with [`crate::local_store_suite!`].
//!
//! Cases that take a second argument open another instance over the same
//! storage ([`Reopen`]): a restarted process, or the other process of the node.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use spacepos_sync::{
    Change, ChangesPage, Checkpoint, DatasetEvent, Entity, EventOutcome, LocalStore, SnapshotPage,
    SnapshotStep, StoreError,
};
use uuid::Uuid;

use super::{Guarded, Reopen};

/// A live entity whose data names its version.
pub fn entity(id: &str, version: u64) -> Entity {
    Entity {
        id: id.to_owned(),
        version,
        deleted: false,
        data: json!({"name": format!("{id} v{version}"), "version": version}),
    }
}

/// A deletion.
pub fn tombstone(id: &str, version: u64) -> Entity {
    Entity {
        id: id.to_owned(),
        version,
        deleted: true,
        data: serde_json::Value::Null,
    }
}

/// One page of a snapshot.
pub fn page(dataset: &str, as_of: u64, items: Vec<Entity>, next: Option<&str>) -> SnapshotPage {
    SnapshotPage {
        dataset: dataset.to_owned(),
        as_of_sequence: as_of,
        items,
        next_cursor: next.map(str::to_owned),
    }
}

/// A `DatasetChangedIntegrationEvent` with a fresh id.
pub fn event(dataset: &str, sequence: u64, items: Vec<Entity>) -> DatasetEvent {
    DatasetEvent {
        event_id: Uuid::new_v4(),
        dataset: dataset.to_owned(),
        sequence,
        items,
    }
}

/// A page of changes, each item with its own sequence.
pub fn changes(dataset: &str, items: Vec<(u64, Entity)>, last_sequence: u64) -> ChangesPage {
    ChangesPage {
        dataset: dataset.to_owned(),
        items: items
            .into_iter()
            .map(|(sequence, entity)| Change { sequence, entity })
            .collect(),
        last_sequence,
        has_more: false,
    }
}

/// Apply `page` as a seeder does: with the cursor it was fetched with (the
/// stored one when the page continues the snapshot in progress at its
/// `as_of_sequence`, none when it starts a snapshot).
pub async fn apply_page(
    store: &dyn LocalStore,
    page: &SnapshotPage,
) -> Result<SnapshotStep, StoreError> {
    let cp = store.checkpoint(&page.dataset).await?;
    let fetched_with = cp
        .snapshot
        .filter(|s| s.as_of_sequence == page.as_of_sequence)
        .and_then(|s| s.next_cursor);
    store.apply_snapshot_page(page, fetched_with).await
}

/// Seed `dataset` with a one-page snapshot at `as_of`.
pub async fn seed(store: &dyn LocalStore, dataset: &str, as_of: u64, items: Vec<Entity>) {
    let step = apply_page(store, &page(dataset, as_of, items, None))
        .await
        .expect("apply a one-page snapshot");
    assert_eq!(step, SnapshotStep::Complete);
}

async fn get(store: &dyn LocalStore, dataset: &str, id: &str) -> Option<Entity> {
    store.entity(dataset, id).await.expect("entity")
}

async fn checkpoint(store: &dyn LocalStore, dataset: &str) -> Checkpoint {
    store.checkpoint(dataset).await.expect("checkpoint")
}

async fn ids(store: &dyn LocalStore, dataset: &str) -> Vec<String> {
    store
        .entities(dataset, None, u32::MAX)
        .await
        .expect("entities")
        .into_iter()
        .map(|e| e.id)
        .collect()
}

fn recent(at: Option<DateTime<Utc>>) -> bool {
    at.is_some_and(|at| (Utc::now() - at).abs() < Duration::minutes(5))
}

/// Clause: `checkpoint` of a dataset never stored is "a blank one"; a new
/// store lists no checkpoints.
pub async fn case_a_new_dataset_has_a_blank_checkpoint(store: &dyn LocalStore) {
    assert_eq!(
        checkpoint(store, "products").await,
        Checkpoint {
            dataset: "products".into(),
            ..Checkpoint::default()
        }
    );
    assert!(store.checkpoints().await.expect("checkpoints").is_empty());
    assert_eq!(get(store, "products", "P-1").await, None);
    assert!(ids(store, "products").await.is_empty());
}

/// Clause: "**Apply rule**: an entity is written only if its version is
/// greater than the stored one ... Snapshots, changes and events alike."
/// Equal and older versions change nothing, whatever their data.
pub async fn case_only_a_greater_version_is_written(store: &dyn LocalStore) {
    seed(store, "products", 10, vec![entity("A", 5), entity("B", 5)]).await;

    // changes: greater, equal, older
    let mut same_version = entity("A", 6);
    same_version.data = json!({"name": "not this one"});
    store
        .apply_changes(&changes(
            "products",
            vec![
                (11, entity("A", 6)),
                (12, same_version),
                (13, entity("A", 4)),
            ],
            13,
        ))
        .await
        .expect("changes");
    assert_eq!(get(store, "products", "A").await, Some(entity("A", 6)));

    // events: equal and older are skipped, greater is written
    let outcomes = store
        .apply_events(&[
            event("products", 14, vec![entity("A", 6), entity("B", 4)]),
            event("products", 15, vec![entity("B", 9)]),
        ])
        .await
        .expect("events");
    assert_eq!(outcomes, vec![EventOutcome::Applied, EventOutcome::Applied]);
    assert_eq!(get(store, "products", "A").await, Some(entity("A", 6)));
    assert_eq!(get(store, "products", "B").await, Some(entity("B", 9)));

    // a snapshot page with an older version does not roll the entity back
    seed(store, "products", 20, vec![entity("A", 3), entity("B", 9)]).await;
    assert_eq!(get(store, "products", "A").await, Some(entity("A", 6)));
    assert_eq!(get(store, "products", "B").await, Some(entity("B", 9)));
}

/// Clause: "a deletion keeps a tombstone with its version, so an older update
/// cannot bring it back" (`entity` returns tombstones too); only a greater
/// version writes the entity again. `Checkpoint::entities` counts live ones.
pub async fn case_a_tombstone_blocks_older_updates(store: &dyn LocalStore) {
    seed(store, "products", 10, vec![entity("A", 5), entity("B", 1)]).await;
    assert_eq!(checkpoint(store, "products").await.entities, 2);

    store
        .apply_changes(&changes("products", vec![(11, tombstone("A", 7))], 11))
        .await
        .expect("delete");
    assert_eq!(get(store, "products", "A").await, Some(tombstone("A", 7)));
    assert_eq!(checkpoint(store, "products").await.entities, 1);

    // older updates by every path: nothing comes back
    store
        .apply_changes(&changes("products", vec![(12, entity("A", 6))], 12))
        .await
        .expect("older change");
    let outcomes = store
        .apply_events(&[event("products", 13, vec![entity("A", 7)])])
        .await
        .expect("equal-version event");
    assert_eq!(outcomes, vec![EventOutcome::Applied]);
    assert_eq!(get(store, "products", "A").await, Some(tombstone("A", 7)));
    let listed = store
        .entities("products", None, 10)
        .await
        .expect("entities");
    assert_eq!(
        listed,
        vec![tombstone("A", 7), entity("B", 1)],
        "tombstones are listed"
    );
    assert_eq!(checkpoint(store, "products").await.entities, 1);

    // a greater version is a new life
    store
        .apply_changes(&changes("products", vec![(14, entity("A", 8))], 14))
        .await
        .expect("newer change");
    assert_eq!(get(store, "products", "A").await, Some(entity("A", 8)));
    assert_eq!(checkpoint(store, "products").await.entities, 2);
}

/// Clause: "`apply_snapshot_page` stores the page's entities and the next
/// cursor in one transaction ... the last page ... sets the dataset's
/// sequence to the snapshot's `as_of_sequence`."
pub async fn case_snapshot_pages_store_entities_and_the_next_cursor(store: &dyn LocalStore) {
    let first = page(
        "products",
        500,
        vec![entity("A", 1), entity("B", 1)],
        Some("c1"),
    );
    assert_eq!(
        apply_page(store, &first).await.expect("page 1"),
        SnapshotStep::Continue
    );
    let cp = checkpoint(store, "products").await;
    assert_eq!(
        cp.last_sequence, None,
        "not consistent before the last page"
    );
    let progress = cp.snapshot.expect("a snapshot in progress");
    assert_eq!(progress.as_of_sequence, 500);
    assert_eq!(progress.next_cursor.as_deref(), Some("c1"));
    assert_eq!((progress.pages_done, progress.items_done), (1, 2));
    assert_eq!(cp.entities, 2, "a stored page is visible at once");

    let second = page("products", 500, vec![entity("C", 1)], Some("c2"));
    assert_eq!(
        apply_page(store, &second).await.expect("page 2"),
        SnapshotStep::Continue
    );
    let progress = checkpoint(store, "products")
        .await
        .snapshot
        .expect("in progress");
    assert_eq!(progress.next_cursor.as_deref(), Some("c2"));
    assert_eq!((progress.pages_done, progress.items_done), (2, 3));

    let last = page(
        "products",
        500,
        vec![entity("D", 1), tombstone("E", 3)],
        None,
    );
    assert_eq!(
        apply_page(store, &last).await.expect("last page"),
        SnapshotStep::Complete
    );
    let cp = checkpoint(store, "products").await;
    assert_eq!(cp.last_sequence, Some(500));
    assert_eq!(cp.snapshot, None);
    assert_eq!(cp.entities, 4);
    assert!(recent(cp.last_applied_at), "{:?}", cp.last_applied_at);
    assert_eq!(ids(store, "products").await, ["A", "B", "C", "D", "E"]);
}

/// Clause: "so a killed seed resumes at the first page not stored": another
/// instance over the same storage (a restarted process) sees the pages and the
/// cursor, and finishes the snapshot.
pub async fn case_snapshot_progress_survives_a_new_instance(
    store: &dyn LocalStore,
    reopen: &dyn Reopen<dyn LocalStore>,
) {
    let items: Vec<Entity> = (0..1200).map(|i| entity(&format!("P-{i:05}"), 1)).collect();
    apply_page(
        store,
        &page("products", 77, items[..600].to_vec(), Some("after-600")),
    )
    .await
    .expect("page 1");
    apply_page(
        store,
        &page(
            "products",
            77,
            items[600..1000].to_vec(),
            Some("after-1000"),
        ),
    )
    .await
    .expect("page 2");

    let restarted = reopen.reopen().await;
    let progress = checkpoint(&*restarted, "products")
        .await
        .snapshot
        .expect("the snapshot in progress survives");
    assert_eq!(progress.as_of_sequence, 77);
    assert_eq!(progress.next_cursor.as_deref(), Some("after-1000"));
    assert_eq!((progress.pages_done, progress.items_done), (2, 1000));

    assert_eq!(
        apply_page(
            &*restarted,
            &page("products", 77, items[1000..].to_vec(), None)
        )
        .await
        .expect("last page"),
        SnapshotStep::Complete
    );
    let cp = checkpoint(store, "products").await;
    assert_eq!(cp.last_sequence, Some(77));
    assert_eq!(
        cp.entities, 1200,
        "pages of both instances make one snapshot"
    );
}

/// Clause: "The first page of a snapshot starts a new generation; the last
/// page removes the entities no write of this generation touched": an entity
/// missing from a new snapshot is removed, one written by an event (or a
/// change) during the snapshot stays, even if the version rule skipped its data.
pub async fn case_a_reseed_removes_what_the_new_snapshot_lacks(store: &dyn LocalStore) {
    seed(
        store,
        "products",
        10,
        vec![
            entity("A", 1),
            entity("B", 1),
            entity("C", 1),
            entity("E", 1),
            tombstone("T", 4),
        ],
    )
    .await;

    apply_page(
        store,
        &page("products", 50, vec![entity("A", 2)], Some("c1")),
    )
    .await
    .expect("page 1 of the reseed");
    // during the snapshot: a new entity by an event, an equal version of C by
    // an event (skipped but touched), and a change of E
    let outcomes = store
        .apply_events(&[event("products", 51, vec![entity("D", 1), entity("C", 1)])])
        .await
        .expect("event during the snapshot");
    assert_eq!(
        outcomes,
        vec![EventOutcome::Gap],
        "the dataset is being seeded"
    );
    store
        .apply_changes(&changes("products", vec![(52, entity("E", 2))], 52))
        .await
        .expect("change during the snapshot");
    assert_eq!(
        apply_page(store, &page("products", 50, vec![entity("B", 1)], None))
            .await
            .expect("last page"),
        SnapshotStep::Complete
    );

    assert_eq!(ids(store, "products").await, ["A", "B", "C", "D", "E"]);
    assert_eq!(get(store, "products", "A").await, Some(entity("A", 2)));
    assert_eq!(get(store, "products", "E").await, Some(entity("E", 2)));
    assert_eq!(
        get(store, "products", "T").await,
        None,
        "an old tombstone is swept too"
    );
    let cp = checkpoint(store, "products").await;
    assert_eq!(cp.last_sequence, Some(50), "the snapshot's sequence");
    assert_eq!(cp.entities, 5);
}

/// Clause: "`restart_snapshot`: Forget a snapshot in progress ...; the next
/// page stored starts a new snapshot. Entities stay until that snapshot completes."
pub async fn case_restart_snapshot_forgets_the_progress_not_the_entities(store: &dyn LocalStore) {
    apply_page(
        store,
        &page("products", 10, vec![entity("A", 1)], Some("c1")),
    )
    .await
    .expect("page 1");
    store.restart_snapshot("products").await.expect("restart");
    let cp = checkpoint(store, "products").await;
    assert_eq!(cp.snapshot, None);
    assert_eq!(cp.last_sequence, None);
    assert_eq!(get(store, "products", "A").await, Some(entity("A", 1)));

    apply_page(
        store,
        &page("products", 12, vec![entity("B", 1)], Some("d1")),
    )
    .await
    .expect("first page of the new snapshot");
    let progress = checkpoint(store, "products")
        .await
        .snapshot
        .expect("in progress");
    assert_eq!(
        (
            progress.as_of_sequence,
            progress.pages_done,
            progress.items_done
        ),
        (12, 1, 1)
    );
    assert_eq!(
        get(store, "products", "A").await,
        Some(entity("A", 1)),
        "still there"
    );
    apply_page(store, &page("products", 12, vec![entity("C", 1)], None))
        .await
        .expect("last page");
    assert_eq!(ids(store, "products").await, ["B", "C"]);
    assert_eq!(checkpoint(store, "products").await.last_sequence, Some(12));
}

/// Clause: "Every page of one snapshot carries the same value" (of
/// `as_of_sequence`), so a page with another value belongs to another
/// snapshot: it starts that snapshot over (a new generation), as if the one in
/// progress had been restarted.
pub async fn case_a_page_of_another_snapshot_starts_it_over(store: &dyn LocalStore) {
    apply_page(
        store,
        &page("products", 10, vec![entity("A", 1)], Some("c1")),
    )
    .await
    .expect("page 1 of snapshot 10");
    apply_page(
        store,
        &page("products", 20, vec![entity("B", 1)], Some("d1")),
    )
    .await
    .expect("page 1 of snapshot 20");
    let progress = checkpoint(store, "products")
        .await
        .snapshot
        .expect("in progress");
    assert_eq!(
        (
            progress.as_of_sequence,
            progress.pages_done,
            progress.items_done
        ),
        (20, 1, 1)
    );
    assert_eq!(progress.next_cursor.as_deref(), Some("d1"));
    apply_page(store, &page("products", 20, vec![entity("C", 1)], None))
        .await
        .expect("last page of snapshot 20");
    assert_eq!(ids(store, "products").await, ["B", "C"]);
    assert_eq!(checkpoint(store, "products").await.last_sequence, Some(20));
}

/// Clause: "`apply_changes` applies a page and raises the dataset's sequence
/// to the page's `last_sequence` in one transaction (never lowers it)."
pub async fn case_changes_raise_the_sequence_and_never_lower_it(store: &dyn LocalStore) {
    seed(store, "products", 10, vec![entity("A", 1)]).await;
    store
        .apply_changes(&changes(
            "products",
            vec![
                (11, entity("A", 2)),
                (11, entity("B", 1)),
                (12, tombstone("A", 3)),
            ],
            12,
        ))
        .await
        .expect("changes 11..12");
    let cp = checkpoint(store, "products").await;
    assert_eq!(cp.last_sequence, Some(12));
    assert_eq!(get(store, "products", "A").await, Some(tombstone("A", 3)));
    assert_eq!(get(store, "products", "B").await, Some(entity("B", 1)));
    assert!(recent(cp.last_applied_at));

    store
        .apply_changes(&changes("products", vec![(7, entity("C", 1))], 7))
        .await
        .expect("an older page");
    assert_eq!(
        checkpoint(store, "products").await.last_sequence,
        Some(12),
        "never lowered"
    );
    assert_eq!(
        get(store, "products", "C").await,
        Some(entity("C", 1)),
        "its items still go through the apply rule"
    );

    store
        .apply_changes(&changes("products", vec![], 20))
        .await
        .expect("an empty page");
    assert_eq!(checkpoint(store, "products").await.last_sequence, Some(20));
}

/// Clause: `apply_events` reports "`Applied` if it is the next one (the
/// sequence moves)"; consecutive events of one batch advance the sequence step
/// by step, each dataset on its own.
pub async fn case_consecutive_events_advance_the_sequence_step_by_step(store: &dyn LocalStore) {
    seed(store, "products", 10, vec![entity("A", 1)]).await;
    seed(store, "prices", 300, vec![]).await;
    let outcomes = store
        .apply_events(&[
            event("products", 11, vec![entity("A", 2)]),
            event("prices", 301, vec![entity("PR-1", 1)]),
            event("products", 12, vec![entity("B", 1)]),
            event("products", 13, vec![entity("A", 3)]),
            event("prices", 302, vec![entity("PR-1", 2)]),
        ])
        .await
        .expect("events");
    assert_eq!(outcomes, vec![EventOutcome::Applied; 5]);
    let cp = checkpoint(store, "products").await;
    assert_eq!(cp.last_sequence, Some(13));
    assert!(recent(cp.last_applied_at));
    assert_eq!(checkpoint(store, "prices").await.last_sequence, Some(302));
    assert_eq!(get(store, "products", "A").await, Some(entity("A", 3)));
    assert_eq!(get(store, "products", "B").await, Some(entity("B", 1)));
    assert_eq!(get(store, "prices", "PR-1").await, Some(entity("PR-1", 2)));

    // out of order within a batch: the later one is a gap until the next arrives
    let outcomes = store
        .apply_events(&[
            event("products", 15, vec![entity("C", 1)]),
            event("products", 14, vec![entity("D", 1)]),
        ])
        .await
        .expect("events");
    assert_eq!(outcomes, vec![EventOutcome::Gap, EventOutcome::Applied]);
    assert_eq!(checkpoint(store, "products").await.last_sequence, Some(14));
    assert_eq!(get(store, "products", "C").await, Some(entity("C", 1)));
}

/// Clause: "`AlreadyApplied` if its sequence is not above the dataset's":
/// nothing changes, not even an entity of a greater version.
pub async fn case_an_event_not_above_the_sequence_is_already_applied(store: &dyn LocalStore) {
    seed(store, "products", 10, vec![entity("A", 1)]).await;
    let outcomes = store
        .apply_events(&[
            event("products", 10, vec![entity("A", 99)]),
            event("products", 3, vec![entity("Z", 1)]),
            event("products", 11, vec![]),
            event("products", 11, vec![entity("A", 98)]),
        ])
        .await
        .expect("events");
    assert_eq!(
        outcomes,
        vec![
            EventOutcome::AlreadyApplied,
            EventOutcome::AlreadyApplied,
            EventOutcome::Applied,
            EventOutcome::AlreadyApplied,
        ]
    );
    assert_eq!(get(store, "products", "A").await, Some(entity("A", 1)));
    assert_eq!(get(store, "products", "Z").await, None);
    assert_eq!(checkpoint(store, "products").await.last_sequence, Some(11));
}

/// Clause: "`Gap` otherwise ...: items applied, sequence unchanged."
pub async fn case_an_event_beyond_the_next_is_a_gap(store: &dyn LocalStore) {
    seed(store, "products", 10, vec![entity("A", 1)]).await;
    let outcomes = store
        .apply_events(&[event("products", 13, vec![entity("A", 4), entity("N", 1)])])
        .await
        .expect("event");
    assert_eq!(outcomes, vec![EventOutcome::Gap]);
    assert_eq!(checkpoint(store, "products").await.last_sequence, Some(10));
    assert_eq!(get(store, "products", "A").await, Some(entity("A", 4)));
    assert_eq!(get(store, "products", "N").await, Some(entity("N", 1)));
}

/// Clause: "`Gap` ... (or while the dataset has no complete snapshot)": before
/// the first snapshot and while one is in progress, events are applied but the
/// sequence does not move.
pub async fn case_events_before_a_complete_snapshot_are_gaps(store: &dyn LocalStore) {
    let outcomes = store
        .apply_events(&[event("products", 1, vec![entity("A", 1)])])
        .await
        .expect("event on a new dataset");
    assert_eq!(outcomes, vec![EventOutcome::Gap]);
    assert_eq!(checkpoint(store, "products").await.last_sequence, None);
    assert_eq!(get(store, "products", "A").await, Some(entity("A", 1)));

    apply_page(
        store,
        &page("products", 40, vec![entity("B", 1)], Some("c1")),
    )
    .await
    .expect("page 1");
    let outcomes = store
        .apply_events(&[event("products", 41, vec![entity("C", 1)])])
        .await
        .expect("event during the first snapshot");
    assert_eq!(outcomes, vec![EventOutcome::Gap]);
    let cp = checkpoint(store, "products").await;
    assert_eq!(cp.last_sequence, None);
    assert!(cp.snapshot.is_some());

    // a reseed: even the event after the old sequence does not move it
    seed(store, "prices", 10, vec![entity("PR-1", 1)]).await;
    apply_page(
        store,
        &page("prices", 90, vec![entity("PR-2", 1)], Some("c1")),
    )
    .await
    .expect("page 1 of a reseed");
    let outcomes = store
        .apply_events(&[event("prices", 11, vec![entity("PR-3", 1)])])
        .await
        .expect("event during the reseed");
    assert_eq!(outcomes, vec![EventOutcome::Gap]);
    assert_eq!(checkpoint(store, "prices").await.last_sequence, Some(10));
    assert_eq!(get(store, "prices", "PR-3").await, Some(entity("PR-3", 1)));
}

/// Clause: "`Duplicate` if its id was stored before (in this batch or
/// earlier)": nothing changes, whatever the duplicate carries.
pub async fn case_a_repeated_event_id_is_a_duplicate(store: &dyn LocalStore) {
    seed(store, "products", 10, vec![entity("A", 1)]).await;
    let first = event("products", 11, vec![entity("A", 2)]);
    assert_eq!(
        store
            .apply_events(std::slice::from_ref(&first))
            .await
            .expect("first delivery"),
        vec![EventOutcome::Applied]
    );
    let mut redelivered = first.clone();
    redelivered.sequence = 12;
    redelivered.items = vec![entity("A", 50)];
    assert_eq!(
        store
            .apply_events(&[redelivered])
            .await
            .expect("redelivery"),
        vec![EventOutcome::Duplicate]
    );
    assert_eq!(get(store, "products", "A").await, Some(entity("A", 2)));
    assert_eq!(checkpoint(store, "products").await.last_sequence, Some(11));

    let twice = event("products", 12, vec![entity("B", 1)]);
    let mut again = twice.clone();
    again.sequence = 13;
    assert_eq!(
        store
            .apply_events(&[twice, again])
            .await
            .expect("one batch"),
        vec![EventOutcome::Applied, EventOutcome::Duplicate]
    );
    assert_eq!(checkpoint(store, "products").await.last_sequence, Some(12));
}

/// Clause: "The event ids and their effects are committed together": every
/// event of a batch that was not a duplicate (applied, already applied or a
/// gap) is a duplicate when delivered again, also to another instance.
pub async fn case_event_ids_are_recorded_with_their_effects(
    store: &dyn LocalStore,
    reopen: &dyn Reopen<dyn LocalStore>,
) {
    seed(store, "products", 10, vec![]).await;
    let batch = vec![
        event("products", 11, vec![entity("A", 1)]),
        event("products", 9, vec![]),
        event("products", 20, vec![entity("B", 1)]),
    ];
    assert_eq!(
        store.apply_events(&batch).await.expect("batch"),
        vec![
            EventOutcome::Applied,
            EventOutcome::AlreadyApplied,
            EventOutcome::Gap
        ]
    );
    let other = reopen.reopen().await;
    assert_eq!(
        other
            .apply_events(&batch)
            .await
            .expect("the same batch again"),
        vec![EventOutcome::Duplicate; 3]
    );
    assert_eq!(get(&*other, "products", "A").await, Some(entity("A", 1)));
}

/// Clause: "`prune_inbox`: Drop inbox ids recorded before `cutoff` (sequences
/// still guard against replays)."
pub async fn case_prune_inbox_forgets_old_ids_and_sequences_still_guard(store: &dyn LocalStore) {
    seed(store, "products", 10, vec![]).await;
    let first = event("products", 11, vec![entity("A", 1)]);
    store
        .apply_events(std::slice::from_ref(&first))
        .await
        .expect("event");
    assert_eq!(
        store
            .prune_inbox(Utc::now() - Duration::hours(1))
            .await
            .expect("prune nothing"),
        0
    );
    assert_eq!(
        store
            .apply_events(std::slice::from_ref(&first))
            .await
            .expect("redelivery"),
        vec![EventOutcome::Duplicate]
    );
    assert_eq!(
        store
            .prune_inbox(Utc::now() + Duration::minutes(1))
            .await
            .expect("prune"),
        1
    );
    let mut replay = first.clone();
    replay.items = vec![entity("A", 9)];
    assert_eq!(
        store
            .apply_events(&[replay])
            .await
            .expect("replay after pruning"),
        vec![EventOutcome::AlreadyApplied]
    );
    assert_eq!(get(store, "products", "A").await, Some(entity("A", 1)));
}

/// Clause: "`entities`: Entities in id order after `after_id`, tombstones
/// included", at most `limit`; other datasets are not mixed in.
pub async fn case_entities_are_listed_in_id_order_after_an_id(store: &dyn LocalStore) {
    seed(
        store,
        "products",
        10,
        vec![
            entity("c", 1),
            entity("a", 1),
            tombstone("e", 2),
            entity("b", 1),
            entity("d", 1),
        ],
    )
    .await;
    seed(store, "prices", 10, vec![entity("a", 7)]).await;
    let first: Vec<String> = store
        .entities("products", None, 2)
        .await
        .expect("first page")
        .into_iter()
        .map(|e| e.id)
        .collect();
    assert_eq!(first, ["a", "b"]);
    let rest = store
        .entities("products", Some("b".into()), 10)
        .await
        .expect("after b");
    assert_eq!(
        rest,
        vec![entity("c", 1), entity("d", 1), tombstone("e", 2)]
    );
    assert!(
        store
            .entities("products", Some("e".into()), 10)
            .await
            .expect("after the last")
            .is_empty()
    );
    assert_eq!(
        store.entities("prices", None, 10).await.expect("prices"),
        vec![entity("a", 7)]
    );
}

/// Clause: `checkpoints` lists every dataset the store holds, each as
/// `checkpoint` returns it.
pub async fn case_checkpoints_lists_every_dataset(store: &dyn LocalStore) {
    seed(
        store,
        "products",
        10,
        vec![entity("A", 1), tombstone("B", 1)],
    )
    .await;
    seed(store, "prices", 20, vec![entity("PR-1", 1)]).await;
    let mut all = store.checkpoints().await.expect("checkpoints");
    all.sort_by(|a, b| a.dataset.cmp(&b.dataset));
    assert_eq!(all.len(), 2);
    assert_eq!(all[0], checkpoint(store, "prices").await);
    assert_eq!(all[1], checkpoint(store, "products").await);
    assert_eq!((all[0].last_sequence, all[0].entities), (Some(20), 1));
    assert_eq!((all[1].last_sequence, all[1].entities), (Some(10), 1));
}

/// Clause: "`apply_snapshot_page` stores the page's entities" (all of a large
/// page, repeated ids in it under the apply rule) "in one transaction".
pub async fn case_a_large_page_is_stored_whole(store: &dyn LocalStore) {
    let mut items: Vec<Entity> = (0..5000).map(|i| entity(&format!("P-{i:05}"), 2)).collect();
    items.push(entity("P-00007", 1));
    items.push(entity("P-00008", 3));
    apply_page(store, &page("products", 9, items, Some("next")))
        .await
        .expect("a page of 5002 items");
    let progress = checkpoint(store, "products").await;
    assert_eq!(progress.entities, 5000);
    assert_eq!(progress.snapshot.map(|s| s.items_done), Some(5002));
    assert_eq!(
        get(store, "products", "P-00007").await,
        Some(entity("P-00007", 2))
    );
    assert_eq!(
        get(store, "products", "P-00008").await,
        Some(entity("P-00008", 3))
    );
    assert_eq!(
        get(store, "products", "P-04999").await,
        Some(entity("P-04999", 2))
    );
}

/// Clause: "Two processes may use the same store at once; contention is
/// waited out, never reported as an error": two instances writing at the same
/// time both succeed and see each other's writes.
pub async fn case_two_instances_write_at_once(
    store: &dyn LocalStore,
    reopen: &dyn Reopen<dyn LocalStore>,
) {
    let other = reopen.reopen().await;
    seed(store, "products", 0, vec![]).await;
    let pages = async {
        for p in 0..5u64 {
            let items = (0..500)
                .map(|i| entity(&format!("S-{p}-{i:03}"), 1))
                .collect();
            let next = format!("c{p}");
            apply_page(store, &page("prices", 100, items, Some(&next)))
                .await
                .expect("snapshot page while the other instance writes");
        }
    };
    let events = async {
        for seq in 1..=20u64 {
            let outcome = other
                .apply_events(&[event(
                    "products",
                    seq,
                    vec![entity(&format!("E-{seq:02}"), 1)],
                )])
                .await
                .expect("event while the other instance writes");
            assert_eq!(outcome, vec![EventOutcome::Applied]);
        }
    };
    tokio::join!(pages, events);
    assert_eq!(checkpoint(store, "products").await.last_sequence, Some(20));
    assert_eq!(checkpoint(store, "products").await.entities, 20);
    assert_eq!(checkpoint(&*other, "prices").await.entities, 2500);
}

/// Clause (of [`StoreError`]): `Unavailable` is for "busy beyond the timeout,
/// disk full, I/O error"; a store that works reports none of them, and every
/// call on an empty store succeeds.
pub async fn case_calls_on_an_empty_store_succeed(store: &dyn LocalStore) {
    let results: Vec<Result<(), StoreError>> = vec![
        store.restart_snapshot("nothing").await,
        store.prune_inbox(Utc::now()).await.map(|_| ()),
        store.apply_events(&[]).await.map(|o| assert!(o.is_empty())),
        store
            .entities("nothing", Some("x".into()), 0)
            .await
            .map(|e| assert!(e.is_empty())),
    ];
    for result in results {
        result.expect("a call on an empty store");
    }
}

#[async_trait]
impl<S: LocalStore, G: Send + Sync + 'static> LocalStore for Guarded<S, G> {
    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        self.store.checkpoints().await
    }

    async fn checkpoint(&self, dataset: &str) -> Result<Checkpoint, StoreError> {
        self.store.checkpoint(dataset).await
    }

    async fn apply_snapshot_page(
        &self,
        page: &SnapshotPage,
        fetched_with: Option<String>,
    ) -> Result<SnapshotStep, StoreError> {
        self.store.apply_snapshot_page(page, fetched_with).await
    }

    async fn restart_snapshot(&self, dataset: &str) -> Result<(), StoreError> {
        self.store.restart_snapshot(dataset).await
    }

    async fn apply_changes(&self, page: &ChangesPage) -> Result<(), StoreError> {
        self.store.apply_changes(page).await
    }

    async fn apply_events(&self, events: &[DatasetEvent]) -> Result<Vec<EventOutcome>, StoreError> {
        self.store.apply_events(events).await
    }

    async fn entity(&self, dataset: &str, id: &str) -> Result<Option<Entity>, StoreError> {
        self.store.entity(dataset, id).await
    }

    async fn entities(
        &self,
        dataset: &str,
        after_id: Option<String>,
        limit: u32,
    ) -> Result<Vec<Entity>, StoreError> {
        self.store.entities(dataset, after_id, limit).await
    }

    async fn prune_inbox(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        self.store.prune_inbox(cutoff).await
    }
}

/// Clause: "a page fetched with a cursor is stored only if that cursor is the
/// stored one, else it is `Stale` and nothing is written".
pub async fn case_a_page_fetched_with_a_cursor_that_is_not_the_stored_one_is_stale(
    store: &dyn LocalStore,
) {
    store
        .apply_snapshot_page(
            &page("products", 30, vec![entity("A", 1)], Some("c1")),
            None,
        )
        .await
        .expect("page 1");
    let stale = store
        .apply_snapshot_page(
            &page("products", 30, vec![entity("X", 9)], Some("c9")),
            Some("c0".into()),
        )
        .await
        .expect("stale page");
    assert_eq!(stale, SnapshotStep::Stale);
    assert_eq!(get(store, "products", "X").await, None, "nothing written");
    let progress = checkpoint(store, "products")
        .await
        .snapshot
        .expect("still in progress");
    assert_eq!(
        (progress.next_cursor.as_deref(), progress.pages_done),
        (Some("c1"), 1)
    );
    // The page fetched with the stored cursor goes in.
    let ok = store
        .apply_snapshot_page(
            &page("products", 30, vec![entity("B", 1)], None),
            Some("c1".into()),
        )
        .await;
    assert_eq!(ok.expect("page 2"), SnapshotStep::Complete);
    assert_eq!(ids(store, "products").await, ["A", "B"]);
}

/// Clause: "two processes seeding at once never sweep each other's pages":
/// a second seeder starting over mid-way, then both going on, ends with every entity.
pub async fn case_two_seeders_at_once_keep_every_entity(store: &dyn LocalStore) {
    let all: Vec<Entity> = (0..6).map(|i| entity(&format!("E-{i}"), 1)).collect();
    let p = |from: usize, to: usize, next: Option<&str>| {
        page("products", 40, all[from..to].to_vec(), next)
    };
    // Seeder A: pages 1 and 2.
    store
        .apply_snapshot_page(&p(0, 2, Some("c2")), None)
        .await
        .expect("A1");
    store
        .apply_snapshot_page(&p(2, 4, Some("c4")), Some("c2".into()))
        .await
        .expect("A2");
    // Seeder B starts over (a first page) while A goes on.
    store
        .apply_snapshot_page(&p(0, 2, Some("c2")), None)
        .await
        .expect("B1");
    let a3 = store
        .apply_snapshot_page(&p(4, 6, None), Some("c4".into()))
        .await
        .expect("A3");
    assert_eq!(
        a3,
        SnapshotStep::Stale,
        "A's last page would have swept B's snapshot"
    );
    // Both read the checkpoint again and continue from the stored cursor.
    assert_eq!(
        store
            .apply_snapshot_page(&p(2, 4, Some("c4")), Some("c2".into()))
            .await
            .expect("2"),
        SnapshotStep::Continue
    );
    assert_eq!(
        store
            .apply_snapshot_page(&p(4, 6, None), Some("c4".into()))
            .await
            .expect("3"),
        SnapshotStep::Complete
    );
    assert_eq!(
        ids(store, "products").await,
        ["E-0", "E-1", "E-2", "E-3", "E-4", "E-5"]
    );
    assert_eq!(checkpoint(store, "products").await.entities, 6);
}

/// Stamp one `#[tokio::test]` per case of the [`LocalStore`] suite.
///
/// `$factory` evaluates to a future of a fresh store, evaluated once per test;
/// the store must also implement [`Reopen<dyn LocalStore>`](Reopen) (fakes do;
/// wrap an adapter in a [`Guarded`] whose guard does).
#[macro_export]
macro_rules! local_store_suite {
    ($factory:expr) => {
        $crate::local_store_suite!(@cases $factory;
            case_a_new_dataset_has_a_blank_checkpoint,
            case_a_page_fetched_with_a_cursor_that_is_not_the_stored_one_is_stale,
            case_two_seeders_at_once_keep_every_entity,
            case_only_a_greater_version_is_written,
            case_a_tombstone_blocks_older_updates,
            case_snapshot_pages_store_entities_and_the_next_cursor,
            case_a_reseed_removes_what_the_new_snapshot_lacks,
            case_restart_snapshot_forgets_the_progress_not_the_entities,
            case_a_page_of_another_snapshot_starts_it_over,
            case_changes_raise_the_sequence_and_never_lower_it,
            case_consecutive_events_advance_the_sequence_step_by_step,
            case_an_event_not_above_the_sequence_is_already_applied,
            case_an_event_beyond_the_next_is_a_gap,
            case_events_before_a_complete_snapshot_are_gaps,
            case_a_repeated_event_id_is_a_duplicate,
            case_prune_inbox_forgets_old_ids_and_sequences_still_guard,
            case_entities_are_listed_in_id_order_after_an_id,
            case_checkpoints_lists_every_dataset,
            case_a_large_page_is_stored_whole,
            case_calls_on_an_empty_store_succeed;
            reopen:
            case_snapshot_progress_survives_a_new_instance,
            case_event_ids_are_recorded_with_their_effects,
            case_two_instances_write_at_once,
        );
    };
    (@cases $factory:expr; $($case:ident),+ ; reopen: $($reopen_case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let store = $factory.await;
                $crate::suites::local_store::$case(&store).await;
            }
        )+
        $(
            #[tokio::test]
            async fn $reopen_case() {
                let store = $factory.await;
                $crate::suites::local_store::$reopen_case(&store, &store).await;
            }
        )+
    };
}
