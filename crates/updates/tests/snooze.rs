//! Acceptance: three snoozes of 5 minutes are granted, the fourth refused,
//! the count survives a restart, and the update is then applied at the next
//! safe point and not before (paused tokio time).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::Node;
use spacepos_core::ComponentId;
use spacepos_testkit::fakes::MemoryRelease;
use spacepos_updates::{ApplyOutcome, SnoozeOutcome, SnoozeRefusal};
use tokio::sync::mpsc;
use tokio::time::sleep;
use tokio_util::sync::CancellationToken;

#[tokio::test(start_paused = true)]
async fn three_snoozes_are_granted_the_fourth_refused_and_the_count_survives_a_restart() {
    let node = Node::new();
    let updates = node.updates();
    assert_eq!(
        updates.snooze(ComponentId::SpacePos).await.unwrap(),
        SnoozeOutcome::Refused(SnoozeRefusal::NothingStaged)
    );
    node.erp
        .publish(MemoryRelease::new(ComponentId::SpacePos, "1.5.0"));
    updates.check().await.unwrap();

    for left in [2, 1, 0] {
        let now = node.clock.now();
        match updates.snooze(ComponentId::SpacePos).await.unwrap() {
            SnoozeOutcome::Granted {
                version,
                until,
                left: l,
            } => {
                assert_eq!(version, "1.5.0");
                assert_eq!(until, now + chrono::Duration::minutes(5));
                assert_eq!(l, left);
            }
            other => panic!("{other:?}"),
        }
        sleep(Duration::from_secs(301)).await;
    }
    let refused = SnoozeOutcome::Refused(SnoozeRefusal::NoneLeft {
        version: "1.5.0".into(),
        max: 3,
    });
    assert_eq!(
        updates.snooze(ComponentId::SpacePos).await.unwrap(),
        refused
    );

    // A restart does not reset the count: it is in state.json.
    let restarted = node.updates();
    assert_eq!(
        restarted.snooze(ComponentId::SpacePos).await.unwrap(),
        refused
    );
    let view = &restarted.list().await.unwrap()[0];
    assert_eq!((view.snoozes_used, view.snoozes_left), (3, 0));
    let record = node.state.snapshot().unwrap().updates.spacepos.snoozes["1.5.0"].clone();
    assert_eq!(record.count, 3);
}

#[tokio::test(start_paused = true)]
async fn after_the_snoozes_the_update_applies_at_the_next_safe_point_and_not_before() {
    let node = Node::new();
    node.safe_point.set_busy(Some("a sale is open"));
    node.erp
        .publish(MemoryRelease::new(ComponentId::SpaceFuel, "2.2.0"));
    let updates = node.updates();
    let shutdown = CancellationToken::new();
    let (_events, events_rx) = mpsc::channel(4);
    let task = tokio::spawn(updates.clone().run(shutdown.clone(), events_rx));

    sleep(Duration::from_secs(1)).await;
    let view = updates.list().await.unwrap()[1].clone();
    assert_eq!(view.component, ComponentId::SpaceFuel);
    assert_eq!(
        view.staged.as_ref().map(|s| s.version.as_str()),
        Some("2.2.0")
    );
    assert_eq!(view.waiting_for.as_deref(), Some("a sale is open"));
    assert_eq!(node.events("POSComponentReadyEvent").len(), 1);

    // The operator snoozes three times; the fourth is refused.
    for _ in 0..3 {
        assert!(matches!(
            updates.snooze(ComponentId::SpaceFuel).await.unwrap(),
            SnoozeOutcome::Granted { .. }
        ));
    }
    assert!(matches!(
        updates.snooze(ComponentId::SpaceFuel).await.unwrap(),
        SnoozeOutcome::Refused(SnoozeRefusal::NoneLeft { .. })
    ));
    // Safe, but snoozed: not applied during the snooze.
    node.safe_point.set_busy(None);
    sleep(Duration::from_secs(4 * 60 + 50)).await;
    assert!(
        node.installer.installs().is_empty(),
        "not during the snooze"
    );
    // The snooze ends while a sale is open: still not applied.
    node.safe_point.set_busy(Some("a sale is open"));
    sleep(Duration::from_secs(60)).await;
    assert!(
        node.installer.installs().is_empty(),
        "not while a sale is open"
    );
    assert_eq!(
        updates.list().await.unwrap()[1].waiting_for.as_deref(),
        Some("a sale is open")
    );
    // The sale closes: applied at the next safe-point poll (2 s).
    node.safe_point.set_busy(None);
    sleep(Duration::from_secs(3)).await;
    let installs = node.installer.installs();
    assert_eq!(installs.len(), 1);
    assert_eq!(installs[0].version, "2.2.0");
    assert_eq!(installs[0].previous_version.as_deref(), Some("2.1.0"));
    let applied = node.events("POSComponentAppliedEvent");
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].payload["Result"], "Applied");
    assert_eq!(applied[0].payload["PreviousVersion"], "2.1.0");

    // Nothing is applied twice, and the next checks see it installed.
    sleep(Duration::from_secs(2 * 3600)).await;
    assert_eq!(node.installer.installs().len(), 1);
    assert_eq!(node.events("POSComponentAppliedEvent").len(), 1);
    assert_eq!(node.events("POSComponentReadyEvent").len(), 1);
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn apply_now_waits_for_the_safe_point_and_ignores_snoozes() {
    let node = Node::new();
    node.erp
        .publish(MemoryRelease::new(ComponentId::SpacePos, "1.5.0"));
    let updates = node.updates();
    updates.check().await.unwrap();
    updates.snooze(ComponentId::SpacePos).await.unwrap();
    node.safe_point.set_busy(Some("a sale is open"));
    let apply = tokio::spawn({
        let updates = updates.clone();
        async move { updates.apply(ComponentId::SpacePos).await }
    });
    sleep(Duration::from_secs(30)).await;
    assert!(!apply.is_finished(), "waits while a sale is open");
    assert!(node.installer.installs().is_empty());
    let asked = node.safe_point.asked();
    assert!((14..=17).contains(&asked), "asked about every 2 s: {asked}");
    node.safe_point.set_busy(None);
    let report = apply.await.unwrap().unwrap();
    assert_eq!(report.outcome, ApplyOutcome::Applied);
    assert_eq!(report.previous_version.as_deref(), Some("1.4.2"));
}
