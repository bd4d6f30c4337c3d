//! The forecourt and the switch (issue 5): an update published while a pump
//! is fuelling waits until the delivery is finished, stored and cleared.
//!
//! A SpaceFuel-only site (`node.features.till = false`) on the real RabbitMQ:
//! the ERP announces the release on the bus (`POSReleasePublishedIntegrationEvent`),
//! which is how a running host learns of a release at once (on a till site
//! it looks at start and every `updates.check_interval_seconds`, at least a
//! minute). The simulator has one pump, one customer, a slow flow; SpaceFuel
//! authorises and settles by itself (`auto_authorise`, `auto_settle`).
//!
//! Run with `cargo test -p spacepos-spacefuel-service --test forecourt -- --nocapture`
//! to see the timings.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // test code

#[macro_use]
mod support;

use std::time::Duration;

use chrono::{DateTime, Utc};
use spacepos_config::Slot;
use spacepos_spacefuel::PumpState;
use spacepos_sync::Destination;
use spacepos_testkit::rabbitmq;
use support::*;
use tokio::time::{Instant, sleep};

/// ml/s: the customer's delivery (deterministic: the simulator's seed) lasts
/// several seconds, longer than staging the release takes.
const SLOW_FLOW: u64 = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_switch_requested_while_a_pump_is_fuelling_waits_until_the_sale_is_stored_and_cleared() {
    let _broker = rabbitmq::shared().await;
    let erp = start_erp(true).await;
    let bus = fresh_bus();
    let settings = Settings {
        till: false,
        pumps: 1,
        flow_ml_per_second: SLOW_FLOW,
        customers_per_pump: 1,
        arrival_gap_ms: 0,
        auto_authorise: true,
        auto_settle: Some(true),
        bus: Some(bus.clone()),
        send_frequency: Some(1),
        ..Settings::default()
    };
    let mut site = Site::new(&erp, 4, &settings).await;
    let _cleanup = BusCleanup {
        exchange: bus.1.clone(),
        client_id: site.client_id.clone(),
    };
    let t = site.started;
    site.start(None);
    wait_terminal_queue(&bus.1, &site.client_id, Duration::from_secs(30)).await;
    note!(t, "the host consumes the bus");

    // The customer fuels at pump 1.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let fuelling = site.health().is_some_and(|h| {
            h.slot == Slot::Blue
                && matches!(
                    h.pumps.first().map(|p| &p.state),
                    Some(PumpState::Fuelling { .. })
                )
        });
        if fuelling {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "pump 1 never fuelled\n{}",
            site.logs()
        );
        sleep(Duration::from_millis(20)).await;
    }
    note!(t, "pump 1 is fuelling: publishing {NEW}");
    publish_and_announce(&erp, &bus.1, NEW, artifact(NEW, Build::Good)).await;
    let published_at = Utc::now();
    let still = site.health().unwrap();
    assert!(
        matches!(still.pumps[0].state, PumpState::Fuelling { .. }),
        "the release was published while pump 1 fuelled: {still:?}"
    );
    assert!(site.outbox_of(FUEL_SALE).await.is_empty());

    // Watch until the update is reported: the first report of a quiet
    // forecourt (no pump busy, no sale in the buffer), and the switch journal.
    let mut quiet_report: Option<DateTime<Utc>> = None;
    let mut busy_reports_after_publish = 0;
    let mut journal = None;
    let deadline = Instant::now() + Duration::from_secs(120);
    let applied = loop {
        if let Some(h) = site.health()
            && h.slot == Slot::Blue
            && h.at > published_at
            && quiet_report.is_none()
        {
            let busy = h.pumps.iter().any(|p| p.state != PumpState::Idle) || !h.sales.is_empty();
            if busy {
                busy_reports_after_publish += 1;
            } else {
                quiet_report = Some(h.at);
            }
        }
        if journal.is_none() {
            journal = site.state().await.spacefuel.switch;
        }
        if let Some(a) = site.outbox_of(APPLIED).await.into_iter().next() {
            break a;
        }
        assert!(
            Instant::now() < deadline,
            "no Applied within 120 s\n{}",
            site.logs()
        );
        sleep(Duration::from_millis(20)).await;
    };
    note!(t, "Applied in the outbox");
    site.wait_settled(Slot::Green, NEW, Duration::from_secs(30))
        .await;
    let journal = journal.expect("the switch journal was seen in state.json");
    let quiet_report = quiet_report.expect("blue reported a quiet forecourt before it was stopped");

    // The one sale: stored, then cleared, then the switch.
    let sales = site.outbox_of(FUEL_SALE).await;
    assert_eq!(sales.len(), 1, "{sales:?}");
    let sale = &sales[0];
    let ready = site.outbox_of(READY).await;
    assert_eq!(ready.len(), 1);
    let staged_at = date_at(&ready[0].payload, "/StagedAt");
    note!(
        t,
        "published {published_at}, staged {staged_at}, delivery ended {}, sale stored {}, quiet {quiet_report}, switch {}",
        sale.occurred_at,
        sale.created_at,
        journal.started_at
    );
    assert!(
        staged_at < sale.occurred_at,
        "the update was ready to switch while the delivery still ran (staged {staged_at}, delivery ended {})",
        sale.occurred_at
    );
    assert!(
        busy_reports_after_publish > 0,
        "reports of the busy pump were seen after the publication"
    );
    assert!(
        sale.created_at <= journal.started_at,
        "the sale was stored ({}) before the switch ({})",
        sale.created_at,
        journal.started_at
    );
    assert!(
        quiet_report <= journal.started_at,
        "the switch ({}) came after the forecourt was reported quiet ({quiet_report})",
        journal.started_at
    );
    assert!(
        site.host_log().contains(&format!(
            "update spacefuel {NEW} waits for a safe point: pump 1 is authorised or fuelling"
        )),
        "{}",
        site.logs()
    );
    let sim = site.sim_state().unwrap();
    assert_eq!(sim["counters"]["1"], 1, "{sim}");
    assert_eq!(sim["sales"].as_array().map(Vec::len), Some(0), "{sim}");
    assert_eq!(sale.payload["fdcTransactionId"], "SIM-1-1");
    assert_eq!(sale.destination, Destination::ErpOperations);

    let a = &applied.payload;
    assert_eq!(
        (a["Result"].as_str(), a["Version"].as_str()),
        (Some("Applied"), Some(NEW))
    );
    assert_eq!(a["PreviousVersion"], OLD);
    assert_eq!(site.error_lines(), Vec::<String>::new(), "{}", site.logs());
    assert_eq!(site.stop(Duration::from_secs(30)).await, 0);
}
