//! The shared store under load (issue 5): simulated deliveries recorded by
//! the SpaceFuel worker while the till (this test process) writes its own
//! sales into the same `spacepos.db`, and the worker killed with SIGKILL
//! between writing a sale and clearing it.
//!
//! The worker pauses once at `sale-recorded` (`SPACEFUEL_PAUSE_AT`, given to
//! the host, which passes its environment to the worker; the pause fires once
//! per data directory), the test kills it there, and the host's watchdog
//! starts it again: the sales of the killed worker's buffer are written again
//! under the same ids (a no-op) and cleared, never doubled.
//!
//! Scale: 10,000 deliveries (64 pumps, 157 customers each, no gap, 1 m³/s)
//! against 10,000 till sales, in about a minute, in every `cargo test`.
//!
//! Run with `cargo test -p spacepos-spacefuel-service --test load -- --nocapture`
//! to see the timings.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // test code

#[macro_use]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use spacepos_config::Slot;
use spacepos_spacefuel::PumpState;
use spacepos_sync::{Destination, NewOperation, Outbox};
use support::*;
use tokio::time::{Instant, sleep};

/// Pumps of the simulated forecourt: the most the configuration allows. The
/// worker authorises a calling pump once per pass (every 100 ms), so 16 pumps
/// serve about 80 deliveries a second (10,000 in some 130 s), 64 about 200.
const PUMPS: u64 = 64;
/// Deliveries at least, and till sales exactly.
const N: u64 = 10_000;
/// The till spreads its sales over this long, about as long as the
/// deliveries take, so both write the store side by side throughout.
const TILL_SPREAD: Duration = Duration::from_secs(40);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_and_till_sales_share_the_store_and_a_killed_worker_doubles_no_sale() {
    let n = N;
    let per_pump = n.div_ceil(PUMPS);
    let erp = start_erp(false).await;
    let settings = Settings {
        pumps: u32::try_from(PUMPS).unwrap(),
        flow_ml_per_second: 1_000_000,
        customers_per_pump: per_pump,
        arrival_gap_ms: 0,
        auto_authorise: true,
        auto_settle: Some(true),
        ..Settings::default()
    };
    let mut site = Site::new(&erp, 5, &settings).await;
    let t = site.started;
    site.start(Some("sale-recorded"));
    let store = site.store().await;

    // The till: one sale at a time, as a till records them, spread over the
    // time the forecourt runs.
    let till = tokio::spawn(async move {
        let mut failures = Vec::new();
        let begin = Instant::now();
        for i in 0..n {
            let due = begin + TILL_SPREAD.mul_f64(i as f64 / n as f64);
            tokio::time::sleep_until(due).await;
            let op = NewOperation {
                id: id_of(0x7111, i),
                destination: Destination::ErpOperations,
                kind: "sale.completed".to_owned(),
                occurred_at: Utc::now(),
                store_staff_id: Some("S-0042".to_owned()),
                payload: json!({"receiptNumber": i, "totalMinor": 1000 + i}),
            };
            if let Err(e) = store.enqueue(&[op]).await {
                failures.push(format!("sale {i}: {e}"));
            }
        }
        note!(t, "till: {n} sales enqueued");
        failures
    });

    // The worker pauses with sales written to the outbox but not cleared.
    let first = site
        .wait_paused("sale-recorded", Duration::from_secs(60))
        .await;
    assert_eq!(
        site.pid_file(),
        Some((first, Slot::Blue)),
        "the paused process is the worker"
    );
    let buffered: Vec<String> = site.sim_state().unwrap()["sales"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["transactionId"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        !buffered.is_empty(),
        "sales wait in the controller's buffer"
    );
    let stored: BTreeSet<String> = site
        .outbox_of(FUEL_SALE)
        .await
        .iter()
        .map(|o| o.payload["fdcTransactionId"].as_str().unwrap().to_owned())
        .collect();
    // Paused before its first clear: every sale it stored is still in the
    // buffer (deliveries authorised before the pause may have added more).
    assert!(!stored.is_empty(), "sales were stored before the pause");
    for trx in &stored {
        assert!(
            buffered.contains(trx),
            "{trx} was stored and is not cleared yet: {buffered:?}"
        );
    }
    kill("-KILL", &first.to_string());
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(first) {
        assert!(Instant::now() < deadline, "worker {first} survived SIGKILL");
        sleep(Duration::from_millis(10)).await;
    }
    // Read before the watchdog starts the next worker (2 s at most).
    let at_kill = counters(&site);
    note!(
        t,
        "worker {first} killed with {} sale(s) stored and {} in the buffer, none cleared",
        stored.len(),
        buffered.len()
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let second = loop {
        if let Some((pid, Slot::Blue)) = site.pid_file()
            && pid != first
            && alive(pid)
        {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the watchdog did not restart the worker\n{}",
            site.logs()
        );
        sleep(Duration::from_millis(50)).await;
    };
    note!(
        t,
        "the watchdog restarted the worker as {second}; {} deliveries so far",
        at_kill.values().sum::<u64>()
    );

    // Until the restarted worker's customers are all served and cleared.
    let expected_total = at_kill.values().sum::<u64>() + per_pump * PUMPS;
    let deadline = Instant::now() + Duration::from_secs(240);
    let mut last_print = Instant::now();
    loop {
        let c = counters(&site);
        let total: u64 = c.values().sum();
        let sim = site.sim_state().unwrap();
        let quiet = site.health().is_some_and(|h| {
            h.pid == second
                && h.sales.is_empty()
                && h.pumps.iter().all(|p| p.state == PumpState::Idle)
        });
        if total >= expected_total && sim["sales"].as_array().unwrap().is_empty() && quiet {
            break;
        }
        if last_print.elapsed() > Duration::from_secs(10) {
            note!(t, "{total} deliveries of {expected_total}");
            last_print = Instant::now();
        }
        assert!(
            Instant::now() < deadline,
            "{total} deliveries of {expected_total} within 240 s\n{}",
            site.logs()
        );
        sleep(Duration::from_millis(200)).await;
    }
    note!(t, "forecourt done");
    let failures = till.await.unwrap();
    note!(t, "till done");
    assert_eq!(failures, Vec::<String>::new(), "every till sale was stored");
    assert_eq!(site.stop(Duration::from_secs(30)).await, 0);

    // Exactly the till's sales and one fuel sale per controller transaction.
    let counters = counters(&site);
    let deliveries: u64 = counters.values().sum();
    assert!(
        deliveries >= n,
        "{deliveries} deliveries, {n} expected at least"
    );
    let expected_trx: BTreeSet<String> = counters
        .iter()
        .flat_map(|(pump, last)| (1..=*last).map(move |k| format!("SIM-{pump}-{k}")))
        .collect();
    let all = site.outbox().await;
    let fuel: Vec<_> = all.iter().filter(|o| o.kind == FUEL_SALE).collect();
    let tills: Vec<_> = all.iter().filter(|o| o.kind == "sale.completed").collect();
    note!(
        t,
        "outbox: {} entries, {} fuel sales, {} till sales",
        all.len(),
        fuel.len(),
        tills.len()
    );
    assert_eq!(tills.len() as u64, n);
    assert_eq!(fuel.len() as u64, deliveries, "one fuel sale per delivery");
    assert_eq!(
        all.len() as u64,
        n + deliveries,
        "nothing else in the outbox"
    );
    let fuel_trx = counts(
        fuel.iter()
            .map(|o| o.payload["fdcTransactionId"].as_str().unwrap().to_owned()),
    );
    let doubled: Vec<_> = fuel_trx.iter().filter(|(_, c)| **c > 1).collect();
    assert!(doubled.is_empty(), "doubled fuel sales: {doubled:?}");
    assert_eq!(
        fuel_trx.keys().cloned().collect::<BTreeSet<_>>(),
        expected_trx,
        "every transaction of the controller, and nothing else"
    );
    let ids: BTreeSet<_> = fuel.iter().map(|o| o.id).collect();
    assert_eq!(ids.len(), fuel.len());
    let till_ids: BTreeSet<_> = tills.iter().map(|o| o.id).collect();
    assert_eq!(till_ids.len() as u64, n);
    for trx in &buffered {
        assert_eq!(
            fuel_trx.get(trx),
            Some(&1),
            "{trx}, in the buffer at the kill, is stored once"
        );
    }
    assert_eq!(site.error_lines(), Vec::<String>::new(), "{}", site.logs());
}

/// The simulator's last transaction number per pump.
fn counters(site: &Site) -> BTreeMap<u64, u64> {
    let sim = site.sim_state().unwrap_or_default();
    sim["counters"]
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.parse().unwrap(), v.as_u64().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}
