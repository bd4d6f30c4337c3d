//! The blue/green switch of SpaceFuel with real processes (issue 5): the fake
//! ERP publishes a signed SpaceFuel release, `spacefuel-service run` (the
//! host) finds it at start, stages it in the inactive slot, switches at a
//! quiet moment, checks the new worker's health and commits or rolls back;
//! what it did is read from `state.json`, the slots on disk, `health.json`,
//! the pid file, `/proc` and the shared `spacepos.db`.
//!
//! Run with `cargo test -p spacepos-spacefuel-service --test switch -- --nocapture`
//! to see the timings.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // test code

#[macro_use]
mod support;

use std::time::Duration;

use spacepos_config::Slot;
use spacepos_spacefuel::PumpState;
use spacepos_sync::Destination;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_version_is_staged_in_green_switched_at_a_quiet_moment_and_reported_applied() {
    let erp = start_erp(false).await;
    publish(&erp, NEW, artifact(NEW, Build::Good));
    let mut site = Site::new(&erp, 1, &Settings::default()).await;
    let t = site.started;
    note!(t, "site ready: blue runs {OLD}, {NEW} published");
    site.start(None);

    let (applied, journal) = site.wait_applied(Duration::from_secs(90)).await;
    note!(t, "Applied in the outbox");
    let green_pid = site
        .wait_settled(Slot::Green, NEW, Duration::from_secs(30))
        .await;
    note!(t, "settled: green {NEW} runs as pid {green_pid}");

    // state.json: green active and verified, blue kept, nothing in progress.
    let state = site.state().await;
    let sf = &state.spacefuel;
    assert_eq!(sf.active_slot, Some(Slot::Green));
    assert_eq!(sf.active_version(), Some(NEW));
    assert!(sf.switch.is_none(), "{:?}", sf.switch);
    let green = sf.green.as_ref().unwrap();
    assert_eq!((green.version.as_str(), green.verified), (NEW, true));
    let blue = sf.blue.as_ref().unwrap();
    assert_eq!((blue.version.as_str(), blue.verified), (OLD, true));
    let update = &state.updates.spacefuel;
    assert!(update.staged.is_none(), "{:?}", update.staged);
    assert!(update.applying.is_none(), "{:?}", update.applying);
    assert!(update.rejected.is_empty(), "{:?}", update.rejected);
    assert!(site.complete(Slot::Green) && site.complete(Slot::Blue));
    let journal = journal.expect("the switch journal was seen in state.json");
    assert_eq!(
        (journal.from, journal.from_version.as_deref(), journal.to),
        (Some(Slot::Blue), Some(OLD), Slot::Green)
    );

    // The worker runs from green: health.json, the pid file and /proc agree.
    let health = site.health().unwrap();
    assert_eq!((health.slot, health.version.as_str()), (Slot::Green, NEW));
    assert_eq!(health.pid, green_pid);
    assert_eq!(site.pid_file(), Some((green_pid, Slot::Green)));
    assert_eq!(site.workers(), vec![green_pid]);
    assert!(
        health.pumps.iter().all(|p| p.state == PumpState::Idle) && health.sales.is_empty(),
        "{health:?}"
    );
    let blue_pids = site.worker_pids(Slot::Blue, OLD);
    assert_eq!(blue_pids.len(), 1, "blue was started once: {blue_pids:?}");
    assert!(!alive(blue_pids[0]), "the blue worker is gone");
    assert_eq!(site.worker_pids(Slot::Green, NEW), vec![green_pid]);

    // The outbox: Ready, then Applied (Applied, previous 2.1.0), once each.
    let bus: Vec<_> = site
        .outbox()
        .await
        .into_iter()
        .filter(|o| o.destination == Destination::EventBus)
        .collect();
    let kinds: Vec<&str> = bus.iter().map(|o| o.kind.as_str()).collect();
    assert_eq!(kinds, vec![READY, APPLIED], "in this order, once each");
    let ready = &bus[0].payload;
    assert_eq!(ready["Component"], "SpaceFuel");
    assert_eq!(ready["Version"], NEW);
    assert_eq!(ready["Slot"], "green");
    assert_eq!(ready["ClientId"], site.client_id.as_str());
    let a = &applied.payload;
    assert_eq!(applied.id, bus[1].id);
    assert_eq!(a["Component"], "SpaceFuel");
    assert_eq!(a["Version"], NEW);
    assert_eq!(a["PreviousVersion"], OLD);
    assert_eq!(a["Result"], "Applied");
    assert!(a["Error"].is_null(), "{a}");
    assert!(date_at(a, "/AppliedAt") >= journal.started_at);
    assert!(date_at(ready, "/StagedAt") <= journal.started_at);

    let log = site.host_log();
    assert!(
        log.contains(&format!("applying update spacefuel {NEW} at a safe point")),
        "{}",
        site.logs()
    );
    assert_eq!(site.error_lines(), Vec::<String>::new(), "{}", site.logs());

    // A graceful stop of the host stops its worker too.
    assert_eq!(site.stop(Duration::from_secs(30)).await, 0);
    assert_eq!(site.workers(), Vec::<u32>::new());
    assert!(!alive(green_pid));
    assert_eq!(site.pid_file(), None);
    note!(t, "host stopped with its worker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_that_never_reports_healthy_is_rolled_back_within_the_grace_and_refused() {
    const GRACE: u64 = 5;
    let erp = start_erp(false).await;
    publish(&erp, NEW, artifact(NEW, Build::Silent));
    let settings = Settings {
        grace_seconds: GRACE,
        ..Settings::default()
    };
    let mut site = Site::new(&erp, 2, &settings).await;
    let t = site.started;
    site.start(None);

    let (applied, journal) = site.wait_applied(Duration::from_secs(90)).await;
    note!(t, "Applied (rolled back) in the outbox");
    let blue_pid = site
        .wait_settled(Slot::Blue, OLD, Duration::from_secs(30))
        .await;
    note!(t, "settled: blue {OLD} runs again as pid {blue_pid}");

    // The event: RolledBack, with the health check's error.
    let a = &applied.payload;
    assert_eq!(a["Component"], "SpaceFuel");
    assert_eq!(a["Version"], NEW);
    assert_eq!(a["PreviousVersion"], OLD);
    assert_eq!(a["Result"], "RolledBack");
    let error = a["Error"].as_str().unwrap_or_default().to_owned();
    assert!(
        error.contains(&format!("SpaceFuel {NEW} was not healthy within {GRACE} s")),
        "{error}"
    );

    // Within the grace, plus a few seconds to stop it and restart blue.
    let journal = journal.expect("the switch journal was seen in state.json");
    let took = (date_at(a, "/AppliedAt") - journal.started_at)
        .to_std()
        .unwrap();
    note!(t, "switch started to RolledBack recorded: {took:?}");
    assert!(
        took >= Duration::from_secs(GRACE),
        "gave up before the grace: {took:?}"
    );
    assert!(
        took <= Duration::from_secs(GRACE + 5),
        "rolled back {took:?} after the switch, grace {GRACE} s"
    );

    // state.json: blue active, nothing in progress, the artifact refused.
    let state = site.state().await;
    assert_eq!(state.spacefuel.active_slot, Some(Slot::Blue));
    assert_eq!(state.spacefuel.active_version(), Some(OLD));
    assert!(state.spacefuel.switch.is_none());
    let update = &state.updates.spacefuel;
    assert!(
        update.applying.is_none() && update.staged.is_none(),
        "{update:?}"
    );
    assert_eq!(update.rejected.len(), 1, "{:?}", update.rejected);
    let refused = &update.rejected[0];
    assert_eq!(refused.version, NEW);
    assert!(
        refused.reason.contains("RolledBack") && refused.reason.contains(&error),
        "{}",
        refused.reason
    );

    // Blue runs again, alone; the broken green process is gone.
    let health = site.health().unwrap();
    assert_eq!((health.slot, health.version.as_str()), (Slot::Blue, OLD));
    assert_eq!(site.workers(), vec![blue_pid]);
    let blue_pids = site.worker_pids(Slot::Blue, OLD);
    assert_eq!(
        blue_pids.len(),
        2,
        "blue started, then again: {blue_pids:?}"
    );
    assert_eq!(blue_pids[1], blue_pid);
    assert!(!alive(blue_pids[0]));

    // Ready and RolledBack once each, in that order; no retry of the refused one.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let kinds: Vec<String> = site
        .outbox()
        .await
        .into_iter()
        .filter(|o| o.destination == Destination::EventBus)
        .map(|o| o.kind)
        .collect();
    assert_eq!(kinds, vec![READY.to_owned(), APPLIED.to_owned()]);
    assert_eq!(
        site.state().await.updates.spacefuel.rejected[0].version,
        NEW
    );
    assert!(
        site.host_log()
            .contains(&format!("update spacefuel {NEW} rolled back")),
        "{}",
        site.logs()
    );
    assert_eq!(site.error_lines(), Vec::<String>::new(), "{}", site.logs());
}
