//! The outbox under crashes and ERP faults, end to end: `spacepos run` as a real
//! process against the fake ERP (in-process), operations queued in the node's
//! `spacepos.db` as another till process would. Every sale must reach the ERP
//! exactly once, in creation order, whatever fails in between (ERP contract
//! section 4; ARCHITECTURE.md "Outbound").
//!
//! Run: `cargo test -p spacepos --test outbox_faults -- --nocapture` (timings
//! and the kill schedule's seed are printed; `OUTBOX_FAULTS_SEED=<n>` replays a
//! schedule).

#![allow(clippy::unwrap_used)] // test code

mod outbox_support;
mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use outbox_support::{
    Harness, Rng, Till, assert_accepted_exactly_once_in_order, assert_all_done, describe_requests,
    op_ids, operation, sale, wait_until,
};
use serde_json::Value;
use spacepos_fake_erp::{FaultKind, FaultRule, RejectRule, Route};
use spacepos_sync::OperationState;
use uuid::Uuid;

/// 10,000 queued sales; `spacepos run` SIGKILLed 50 times after 50-600 ms,
/// with faults at the ERP between runs (applied-then-dropped answers, 503s,
/// dropped requests, slow answers), so crashes land while a batch is in flight
/// and after the ERP applied a batch the node has not recorded yet.
#[test]
fn kill_9_fifty_times_while_pushing_10000_operations_loses_and_doubles_nothing() {
    const OPS: u64 = 10_000;
    const RUNS: u32 = 50;
    let started = Instant::now();
    let (mut rng, seed) = Rng::from_env_or_time();
    println!("kill schedule seed {seed} (replay it with OUTBOX_FAULTS_SEED={seed})");

    let h = Harness::start();
    let mut till = Till::onboard(&h, 1);
    let ops: Vec<_> = (0..OPS).map(sale).collect();
    let queued = till.enqueue(&ops);
    assert_eq!(queued.len() as u64, OPS);
    step!(started, "onboarded; {OPS} operations queued");

    let mut faults_planned: BTreeMap<String, u32> = BTreeMap::new();
    // Kills that left operations applied at the ERP but not yet done locally:
    // the window where only the idempotency key prevents a double effect.
    let mut kills_in_the_unknown_window = 0;
    let mut kills_mid_push = 0;
    for run in 1..=RUNS {
        h.erp.clear_faults();
        let fault = match rng.range(0, 99) {
            0..=24 => Some(FaultKind::ApplyThenDrop),
            25..=39 => Some(FaultKind::Status(503)),
            40..=49 => Some(FaultKind::Drop),
            _ => None,
        };
        // The ERP's latency in this run: a batch of 500 takes a realistic
        // while (at least 100 ms, so the 20 batches span several runs even
        // when the sender overlaps its SQLite work with the request), so most
        // kills land while a batch is in flight (before or after the ERP
        // applied it) rather than after the queue drained.
        let latency = Duration::from_millis(rng.range(100, 400));
        let label = fault.as_ref().map(FaultKind::label);
        if let Some(kind) = fault {
            *faults_planned
                .entry(kind.label().split('(').next().unwrap().to_owned())
                .or_default() += 1;
            h.erp.add_fault(FaultRule::once(Route::Operations, kind));
        }
        // Matched after the one-off fault above (rules match in order).
        h.erp.add_fault(FaultRule::always(
            Route::Operations,
            FaultKind::Delay(latency),
        ));
        let life = Duration::from_millis(rng.range(50, 600));

        let accepted_before = h.erp.accepted_count();
        let mut node = till.start_run();
        std::thread::sleep(life);
        node.kill();

        let integrity = till.integrity_check();
        assert_eq!(
            integrity, "ok",
            "run {run}: PRAGMA integrity_check after SIGKILL"
        );
        let stats = till.stats();
        let accepted = h.erp.accepted_count() as u64;
        assert_eq!(
            stats.pending + stats.done,
            OPS,
            "run {run}: entries lost or invented"
        );
        assert!(
            stats.done <= accepted,
            "run {run}: {} done locally but only {accepted} accepted by the ERP",
            stats.done
        );
        if accepted > stats.done {
            kills_in_the_unknown_window += 1;
        }
        if stats.pending > 0 && accepted > accepted_before as u64 {
            kills_mid_push += 1;
        }
        step!(
            started,
            "run {run:>2}/{RUNS}: killed after {:>3} ms, ERP latency {:>3} ms, fault {:<16} ERP accepted {:>5} (+{:>4}), outbox done {:>5}, pending {:>5}, integrity ok",
            life.as_millis(),
            latency.as_millis(),
            label.unwrap_or_else(|| "-".into()),
            accepted,
            accepted - accepted_before as u64,
            stats.done,
            stats.pending
        );
    }

    h.erp.clear_faults();
    let fired: Vec<String> = h
        .operation_requests()
        .iter()
        .filter_map(|r| r.fault.clone())
        .collect();
    let count = |prefix: &str| fired.iter().filter(|f| f.starts_with(prefix)).count();
    step!(
        started,
        "faults planned {faults_planned:?}; fired on operations: applyThenDrop {}, status(503) {}, drop {}; \
         kills mid-push {kills_mid_push}, kills with applied-but-unrecorded operations {kills_in_the_unknown_window}",
        count("applyThenDrop"),
        count("status"),
        count("drop")
    );

    let mut node = till.start_run();
    let stats = till.wait_until_drained(OPS, Duration::from_secs(180));
    node.kill();
    step!(
        started,
        "final run drained the outbox: {stats:?}; ERP answered duplicate {} time(s) in {} operations requests",
        h.erp.duplicate_answers(),
        h.operation_requests().len()
    );
    assert_eq!(till.integrity_check(), "ok");

    let outbox = till.outbox();
    assert_eq!(outbox.len() as u64, OPS);
    assert_eq!(
        outbox.iter().map(|o| o.id).collect::<Vec<_>>(),
        queued.iter().map(|o| o.id).collect::<Vec<_>>(),
        "the outbox in seq order is the queue as created"
    );
    assert_all_done(&outbox);
    assert_eq!((stats.done, stats.pending, stats.parked), (OPS, 0, 0));
    assert_accepted_exactly_once_in_order(&h.erp, &outbox);

    // The runs really did crash in the middle of things, and the ERP really did
    // see resends of batches it had applied.
    assert!(
        kills_mid_push >= 3,
        "only {kills_mid_push} kill(s) landed while the queue was being pushed"
    );
    if count("applyThenDrop") > 0 {
        assert!(
            kills_in_the_unknown_window > 0,
            "an applied-then-dropped batch must leave a kill with applied but unrecorded operations"
        );
        assert!(
            h.erp.duplicate_answers() > 0,
            "a batch applied and dropped was resent: the ERP must have answered duplicate"
        );
    }
    step!(started, "done");
}

/// One fault on a running node: the batch is sent, the fault happens, the
/// batch is sent again later with the same ids, and everything ends accepted once.
struct FaultCase {
    terminal: u32,
    fault: FaultKind,
    /// The least and most time between the faulted request and its resend.
    resend_after: (Duration, Duration),
    /// Whether the ERP applied the faulted batch (its resend is all duplicates).
    applied: bool,
}

fn one_fault_on_a_running_node(case: &FaultCase) -> Duration {
    const OPS: u64 = 20;
    let started = Instant::now();
    let label = case.fault.label();
    let h = Harness::start();
    let mut till = Till::onboard(&h, case.terminal);
    let mut node = till.start_run();
    // Up and idle: it has read its settings and found nothing to send.
    wait_until(Duration::from_secs(30), "the node to start", || {
        !h.erp.requests_to(Route::TerminalsMe).is_empty()
    });
    std::thread::sleep(Duration::from_millis(1500));
    node.assert_alive();
    assert!(h.operation_requests().is_empty(), "nothing was queued yet");

    h.erp
        .add_fault(FaultRule::once(Route::Operations, case.fault.clone()));
    let queued = till.enqueue(&(0..OPS).map(sale).collect::<Vec<_>>());
    step!(
        started,
        "[{label}] {OPS} operations queued on a running node"
    );
    let stats = till.wait_until_drained(OPS, Duration::from_secs(120));
    step!(started, "[{label}] outbox drained: {stats:?}");
    // A few more ticks: nothing else is sent.
    std::thread::sleep(Duration::from_millis(2500));
    node.assert_alive();
    node.kill();

    let requests = h.operation_requests();
    assert_eq!(
        requests.len(),
        2,
        "[{label}] one faulted request and one resend expected:\n{}",
        describe_requests(&requests)
    );
    let (faulted, resend) = (&requests[0], &requests[1]);
    assert_eq!(faulted.fault.as_deref(), Some(label.as_str()));
    assert_eq!(resend.fault, None);
    assert_eq!(resend.status, Some(200));
    let want: Vec<Uuid> = queued.iter().map(|o| o.id).collect();
    assert_eq!(
        op_ids(faulted),
        want,
        "[{label}] the batch in creation order"
    );
    assert_eq!(
        op_ids(resend),
        op_ids(faulted),
        "[{label}] the resend carries the same ids"
    );

    let gap = (resend.at - faulted.at).to_std().unwrap();
    let (least, most) = case.resend_after;
    assert!(
        gap >= least && gap <= most,
        "[{label}] resent {gap:?} after the fault; expected between {least:?} and {most:?}"
    );

    let outbox = till.outbox();
    assert_all_done(&outbox);
    assert_accepted_exactly_once_in_order(&h.erp, &outbox);
    let duplicates = if case.applied { OPS } else { 0 };
    assert_eq!(
        h.erp.duplicate_answers(),
        duplicates,
        "[{label}] duplicate answers of the resend"
    );
    step!(started, "[{label}] resent after {gap:?}; ok");
    gap
}

/// ApplyThenDrop (the ERP applied the batch, the answer was lost), 500 and 429
/// with `Retry-After`, each on its own running node (the three run at once: a
/// failure without `Retry-After` waits the retry interval, at least 48 s).
#[test]
fn apply_then_drop_and_5xx_and_429_never_double_and_retry_with_the_same_ids() {
    let started = Instant::now();
    // The retry interval is 1 minute ±20% (the shortest the configuration allows).
    let retry_interval = (Duration::from_millis(47_900), Duration::from_secs(80));
    let cases = [
        FaultCase {
            terminal: 21,
            fault: FaultKind::ApplyThenDrop,
            resend_after: retry_interval,
            applied: true,
        },
        FaultCase {
            terminal: 22,
            fault: FaultKind::Status(500),
            resend_after: retry_interval,
            applied: false,
        },
        FaultCase {
            terminal: 23,
            fault: FaultKind::RetryAfter {
                status: 429,
                seconds: 4,
            },
            // Not before Retry-After (4 s, more than send_frequency), and
            // Retry-After instead of the retry interval.
            resend_after: (Duration::from_secs(4), Duration::from_secs(15)),
            applied: false,
        },
    ];
    let gaps: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|case| s.spawn(move || one_fault_on_a_running_node(case)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    step!(
        started,
        "resend gaps: applyThenDrop {:?}, 500 {:?}, 429 Retry-After 4 s {:?}",
        gaps[0],
        gaps[1],
        gaps[2]
    );
}

/// 501 operations, the first of a type the ERP rejects: it is parked with the
/// ERP's error, the 500 behind it are delivered, it is never retried by
/// itself, and `spacepos ops retry` delivers it (same id) once the ERP takes it.
#[test]
fn a_rejected_operation_is_parked_and_the_500_behind_it_are_delivered() {
    let started = Instant::now();
    let h = Harness::start();
    h.erp
        .add_reject_rule(RejectRule::by_type("fuel.sale.completed", "unknown_grade"));
    let mut till = Till::onboard(&h, 3);
    let mut ops = vec![operation("fuel.sale.completed", 0)];
    ops.extend((1..=500).map(sale));
    let queued = till.enqueue(&ops);
    let rejected = queued[0].clone();

    let mut node = till.start_run();
    let stats = till.wait_until_drained(500, Duration::from_secs(60));
    step!(started, "outbox drained: {stats:?}");
    assert_eq!((stats.done, stats.parked, stats.pending), (500, 1, 0));
    assert_accepted_exactly_once_in_order(&h.erp, &queued[1..]);
    assert_eq!(h.erp.rejected_answers(), 1);

    // Parked is final until the operator acts: no automatic retry.
    std::thread::sleep(Duration::from_secs(3));
    node.assert_alive();
    let requests = h.operation_requests();
    assert_eq!(
        requests.len(),
        2,
        "a batch of 500 and one of 1, then nothing:\n{}",
        describe_requests(&requests)
    );
    assert_eq!(
        h.erp.rejected_answers(),
        1,
        "the parked operation was resent"
    );

    let parked = till.cli_json(&["ops", "list", "--state", "parked", "--json"]);
    let parked = parked.as_array().unwrap();
    assert_eq!(parked.len(), 1, "{parked:?}");
    assert_eq!(parked[0]["id"], rejected.id.to_string());
    assert_eq!(parked[0]["state"], "parked");
    assert_eq!(parked[0]["type"], "fuel.sale.completed");
    assert_eq!(parked[0]["seq"], rejected.seq);
    assert_eq!(parked[0]["lastError"], "unknown_grade", "the ERP's error");

    // The ERP fixes its grade table; the operator retries.
    h.erp.clear_reject_rules();
    let retried = till.cli_json(&["ops", "retry", &rejected.id.to_string(), "--json"]);
    assert_eq!(retried["id"], rejected.id.to_string());
    assert_eq!(retried["state"], "pending");
    let stats = till.wait_until_drained(501, Duration::from_secs(30));
    step!(started, "retried operation delivered: {stats:?}");
    node.kill();
    assert_eq!((stats.done, stats.parked, stats.pending), (501, 0, 0));

    let requests = h.operation_requests();
    assert_eq!(requests.len(), 3, "{}", describe_requests(&requests));
    assert_eq!(op_ids(&requests[2]), vec![rejected.id], "the same id again");
    let accepted = h.erp.accepted_operations();
    assert_eq!(accepted.len(), 501);
    let last = &accepted[500].operation;
    assert_eq!(
        (last.id, &last.kind, &last.payload),
        (rejected.id, &rejected.kind, &rejected.payload)
    );
    let mut in_acceptance_order = queued[1..].to_vec();
    in_acceptance_order.push(rejected.clone());
    assert_accepted_exactly_once_in_order(&h.erp, &in_acceptance_order);
    assert_eq!(till.get(rejected.id).unwrap().state, OperationState::Done);
    let parked = till.cli_json(&["ops", "list", "--state", "parked", "--json"]);
    assert_eq!(parked, Value::Array(vec![]));
}

/// `spacepos status --json` reports the queue: pending count, the age of the
/// oldest pending entry, parked and done (under `store.outbox`).
#[test]
fn status_reports_the_queue() {
    let h = Harness::start();
    h.erp
        .add_reject_rule(RejectRule::by_type("fuel.sale.completed", "unknown_grade"));
    let mut till = Till::onboard(&h, 4);
    till.enqueue(&[sale(1), operation("fuel.sale.completed", 2), sale(3)]);
    std::thread::sleep(Duration::from_millis(2200));

    let status = till.cli_json(&["status", "--json"]);
    let outbox = &status["store"]["outbox"];
    assert_eq!(outbox["pending"], 3, "{status:#}");
    assert_eq!(outbox["parked"], 0, "{status:#}");
    assert_eq!(outbox["done"], 0, "{status:#}");
    let age = outbox["oldestPendingAgeSeconds"].as_i64().unwrap();
    assert!(
        (2..60).contains(&age),
        "oldest pending age {age} s: {status:#}"
    );

    let mut node = till.start_run();
    till.wait_until_drained(2, Duration::from_secs(60));
    node.kill();

    let status = till.cli_json(&["status", "--json"]);
    let outbox = &status["store"]["outbox"];
    assert_eq!(outbox["pending"], 0, "{status:#}");
    assert_eq!(outbox["parked"], 1, "{status:#}");
    assert_eq!(outbox["done"], 2, "{status:#}");
    assert_eq!(outbox["oldestPendingAgeSeconds"], Value::Null, "{status:#}");
    assert_eq!(status["store"]["lastSend"]["ok"], true, "{status:#}");

    let text = till.cli(&["status"]);
    text.ok();
    assert!(
        text.stdout.contains("0 pending; 1 parked; 2 done"),
        "{}",
        text.stdout
    );
    assert!(
        text.stdout.contains("spacepos ops list --state parked"),
        "{}",
        text.stdout
    );
}

/// The contract: a `Retry-After` on 429/503 must be honoured. The send loop
/// honours it while it runs, but a restart (a crash, the till rebooted, the
/// service restarted) sends at once: `next_attempt_at` is stored by
/// `record_failure` and never read.
#[test]
fn a_retry_after_is_honoured_across_a_restart() {
    const RETRY_AFTER: u64 = 10;
    let started = Instant::now();
    let h = Harness::start();
    let mut till = Till::onboard(&h, 5);
    let mut node = till.start_run();
    wait_until(Duration::from_secs(30), "the node to start", || {
        !h.erp.requests_to(Route::TerminalsMe).is_empty()
    });
    h.erp.add_fault(FaultRule::once(
        Route::Operations,
        FaultKind::RetryAfter {
            status: 429,
            seconds: RETRY_AFTER,
        },
    ));
    let queued = till.enqueue(&(0..5).map(sale).collect::<Vec<_>>());
    wait_until(Duration::from_secs(30), "the 429", || {
        !h.operation_requests().is_empty()
    });
    std::thread::sleep(Duration::from_millis(300));
    node.kill();
    step!(started, "429 answered, node killed; restarting it at once");
    let mut node = till.start_run();
    till.wait_until_drained(5, Duration::from_secs(60));
    node.kill();

    let requests = h.operation_requests();
    assert_eq!(requests.len(), 2, "{}", describe_requests(&requests));
    let gap = (requests[1].at - requests[0].at).to_std().unwrap();
    assert!(
        gap >= Duration::from_secs(RETRY_AFTER),
        "the restarted node resent {gap:?} after a 429 with Retry-After: {RETRY_AFTER}"
    );
    assert_accepted_exactly_once_in_order(&h.erp, &queued);
}
