//! A SpaceFuel-only site (issue 5): no till runs (`node.features.till =
//! false`), so `spacefuel-service run` itself delivers the fuel sales to the
//! ERP and sends the node's presence beats on the bus, listing SpaceFuel
//! alone. The fake ERP in the test, the real RabbitMQ on 127.0.0.1:5672 with
//! an exchange of this test, and a capture queue of the test's own (raw
//! lapin) bound to it for `POSPresenceEvent`.
//!
//! Run with `cargo test -p spacepos-spacefuel-service --test spacefuel_only -- --nocapture`
//! to see the timings (the beats come every 30 s, the first one at a random
//! moment within the first 30 s).

#![allow(clippy::unwrap_used, clippy::print_stdout)] // test code

#[macro_use]
mod support;

use std::collections::BTreeSet;
use std::time::Duration;

use spacepos_sync::OperationState;
use spacepos_testkit::rabbitmq;
use support::*;
use tokio::time::{Instant, sleep};

const DELIVERIES_PER_PUMP: u64 = 5;
const PUMPS: u32 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_alone_delivers_its_fuel_sales_and_beats_for_spacefuel_only() {
    let _broker = rabbitmq::shared().await;
    let erp = start_erp(true).await;
    let bus = fresh_bus();
    let settings = Settings {
        till: false,
        pumps: PUMPS,
        flow_ml_per_second: 100_000,
        customers_per_pump: DELIVERIES_PER_PUMP,
        arrival_gap_ms: 0,
        auto_authorise: true,
        // auto_settle left to its default: true where no till runs.
        bus: Some(bus.clone()),
        presence_interval_seconds: Some(30),
        send_frequency: Some(1),
        ..Settings::default()
    };
    let mut site = Site::new(&erp, 6, &settings).await;
    let _cleanup = BusCleanup {
        exchange: bus.1.clone(),
        client_id: site.client_id.clone(),
    };
    let beats = Capture::start(&bus.1, PRESENCE).await;
    let t = site.started;
    site.start(None);

    // Every delivery is recorded, settled by SpaceFuel and accepted by the ERP.
    let expected = u64::from(PUMPS) * DELIVERIES_PER_PUMP;
    let deadline = Instant::now() + Duration::from_secs(60);
    let (fuel_ids, accepted) = loop {
        let fuel = site.outbox_of(FUEL_SALE).await;
        let done = fuel.iter().all(|o| o.state == OperationState::Done);
        let ids: BTreeSet<String> = fuel.iter().map(|o| o.id.to_string()).collect();
        let accepted: Vec<String> = erp
            .accepted_operations()
            .into_iter()
            .filter(|a| a.client_id == site.client_id)
            .map(|a| a.operation.id.to_string())
            .collect();
        if fuel.len() as u64 == expected && done {
            break (ids, accepted);
        }
        assert!(
            Instant::now() < deadline,
            "{} of {expected} fuel sales stored, all done: {done}; {} accepted by the ERP\n{}",
            fuel.len(),
            accepted.len(),
            site.logs()
        );
        sleep(Duration::from_millis(100)).await;
    };
    note!(t, "{expected} fuel sales accepted by the ERP");
    let accepted_set: BTreeSet<String> = accepted.iter().cloned().collect();
    assert_eq!(accepted.len(), accepted_set.len(), "accepted once each");
    assert_eq!(accepted_set, fuel_ids, "the ERP has exactly the fuel sales");
    let kinds: BTreeSet<String> = erp
        .accepted_operations()
        .into_iter()
        .filter(|a| a.client_id == site.client_id)
        .map(|a| a.operation.kind)
        .collect();
    assert_eq!(kinds, BTreeSet::from([FUEL_SALE.to_owned()]));
    let sim = site.sim_state().unwrap();
    assert_eq!(
        sim["sales"].as_array().map(Vec::len),
        Some(0),
        "all cleared: {sim}"
    );

    // Presence: SpaceFuel alone, with its version and active slot.
    let captured = beats.wait_for(2, Duration::from_secs(75)).await;
    note!(t, "{} presence beats captured", captured.len());
    for (at, beat) in &captured {
        assert_eq!(beat["ClientId"], site.client_id.as_str(), "{beat}");
        assert_eq!(beat["StoreNumber"], site.store_number);
        assert_eq!(beat["TerminalNumber"], site.terminal_number);
        assert_eq!(beat["IntervalSeconds"], 30, "{beat}");
        assert!(beat["StoreStaffId"].is_null(), "{beat}");
        let components = beat["Components"].as_array().unwrap();
        assert_eq!(components.len(), 1, "only SpaceFuel: {beat}");
        let c = &components[0];
        assert_eq!(c["Component"], "SpaceFuel", "{beat}");
        assert_eq!(c["Version"], OLD, "{beat}");
        assert_eq!(c["ActiveSlot"], "blue", "{beat}");
        assert_eq!(c["Status"], "Running", "{beat}");
        note!(t, "beat at {at}: {c}");
    }
    let gap = (captured[1].0 - captured[0].0).num_milliseconds() as f64 / 1000.0;
    assert!(
        (25.0..=36.0).contains(&gap),
        "beats {gap} s apart, interval 30 s"
    );

    assert_eq!(site.error_lines(), Vec::<String>::new(), "{}", site.logs());
    assert_eq!(site.stop(Duration::from_secs(30)).await, 0);

    // The beats carry the client secret; no log line does (stderr of the
    // host and the worker, and the host's daily file).
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(site.data.join("terminal.json")).unwrap())
            .unwrap();
    let secret = record["client_secret"].as_str().unwrap().to_owned();
    assert!(secret.len() >= 16, "{record}");
    let mut logs = site.host_log() + &site.worker_log();
    for entry in std::fs::read_dir(site.data.join("logs")).unwrap().flatten() {
        logs.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
    }
    assert!(
        logs.contains("SpaceFuel-only site"),
        "the logs were read: {logs}"
    );
    assert!(!logs.contains(&secret), "the client secret reached a log");
    assert_eq!(site.workers(), Vec::<u32>::new());
}
