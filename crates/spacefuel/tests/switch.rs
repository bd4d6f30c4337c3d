//! The blue/green switch with in-memory ports and paused time: the happy
//! path, the health-gated rollback, and recovery from every journal step.
#![allow(clippy::unwrap_used)] // test code

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use spacepos_config::{
    ApplyingRecord, Slot, SlotRecord, State, StateStore, SwitchRecord, SwitchStep, UpdateResult,
};
use spacepos_core::ComponentId;
use spacepos_spacefuel::{
    HealthProbe, Recovery, ServiceError, ServiceManager, ServiceState, SlotError, SlotFs,
    SlotManifest, SwitchError, SwitchObserver, SwitchOutcome, SwitchPoint, SwitchPorts,
    SwitchSettings, Switcher,
};
use spacepos_testkit::fakes::{MemoryStateStore, TokioClock};
use uuid::Uuid;

/// Slots: what each holds, and which artifacts extract to what.
#[derive(Default)]
struct Slots {
    complete: Mutex<HashMap<Slot, SlotManifest>>,
    artifacts: Mutex<HashMap<PathBuf, Result<SlotManifest, SlotError>>>,
}

impl Slots {
    fn holds(&self, slot: Slot, version: &str) {
        self.complete
            .lock()
            .unwrap()
            .insert(slot, manifest(version));
    }
    fn artifact(&self, path: &str, result: Result<SlotManifest, SlotError>) {
        self.artifacts.lock().unwrap().insert(path.into(), result);
    }
}

fn manifest(version: &str) -> SlotManifest {
    SlotManifest {
        version: version.into(),
        entry: "spacefuel-service".into(),
    }
}

#[async_trait]
impl SlotFs for Slots {
    async fn extract(&self, slot: Slot, artifact: PathBuf) -> Result<SlotManifest, SlotError> {
        self.complete.lock().unwrap().remove(&slot);
        let result = self.artifacts.lock().unwrap().get(&artifact).cloned();
        let m = result.unwrap_or_else(|| {
            Err(SlotError::Invalid {
                artifact: artifact.display().to_string(),
                problem: "unknown".into(),
            })
        })?;
        self.complete.lock().unwrap().insert(slot, m.clone());
        Ok(m)
    }
    async fn manifest(&self, slot: Slot) -> Result<SlotManifest, SlotError> {
        self.complete
            .lock()
            .unwrap()
            .get(&slot)
            .cloned()
            .ok_or(SlotError::Incomplete { slot })
    }
    async fn clear(&self, slot: Slot) -> Result<(), SlotError> {
        self.complete.lock().unwrap().remove(&slot);
        Ok(())
    }
    fn dir(&self, slot: Slot) -> PathBuf {
        PathBuf::from(format!("/slots/{slot}"))
    }
}

/// The service: runs one slot at a time, logs every call.
#[derive(Default)]
struct Service {
    running: Mutex<Option<Slot>>,
    calls: Mutex<Vec<String>>,
    /// Versions that crash right after starting.
    crashing: Mutex<Vec<Slot>>,
}

impl Service {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
    fn running(&self) -> Option<Slot> {
        *self.running.lock().unwrap()
    }
}

#[async_trait]
impl ServiceManager for Service {
    async fn start(&self, slot: Slot) -> Result<(), ServiceError> {
        self.calls.lock().unwrap().push(format!("start {slot}"));
        let mut r = self.running.lock().unwrap();
        assert!(
            r.is_none(),
            "started {slot} while {r:?} runs: two services at once"
        );
        *r = Some(slot);
        Ok(())
    }
    async fn stop(&self) -> Result<(), ServiceError> {
        self.calls.lock().unwrap().push("stop".into());
        *self.running.lock().unwrap() = None;
        Ok(())
    }
    async fn state(&self) -> ServiceState {
        match self.running() {
            Some(slot) if self.crashing.lock().unwrap().contains(&slot) => ServiceState::Failed {
                reason: "exited with status 3".into(),
            },
            Some(slot) => ServiceState::Running {
                slot,
                pid: Some(42),
            },
            None => ServiceState::Stopped,
        }
    }
}

/// Health: healthy versions, and how many polls until healthy.
struct Health {
    service: Arc<Service>,
    slots: Arc<Slots>,
    healthy: Mutex<BTreeMap<String, u32>>,
    /// The pid the last report names (`None`: no report to compare).
    report_pid: Mutex<Option<u32>>,
}

#[async_trait]
impl HealthProbe for Health {
    async fn check(&self, slot: Slot, version: &str) -> Result<(), String> {
        if self.service.running() != Some(slot) {
            return Err(format!("slot {slot} does not run"));
        }
        let runs = self
            .slots
            .manifest(slot)
            .await
            .map_err(|e| e.to_string())?
            .version;
        if runs != version {
            return Err(format!("runs {runs}, expected {version}"));
        }
        let mut h = self.healthy.lock().unwrap();
        match h.get_mut(version) {
            Some(0) => Ok(()),
            Some(n) => {
                *n -= 1;
                Err("starting".into())
            }
            None => Err("the controller does not answer".into()),
        }
    }
    async fn report(&self) -> Option<spacepos_spacefuel::HealthReport> {
        let pid = (*self.report_pid.lock().unwrap())?;
        Some(spacepos_spacefuel::HealthReport {
            slot: self.service.running()?,
            version: "?".into(),
            pid,
            ready: true,
            detail: None,
            at: Utc::now(),
            pumps: Vec::new(),
            sales: Vec::new(),
        })
    }
}

/// Records the points; can stop the switch at one (a "crash": the task is dropped).
#[derive(Default)]
struct Points {
    seen: Mutex<Vec<SwitchPoint>>,
    halt_at: Mutex<Option<SwitchPoint>>,
}

#[async_trait]
impl SwitchObserver for Points {
    async fn reached(&self, point: SwitchPoint) {
        self.seen.lock().unwrap().push(point);
        if *self.halt_at.lock().unwrap() == Some(point) {
            std::future::pending::<()>().await;
        }
    }
}

struct Site {
    state: Arc<MemoryStateStore>,
    slots: Arc<Slots>,
    service: Arc<Service>,
    health: Arc<Health>,
    points: Arc<Points>,
}

impl Site {
    /// Blue runs 2.1.0 (healthy); green holds nothing.
    async fn new() -> Site {
        let mut state = State::new();
        state.spacefuel.active_slot = Some(Slot::Blue);
        state.spacefuel.blue = Some(SlotRecord {
            version: "2.1.0".into(),
            verified: true,
            installed_at: Utc::now(),
        });
        let state = Arc::new(MemoryStateStore::with_state(state));
        let slots = Arc::new(Slots::default());
        slots.holds(Slot::Blue, "2.1.0");
        let service = Arc::new(Service::default());
        service.start(Slot::Blue).await.unwrap();
        service.calls.lock().unwrap().clear();
        let health = Arc::new(Health {
            service: service.clone(),
            slots: slots.clone(),
            healthy: Mutex::new(BTreeMap::from([("2.1.0".to_string(), 0)])),
            report_pid: Mutex::new(None),
        });
        Site {
            state,
            slots,
            service,
            health,
            points: Arc::new(Points::default()),
        }
    }

    fn switcher(&self) -> Switcher {
        Switcher::new(
            SwitchPorts {
                state: self.state.clone(),
                slots: self.slots.clone(),
                service: self.service.clone(),
                health: self.health.clone(),
                clock: Arc::new(TokioClock::starting_at(Utc::now())),
            },
            SwitchSettings::default(),
        )
        .with_observer(self.points.clone())
    }

    fn healthy_after(&self, version: &str, polls: u32) {
        self.health
            .healthy
            .lock()
            .unwrap()
            .insert(version.into(), polls);
    }

    async fn state(&self) -> State {
        self.state.load().await.unwrap().state
    }

    /// Stage 2.2.0 into green and record it as being applied, as the updates service does.
    async fn stage_22(&self, switcher: &Switcher) {
        self.slots
            .artifact("/staging/2.2.0.zip", Ok(manifest("2.2.0")));
        let slot = switcher
            .stage(std::path::Path::new("/staging/2.2.0.zip"), "2.2.0")
            .await
            .unwrap();
        assert_eq!(slot, Slot::Green);
        self.state
            .update(Box::new(|s| {
                s.updates.component_mut(ComponentId::SpaceFuel).applying = Some(ApplyingRecord {
                    version: "2.2.0".into(),
                    sha256: "ab".repeat(32),
                    previous_version: Some("2.1.0".into()),
                    started_at: Utc::now(),
                    applied_event_id: Uuid::new_v4(),
                    outcome: None,
                })
            }))
            .await
            .unwrap();
    }

    async fn outcome(&self) -> Option<(UpdateResult, Option<String>)> {
        self.state()
            .await
            .updates
            .component(ComponentId::SpaceFuel)
            .applying
            .as_ref()
            .and_then(|a| a.outcome.clone())
            .map(|o| (o.result, o.error))
    }
}

#[tokio::test(start_paused = true)]
async fn a_healthy_new_version_is_switched_in_and_committed() {
    let site = Site::new().await;
    let switcher = site.switcher();
    site.stage_22(&switcher).await;
    assert_eq!(site.state().await.spacefuel.green.unwrap().version, "2.2.0");
    assert_eq!(
        site.service.running(),
        Some(Slot::Blue),
        "staging touches nothing running"
    );

    site.healthy_after("2.2.0", 3);
    let outcome = switcher.switch("2.2.0").await.unwrap();
    assert_eq!(
        outcome,
        SwitchOutcome::Applied {
            slot: Slot::Green,
            version: "2.2.0".into()
        }
    );
    let state = site.state().await;
    assert_eq!(state.spacefuel.active_slot, Some(Slot::Green));
    assert_eq!(state.spacefuel.active_version(), Some("2.2.0"));
    assert_eq!(state.spacefuel.switch, None);
    assert_eq!(site.outcome().await, Some((UpdateResult::Applied, None)));
    assert_eq!(site.service.calls(), ["stop", "start green"]);
    assert_eq!(
        *site.points.seen.lock().unwrap(),
        [
            SwitchPoint::Extracted,
            SwitchPoint::Staged,
            SwitchPoint::Journaled,
            SwitchPoint::Stopped,
            SwitchPoint::Flipped,
            SwitchPoint::Started,
            SwitchPoint::Healthy,
            SwitchPoint::Committed
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn an_unhealthy_version_is_rolled_back_within_the_grace() {
    let site = Site::new().await;
    let switcher = site.switcher();
    site.stage_22(&switcher).await;
    // 2.2.0 never reports healthy.
    let started = tokio::time::Instant::now();
    let outcome = switcher.switch("2.2.0").await.unwrap();
    let took = started.elapsed();
    let SwitchOutcome::RolledBack { slot, error } = outcome else {
        panic!("expected a rollback, got {outcome:?}");
    };
    assert_eq!(slot, Some(Slot::Blue));
    assert!(error.contains("not healthy within 60 s"), "{error}");
    assert!(error.contains("the controller does not answer"), "{error}");
    assert!(
        took >= Duration::from_secs(60) && took < Duration::from_secs(63),
        "{took:?}"
    );
    let state = site.state().await;
    assert_eq!(state.spacefuel.active_slot, Some(Slot::Blue));
    assert_eq!(state.spacefuel.switch, None);
    assert_eq!(site.service.running(), Some(Slot::Blue));
    let (result, recorded) = site.outcome().await.unwrap();
    assert_eq!(result, UpdateResult::RolledBack);
    assert_eq!(recorded.as_deref(), Some(error.as_str()));
}

#[tokio::test(start_paused = true)]
async fn a_version_that_crashes_is_rolled_back_without_waiting_the_whole_grace() {
    let site = Site::new().await;
    let switcher = site.switcher();
    site.stage_22(&switcher).await;
    site.service.crashing.lock().unwrap().push(Slot::Green);
    let started = tokio::time::Instant::now();
    let outcome = switcher.switch("2.2.0").await.unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    let SwitchOutcome::RolledBack { error, .. } = outcome else {
        panic!("{outcome:?}");
    };
    assert!(error.contains("exited with status 3"), "{error}");
    assert_eq!(site.service.running(), Some(Slot::Blue));
}

#[tokio::test(start_paused = true)]
async fn an_artifact_claiming_another_version_is_refused_and_the_slot_cleared() {
    let site = Site::new().await;
    let switcher = site.switcher();
    site.slots
        .artifact("/staging/old.zip", Ok(manifest("2.0.0")));
    let err = switcher
        .stage(std::path::Path::new("/staging/old.zip"), "2.2.0")
        .await
        .unwrap_err();
    assert!(
        matches!(err, SwitchError::Refused(ref m) if m.contains("2.0.0")),
        "{err}"
    );
    assert!(site.slots.manifest(Slot::Green).await.is_err());
    assert_eq!(site.state().await.spacefuel.green, None);
    // An unsafe artifact is refused too, and nothing is recorded.
    site.slots.artifact(
        "/staging/evil.zip",
        Err(SlotError::Unsafe {
            artifact: "/staging/evil.zip".into(),
            entry: "../evil".into(),
            problem: "leaves the slot".into(),
        }),
    );
    let err = switcher
        .stage(std::path::Path::new("/staging/evil.zip"), "2.2.0")
        .await
        .unwrap_err();
    assert!(matches!(err, SwitchError::Refused(_)), "{err}");
    assert_eq!(site.state().await.spacefuel.green, None);
    // Switching to something not staged changes nothing.
    assert!(switcher.switch("2.2.0").await.is_err());
    assert_eq!(site.service.calls(), Vec::<String>::new());
}

/// Halt a switch at `point` (the process "dies" there), then recover with a
/// new switcher over the same state, slots and service.
async fn crash_at(point: SwitchPoint, healthy: bool) -> (Site, Recovery) {
    let site = Site::new().await;
    if healthy {
        site.healthy_after("2.2.0", 1);
    }
    let switcher = site.switcher();
    site.stage_22(&switcher).await;
    *site.points.halt_at.lock().unwrap() = Some(point);
    let run = tokio::time::timeout(Duration::from_secs(600), switcher.switch("2.2.0")).await;
    assert!(run.is_err(), "the switch should have halted at {point:?}");
    assert_eq!(site.points.seen.lock().unwrap().last(), Some(&point));
    *site.points.halt_at.lock().unwrap() = None;
    let recovery = site.switcher().recover().await.unwrap();
    (site, recovery)
}

async fn assert_one_verified_active_slot_running(site: &Site) -> (Slot, String) {
    let state = site.state().await;
    assert_eq!(state.spacefuel.switch, None, "the switch is finished");
    let active = state.spacefuel.active_slot.expect("an active slot");
    let record = state.spacefuel.slot(active).expect("its record").clone();
    assert!(record.verified);
    assert_eq!(
        site.slots.manifest(active).await.unwrap().version,
        record.version
    );
    assert_eq!(site.service.running(), Some(active), "the active slot runs");
    (active, record.version)
}

#[tokio::test(start_paused = true)]
async fn a_crash_before_the_flip_keeps_the_old_slot_and_the_update_staged() {
    for point in [SwitchPoint::Journaled, SwitchPoint::Stopped] {
        let (site, recovery) = crash_at(point, true).await;
        assert_eq!(
            recovery,
            Recovery::Abandoned {
                active: Some(Slot::Blue),
                version: "2.2.0".into()
            },
            "{point:?}"
        );
        assert_eq!(
            assert_one_verified_active_slot_running(&site).await,
            (Slot::Blue, "2.1.0".into())
        );
        let state = site.state().await;
        let c = state.updates.component(ComponentId::SpaceFuel);
        assert_eq!(
            c.applying, None,
            "{point:?}: applied again at the next safe point"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_crash_after_the_flip_finishes_the_switch_by_its_health() {
    for point in [
        SwitchPoint::Flipped,
        SwitchPoint::Started,
        SwitchPoint::Healthy,
    ] {
        let (site, recovery) = crash_at(point, true).await;
        assert!(
            matches!(
                recovery,
                Recovery::Finished(SwitchOutcome::Applied {
                    slot: Slot::Green,
                    ..
                })
            ),
            "{point:?}: {recovery:?}"
        );
        assert_eq!(
            assert_one_verified_active_slot_running(&site).await,
            (Slot::Green, "2.2.0".into())
        );
        assert_eq!(
            site.outcome().await,
            Some((UpdateResult::Applied, None)),
            "{point:?}"
        );
    }
    // The same crash with a version that never gets healthy is rolled back.
    let (site, recovery) = crash_at(SwitchPoint::Started, false).await;
    assert!(
        matches!(
            recovery,
            Recovery::Finished(SwitchOutcome::RolledBack {
                slot: Some(Slot::Blue),
                ..
            })
        ),
        "{recovery:?}"
    );
    assert_eq!(
        assert_one_verified_active_slot_running(&site).await,
        (Slot::Blue, "2.1.0".into())
    );
    assert_eq!(site.outcome().await.unwrap().0, UpdateResult::RolledBack);
}

#[tokio::test(start_paused = true)]
async fn a_crash_during_a_rollback_finishes_the_rollback() {
    for point in [SwitchPoint::RollbackFlipped, SwitchPoint::RollbackStarted] {
        let (site, recovery) = crash_at(point, false).await;
        assert!(
            matches!(recovery, Recovery::Finished(SwitchOutcome::RolledBack { slot: Some(Slot::Blue), ref error }) if error.contains("not healthy")),
            "{point:?}: {recovery:?}"
        );
        assert_eq!(
            assert_one_verified_active_slot_running(&site).await,
            (Slot::Blue, "2.1.0".into())
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_crash_after_the_commit_needs_nothing_but_a_running_service() {
    let (site, recovery) = crash_at(SwitchPoint::Committed, true).await;
    assert_eq!(
        recovery,
        Recovery::Clean {
            active: Some(Slot::Green)
        }
    );
    assert_eq!(
        assert_one_verified_active_slot_running(&site).await,
        (Slot::Green, "2.2.0".into())
    );
}

#[tokio::test(start_paused = true)]
async fn a_half_extracted_new_slot_is_never_started_by_recovery() {
    let site = Site::new().await;
    // A journal saying green is starting, but green's extraction never completed.
    site.state
        .update(Box::new(|s| {
            s.spacefuel.active_slot = Some(Slot::Green);
            s.spacefuel.green = Some(SlotRecord {
                version: "2.2.0".into(),
                verified: true,
                installed_at: Utc::now(),
            });
            s.spacefuel.switch = Some(SwitchRecord {
                from: Some(Slot::Blue),
                from_version: Some("2.1.0".into()),
                to: Slot::Green,
                to_version: "2.2.0".into(),
                step: SwitchStep::Starting,
                started_at: Utc::now(),
                error: None,
            });
        }))
        .await
        .unwrap();
    site.service.stop().await.unwrap();
    let recovery = site.switcher().recover().await.unwrap();
    assert!(
        matches!(
            recovery,
            Recovery::Finished(SwitchOutcome::RolledBack { .. })
        ),
        "{recovery:?}"
    );
    assert!(
        !site.service.calls().contains(&"start green".to_string()),
        "{:?}",
        site.service.calls()
    );
    assert_eq!(
        assert_one_verified_active_slot_running(&site).await,
        (Slot::Blue, "2.1.0".into())
    );
}

#[tokio::test(start_paused = true)]
async fn a_lost_state_file_rediscovers_the_only_complete_slot_and_refuses_to_guess_between_two() {
    let site = Site::new().await;
    site.state
        .update(Box::new(|s| {
            s.spacefuel = Default::default();
            s.reset_after_corruption = Some(Utc::now());
        }))
        .await
        .unwrap();
    let recovery = site.switcher().recover().await.unwrap();
    assert_eq!(
        recovery,
        Recovery::Clean {
            active: Some(Slot::Blue)
        }
    );
    assert_eq!(site.state().await.spacefuel.active_version(), Some("2.1.0"));

    site.slots.holds(Slot::Green, "2.2.0");
    site.state
        .update(Box::new(|s| s.spacefuel = Default::default()))
        .await
        .unwrap();
    let err = site.switcher().recover().await.unwrap_err();
    assert!(err.to_string().contains("slot use blue|green"), "{err}");
    assert_eq!(
        site.switcher().use_slot(Slot::Green).await.unwrap(),
        "2.2.0"
    );
    assert_eq!(site.state().await.spacefuel.active_slot, Some(Slot::Green));
}

#[tokio::test(start_paused = true)]
async fn a_healthy_report_from_another_process_does_not_count() {
    let site = Site::new().await;
    let switcher = site.switcher();
    site.stage_22(&switcher).await;
    site.healthy_after("2.2.0", 0);
    // The report is healthy but was written by a process that is gone (the
    // service runs as pid 42): the new version has not proven anything.
    *site.health.report_pid.lock().unwrap() = Some(41);
    let outcome = switcher.switch("2.2.0").await.unwrap();
    let SwitchOutcome::RolledBack { error, .. } = outcome else {
        panic!("{outcome:?}");
    };
    assert!(error.contains("from process 41"), "{error}");
    // The same report from the running process counts.
    let site = Site::new().await;
    let switcher = site.switcher();
    site.stage_22(&switcher).await;
    site.healthy_after("2.2.0", 0);
    *site.health.report_pid.lock().unwrap() = Some(42);
    assert!(matches!(
        switcher.switch("2.2.0").await.unwrap(),
        SwitchOutcome::Applied { .. }
    ));
}
