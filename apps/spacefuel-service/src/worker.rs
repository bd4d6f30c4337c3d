//! The worker: SpaceFuel running from a slot. Talks to the fuel controller,
//! writes every finished delivery to the shared store before it can be
//! cleared, authorises and settles where configured, and reports its health
//! and the forecourt every second.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use spacepos_config::{Config, Slot};
use spacepos_forecourt_sim::{CustomerConfig, ForecourtSim, SimConfig};
use spacepos_fs::write_health_report;
use spacepos_spacefuel::{
    ControllerError, ForecourtController, FuelSales, HealthReport, PumpState, SLOT_MANIFEST_FILE,
    SaleState, SlotManifest,
};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::node::{Node, ensure_dir};
use crate::observer::PauseAt;
use crate::{EXIT_CONFIG, EXIT_STORAGE, Failure};

/// How often the controller is polled (sales recorded, pumps authorised).
const POLL: Duration = Duration::from_millis(100);
/// How often health.json is written.
const REPORT_EVERY: Duration = Duration::from_secs(1);
/// The till name SpaceFuel uses when it settles a sale itself.
const SELF_TILL: &str = "spacefuel";

/// The version this slot was released as, from its `slot.json`.
fn slot_version(node: &Node, slot: Slot) -> Result<String, Failure> {
    let path = node
        .extensions_dir()
        .join(slot.as_str())
        .join(SLOT_MANIFEST_FILE);
    let bytes = std::fs::read(&path).map_err(|e| {
        Failure::new(
            EXIT_STORAGE,
            format!(
                "cannot read {}: {e}; the slot is not installed",
                path.display()
            ),
        )
    })?;
    let manifest: SlotManifest = serde_json::from_slice(&bytes).map_err(|e| {
        Failure::new(
            EXIT_STORAGE,
            format!("{} is unreadable: {e}", path.display()),
        )
    })?;
    Ok(manifest.version)
}

fn simulator(config: &Config, ext: &Path) -> Result<ForecourtSim, Failure> {
    let sim = &config.spacefuel.simulator;
    let currency = config
        .terminal
        .company_information
        .as_ref()
        .and_then(|c| c.currency.clone())
        .filter(|c| !c.is_empty());
    let mut sim_config = SimConfig {
        pumps: sim.pumps,
        flow_ml_per_s: sim.flow_ml_per_second,
        state_file: Some(ext.join("forecourt-sim.json")),
        ..SimConfig::default()
    };
    if let Some(c) = currency {
        sim_config.currency = c;
    }
    ForecourtSim::new(sim_config).map_err(|e| Failure::new(EXIT_CONFIG, e.to_string()))
}

pub(crate) async fn run(node: &Node, slot: Slot) -> Result<(), Failure> {
    let ext = node.extensions_dir();
    ensure_dir(&ext)?;
    let version = slot_version(node, slot)?;
    let record = node.record().await?;
    let config = node.config(record.as_ref())?;
    let store = Arc::new(node.store().await?);
    let sim = Arc::new(simulator(&config, &ext)?);
    let customers = match config.spacefuel.simulator.customers_per_pump {
        0 => None,
        n => {
            let gap = config.spacefuel.simulator.arrival_gap_ms;
            let c = CustomerConfig {
                pumps: (1..=config.spacefuel.simulator.pumps).collect(),
                volume_ml: 1_000..=40_000,
                arrival_gap_ms: 0..=gap,
                customers_per_pump: Some(n),
                ..CustomerConfig::default()
            };
            Some(
                sim.start_customers(c)
                    .map_err(|e| Failure::new(EXIT_CONFIG, e.to_string()))?,
            )
        }
    };
    let controller: Arc<dyn ForecourtController> = sim.clone();
    let sales = FuelSales::new(controller.clone(), store);
    let pause = PauseAt::from_env(ext.clone());
    info!(
        %slot,
        version,
        pid = std::process::id(),
        auto_authorise = config.spacefuel.auto_authorise,
        auto_settle = config.spacefuel.auto_settle,
        "SpaceFuel {version} running from slot {slot}"
    );

    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        trigger.cancel();
    });

    let mut last_report = tokio::time::Instant::now() - REPORT_EVERY;
    let mut failing: Option<String> = None;
    loop {
        let outcome = pass(&controller, &sales, &config, &pause).await;
        crate::requests::serve(&ext, controller.as_ref(), &sales).await;
        match (&outcome, &failing) {
            (Err(e), None) => warn!(error = %e, "the forecourt cannot be served now: {e}"),
            (Ok(()), Some(e)) => info!(previous = %e, "the forecourt is served again"),
            _ => {}
        }
        failing = outcome.err();
        if last_report.elapsed() >= REPORT_EVERY {
            last_report = tokio::time::Instant::now();
            report(&controller, &ext, slot, &version, failing.as_deref()).await;
        }
        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep(POLL) => {}
        }
    }
    if let Some(c) = customers {
        c.stop().await;
    }
    // The last pass: whatever finished is stored before the worker goes.
    if let Err(e) = sales.record().await {
        warn!(error = %e, "fuel sales could not be stored at shutdown; they stay in the controller");
    }
    info!(%slot, "SpaceFuel {version} stopped");
    Ok(())
}

/// One pass over the forecourt: authorise calling pumps (when configured),
/// store every finished sale, then clear the stored ones (when configured).
async fn pass(
    controller: &Arc<dyn ForecourtController>,
    sales: &FuelSales,
    config: &Config,
    pause: &PauseAt,
) -> Result<(), String> {
    if config.spacefuel.auto_authorise {
        let pumps = controller.fp_states().await.map_err(|e| e.to_string())?;
        for p in pumps
            .iter()
            .filter(|p| matches!(p.state, PumpState::Calling { .. }))
        {
            match controller.authorise_fuel_point(p.id, None).await {
                Ok(()) | Err(ControllerError::Refused(_)) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    let recorded = sales.record().await.map_err(|e| e.to_string())?;
    if config.spacefuel.auto_settle && !recorded.is_empty() {
        pause.reached("sale-recorded").await;
        for sale in recorded.iter().filter(|s| s.state == SaleState::Payable) {
            match controller
                .clear_fuel_sale_trx(&sale.transaction_id, SELF_TILL)
                .await
            {
                Ok(()) | Err(ControllerError::UnknownSale(_)) => {}
                Err(e) => return Err(e.to_string()),
            }
        }
    }
    Ok(())
}

/// Write health.json: this slot and version, ready when the controller answers.
async fn report(
    controller: &Arc<dyn ForecourtController>,
    ext: &Path,
    slot: Slot,
    version: &str,
    failing: Option<&str>,
) {
    let pumps = controller.fp_states().await;
    let sales = controller.fuel_sale_trxs().await;
    let (ready, detail) = match (&pumps, &sales, failing) {
        (Ok(_), Ok(_), None) => (true, None),
        (Err(e), _, _) | (_, Err(e), _) => (false, Some(e.to_string())),
        (_, _, Some(f)) => (false, Some(f.to_owned())),
    };
    let report = HealthReport {
        slot,
        version: version.to_owned(),
        pid: std::process::id(),
        ready,
        detail,
        at: chrono::Utc::now(),
        pumps: pumps.unwrap_or_default(),
        sales: sales.unwrap_or_default(),
    };
    let ext = ext.to_path_buf();
    let written = tokio::task::spawn_blocking(move || write_health_report(&ext, &report)).await;
    if let Ok(Err(e)) = written {
        warn!(error = %e, "cannot write the health report");
    }
}

pub(crate) async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
