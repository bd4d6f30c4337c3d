//! Inbound sync under faults, end to end: `spacepos run` as a real process
//! (killed with SIGKILL, restarted), the fake ERP in the test, RabbitMQ on
//! 127.0.0.1:5672 (restarted with `rabbitmqctl`), the ERP's events published
//! with `ErpBusClient`. Each test compares the node's store with the ERP's
//! final state, tombstones included.
//!
//! Every test uses its own exchange and terminal, deleted at the end; tests
//! that use the broker hold `rabbitmq::shared()`, the one that restarts it
//! `rabbitmq::exclusive()`. The heavy tests also run one at a time in this
//! binary (2 cores), so their timings mean something. Run with
//! `cargo test -p spacepos --test event_faults -- --nocapture` to see them.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // test code

#[macro_use]
mod event_support;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use event_support::*;
use serde_json::{Value, json};
use spacepos_fake_erp::{
    DatasetKind, DatasetSpec, FakeErp, FaultKind, FaultRule, RecordedRequest, Route,
};
use spacepos_testkit::rabbitmq;
use tokio::sync::Mutex;
use tokio::time::{Instant, sleep};

/// The heavy tests take this first, so they never share the 2 cores.
static HEAVY: Mutex<()> = Mutex::const_new(());

const PRODUCTS: &str = "products";

/// A fake ERP with a broker, a node onboarded to it (not started), the ERP's
/// side of the bus on a unique exchange. Drop order = field order: the node
/// is killed before its queues are deleted.
struct Rig {
    node: TestNode,
    _cleanup: BusCleanup,
    bus: ErpBus,
    erp: FakeErp,
    started: Instant,
}

async fn rig(seed: u64, datasets: Vec<DatasetSpec>, terminal: u32) -> Rig {
    let started = Instant::now();
    let exchange = rabbitmq::unique("erp_event_bus.test.");
    let erp = start_erp(seed, datasets, true).await;
    let mut node = TestNode::new(&exchange);
    let mut cleanup = BusCleanup {
        exchange: exchange.clone(),
        client_id: None,
    };
    node.onboard(&erp, terminal).await;
    cleanup.client_id = Some(node.client_id.clone());
    let bus = ErpBus::connect(&exchange).await;
    Rig {
        node,
        _cleanup: cleanup,
        bus,
        erp,
        started,
    }
}

impl Rig {
    /// Start `spacepos run` and wait until its queue exists and every dataset
    /// is seeded to the ERP's sequence.
    async fn start_seeded(&mut self) {
        self.node.start();
        self.bus
            .wait_terminal_queue(&self.node.client_id, Duration::from_secs(30))
            .await;
        for name in self.erp.dataset_names() {
            let last = self.erp.dataset_last_sequence(&name).unwrap();
            self.node
                .wait_sequence(&name, last, Duration::from_secs(60))
                .await;
        }
    }

    async fn publish_sequences(
        &mut self,
        dataset: &str,
        sequences: &[u64],
    ) -> Vec<(String, Vec<u8>)> {
        let events: Vec<(String, Vec<u8>)> = sequences
            .iter()
            .map(|s| event_of(&self.erp, dataset, *s))
            .collect();
        self.bus.publish(&events).await;
        events
    }

    /// Assert the node's dataset equals the ERP's (id, version, deleted, data).
    async fn assert_equal_to_erp(&mut self, dataset: &str) {
        let node = self.node.rows(dataset).await;
        let erp = erp_rows(&self.erp, dataset);
        let diff = differences(&node, &erp);
        assert!(diff.is_empty(), "{dataset}: {diff}");
    }
}

/// Catch-ups seen by the ERP: runs of consecutive `changes` requests, split
/// by what came right before the run (`datasets` = the catch-up every start
/// does; anything else = asked for by the consumer after a sequence gap).
fn catch_ups(requests: &[RecordedRequest]) -> (usize, usize, usize) {
    let (mut at_start, mut on_gap, mut pages) = (0, 0, 0);
    let mut previous: Option<Route> = None;
    for r in requests {
        if r.route == Some(Route::Changes) {
            pages += 1;
            if previous != Some(Route::Changes) {
                if previous == Some(Route::Datasets) {
                    at_start += 1;
                } else {
                    on_gap += 1;
                }
            }
        }
        previous = r.route;
    }
    (at_start, on_gap, pages)
}

// ---- 1 ---------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// `kill -9` the node, let events pile up in its queue, start it again.
    Kill,
    /// The same, but the node's catch-up at start fails (`datasets` 503
    /// once): the backlog can only come from its queue.
    KillWithoutCatchUp,
    /// `rabbitmqctl stop_app` + `start_app`.
    RestartBroker,
}

const EVENTS: usize = 10_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_events_with_three_broker_restarts_and_three_kills_apply_exactly_once() {
    let _heavy = HEAVY.lock().await;
    let guard = rabbitmq::exclusive().await;
    let mut rig = rig(
        101,
        vec![
            DatasetSpec::of(DatasetKind::Products, 2_000),
            DatasetSpec::of(DatasetKind::Staff, 20),
        ],
        1,
    )
    .await;
    let t0 = rig.started;
    rig.start_seeded().await;
    note!(
        t0,
        "node seeded and consuming (client {})",
        rig.node.client_id
    );
    let base = rig.erp.dataset_last_sequence(PRODUCTS).unwrap();
    let staff_before = erp_rows(&rig.erp, "staff");

    // The ERP makes 10,000 changes, 100 at a time, and publishes each one's
    // event (publishing again after a lost connection), in a steady stream
    // that goes on whatever happens to the node or the broker.
    let count = Arc::new(AtomicUsize::new(0));
    let publisher = {
        let (erp, exchange, count) = (rig.erp.clone(), rig.bus.exchange.clone(), count.clone());
        tokio::spawn(async move {
            let mut bus = ErpBus::connect(&exchange).await;
            let mut published: HashMap<String, u64> = HashMap::new();
            let mut done = 0;
            while done < EVENTS {
                let n = 100.min(EVENTS - done);
                let sequences = erp.mutate_random(PRODUCTS, n).unwrap();
                let events: Vec<(String, Vec<u8>)> = sequences
                    .iter()
                    .map(|s| event_of(&erp, PRODUCTS, *s))
                    .collect();
                bus.publish(&events).await;
                for ((id, _), s) in events.iter().zip(&sequences) {
                    published.insert(id.clone(), *s);
                }
                done += n;
                count.store(done, Ordering::SeqCst);
                sleep(Duration::from_millis(150)).await;
            }
            (published, bus.republished)
        })
    };

    // Six faults spread over the stream, each while events flow.
    let faults = [
        Fault::Kill,
        Fault::RestartBroker,
        Fault::KillWithoutCatchUp,
        Fault::RestartBroker,
        Fault::Kill,
        Fault::RestartBroker,
    ];
    let mut kills = 0;
    let mut restarts = Vec::new();
    let mut behind_at_fault = Vec::new();
    let mut bus_only: Option<(u64, u64)> = None;
    let mut bus_only_mark = None;
    let mut previous = 0;
    for (k, fault) in faults.into_iter().enumerate() {
        // 800 events after the previous fault is over, leaving at least 500
        // events to stream after each fault.
        let threshold = (previous + 800).min(EVENTS - 500 * (faults.len() - k));
        while count.load(Ordering::SeqCst) < threshold {
            assert!(!publisher.is_finished(), "the publisher stopped");
            sleep(Duration::from_millis(10)).await;
        }
        if let Some(mark) = bus_only_mark.take() {
            let changes = requests_since(&rig.erp, Route::Changes, mark).len();
            bus_only = bus_only.map(|(backlog, _)| (backlog, changes as u64));
        }
        let at = rig
            .node
            .checkpoint(PRODUCTS)
            .await
            .last_sequence
            .unwrap_or(0);
        let erp_at = rig.erp.dataset_last_sequence(PRODUCTS).unwrap();
        behind_at_fault.push(erp_at - at);
        match fault {
            Fault::Kill | Fault::KillWithoutCatchUp => {
                rig.node.kill9();
                kills += 1;
                note!(t0, "kill -9 #{kills} at node sequence {at} (ERP {erp_at})");
                // Events pile up in the queue while the node is dead.
                sleep(Duration::from_millis(400)).await;
                if fault == Fault::KillWithoutCatchUp {
                    rig.erp
                        .add_fault(FaultRule::once(Route::Datasets, FaultKind::Status(503)));
                    let from = rig.node.checkpoint(PRODUCTS).await.last_sequence.unwrap();
                    let target = rig.erp.dataset_last_sequence(PRODUCTS).unwrap();
                    let mark = last_request_seq(&rig.erp);
                    rig.node.start();
                    rig.node
                        .wait_sequence_at_least(PRODUCTS, target, Duration::from_secs(60))
                        .await;
                    let refused = requests_since(&rig.erp, Route::Datasets, mark);
                    assert!(
                        refused.iter().any(|r| r.status == Some(503)),
                        "the catch-up at start was refused"
                    );
                    bus_only = Some((target - from, 0));
                    bus_only_mark = Some(mark);
                    note!(
                        t0,
                        "started again without a catch-up: a backlog of {} events came from the queue",
                        target - from
                    );
                } else {
                    rig.node.start();
                    note!(t0, "started again (start #{})", rig.node.starts());
                }
            }
            Fault::RestartBroker => {
                let down = rabbitmq::restart_broker(&guard).await;
                restarts.push(down);
                note!(
                    t0,
                    "broker restart #{} at node sequence {at} (ERP {erp_at}): unreachable {:.1} s",
                    restarts.len(),
                    down.as_secs_f64()
                );
            }
        }
        previous = count.load(Ordering::SeqCst);
    }
    let (published, republished) = publisher.await.unwrap();
    let last = rig.erp.dataset_last_sequence(PRODUCTS).unwrap();
    assert_eq!(last, base + EVENTS as u64);
    assert_eq!(published.len(), EVENTS);
    note!(
        t0,
        "all 10,000 events published ({republished} publishes repeated after a lost connection)"
    );

    rig.node
        .wait_sequence(PRODUCTS, last, Duration::from_secs(150))
        .await;
    note!(t0, "node at the ERP's sequence {last}");
    rig.bus
        .wait_drained(&rig.node.client_id, Duration::from_secs(60))
        .await;
    sleep(Duration::from_secs(1)).await;

    // The state: every entity, tombstones included, as the ERP has it.
    rig.assert_equal_to_erp(PRODUCTS).await;
    let staff = rig.node.rows("staff").await;
    assert!(
        differences(&staff, &staff_before).is_empty(),
        "an untouched dataset changed"
    );
    // No good event was dead-lettered (a loss the catch-up would hide).
    assert_eq!(
        rig.bus.dead_letters(&rig.node.client_id).await,
        0,
        "good events were dead-lettered"
    );
    // Exactly once: each event id is recorded at most once, for the sequence it has.
    let inbox = rig.node.inbox().await;
    let mut seen = HashSet::new();
    for (id, dataset, sequence) in &inbox {
        assert!(
            seen.insert(id.clone()),
            "event {id} recorded twice in the inbox"
        );
        assert_eq!(dataset, PRODUCTS);
        assert_eq!(
            published.get(id).copied(),
            Some(u64::try_from(*sequence).unwrap()),
            "inbox row {id} (sequence {sequence}) is not an event the ERP published as such"
        );
    }
    let c = rig.node.checkpoint(PRODUCTS).await;
    assert_eq!(
        c.last_sequence,
        Some(last),
        "the sequence never goes past the ERP's"
    );

    assert!(
        rig.node.is_running(),
        "the node stopped by itself:\n{}",
        tail(&rig.node.process_err(), 30)
    );
    let code = rig.node.terminate(Duration::from_secs(20)).await;
    assert_eq!(code, 0, "SIGTERM: {}", tail(&rig.node.process_err(), 30));

    let (at_start, on_gap, pages) = catch_ups(&rig.erp.requests());
    let snapshots = rig.erp.requests_to(Route::Snapshot).len();
    note!(
        t0,
        "done: {} node starts, {kills} kills, {} broker restarts ({:.1} s unreachable in all); \
         node behind the ERP by {behind_at_fault:?} events at the 6 faults; backlog taken from the queue \
         alone after kill 2 (events, changes requests meanwhile): {bus_only:?}; inbox {} event ids; \
         catch-ups: {at_start} at start, {on_gap} after a gap, {pages} changes pages; {snapshots} snapshot pages",
        rig.node.starts(),
        restarts.len(),
        restarts.iter().map(Duration::as_secs_f64).sum::<f64>(),
        inbox.len(),
    );
    assert_eq!(kills, 3);
    assert_eq!(restarts.len(), 3);
}

// ---- 2 ---------------------------------------------------------------------------

/// The 11 kinds of poison, made from a real event so that applying one by
/// mistake would show in the state.
fn poison(kind: usize, good: &Value, n: usize) -> RawMessage {
    let id = uuid::Uuid::new_v4().to_string();
    let mut forged = good.clone();
    forged["Id"] = json!(id);
    for item in forged["Items"].as_array_mut().unwrap() {
        item["Version"] = json!(item["Version"].as_u64().unwrap() + 1000);
        item["Deleted"] = json!(false);
        item["Data"] = json!({"poison": n});
    }
    let message = |routing_key: &str, event_type: Option<&str>, body: Vec<u8>| RawMessage {
        routing_key: routing_key.to_owned(),
        event_type: event_type.map(str::to_owned),
        message_id: Some(id.clone()),
        body,
    };
    let event = |body: Vec<u8>| message(EVENT, Some(EVENT), body);
    let without = |field: &str| {
        let mut v = forged.clone();
        v.as_object_mut().unwrap().remove(field);
        serde_json::to_vec(&v).unwrap()
    };
    match kind {
        0 => event(b"{not json".to_vec()),
        1 => {
            let body = serde_json::to_vec(&forged).unwrap();
            event(body[..body.len() / 2].to_vec())
        }
        2 => event(without("Sequence")),
        3 => event(without("Id")),
        4 => event(without("Items")),
        5 => {
            let mut v = forged.clone();
            v["Sequence"] = json!(v["Sequence"].to_string());
            event(serde_json::to_vec(&v).unwrap())
        }
        6 => {
            let mut v = forged.clone();
            v["Items"][0]["Version"] = json!("high");
            event(serde_json::to_vec(&v).unwrap())
        }
        // A well-formed body under a bound routing key, but a type this
        // terminal does not consume.
        7 => message(
            EVENT,
            Some("ProductRecalledIntegrationEvent"),
            serde_json::to_vec(&forged).unwrap(),
        ),
        8 => {
            let mut v = forged.clone();
            v["Sequence"] = json!(0);
            event(serde_json::to_vec(&v).unwrap())
        }
        9 => event(vec![0xff, 0xfe, 0x7b, 0x00, 0x9c]),
        _ => {
            // A bound event of another type, malformed.
            let t = "POSPresenceIntervalUpdatedIntegrationEvent";
            message(
                t,
                Some(t),
                br#"{"Id": 42, "PresenceIntervalSeconds": "often"}"#.to_vec(),
            )
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_poison_events_among_ten_thousand_are_dead_lettered_and_consumption_continues() {
    let _heavy = HEAVY.lock().await;
    let _guard = rabbitmq::shared().await;
    let mut rig = rig(202, vec![DatasetSpec::of(DatasetKind::Products, 2_000)], 2).await;
    let t0 = rig.started;
    rig.start_seeded().await;
    let base = rig.erp.dataset_last_sequence(PRODUCTS).unwrap();
    let mark = last_request_seq(&rig.erp);
    note!(t0, "node seeded at sequence {base}");

    let sequences = rig.erp.mutate_random(PRODUCTS, 10_000).unwrap();
    let last = *sequences.last().unwrap();
    // 100 poison messages at deterministic random places among the good ones.
    let mut rng = Lcg(0x0000_0202);
    let mut positions = BTreeSet::new();
    while positions.len() < 100 {
        positions.insert(rng.below(10_000) as usize);
    }
    let raw = RawPublisher::connect(&rig.bus.exchange).await;
    let mut poison_ids = BTreeSet::new();
    let mut good = Vec::new();
    let publish_started = Instant::now();
    for (i, s) in sequences.iter().enumerate() {
        if positions.contains(&i) {
            rig.bus.publish(&good).await;
            good.clear();
            let n = poison_ids.len();
            let m = poison(n % 11, &event_json(&rig.erp, PRODUCTS, *s), n);
            poison_ids.insert(m.message_id.clone().unwrap());
            raw.publish(&[m]).await;
        }
        good.push(event_of(&rig.erp, PRODUCTS, *s));
    }
    rig.bus.publish(&good).await;
    raw.close().await;
    note!(
        t0,
        "published 10,000 events and 100 poison messages in {:.1} s",
        publish_started.elapsed().as_secs_f64()
    );

    rig.node
        .wait_sequence(PRODUCTS, last, Duration::from_secs(120))
        .await;
    note!(t0, "node at the ERP's sequence {last}");
    rig.bus
        .wait_drained(&rig.node.client_id, Duration::from_secs(30))
        .await;
    sleep(Duration::from_secs(1)).await;

    assert!(
        rig.node.is_running(),
        "the node stopped:\n{}",
        tail(&rig.node.process_err(), 30)
    );
    assert_eq!(rig.bus.dead_letters(&rig.node.client_id).await, 100);
    let dead = rig.bus.drain_dead_letters(&rig.node.client_id).await;
    let dead_ids: BTreeSet<String> = dead.iter().filter_map(|m| m.message_id.clone()).collect();
    assert_eq!(
        dead_ids, poison_ids,
        "exactly the poison is dead-lettered, no good event"
    );
    assert!(
        dead.iter()
            .all(|m| m.death_reason.as_deref() == Some("rejected")),
        "dead letters are rejections: {:?}",
        dead.iter().map(|m| &m.death_reason).collect::<Vec<_>>()
    );
    rig.assert_equal_to_erp(PRODUCTS).await;
    let changes = requests_since(&rig.erp, Route::Changes, mark).len();
    assert_eq!(
        changes, 0,
        "every good event came through the bus: no catch-up was needed"
    );

    let code = rig.node.terminate(Duration::from_secs(20)).await;
    assert_eq!(code, 0);
    let logs = rig.node.logs();
    let warnings = logs
        .lines()
        .filter(|l| {
            l.contains("WARN") && l.contains("dead-lettered an event that cannot be applied")
        })
        .count();
    assert_eq!(warnings, 100, "one warning per dead letter");
    note!(
        t0,
        "done: 100 dead letters, 100 warnings, 10,000 events applied, no catch-up"
    );
}

// ---- 3 ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_delivery_and_a_replayed_old_sequence_change_nothing() {
    let _guard = rabbitmq::shared().await;
    let mut rig = rig(303, vec![DatasetSpec::of(DatasetKind::Products, 200)], 3).await;
    let t0 = rig.started;
    rig.start_seeded().await;
    let base = rig.erp.dataset_last_sequence(PRODUCTS).unwrap();
    let mark = last_request_seq(&rig.erp);

    // One real change, applied through its event.
    let first = rig.erp.mutate_random(PRODUCTS, 1).unwrap()[0];
    let events = rig.publish_sequences(PRODUCTS, &[first]).await;
    rig.node
        .wait_sequence(PRODUCTS, first, Duration::from_secs(20))
        .await;
    let before = rig.node.rows(PRODUCTS).await;
    assert!(differences(&before, &erp_rows(&rig.erp, PRODUCTS)).is_empty());

    // Forgeries that WOULD change the store if applied: higher versions, other data.
    let forge = |mut v: Value, id: Option<String>, sequence: u64| {
        if let Some(id) = id {
            v["Id"] = json!(id);
        }
        v["Sequence"] = json!(sequence);
        for item in v["Items"].as_array_mut().unwrap() {
            item["Version"] = json!(item["Version"].as_u64().unwrap() + 1000);
            item["Deleted"] = json!(false);
            item["Data"] = json!({"forged": true});
        }
        let id = v["Id"].as_str().unwrap().to_owned();
        (id, serde_json::to_vec(&v).unwrap())
    };
    let original = event_json(&rig.erp, PRODUCTS, first);
    let duplicate = events[0].clone();
    // Known id, but the NEXT sequence: only the id can stop this one (were it
    // applied, the sequence would move and the real next change be skipped).
    let same_id_next_sequence = forge(original.clone(), None, first + 1);
    let replay_same_sequence = forge(
        original.clone(),
        Some(uuid::Uuid::new_v4().to_string()),
        first,
    );
    let replay_older_sequence = forge(original, Some(uuid::Uuid::new_v4().to_string()), base);
    rig.bus
        .publish(&[
            duplicate.clone(),
            same_id_next_sequence,
            replay_same_sequence.clone(),
            duplicate,
            replay_older_sequence.clone(),
        ])
        .await;

    // The real next change, twice, behind them in the queue: once it is
    // applied, they were all handled.
    let second = rig.erp.mutate_random(PRODUCTS, 1).unwrap()[0];
    assert_eq!(second, first + 1);
    let sentinel = rig.publish_sequences(PRODUCTS, &[second]).await;
    rig.bus.publish(&sentinel).await;
    rig.node
        .wait_sequence(PRODUCTS, second, Duration::from_secs(20))
        .await;
    rig.bus
        .wait_drained(&rig.node.client_id, Duration::from_secs(10))
        .await;

    rig.assert_equal_to_erp(PRODUCTS).await;
    // Only the sentinel's entities changed since `before`.
    let after = rig.node.rows(PRODUCTS).await;
    let sentinel: HashSet<String> = rig
        .erp
        .dataset_changed_event(PRODUCTS, second)
        .unwrap()
        .items
        .into_iter()
        .map(|i| i.id)
        .collect();
    for (id, row) in &after {
        if !sentinel.contains(id) {
            assert_eq!(before.get(id), Some(row), "{id} changed");
        }
    }
    assert!(after.values().all(|r| r.data.get("forged").is_none()));
    // They were handled (acknowledged, recorded), not dead-lettered, and no catch-up ran.
    let inbox: HashSet<String> = rig
        .node
        .inbox()
        .await
        .into_iter()
        .map(|(id, _, _)| id)
        .collect();
    assert!(inbox.contains(&replay_same_sequence.0) && inbox.contains(&replay_older_sequence.0));
    assert_eq!(rig.bus.dead_letters(&rig.node.client_id).await, 0);
    assert_eq!(requests_since(&rig.erp, Route::Changes, mark).len(), 0);
    assert_eq!(rig.node.terminate(Duration::from_secs(20)).await, 0);
    note!(
        t0,
        "done: duplicates, a same-id forgery and two replays left the store unchanged"
    );
}

// ---- 4 ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sequence_gap_triggers_a_changes_catch_up_and_410_a_reseed() {
    let _guard = rabbitmq::shared().await;
    let mut rig = rig(404, vec![DatasetSpec::of(DatasetKind::Products, 500)], 4).await;
    let t0 = rig.started;
    rig.start_seeded().await;
    let n = rig.erp.dataset_last_sequence(PRODUCTS).unwrap();

    // N+1 and N+2 at the ERP; only N+2's event arrives.
    let sequences = rig.erp.mutate_random(PRODUCTS, 2).unwrap();
    assert_eq!(sequences, [n + 1, n + 2]);
    let mark = last_request_seq(&rig.erp);
    let published = Instant::now();
    rig.publish_sequences(PRODUCTS, &[n + 2]).await;
    // The ingest timer is 600 s: only the consumer's gap report can do this.
    rig.node
        .wait_sequence(PRODUCTS, n + 2, Duration::from_secs(20))
        .await;
    note!(
        t0,
        "gap N+1 filled {:.2} s after N+2 was published",
        published.elapsed().as_secs_f64()
    );
    let changes = requests_since(&rig.erp, Route::Changes, mark);
    assert!(
        changes
            .iter()
            .any(|r| query_value(r, "after") == Some(n.to_string())),
        "a changes catch-up after {n}: {:?}",
        changes.iter().map(|r| &r.query).collect::<Vec<_>>()
    );
    assert!(
        requests_since(&rig.erp, Route::Snapshot, mark).is_empty(),
        "no reseed for a gap the ERP still holds"
    );
    rig.assert_equal_to_erp(PRODUCTS).await;

    // The ERP forgets its changes; another gap: 410, so a new snapshot.
    let sequences = rig.erp.mutate_random(PRODUCTS, 3).unwrap();
    assert_eq!(sequences, [n + 3, n + 4, n + 5]);
    rig.erp.expire_changes_through(PRODUCTS, n + 4).unwrap();
    let mark = last_request_seq(&rig.erp);
    let published = Instant::now();
    rig.publish_sequences(PRODUCTS, &[n + 5]).await;
    rig.node
        .wait_sequence(PRODUCTS, n + 5, Duration::from_secs(30))
        .await;
    note!(
        t0,
        "reseeded {:.2} s after N+5 was published",
        published.elapsed().as_secs_f64()
    );
    let changes = requests_since(&rig.erp, Route::Changes, mark);
    assert!(
        changes
            .iter()
            .any(|r| r.status == Some(410) && query_value(r, "after") == Some((n + 2).to_string())),
        "the catch-up after {} got 410: {:?}",
        n + 2,
        changes
            .iter()
            .map(|r| (&r.query, r.status))
            .collect::<Vec<_>>()
    );
    let snapshots = requests_since(&rig.erp, Route::Snapshot, mark);
    assert!(
        snapshots
            .iter()
            .any(|r| !query_has(r, "cursor") && r.status == Some(200)),
        "a new snapshot (first page without a cursor): {:?}",
        snapshots.iter().map(|r| &r.query).collect::<Vec<_>>()
    );
    rig.assert_equal_to_erp(PRODUCTS).await;
    assert_eq!(rig.bus.dead_letters(&rig.node.client_id).await, 0);
    assert_eq!(rig.node.terminate(Duration::from_secs(20)).await, 0);
    note!(t0, "done");
}

// ---- 5 ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seed_of_100000_entities_killed_three_times_resumes_and_ends_exact() {
    let _heavy = HEAVY.lock().await;
    let t0 = Instant::now();
    const SIZE: u64 = 100_000;
    const PAGE: u64 = 5_000;
    let erp = start_erp(
        505,
        vec![DatasetSpec::of(DatasetKind::Products, SIZE)],
        false,
    )
    .await;
    let mut node = TestNode::new("unused");
    node.onboard(&erp, 5).await;
    let mark = last_request_seq(&erp);
    let pages_needed = SIZE.div_ceil(PAGE) as usize;

    // Kill at spread moments: after about a fifth, a half and four fifths of the pages.
    let mut rng = Lcg(0x0000_0505);
    let mut kills = Vec::new();
    for target in [4u64, 10, 16] {
        node.spawn(&["seed", "--json"]);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let c = node.checkpoint(PRODUCTS).await;
            let done = c.snapshot.as_ref().map_or(0, |s| s.pages_done);
            if done >= target {
                break;
            }
            assert!(
                node.is_running(),
                "the seed ended before page {target}: {c:?}\n{}",
                node.process_err()
            );
            assert!(
                Instant::now() < deadline,
                "no page {target} within 60 s: {c:?}"
            );
            sleep(Duration::from_millis(5)).await;
        }
        sleep(Duration::from_millis(rng.below(150))).await;
        node.kill9();
        let c = node.checkpoint(PRODUCTS).await;
        let pages = c.snapshot.as_ref().map_or(0, |s| s.pages_done);
        note!(
            t0,
            "kill -9 #{} with {pages} pages ({} entities) stored",
            kills.len() + 1,
            c.entities
        );
        assert!(c.last_sequence.is_none(), "not complete yet");
        kills.push(pages);
    }
    let (code, out, err) = node.run_to_end(&["seed", "--json"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    note!(t0, "the last run finished the seed");
    let result: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(result[0]["dataset"], PRODUCTS);
    assert_eq!(result[0]["result"], "seeded");

    let c = node.checkpoint(PRODUCTS).await;
    assert_eq!(c.entities, SIZE);
    assert_eq!(
        c.last_sequence,
        Some(erp.dataset_last_sequence(PRODUCTS).unwrap())
    );
    let rows = node.rows(PRODUCTS).await;
    assert_eq!(rows.len() as u64, SIZE);
    let diff = differences(&rows, &erp_rows(&erp, PRODUCTS));
    assert!(diff.is_empty(), "{diff}");

    let snapshots = requests_since(&erp, Route::Snapshot, mark);
    let fresh = snapshots.iter().filter(|r| !query_has(r, "cursor")).count();
    note!(
        t0,
        "done: {} snapshot pages fetched for {pages_needed} needed, {} without a cursor; kills after {:?} pages",
        snapshots.len(),
        fresh,
        kills
    );
    assert_eq!(
        fresh, 1,
        "only the first run started the snapshot; the others resumed from the stored cursor"
    );
    assert!(
        snapshots.len() <= pages_needed + kills.len(),
        "{} pages fetched: a resumed run started over",
        snapshots.len()
    );
}

// ---- 6 ---------------------------------------------------------------------------

/// Two processes of one node seeding at the same time (`spacepos seed` typed
/// while `spacepos run` seeds; the till app and the SpaceFuel service sharing
/// the store) must still end with every entity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_seeding_the_same_store_at_once_keep_every_entity() {
    let _heavy = HEAVY.lock().await;
    let t0 = Instant::now();
    const SIZE: u64 = 100_000;
    let erp = start_erp(
        606,
        vec![DatasetSpec::of(DatasetKind::Products, SIZE)],
        false,
    )
    .await;
    let mut node = TestNode::new("unused");
    node.onboard(&erp, 6).await;
    // `run` seeds in the background; `seed` starts at the same moment.
    node.spawn(&["run"]);
    let (code, out, err) = node.run_to_end(&["seed", "--json"]).await;
    assert_eq!(code, 0, "{out}\n{err}");
    let last = erp.dataset_last_sequence(PRODUCTS).unwrap();
    node.wait_sequence(PRODUCTS, last, Duration::from_secs(60))
        .await;
    // Let `run` finish whatever page it was storing.
    sleep(Duration::from_secs(2)).await;
    let c = node.checkpoint(PRODUCTS).await;
    let rows = node.rows(PRODUCTS).await;
    note!(t0, "after both: {} entities, checkpoint {c:?}", rows.len());
    let diff = differences(&rows, &erp_rows(&erp, PRODUCTS));
    assert!(diff.is_empty(), "{diff}");
    assert_eq!(c.entities, SIZE);
    assert_eq!(node.terminate(Duration::from_secs(20)).await, 0);
}

// ---- 7 ---------------------------------------------------------------------------

/// A well-formed event whose numbers the local store cannot hold (a `Version`
/// or `Sequence` above 2^63 - 1: valid JSON, valid `u64`) can never be
/// applied: it must be dead-lettered like any poison, and consumption go on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_with_numbers_beyond_the_stores_range_is_dead_lettered_and_consumption_continues()
{
    let _guard = rabbitmq::shared().await;
    let mut rig = rig(707, vec![DatasetSpec::of(DatasetKind::Products, 200)], 7).await;
    let t0 = rig.started;
    rig.start_seeded().await;
    let mark = last_request_seq(&rig.erp);
    let sequences = rig.erp.mutate_random(PRODUCTS, 50).unwrap();
    let last = *sequences.last().unwrap();

    let too_big = |mut v: Value, field: &str| {
        let id = uuid::Uuid::new_v4().to_string();
        v["Id"] = json!(id);
        if field == "Sequence" {
            v["Sequence"] = json!(1u64 << 63);
        } else {
            v["Items"][0]["Version"] = json!(1u64 << 63);
        }
        (id, serde_json::to_vec(&v).unwrap())
    };
    let huge_sequence = too_big(event_json(&rig.erp, PRODUCTS, sequences[10]), "Sequence");
    let huge_version = too_big(event_json(&rig.erp, PRODUCTS, sequences[20]), "Version");
    let mut events = Vec::new();
    for (i, s) in sequences.iter().enumerate() {
        if i == 10 {
            events.push(huge_sequence.clone());
        }
        if i == 30 {
            events.push(huge_version.clone());
        }
        events.push(event_of(&rig.erp, PRODUCTS, *s));
    }
    rig.bus.publish(&events).await;

    rig.node
        .wait_sequence(PRODUCTS, last, Duration::from_secs(30))
        .await;
    rig.bus
        .wait_drained(&rig.node.client_id, Duration::from_secs(10))
        .await;
    let dead: BTreeSet<String> = rig
        .bus
        .drain_dead_letters(&rig.node.client_id)
        .await
        .into_iter()
        .filter_map(|m| m.message_id)
        .collect();
    assert_eq!(dead, BTreeSet::from([huge_sequence.0, huge_version.0]));
    rig.assert_equal_to_erp(PRODUCTS).await;
    assert_eq!(
        requests_since(&rig.erp, Route::Changes, mark).len(),
        0,
        "no catch-up needed"
    );
    assert_eq!(rig.node.terminate(Duration::from_secs(20)).await, 0);
    note!(t0, "done");
}

// ---- 8 ---------------------------------------------------------------------------

/// Events consumed while the node seeds only move the items (the sequence
/// waits for the snapshot); killed right after, the node must still end at
/// the ERP's sequence once the seed resumes and completes, without waiting
/// for the ingest timer (600 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_mid_seed_after_consuming_events_ends_at_the_erps_sequence() {
    let _heavy = HEAVY.lock().await;
    let _guard = rabbitmq::shared().await;
    let mut rig = rig(808, vec![DatasetSpec::of(DatasetKind::Products, 60_000)], 8).await;
    let t0 = rig.started;
    // Slow pages, so that the seed is still running when the events come.
    rig.erp.add_fault(FaultRule::always(
        Route::Snapshot,
        FaultKind::Delay(Duration::from_millis(400)),
    ));
    rig.node.start();
    rig.bus
        .wait_terminal_queue(&rig.node.client_id, Duration::from_secs(30))
        .await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while rig
        .node
        .checkpoint(PRODUCTS)
        .await
        .snapshot
        .map_or(0, |s| s.pages_done)
        < 2
    {
        assert!(Instant::now() < deadline, "no snapshot page stored");
        sleep(Duration::from_millis(20)).await;
    }
    let sequences = rig.erp.mutate_random(PRODUCTS, 50).unwrap();
    let events = rig.publish_sequences(PRODUCTS, &sequences).await;
    let ids: HashSet<String> = events.into_iter().map(|(id, _)| id).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let inbox: HashSet<String> = rig
            .node
            .inbox()
            .await
            .into_iter()
            .map(|(id, _, _)| id)
            .collect();
        if ids.is_subset(&inbox) {
            break;
        }
        assert!(Instant::now() < deadline, "the events were not consumed");
        sleep(Duration::from_millis(20)).await;
    }
    let c = rig.node.checkpoint(PRODUCTS).await;
    assert!(c.snapshot.is_some(), "still seeding when killed: {c:?}");
    rig.node.kill9();
    note!(t0, "killed mid-seed ({c:?}) after consuming 50 events");
    rig.erp.clear_faults();
    rig.node.start();
    let last = *sequences.last().unwrap();
    rig.node
        .wait_sequence(PRODUCTS, last, Duration::from_secs(30))
        .await;
    rig.assert_equal_to_erp(PRODUCTS).await;
    assert_eq!(rig.node.terminate(Duration::from_secs(20)).await, 0);
    note!(t0, "done");
}
