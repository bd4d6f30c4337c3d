//! The heartbeat under paused time: interval and jitter, every field, the
//! toggle, ERP interval updates, and a fleet that does not beat in lockstep.

#![allow(clippy::unwrap_used)] // test code

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::TimeZone;
use spacepos_amqp::WirePresenceEncoder;
use spacepos_config::TerminalConfigStore;
use spacepos_core::{ComponentId, Secret, SystemClock, TerminalIdentity};
use spacepos_erp_wire::events::PosPresenceEvent;
use spacepos_presence::{
    ComponentReport, ComponentState, ComponentStatusSource, Heartbeat, PresenceControl,
    PresenceSettings, PresenceSettingsHandler, StaffSessionSource, SyncSummary, SyncSummarySource,
};
use spacepos_sync::{BusError, BusEvent, BusEventHandler, EventPublisher, OutgoingEvent};
use spacepos_testkit::fakes::MemoryTerminalStore;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// Records what was published and when (tokio time).
#[derive(Default, Clone)]
struct Recorder(Arc<Mutex<Vec<(Instant, OutgoingEvent)>>>);

#[async_trait]
impl EventPublisher for Recorder {
    async fn publish(&self, event: &OutgoingEvent) -> Result<(), BusError> {
        self.0.lock().unwrap().push((Instant::now(), event.clone()));
        Ok(())
    }
}

impl Recorder {
    fn times(&self) -> Vec<Instant> {
        self.0.lock().unwrap().iter().map(|(t, _)| *t).collect()
    }
    fn beats(&self) -> Vec<PosPresenceEvent> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|(_, e)| serde_json::from_slice(&e.body).unwrap())
            .collect()
    }
}

struct Fixed;

#[async_trait]
impl ComponentStatusSource for Fixed {
    async fn components(&self) -> Vec<ComponentReport> {
        vec![ComponentReport {
            component: ComponentId::SpacePos,
            version: "1.4.2".into(),
            state: ComponentState::Running,
            active_slot: None,
            detail: None,
        }]
    }
}

#[async_trait]
impl StaffSessionSource for Fixed {
    async fn current_staff_id(&self) -> Option<String> {
        Some("S-0042".into())
    }
}

#[async_trait]
impl SyncSummarySource for Fixed {
    async fn summary(&self) -> SyncSummary {
        SyncSummary {
            pending_operations: 3,
            oldest_pending_age_seconds: Some(12),
            parked_operations: 1,
            last_event_applied_at: None,
        }
    }
}

/// Wall-clock time that follows tokio's (paused) clock.
#[derive(Debug)]
struct TokioClock {
    base: chrono::DateTime<chrono::Utc>,
    start: Instant,
}

impl TokioClock {
    fn new() -> Arc<Self> {
        Arc::new(TokioClock {
            base: chrono::Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap(),
            start: Instant::now(),
        })
    }
}

impl spacepos_core::Clock for TokioClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.base + chrono::Duration::from_std(Instant::now() - self.start).unwrap()
    }
}

fn identity(client_id: &str) -> TerminalIdentity {
    TerminalIdentity {
        client_id: client_id.into(),
        store_number: 12,
        terminal_number: 3,
    }
}

fn heartbeat(client_id: &str, control: PresenceControl, publisher: Recorder) -> Heartbeat {
    Heartbeat::new(
        identity(client_id),
        Secret::new("the-client-secret"),
        Uuid::from_u128(7),
        Arc::new(Fixed),
        Arc::new(Fixed),
        Arc::new(Fixed),
        Arc::new(WirePresenceEncoder),
        Arc::new(publisher),
        control,
        TokioClock::new(),
    )
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

#[tokio::test(start_paused = true)]
async fn beats_come_every_interval_within_ten_percent_and_carry_every_contract_field() {
    fastrand::seed(11);
    let control = PresenceControl::new(PresenceSettings::new(true, 300));
    let rec = Recorder::default();
    let start = Instant::now();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(heartbeat("trm_1", control, rec.clone()).run(shutdown.clone(), |_| {}));
    tokio::time::sleep(Duration::from_secs(3600)).await;
    shutdown.cancel();
    task.await.unwrap();

    let times = rec.times();
    assert!(
        times.len() >= 11,
        "about 12 beats in an hour: {}",
        times.len()
    );
    assert!(
        times[0] - start < Duration::from_secs(300),
        "first beat within one interval"
    );
    for pair in times.windows(2) {
        let gap = secs(pair[1] - pair[0]);
        assert!((270.0..=330.0).contains(&gap), "interval ±10%: {gap}");
    }
    let beats = rec.beats();
    for (i, b) in beats.iter().enumerate() {
        assert_eq!(
            (b.client_id.as_str(), b.client_secret.expose()),
            ("trm_1", "the-client-secret")
        );
        assert_eq!(
            (b.store_number, b.terminal_number, b.interval_seconds),
            (12, 3, 300)
        );
        assert_eq!(b.instance_id, Uuid::from_u128(7));
        assert_eq!(b.store_staff_id.as_deref(), Some("S-0042"));
        assert_eq!(b.components.len(), 1);
        assert_eq!(
            (b.sync.pending_operations, b.sync.parked_operations),
            (3, 1)
        );
        if let Some(next) = beats.get(i + 1) {
            // NextExpectedAt announces when the following beat comes.
            let announced = (b.next_expected_at - b.creation_date).num_milliseconds();
            let actual = (next.creation_date - b.creation_date).num_milliseconds();
            assert!(
                (announced - actual).abs() < 1000,
                "announced {announced} ms, came after {actual} ms"
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn turning_presence_off_stops_the_beats_and_on_resumes_them() {
    fastrand::seed(12);
    let control = PresenceControl::new(PresenceSettings::new(true, 60));
    let rec = Recorder::default();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        heartbeat("trm_1", control.clone(), rec.clone()).run(shutdown.clone(), |_| {}),
    );
    tokio::time::sleep(Duration::from_secs(600)).await;
    let before = rec.times().len();
    assert!(before >= 8);
    control.set(PresenceSettings::new(false, 60));
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(rec.times().len(), before, "no beat once off");
    control.set(PresenceSettings::new(true, 60));
    tokio::time::sleep(Duration::from_secs(120)).await;
    assert!(rec.times().len() > before, "beats again once on");
    shutdown.cancel();
    task.await.unwrap();
}

async fn onboarded_store(client_id: &str) -> MemoryTerminalStore {
    let store = MemoryTerminalStore::new();
    let mut record = spacepos_testkit::suites::terminal_config_store::onboarded_record();
    record.client_id = client_id.into();
    record.presence_interval_seconds = Some(300);
    store.save(&record).await.unwrap();
    store
}

fn interval_event(
    client_id: Option<&str>,
    store: Option<u32>,
    seconds: u32,
    report: Option<bool>,
) -> BusEvent {
    BusEvent::PresenceIntervalUpdated {
        event_id: Uuid::new_v4(),
        client_id: client_id.map(str::to_owned),
        store_number: store,
        interval_seconds: seconds,
        report_presence: report,
    }
}

#[tokio::test(start_paused = true)]
async fn an_interval_event_for_this_terminal_changes_the_next_beat_and_is_persisted() {
    fastrand::seed(13);
    let control = PresenceControl::new(PresenceSettings::new(true, 300));
    let store = onboarded_store("trm_me").await;
    let handler = PresenceSettingsHandler::new(
        "trm_me".into(),
        12,
        Arc::new(store.clone()),
        control.clone(),
        Arc::new(SystemClock),
    );
    let rec = Recorder::default();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        heartbeat("trm_me", control.clone(), rec.clone()).run(shutdown.clone(), |_| {}),
    );
    tokio::time::sleep(Duration::from_secs(900)).await;

    // For another terminal: nothing changes.
    handler
        .handle(&interval_event(Some("trm_other"), Some(12), 60, None))
        .await
        .unwrap();
    assert_eq!(control.get().interval, Duration::from_secs(300));
    // For another store: nothing either.
    handler
        .handle(&interval_event(None, Some(99), 60, None))
        .await
        .unwrap();
    assert_eq!(control.get().interval, Duration::from_secs(300));

    let n = rec.times().len();
    handler
        .handle(&interval_event(Some("trm_me"), Some(12), 60, None))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(600)).await;
    let times = rec.times();
    let after: Vec<f64> = times[n..].windows(2).map(|p| secs(p[1] - p[0])).collect();
    assert!(after.len() >= 8, "beats every ~60 s now: {after:?}");
    assert!(after.iter().all(|g| (54.0..=66.0).contains(g)), "{after:?}");
    assert_eq!(rec.beats().last().unwrap().interval_seconds, 60);
    let record = store.load().await.unwrap().unwrap();
    assert_eq!(
        record.presence_interval_seconds,
        Some(60),
        "persisted, so a restart keeps it"
    );

    // Store-wide and fleet-wide updates apply too; values are clamped.
    handler
        .handle(&interval_event(None, Some(12), 5, None))
        .await
        .unwrap();
    assert_eq!(control.get().interval, Duration::from_secs(30));
    handler
        .handle(&interval_event(None, None, 999_999, Some(false)))
        .await
        .unwrap();
    assert_eq!(control.get(), PresenceSettings::new(false, 86_400));
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_hundred_terminals_started_together_spread_their_first_beats_over_the_interval() {
    fastrand::seed(14);
    let start = Instant::now();
    let shutdown = CancellationToken::new();
    let mut recorders = Vec::new();
    let mut tasks = Vec::new();
    for n in 0..100 {
        let rec = Recorder::default();
        let control = PresenceControl::new(PresenceSettings::new(true, 300));
        tasks.push(tokio::spawn(
            heartbeat(&format!("trm_{n}"), control, rec.clone()).run(shutdown.clone(), |_| {}),
        ));
        recorders.push(rec);
    }
    tokio::time::sleep(Duration::from_secs(301)).await;
    shutdown.cancel();
    for t in tasks {
        t.await.unwrap();
    }
    let firsts: Vec<f64> = recorders
        .iter()
        .map(|r| secs(r.times()[0] - start))
        .collect();
    let mut quarters = [0usize; 4];
    for f in &firsts {
        assert!(*f < 300.0);
        quarters[((*f / 75.0) as usize).min(3)] += 1;
    }
    assert!(
        quarters.iter().all(|&q| (10..=45).contains(&q)),
        "first beats per quarter of the interval: {quarters:?}"
    );
    let mut sorted = firsts.clone();
    sorted.sort_by(f64::total_cmp);
    let widest_gap = sorted.windows(2).map(|p| p[1] - p[0]).fold(0.0, f64::max);
    assert!(widest_gap < 60.0, "no long silence either: {widest_gap}");
}
