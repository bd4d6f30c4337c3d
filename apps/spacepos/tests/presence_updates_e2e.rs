//! Presence heartbeats and update tracking, end to end (issue 4): the fake
//! ERP in the test, the REAL RabbitMQ on 127.0.0.1:5672, and a capture queue
//! of the test's own bound to the test's exchange for the events a terminal
//! publishes (as the ERP's consumers would be).
//!
//! - Presence: `spacepos run` as a real process, onboarded with a 30 s
//!   interval (the contract's minimum), a staff member logged in and a sale
//!   waiting in its outbox; the ERP's `POSPresenceIntervalUpdatedIntegrationEvent`s
//!   are published on the bus with `ErpBusClient`, as the ERP does.
//! - Updates: the runtime in-process (`UpdatesMode::Full`) with the real SQLite
//!   outbox, ERP client, state file, staging area and AMQP publisher, the
//!   testkit's installer; RabbitMQ is stopped (`rabbitmqctl stop_app`) while
//!   the release is staged and applied, and the runtime restarted once.
//!
//! The presence tests hold `rabbitmq::shared()` and run side by side; the
//! update test stops the broker, so it holds `rabbitmq::exclusive()` and runs
//! after them (its name sorts last, so the two presence tests start first).
//! Run with `cargo test -p spacepos --test presence_updates_e2e -- --nocapture`
//! to see the timings.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // test code

#[macro_use]
mod event_support;
mod presence_support;

use std::collections::BTreeSet;
use std::time::Duration;

use event_support::{BusCleanup, ErpBus, TestNode, last_request_seq, tail};
use presence_support::*;
use serde_json::{Value, json};
use spacepos_amqp::{ErpBusClient, queue_name};
use spacepos_config::{ConfigStateStore, keys};
use spacepos_core::ComponentId;
use spacepos_fake_erp::{
    DatasetKind, DatasetSpec, FakeErp, FakeErpConfig, ReleaseSpec, Route, StaffAccount,
    TerminalSettings,
};
use spacepos_sqlite::SqliteStore;
use spacepos_sync::OperationState;
use spacepos_testkit::fakes::{MemoryInstaller, ScriptedInstall};
use spacepos_testkit::rabbitmq;
use spacepos_updates::InstallOutcome;
use tokio::time::{Instant, sleep, sleep_until};
use uuid::Uuid;

const PRESENCE: &str = "POSPresenceEvent";
const INTERVAL_UPDATED: &str = "POSPresenceIntervalUpdatedIntegrationEvent";
const READY: &str = "POSComponentReadyEvent";
const APPLIED: &str = "POSComponentAppliedEvent";

/// The presence interval the ERP gives the terminal: the contract's minimum.
const INTERVAL_S: f64 = 30.0;
/// A beat follows the previous one after the interval ±10%.
const EARLIEST_NEXT_S: f64 = INTERVAL_S * 0.9;
const LATEST_NEXT_S: f64 = INTERVAL_S * 1.1;
/// The longest the test waits for `spacepos run` to start (process, store,
/// `terminals/me`) on a busy machine; the first beat is judged from the
/// runtime's start (its `terminals/me` request), not from the spawn.
const START_UP: Duration = Duration::from_secs(10);
/// Publishing a beat (assembly, confirm) delays the one after it by this much at most.
const PUBLISH_SLACK_S: f64 = 1.0;

/// The staff account logged in at the till: code, PIN, storeStaffId.
const STAFF: (&str, &str, &str) = ("0042", "1234", "S-0042");
const STORE: u32 = 12;

async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        sleep(Duration::from_millis(50)).await;
    }
}

fn secs(d: chrono::TimeDelta) -> f64 {
    d.num_milliseconds() as f64 / 1000.0
}

// ---- presence ------------------------------------------------------------------

/// A fake ERP with a broker and a 30 s presence interval, a node onboarded to
/// it (not started) with a staff member logged in and one sale queued, the
/// ERP's side of the bus and a capture queue for beats, all on a unique
/// exchange. Drop order = field order: the node is killed before its queues
/// and the exchange are deleted.
struct PresenceRig {
    node: TestNode,
    capture: Capture,
    /// Publishes as the ERP does.
    erp_bus: ErpBusClient,
    /// Inspects the node's queues.
    bus: ErpBus,
    _cleanup: BusCleanup,
    erp: FakeErp,
    exchange: String,
    terminal: u32,
    started: Instant,
    spawned: Option<Instant>,
    /// The ERP's last request number before the node was started.
    mark: u64,
}

async fn presence_rig(seed: u64, terminal: u32) -> PresenceRig {
    let started = Instant::now();
    let exchange = rabbitmq::unique("erp_event_bus.test.");
    let erp = FakeErp::start(FakeErpConfig {
        seed,
        datasets: vec![DatasetSpec::of(DatasetKind::Products, 20)],
        staff: vec![StaffAccount::new(STAFF.0, STAFF.1, STAFF.2)],
        amqp_url: Some(rabbitmq::URL.to_owned()),
        report_presence: true,
        presence_interval_seconds: INTERVAL_S as u32,
        ..FakeErpConfig::default()
    })
    .await
    .unwrap();
    let mut cleanup = BusCleanup {
        exchange: exchange.clone(),
        client_id: None,
    };
    let mut node = TestNode::new(&exchange);
    node.onboard(&erp, terminal).await;
    cleanup.client_id = Some(node.client_id.clone());

    // A staff member at the till and a sale not sent yet (the node's send loop
    // is off): the beat must report both.
    let (code, out, err) = run_with_stdin(
        node.path(),
        &node.env,
        &["login", "--staff", STAFF.0],
        &format!("{}\n", STAFF.1),
    )
    .await;
    assert_eq!(code, 0, "login failed\n{out}\n{err}");
    let sale = node.path().join("sale.json");
    std::fs::write(&sale, r#"{"receiptNumber":"12-1-000001","totalMinor":450}"#).unwrap();
    let (code, out, err) = node
        .run_to_end(&[
            "ops",
            "submit",
            "--type",
            "sale.completed",
            "--staff",
            STAFF.2,
            "--payload",
            sale.to_str().unwrap(),
        ])
        .await;
    assert_eq!(code, 0, "ops submit failed\n{out}\n{err}");

    let bus = ErpBus::connect(&exchange).await;
    let erp_bus = ErpBusClient::connect(&rabbitmq::url(), &exchange)
        .await
        .unwrap();
    let capture = Capture::start(&exchange, &[PRESENCE]).await;
    PresenceRig {
        node,
        capture,
        erp_bus,
        bus,
        _cleanup: cleanup,
        erp,
        exchange,
        terminal,
        started,
        spawned: None,
        mark: 0,
    }
}

impl PresenceRig {
    /// `spacepos run`, then wait until its queue is bound for presence
    /// settings (so an event published now reaches it).
    async fn start(&mut self) {
        self.mark = last_request_seq(&self.erp);
        self.node.start();
        self.spawned = Some(Instant::now());
        self.bus
            .wait_terminal_queue(&self.node.client_id, Duration::from_secs(30))
            .await;
        wait_bound(
            &self.exchange,
            &queue_name(&self.node.client_id),
            INTERVAL_UPDATED,
            Duration::from_secs(30),
        )
        .await;
    }

    /// Publish a `POSPresenceIntervalUpdatedIntegrationEvent` as the ERP does.
    async fn publish_interval(
        &self,
        client_id: Option<&str>,
        store: Option<u32>,
        seconds: u32,
        report: bool,
    ) {
        let id = Uuid::new_v4();
        let body = json!({
            "Id": id,
            "CreationDate": chrono::Utc::now().to_rfc3339(),
            "ClientId": client_id,
            "StoreNumber": store,
            "PresenceIntervalSeconds": seconds,
            "ReportPresence": report,
        });
        self.erp_bus
            .publish(
                INTERVAL_UPDATED,
                &id.to_string(),
                body.to_string().as_bytes(),
            )
            .await
            .unwrap();
    }

    /// The first beat: within one interval of the node's start.
    async fn first_beat(&self) -> Captured {
        let spawned = self.spawned.unwrap();
        let within = (spawned + Duration::from_secs_f64(INTERVAL_S) + START_UP)
            .saturating_duration_since(Instant::now());
        self.capture
            .wait_for(1, within, "the first beat within one interval of the start")
            .await;
        let first = self.capture.all().remove(0);
        // The runtime reads `terminals/me`, then starts the heartbeat.
        let runtime_start = self
            .erp
            .requests_to(Route::TerminalsMe)
            .into_iter()
            .find(|r| r.seq > self.mark)
            .expect("the node read terminals/me at start")
            .at;
        let made = date(&first.json["CreationDate"], "CreationDate");
        let after = secs(made - runtime_start);
        note!(
            self.started,
            "first beat made {after:.2} s after the runtime started ({:.2} s after the spawn)",
            (first.at - spawned).as_secs_f64()
        );
        assert!(
            (0.0..=INTERVAL_S + PUBLISH_SLACK_S).contains(&after),
            "the first beat was made {after:.2} s after the runtime started, not within one interval"
        );
        first
    }

    fn terminal_json(&self) -> Value {
        read_json(self.node.path(), "terminal.json")
    }

    fn process_err(&self) -> String {
        tail(&self.node.process_err(), 30)
    }
}

/// Assert one captured beat is a complete, correct `POSPresenceEvent` of
/// this node (every key of the contract's example; the values it must have).
fn check_beat(rig: &PresenceRig, c: &Captured) {
    let m = &c.message;
    let b = &c.json;
    assert_eq!(m.routing_key, PRESENCE);
    assert_eq!(m.event_type.as_deref(), Some(PRESENCE));
    assert_eq!(m.content_type.as_deref(), Some("application/json"));
    assert_eq!(m.delivery_mode, Some(2), "persistent");
    assert_same_keys(b, &example(PRESENCE), PRESENCE);

    let id = b["Id"].as_str().unwrap();
    assert!(Uuid::parse_str(id).is_ok(), "Id {id}");
    assert_eq!(m.message_id.as_deref(), Some(id), "message_id = Id");
    let terminal = rig.terminal_json();
    assert_eq!(b["ClientId"], json!(rig.node.client_id));
    assert_eq!(
        b["ClientSecret"], terminal["client_secret"],
        "the terminal's own secret"
    );
    assert!(
        b["ClientSecret"]
            .as_str()
            .is_some_and(|s| !s.is_empty() && s != "***"),
        "ClientSecret {}",
        b["ClientSecret"]
    );
    assert_eq!(b["StoreNumber"], json!(STORE));
    assert_eq!(b["TerminalNumber"], json!(rig.terminal));
    let state = read_json(rig.node.path(), "state.json");
    assert_eq!(
        b["InstanceId"], state["instance_id"],
        "the installation's id from state.json"
    );
    assert_eq!(
        b["StoreStaffId"],
        json!(STAFF.2),
        "the staff member logged in"
    );
    assert_eq!(
        b["Components"],
        json!([{
            "Component": "SpacePOS",
            "Version": env!("CARGO_PKG_VERSION"),
            "Status": "Running",
            "ActiveSlot": null,
            "Detail": null,
        }]),
        "the till only (no SpaceFuel installed)"
    );
    let sync = &b["Sync"];
    assert_eq!(
        sync["PendingOperations"],
        json!(1),
        "the sale queued: {sync}"
    );
    assert_eq!(sync["ParkedOperations"], json!(0), "{sync}");
    assert!(sync["OldestPendingAgeSeconds"].is_u64(), "{sync}");
    assert!(
        sync["LastEventAppliedAt"].is_null() || sync["LastEventAppliedAt"].is_string(),
        "{sync}"
    );
    assert_eq!(b["IntervalSeconds"], json!(INTERVAL_S as u32));

    let created = date(&b["CreationDate"], "CreationDate");
    let next = date(&b["NextExpectedAt"], "NextExpectedAt");
    let ahead = secs(next - created);
    assert!(
        (EARLIEST_NEXT_S - 0.01..=LATEST_NEXT_S + 0.01).contains(&ahead),
        "NextExpectedAt is {ahead:.2} s after CreationDate, not the interval ±10%"
    );
    let age = secs(c.wall - created).abs();
    assert!(
        age < 2.0,
        "the beat was made {age:.2} s before it arrived: {b}"
    );
}

/// Acceptance 1a/1c: beats at the interval within jitter, carrying every field
/// of the contract's `POSPresenceEvent`; interval events for another terminal
/// of the store and for another store change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_beats_come_every_interval_with_every_contract_field_and_ignore_other_terminals() {
    let _guard = rabbitmq::shared().await;
    let mut rig = presence_rig(4101, 41).await;
    let t0 = rig.started;
    rig.start().await;
    let spawned = rig.spawned.unwrap();
    note!(t0, "node {} running", rig.node.client_id);

    // The ERP switches reporting off and the interval to an hour for another
    // terminal of this store, and for every terminal of another store.
    rig.publish_interval(Some("trm_another_terminal_0001"), Some(STORE), 3600, false)
        .await;
    rig.publish_interval(None, Some(STORE + 87), 3600, false)
        .await;
    // Handled (acknowledged after the handler ran), not dead-lettered.
    wait_settled(&queue_name(&rig.node.client_id), Duration::from_secs(15)).await;
    let settled = Instant::now();
    assert_eq!(rig.bus.dead_letters(&rig.node.client_id).await, 0);
    note!(
        t0,
        "both events for other terminals handled {:.2} s after the start",
        (settled - spawned).as_secs_f64()
    );

    let first = rig.first_beat().await;
    check_beat(&rig, &first);
    let second = rig
        .capture
        .wait_for(
            2,
            Duration::from_secs_f64(LATEST_NEXT_S + PUBLISH_SLACK_S + 1.0),
            "a second beat one interval after the first",
        )
        .await
        .remove(1);
    check_beat(&rig, &second);
    let gap = (second.at - first.at).as_secs_f64();
    let (c1, c2) = (
        date(&first.json["CreationDate"], "CreationDate"),
        date(&second.json["CreationDate"], "CreationDate"),
    );
    let made_apart = secs(c2 - c1);
    note!(
        t0,
        "second beat {gap:.2} s after the first (made {made_apart:.3} s apart)"
    );
    assert!(
        (EARLIEST_NEXT_S - 0.05..=LATEST_NEXT_S + PUBLISH_SLACK_S).contains(&made_apart),
        "beats made {made_apart:.3} s apart, not the interval ±10%"
    );
    assert!(
        (EARLIEST_NEXT_S - 0.5..=LATEST_NEXT_S + PUBLISH_SLACK_S + 0.5).contains(&gap),
        "beats arrived {gap:.2} s apart"
    );
    let promised = date(&first.json["NextExpectedAt"], "NextExpectedAt");
    let late = secs(c2 - promised);
    assert!(
        (-0.05..=PUBLISH_SLACK_S).contains(&late),
        "the second beat came {late:.3} s after the first one's NextExpectedAt"
    );
    assert_ne!(first.json["Id"], second.json["Id"]);
    assert_eq!(
        first.json["InstanceId"], second.json["InstanceId"],
        "InstanceId is stable"
    );
    assert!(
        second.at > settled,
        "a beat came after the other terminals' events were handled"
    );
    assert_eq!(
        rig.capture.all().len(),
        2,
        "no other beat in between: {:?}",
        rig.capture
            .all()
            .iter()
            .map(|c| (c.at - spawned).as_secs_f64())
            .collect::<Vec<_>>()
    );

    // This terminal's settings are untouched.
    let terminal = rig.terminal_json();
    assert_eq!(terminal["report_presence"], json!(true), "{terminal}");
    assert_eq!(
        terminal["presence_interval_seconds"],
        json!(INTERVAL_S as u32),
        "{terminal}"
    );
    assert!(rig.node.is_running(), "{}", rig.process_err());
    assert_eq!(
        rig.node.terminate(Duration::from_secs(20)).await,
        0,
        "{}",
        rig.process_err()
    );
    note!(t0, "done");
}

/// Acceptance 1b: the ERP switches reporting off for this terminal; once the
/// node applied it, no beat comes within the longest an interval can last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_reporting_switched_off_for_this_terminal_stops_the_beats() {
    let _guard = rabbitmq::shared().await;
    let mut rig = presence_rig(4202, 42).await;
    let t0 = rig.started;
    rig.start().await;
    let first = rig.first_beat().await;
    check_beat(&rig, &first);

    // The ERP records the change (so `terminals/me` agrees) and announces it.
    let client_id = rig.node.client_id.clone();
    rig.erp
        .set_terminal_settings(
            &client_id,
            TerminalSettings {
                report_presence: Some(false),
                presence_interval_seconds: Some(60),
                company_information: None,
            },
        )
        .unwrap();
    rig.publish_interval(Some(&client_id), Some(STORE), 60, false)
        .await;
    let published = Instant::now();
    eventually(
        Duration::from_secs(10),
        "the node stores the ERP's settings",
        || {
            let t = rig.terminal_json();
            async move {
                t["report_presence"] == json!(false) && t["presence_interval_seconds"] == json!(60)
            }
        },
    )
    .await;
    let applied = Instant::now();
    let beats_before = rig.capture.all().len();
    note!(
        t0,
        "reporting off applied {:.2} s after the event was published ({beats_before} beat(s) so far)",
        (applied - published).as_secs_f64()
    );

    // If beats went on, one would come at most 33 s (+ publishing) after the last.
    let quiet = Duration::from_secs_f64(LATEST_NEXT_S + PUBLISH_SLACK_S + 2.0);
    sleep_until(applied + quiet).await;
    let after: Vec<f64> = rig
        .capture
        .all()
        .iter()
        .filter(|c| c.at > applied + Duration::from_secs(1))
        .map(|c| (c.at - applied).as_secs_f64())
        .collect();
    assert!(
        after.is_empty(),
        "beats came {after:?} s after reporting was switched off"
    );
    note!(
        t0,
        "no beat in the {:.0} s after reporting was switched off",
        quiet.as_secs_f64()
    );

    // `spacepos status` sees presence off, without a next beat.
    let store = SqliteStore::open(rig.node.path().join("spacepos.db"))
        .await
        .unwrap();
    let presence = store.get(keys::PRESENCE).await.unwrap().unwrap();
    assert_eq!(presence["on"], json!(false), "{presence}");
    assert_eq!(presence["intervalSeconds"], json!(60), "{presence}");
    assert!(presence["nextBeatAt"].is_null(), "{presence}");
    assert!(rig.node.is_running(), "{}", rig.process_err());
    assert_eq!(
        rig.node.terminate(Duration::from_secs(20)).await,
        0,
        "{}",
        rig.process_err()
    );
    note!(t0, "done");
}

// ---- update tracking -------------------------------------------------------------

/// Assert a captured tracking event is the outbox entry `id` of `event_type`,
/// sent as the contract says, with every key of the contract's example.
fn check_tracking(c: &Captured, event_type: &str, id: Uuid, node: &UpdateNode) {
    let m = &c.message;
    assert_eq!(m.routing_key, event_type);
    assert_eq!(m.event_type.as_deref(), Some(event_type));
    assert_eq!(
        m.message_id,
        Some(id.to_string()),
        "message_id = the outbox id"
    );
    assert_eq!(m.content_type.as_deref(), Some("application/json"));
    assert_eq!(m.delivery_mode, Some(2), "persistent");
    assert!(!m.redelivered, "{event_type} was redelivered");
    let b = &c.json;
    assert_same_keys(b, &example(event_type), event_type);
    assert_eq!(b["Id"], json!(id.to_string()));
    assert_eq!(b["ClientId"], json!(node.identity.client_id));
    assert_eq!(b["StoreNumber"], json!(STORE));
    assert_eq!(b["TerminalNumber"], json!(node.identity.terminal_number));
    assert_eq!(b["Component"], json!("SpacePOS"));
}

/// Acceptance 2: Ready and Applied reach the ERP's consumers exactly once each,
/// although RabbitMQ was down while the release was staged and applied and the
/// runtime was restarted in between (an MSI ends the till app; the next start
/// reports the outcome).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn updates_ready_and_applied_reach_the_bus_exactly_once_after_a_broker_outage_and_a_restart()
{
    let guard = rabbitmq::exclusive().await;
    let t0 = Instant::now();
    let exchange = rabbitmq::unique("erp_event_bus.test.");
    let erp = FakeErp::start(FakeErpConfig {
        seed: 4303,
        datasets: vec![DatasetSpec::of(DatasetKind::Products, 20)],
        ..FakeErpConfig::default()
    })
    .await
    .unwrap();
    let node = UpdateNode::new(&erp, 43, &exchange);
    let _cleanup = BusCleanup {
        exchange: exchange.clone(),
        client_id: Some(node.identity.client_id.clone()),
    };
    let capture = Capture::start(&exchange, &[READY, APPLIED]).await;

    let stopped = BrokerStopped::stop(&guard).await;
    let down_at = Instant::now();
    note!(t0, "broker stopped");
    let release = erp
        .publish_release(ReleaseSpec::new(ComponentId::SpacePos, "0.2.0").with_size(256 * 1024))
        .unwrap();

    // Run 1: stages the release (Ready), applies it at the safe point; the
    // installer continues outside the process, as Tauri's MSI does.
    let installer = MemoryInstaller::new();
    installer.script(ScriptedInstall::Outcome(InstallOutcome::RestartPending));
    let run1 = node.start(INSTALLED, installer.clone()).await;
    eventually(
        Duration::from_secs(30),
        "run 1 stages the release and starts installing it",
        || {
            let n = installer.installs().len();
            let records = node.spacepos_updates();
            async move { n == 1 && records.await.applying.is_some() }
        },
    )
    .await;
    let records = node.spacepos_updates().await;
    let staged = records
        .staged
        .clone()
        .expect("staged until the outcome is known");
    assert_eq!(staged.version, release.version);
    assert!(staged.ready_queued);
    let applying = records.applying.clone().unwrap();
    assert_eq!(applying.version, release.version);
    assert_eq!(applying.previous_version.as_deref(), Some(INSTALLED));
    let entries = run1.bus_entries().await;
    assert_eq!(
        entries.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        [READY],
        "run 1 queued Ready only"
    );
    assert_eq!(entries[0].id, staged.ready_event_id);
    // The publisher tried while the broker was down and kept it.
    eventually(
        Duration::from_secs(20),
        "run 1 tries to publish Ready",
        || {
            let e = run1.bus_entries();
            async move {
                e.await
                    .iter()
                    .all(|e| e.state == OperationState::Pending && e.attempts >= 1)
            }
        },
    )
    .await;
    assert!(!run1.has_ended());
    run1.stop().await;
    note!(
        t0,
        "run 1: Ready queued, installation handed over; runtime stopped"
    );

    // Run 2 on the same files: the new version runs now; the outcome is reported.
    let installer2 = MemoryInstaller::new();
    let run2 = node.start(&release.version, installer2.clone()).await;
    eventually(
        Duration::from_secs(30),
        "run 2 records the outcome and its own check finds nothing new",
        || {
            let (entries, records) = (run2.bus_entries(), node.spacepos_updates());
            let checks = erp
                .requests_to(Route::Releases)
                .iter()
                .filter(|r| r.status == Some(200))
                .count();
            async move {
                let r = records.await;
                entries.await.len() >= 2 && r.applying.is_none() && checks >= 2
            }
        },
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "run 2 tries to publish both",
        || {
            let e = run2.bus_entries();
            async move {
                e.await
                    .iter()
                    .all(|e| e.state == OperationState::Pending && e.attempts >= 1)
            }
        },
    )
    .await;
    let entries = run2.bus_entries().await;
    assert_eq!(
        entries.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        [READY, APPLIED],
        "one Ready and one Applied in the outbox"
    );
    let (ready_id, applied_id) = (entries[0].id, entries[1].id);
    assert_eq!(
        ready_id, staged.ready_event_id,
        "the same Ready, not a new one"
    );
    assert_eq!(applied_id, applying.applied_event_id);
    assert_eq!(entries[1].payload["Result"], json!("Applied"));
    let records = node.spacepos_updates().await;
    assert!(records.staged.is_none() && records.applying.is_none());
    assert!(installer2.installs().is_empty(), "nothing installed again");
    assert_eq!(installer.installs().len(), 1);
    assert_eq!(
        erp.requests_to(Route::Artifact).len(),
        1,
        "the artifact was downloaded once"
    );
    assert!(capture.all().is_empty(), "nothing could be published yet");
    note!(
        t0,
        "run 2: Ready and Applied in the outbox, both tried with the broker down for {:.1} s",
        down_at.elapsed().as_secs_f64()
    );

    // The broker comes back.
    let took = stopped.start().await;
    let up_at = Instant::now();
    note!(t0, "broker started again ({:.1} s)", took.as_secs_f64());
    capture
        .wait_for(
            2,
            Duration::from_secs(60),
            "Ready and Applied after the broker came back",
        )
        .await;
    note!(
        t0,
        "both arrived {:.2} s after the broker was back",
        up_at.elapsed().as_secs_f64()
    );
    eventually(
        Duration::from_secs(10),
        "the outbox records both done",
        || {
            let e = run2.bus_entries();
            async move { e.await.iter().all(|e| e.state == OperationState::Done) }
        },
    )
    .await;
    // Nothing more in the following seconds (a resend would show here).
    sleep(Duration::from_secs(6)).await;
    let all = capture.all();
    let types: Vec<&str> = all
        .iter()
        .map(|c| c.message.event_type.as_deref().unwrap_or("?"))
        .collect();
    assert_eq!(types, [READY, APPLIED], "each exactly once, in order");
    let ids: BTreeSet<Option<String>> = all.iter().map(|c| c.message.message_id.clone()).collect();
    assert_eq!(
        ids,
        BTreeSet::from([Some(ready_id.to_string()), Some(applied_id.to_string())])
    );
    let (ready, applied) = (&all[0], &all[1]);
    check_tracking(ready, READY, ready_id, &node);
    assert_eq!(ready.json["Version"], json!("0.2.0"));
    assert!(ready.json["Slot"].is_null(), "no slot for SpacePOS");
    assert_eq!(
        date(&ready.json["StagedAt"], "StagedAt"),
        staged.staged_at,
        "StagedAt is when it was staged, with the broker down"
    );
    check_tracking(applied, APPLIED, applied_id, &node);
    assert_eq!(applied.json["Version"], json!("0.2.0"));
    assert_eq!(applied.json["PreviousVersion"], json!(INSTALLED));
    assert_eq!(applied.json["Result"], json!("Applied"));
    assert!(applied.json["Error"].is_null());
    assert!(
        date(&applied.json["AppliedAt"], "AppliedAt") > staged.staged_at,
        "applied after staged"
    );
    assert_eq!(run2.bus_entries().await.len(), 2, "nothing else was queued");
    assert!(!run2.has_ended());
    run2.stop().await;
    note!(t0, "done");
}
