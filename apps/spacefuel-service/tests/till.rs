//! A till's requests to the forecourt, through the `spacefuel-service` CLI
//! against a running host and worker: authorise a pump with a preset, lock
//! the finished sale while taking payment, clear it once paid. The sale is in
//! the shared outbox before it leaves the controller; another till cannot
//! clear a sale it did not lock.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // test code

#[macro_use]
mod support;

use std::process::Command;
use std::time::Duration;

use spacepos_spacefuel::PumpState;
use support::*;
use tokio::time::{Instant, sleep};

/// Run the CLI on `site`'s data directory: (exit code, stdout, stderr).
fn cli(site: &Site, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_spacefuel-service"))
        .arg("--data-dir")
        .arg(&site.data)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn wait_for(
    site: &Site,
    what: &str,
    within: Duration,
    ok: impl Fn(&spacepos_spacefuel::HealthReport) -> bool,
) {
    let deadline = Instant::now() + within;
    loop {
        if site.health().is_some_and(|h| ok(&h)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} within {within:?}: {:?}",
            site.health()
        );
        sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_till_authorises_a_pump_locks_and_clears_the_sale_which_is_stored_first() {
    let erp = start_erp(false).await;
    let settings = Settings {
        till: true,
        pumps: 1,
        flow_ml_per_second: 20_000,
        customers_per_pump: 1,
        arrival_gap_ms: 0,
        auto_authorise: false,
        auto_settle: Some(false),
        ..Settings::default()
    };
    let mut site = Site::new(&erp, 7, &settings).await;
    site.start(None);

    // The customer lifts the nozzle; nothing authorises the pump but the till.
    wait_for(&site, "pump 1 calling", Duration::from_secs(30), |h| {
        matches!(
            h.pumps.first().map(|p| &p.state),
            Some(PumpState::Calling { .. })
        )
    })
    .await;
    let (code, _, err) = cli(&site, &["pump", "authorise", "9", "--till", "till-1"]);
    assert_eq!(code, 5, "an unknown pump is refused: {err}");
    assert!(err.contains("pump 9"), "{err}");
    let (code, out, err) = cli(
        &site,
        &[
            "pump",
            "authorise",
            "1",
            "--till",
            "till-1",
            "--volume-ml",
            "5000",
        ],
    );
    assert_eq!(code, 0, "{out}{err}");

    // The delivery stops at the preset and waits for payment.
    wait_for(&site, "a payable sale", Duration::from_secs(30), |h| {
        !h.sales.is_empty()
    })
    .await;
    let sale = site.health().unwrap().sales[0].clone();
    assert_eq!(sale.volume_ml, 5_000, "the preset is respected");
    let trx = sale.transaction_id.clone();
    let (code, out, _) = cli(&site, &["sale", "list"]);
    assert_eq!(code, 0);
    assert!(out.contains(&trx) && out.contains("payable"), "{out}");

    let (code, out, err) = cli(&site, &["sale", "lock", &trx, "--till", "till-1"]);
    assert_eq!(code, 0, "{out}{err}");
    wait_for(&site, "the sale locked", Duration::from_secs(5), |h| {
        h.sales.first().is_some_and(
            |s| matches!(&s.state, spacepos_spacefuel::SaleState::Locked { by } if by == "till-1"),
        )
    })
    .await;
    let (code, _, err) = cli(&site, &["sale", "clear", &trx, "--till", "till-2"]);
    assert_eq!(code, 5, "another till cannot clear it: {err}");
    let (code, out, err) = cli(&site, &["sale", "clear", &trx, "--till", "till-1"]);
    assert_eq!(code, 0, "{out}{err}");
    wait_for(&site, "the buffer empty", Duration::from_secs(5), |h| {
        h.sales.is_empty()
    })
    .await;

    // Stored exactly once, with the controller's transaction number.
    let stored = site.outbox_of("fuel.sale.completed").await;
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(stored[0].payload["fdcTransactionId"], trx.as_str());
    assert_eq!(stored[0].payload["volumeMl"], 5_000);
    let (code, _, err) = cli(&site, &["sale", "clear", &trx, "--till", "till-1"]);
    assert_eq!(code, 5, "a cleared sale is gone: {err}");
    assert_eq!(site.outbox_of("fuel.sale.completed").await.len(), 1);
    assert_eq!(site.stop(Duration::from_secs(20)).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_nobody_answers_is_withdrawn_with_a_clear_error() {
    let erp = start_erp(false).await;
    let site = Site::new(&erp, 8, &Settings::default()).await;
    // No host runs: the request times out, is withdrawn, and says what to do.
    let started = Instant::now();
    let (code, _, err) = cli(&site, &["sale", "clear", "SIM-1-1", "--till", "till-1"]);
    assert_eq!(code, 7, "{err}");
    assert!(
        err.contains("did not answer") && err.contains("spacefuel-service run"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
    let left = std::fs::read_dir(site.ext().join("requests"))
        .unwrap()
        .count();
    assert_eq!(
        left, 0,
        "the withdrawn request is gone, so a late worker cannot act on it"
    );
}
