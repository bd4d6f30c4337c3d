//! `kill -9` of the SpaceFuel host at every step of a blue/green switch, then
//! a restart (issue 5): each test runs `spacefuel-service run` with
//! `SPACEFUEL_PAUSE_AT=<point>`, waits for `extensions/spacefuel/paused-<point>`,
//! checks that `state.json` journals the step of that point, kills the host
//! with SIGKILL (its worker, in a process group of its own, survives and is
//! adopted by the next host through `service.pid`), starts it again without
//! the variable and asserts the end state:
//!
//! - exactly one active slot, verified in `state.json`, its `.complete`
//!   marker on disk; no switch journaled and no update applying;
//! - exactly one worker process of the data directory alive, the one the pid
//!   file names, reporting the active slot and version in `health.json`;
//!   every other worker seen before is gone;
//! - one Ready and one Applied event (Applied or RolledBack) in the outbox,
//!   in that order, never doubled.
//!
//! The forward points use a good 2.2.0 (it ends Applied in green), the
//! rollback points a 2.2.0 whose program exits with status 3 (it ends
//! RolledBack in blue, the artifact refused). One more test removes green's
//! completion marker while the host is dead at `flipped`, as a crash in the
//! middle of an extraction leaves a slot: the half-installed slot is never
//! started and the switch is rolled back.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // test code

#[macro_use]
mod support;

use std::time::Duration;

use spacepos_config::{Slot, SwitchStep};
use spacepos_sync::Destination;
use support::*;

/// How the interrupted switch must end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// 2.2.0 runs from green.
    Applied,
    /// 2.1.0 runs from blue again, 2.2.0 refused.
    RolledBack,
}

/// What `state.json` says at the pause: the journal step, and the active slot.
type AtPause = (Option<SwitchStep>, Slot);

async fn kill_at(point: &str, build: Build, at_pause: AtPause, end: End, terminal: u32) {
    kill_at_then(point, build, at_pause, end, terminal, |_| {}).await;
}

/// The scenario; `meddle` runs on the site while the host is dead.
async fn kill_at_then(
    point: &str,
    build: Build,
    at_pause: AtPause,
    end: End,
    terminal: u32,
    meddle: impl FnOnce(&Site),
) -> Site {
    let erp = start_erp(false).await;
    publish(&erp, NEW, artifact(NEW, build));
    let mut site = Site::new(&erp, terminal, &Settings::default()).await;
    let t = site.started;
    site.start(Some(point));
    let host = site.host_pid().unwrap();
    let paused = site.wait_paused(point, Duration::from_secs(60)).await;
    assert_eq!(paused, host, "the host paused at {point}");
    note!(t, "{point}: host {host} paused");

    // The step of this point is journaled.
    let state = site.state().await;
    let step = state.spacefuel.switch.as_ref().map(|s| s.step);
    assert_eq!(
        (step, state.spacefuel.active_slot.unwrap()),
        at_pause,
        "state.json at {point}: {:?}",
        state.spacefuel
    );
    let before = site.workers();
    site.kill9_host();
    tokio::time::sleep(Duration::from_millis(200)).await;
    for pid in &before {
        assert!(alive(*pid), "worker {pid} survives the host's kill -9");
    }
    note!(t, "{point}: host killed, workers alive: {before:?}");
    meddle(&site);

    site.start(None);
    let (slot, version) = match end {
        End::Applied => (Slot::Green, NEW),
        End::RolledBack => (Slot::Blue, OLD),
    };
    let (applied, _) = site.wait_applied(Duration::from_secs(90)).await;
    let pid = site
        .wait_settled(slot, version, Duration::from_secs(60))
        .await;
    note!(t, "{point}: settled on {slot} {version}, worker {pid}");

    // One active slot, verified and complete; nothing in progress.
    let state = site.state().await;
    let sf = &state.spacefuel;
    assert_eq!(sf.active_slot, Some(slot));
    let record = sf.slot(slot).unwrap();
    assert_eq!((record.version.as_str(), record.verified), (version, true));
    assert!(site.complete(slot), "{slot}.complete");
    assert!(sf.switch.is_none(), "{:?}", sf.switch);
    let update = &state.updates.spacefuel;
    assert!(update.applying.is_none(), "{:?}", update.applying);
    assert!(update.staged.is_none(), "{:?}", update.staged);
    match end {
        End::Applied => assert!(update.rejected.is_empty(), "{:?}", update.rejected),
        End::RolledBack => {
            let refused: Vec<&str> = update.rejected.iter().map(|r| r.version.as_str()).collect();
            assert_eq!(refused, vec![NEW]);
        }
    }

    // Exactly one worker, from the active slot; the others are gone.
    assert_eq!(site.workers(), vec![pid]);
    assert_eq!(site.pid_file(), Some((pid, slot)));
    let health = site.health().unwrap();
    assert_eq!(
        (health.slot, health.version.as_str(), health.pid),
        (slot, version, pid)
    );
    for old in before.iter().filter(|p| **p != pid) {
        assert!(!alive(*old), "the worker {old} of before the crash is gone");
    }

    // Ready, then one Applied event with the outcome; never doubled.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let bus: Vec<_> = site
        .outbox()
        .await
        .into_iter()
        .filter(|o| o.destination == Destination::EventBus)
        .collect();
    let kinds: Vec<&str> = bus.iter().map(|o| o.kind.as_str()).collect();
    assert_eq!(kinds, vec![READY, APPLIED], "{point}: once each, in order");
    assert_eq!(bus[0].payload["Version"], NEW);
    assert_eq!(bus[1].id, applied.id);
    let a = &applied.payload;
    assert_eq!(
        (a["Version"].as_str(), a["PreviousVersion"].as_str()),
        (Some(NEW), Some(OLD))
    );
    let result = match end {
        End::Applied => "Applied",
        End::RolledBack => "RolledBack",
    };
    assert_eq!(a["Result"], result, "{a}");
    assert_eq!(site.error_lines(), Vec::<String>::new(), "{}", site.logs());
    assert!(
        site.host_log()
            .contains(&format!("SPACEFUEL_PAUSE_AT: paused at {point}")),
        "{}",
        site.logs()
    );
    note!(t, "{point}: done");
    site
}

use End::{Applied as A, RolledBack as R};
const GREEN: Slot = Slot::Green;
const BLUE: Slot = Slot::Blue;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_extracted() {
    kill_at("extracted", Build::Good, (None, BLUE), A, 31).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_staged() {
    kill_at("staged", Build::Good, (None, BLUE), A, 32).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_journaled() {
    let stopping = Some(SwitchStep::Stopping);
    kill_at("journaled", Build::Good, (stopping, BLUE), A, 33).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_stopped() {
    let stopping = Some(SwitchStep::Stopping);
    kill_at("stopped", Build::Good, (stopping, BLUE), A, 34).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_flipped() {
    let starting = Some(SwitchStep::Starting);
    kill_at("flipped", Build::Good, (starting, GREEN), A, 35).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_started() {
    let checking = Some(SwitchStep::Checking);
    kill_at("started", Build::Good, (checking, GREEN), A, 36).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_healthy() {
    let checking = Some(SwitchStep::Checking);
    kill_at("healthy", Build::Good, (checking, GREEN), A, 37).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_committed() {
    kill_at("committed", Build::Good, (None, GREEN), A, 38).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_rollback_flipped() {
    let back = Some(SwitchStep::RollingBack);
    kill_at("rollback-flipped", Build::Exits, (back, BLUE), R, 39).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_rollback_started() {
    let back = Some(SwitchStep::RollingBack);
    kill_at("rollback-started", Build::Exits, (back, BLUE), R, 40).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_flipped_with_green_left_half_installed_never_starts_green() {
    let starting = Some(SwitchStep::Starting);
    let site = kill_at_then("flipped", Build::Good, (starting, GREEN), R, 41, |site| {
        // What a crash in the middle of extracting green leaves: files, no marker.
        std::fs::remove_file(site.ext().join("green.complete")).unwrap();
    })
    .await;
    assert_eq!(
        site.worker_pids(Slot::Green, NEW),
        Vec::<u32>::new(),
        "no worker ever ran from the half-installed green\n{}",
        site.logs()
    );
    let applied = site_applied_error(site).await;
    assert!(
        applied.contains(&format!(
            "slot green does not hold a complete SpaceFuel {NEW}"
        )),
        "{applied}"
    );
}

async fn site_applied_error(mut site: Site) -> String {
    let applied = site.outbox_of(APPLIED).await;
    applied[0].payload["Error"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}
