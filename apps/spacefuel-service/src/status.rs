//! `status` and `slot use`: what SpaceFuel runs, read from state.json, the
//! slots on disk, the pid file and the service's last report.

use std::sync::Arc;

use serde_json::json;
use spacepos_config::Slot;
use spacepos_core::ComponentId;
use spacepos_spacefuel::{PumpState, ServiceState};

use crate::host::Site;
use crate::node::Node;
use crate::{EXIT_REFUSED, Failure};

pub(crate) async fn run(node: &Node, as_json: bool) -> Result<(), Failure> {
    let record = node.record().await?;
    let config = node.config(record.as_ref())?;
    let state = node.load_state().await?;
    let site = Site::new(node, &config);
    let service = site.service.state().await;
    let report = site.health.report().await;
    let sf = &state.spacefuel;
    let slot_json = |slot: Slot| {
        sf.slot(slot)
            .map(|r| json!({"version": r.version, "verified": r.verified, "installedAt": r.installed_at}))
    };
    let update = state.updates.component(ComponentId::SpaceFuel);
    let staged = update.staged.as_ref();
    let snoozes_used = staged
        .and_then(|s| update.snoozes.get(&s.version))
        .map_or(0, |s| s.count);
    if as_json {
        let out = json!({
            "activeSlot": sf.active_slot,
            "activeVersion": sf.active_version(),
            "blue": slot_json(Slot::Blue),
            "green": slot_json(Slot::Green),
            "switch": sf.switch,
            "service": service,
            "health": report,
            "update": staged.map(|s| json!({
                "version": s.version,
                "slot": s.slot,
                "snoozesLeft": config.updates.max_snoozes.saturating_sub(snoozes_used),
            })),
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return Ok(());
    }
    let slot_line = |slot: Slot| match sf.slot(slot) {
        Some(r) => format!(
            "{} ({})",
            r.version,
            if r.verified {
                "verified"
            } else {
                "NOT verified"
            }
        ),
        None => "empty".into(),
    };
    println!(
        "Active slot:  {}",
        sf.active_slot.map_or_else(
            || "none (SpaceFuel not installed)".to_string(),
            |s| s.to_string()
        )
    );
    println!("  blue:       {}", slot_line(Slot::Blue));
    println!("  green:      {}", slot_line(Slot::Green));
    if let Some(sw) = &sf.switch {
        println!(
            "Switch:       to {} {} in progress ({:?}) since {}",
            sw.to, sw.to_version, sw.step, sw.started_at
        );
    }
    let service_line = match &service {
        ServiceState::Running { slot, pid } => format!(
            "running from {slot}{}",
            pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
        ),
        ServiceState::Starting { slot } => format!("starting from {slot}"),
        ServiceState::Stopped => "stopped".into(),
        ServiceState::Failed { reason } => format!("FAILED: {reason}"),
        ServiceState::NotInstalled => "not installed".into(),
    };
    println!("Service:      {service_line}");
    match &report {
        Some(r) => {
            let age = (chrono::Utc::now() - r.at).num_seconds();
            println!(
                "Health:       {} {} {} ({age} s ago){}",
                r.slot,
                r.version,
                if r.ready { "ready" } else { "NOT ready" },
                r.detail
                    .as_ref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            );
            for p in &r.pumps {
                println!("  pump {:>2}:    {}", p.id, pump_text(&p.state));
            }
            if !r.sales.is_empty() {
                println!("  unpaid sales: {}", r.sales.len());
            }
        }
        None => println!("Health:       no report yet"),
    }
    match staged {
        Some(s) => println!(
            "Update:       {} staged in slot {}; snoozes left {}",
            s.version,
            s.slot.map_or_else(|| "?".to_string(), |s| s.to_string()),
            config.updates.max_snoozes.saturating_sub(snoozes_used)
        ),
        None => println!("Update:       none pending"),
    }
    Ok(())
}

fn pump_text(state: &PumpState) -> String {
    match state {
        PumpState::Idle => "idle".into(),
        PumpState::Calling { nozzle } => format!("calling (nozzle {nozzle})"),
        PumpState::Authorised { .. } => "authorised".into(),
        PumpState::Fuelling {
            volume_ml,
            amount_minor,
            ..
        } => format!("fuelling {volume_ml} ml, {amount_minor}"),
        PumpState::Payable => "payable".into(),
        PumpState::Locked => "locked".into(),
        PumpState::Error { reason } => format!("ERROR: {reason}"),
    }
}

pub(crate) async fn use_slot(node: &Node, slot: Slot) -> Result<(), Failure> {
    let record = node.record().await?;
    let config = node.config(record.as_ref())?;
    let site = Site::new(node, &config);
    let switcher = Arc::clone(&site.switcher);
    let version = switcher
        .use_slot(slot)
        .await
        .map_err(|e| Failure::new(EXIT_REFUSED, e.to_string()))?;
    println!("SpaceFuel slot {slot} ({version}) is the active one; it starts with the service.");
    Ok(())
}

/// How long a till waits for SpaceFuel to answer a request.
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Hand a till's request to the worker and report its answer.
pub(crate) async fn request(
    node: &Node,
    till: &str,
    action: crate::requests::Action,
) -> Result<(), Failure> {
    let what = format!("{action:?}");
    let answer = crate::requests::ask(&node.extensions_dir(), till, action, REQUEST_TIMEOUT)
        .await
        .map_err(|e| Failure::new(crate::EXIT_STORAGE, e))?;
    if answer.ok {
        println!("done: {what}");
        Ok(())
    } else {
        Err(Failure::new(
            EXIT_REFUSED,
            format!(
                "SpaceFuel refused {what}: {}",
                answer.error.unwrap_or_else(|| "no reason given".into())
            ),
        ))
    }
}

/// The sales waiting in the controller, from the worker's last report.
pub(crate) async fn sales(node: &Node, as_json: bool) -> Result<(), Failure> {
    use spacepos_spacefuel::HealthProbe;
    let report = spacepos_fs::FileHealthProbe::new(node.extensions_dir())
        .report()
        .await
        .ok_or_else(|| {
            Failure::new(
                crate::EXIT_STORAGE,
                "SpaceFuel has not reported its forecourt yet: is `spacefuel-service run` running?",
            )
        })?;
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report.sales).unwrap_or_default()
        );
        return Ok(());
    }
    if report.sales.is_empty() {
        println!("No fuel sale waits for payment.");
    }
    for s in &report.sales {
        let state = match &s.state {
            spacepos_spacefuel::SaleState::Payable => "payable".to_string(),
            spacepos_spacefuel::SaleState::Locked { by } => format!("locked by {by}"),
            spacepos_spacefuel::SaleState::Cleared => "cleared".to_string(),
        };
        println!(
            "{}  pump {} nozzle {}  {}  {} ml  {} {}  {state}",
            s.transaction_id, s.pump, s.nozzle, s.grade, s.volume_ml, s.amount_minor, s.currency
        );
    }
    Ok(())
}

/// The first installation: verify, extract into blue, make it active.
pub(crate) async fn install_first(
    node: &Node,
    artifact: &std::path::Path,
    version: &str,
    signature: &std::path::Path,
) -> Result<(), Failure> {
    let record = node.record().await?;
    let config = node.config(record.as_ref())?;
    let state = node.load_state().await?;
    if let Some(active) = state.spacefuel.active_slot {
        return Err(Failure::new(
            EXIT_REFUSED,
            format!(
                "SpaceFuel {} is installed (slot {active}): new versions come as updates from the ERP",
                state.spacefuel.active_version().unwrap_or("?")
            ),
        ));
    }
    let keys = spacepos_updates::TrustedKeys::parse(&config.updates.trusted_keys)
        .map_err(|e| Failure::new(crate::EXIT_CONFIG, e))?;
    let read = |p: &std::path::Path| {
        std::fs::read(p).map_err(|e| {
            Failure::new(
                crate::EXIT_STORAGE,
                format!("cannot read {}: {e}", p.display()),
            )
        })
    };
    let bytes = read(artifact)?;
    let sig = String::from_utf8(read(signature)?).map_err(|_| {
        Failure::new(
            EXIT_REFUSED,
            format!(
                "{} is not a minisign signature (not text)",
                signature.display()
            ),
        )
    })?;
    spacepos_updates::verify_bytes(&bytes, &sig, version, &keys).map_err(|e| {
        Failure::new(
            EXIT_REFUSED,
            format!(
                "{} is refused: {e}; nothing was installed",
                artifact.display()
            ),
        )
    })?;
    let site = Site::new(node, &config);
    let slot = site
        .switcher
        .stage(artifact, version)
        .await
        .map_err(|e| Failure::new(EXIT_REFUSED, e.to_string()))?;
    site.switcher
        .use_slot(slot)
        .await
        .map_err(|e| Failure::new(EXIT_REFUSED, e.to_string()))?;
    println!(
        "SpaceFuel {version} is installed in slot {slot} (signature and signed version verified) \
         and active; `spacefuel-service run` starts it."
    );
    Ok(())
}
