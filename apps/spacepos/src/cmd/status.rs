//! `spacepos status`.

use chrono::{DateTime, Utc};
use spacepos_node::status::{StaffStatus, Status, age};
use spacepos_node::{Node, NodeError};

use crate::cli::StatusArgs;

pub(crate) async fn run(node: &Node, args: StatusArgs) -> Result<(), NodeError> {
    let status = spacepos_node::status::collect(node, args.offline).await?;
    if args.json {
        super::print_json(&status)
    } else {
        print_text(&status);
        Ok(())
    }
}

/// "on, every 300 s; last beat 10:02:03 UTC, next 10:07:01 UTC" from the heartbeat's record.
fn heartbeat(p: Option<&serde_json::Value>) -> String {
    let Some(p) = p else {
        return "no beat sent yet".to_owned();
    };
    let when = |k: &str| {
        p[k].as_str()
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc).format("%H:%M:%S UTC").to_string())
    };
    let on = if p["on"].as_bool() == Some(true) {
        "on"
    } else {
        "off"
    };
    let mut text = format!(
        "{on}, every {} s",
        p["intervalSeconds"].as_u64().unwrap_or(0)
    );
    text.push_str(&format!(
        "; last beat {}",
        when("lastBeatAt").unwrap_or_else(|| "none yet".into())
    ));
    if let Some(next) = when("nextBeatAt") {
        text.push_str(&format!(", next {next}"));
    }
    if let Some(e) = p["error"].as_str() {
        text.push_str(&format!(" (last beat failed: {e})"));
    }
    text
}

/// "5 s ago (ok)" / `"2 min ago: <error>"` from a recorded loop outcome.
fn outcome(v: &serde_json::Value) -> String {
    let at = v["at"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc));
    let when = at
        .map(|t| format!("{} ago", age((Utc::now() - t).num_seconds())))
        .unwrap_or_else(|| "?".into());
    match v["error"].as_str() {
        Some(e) => format!("{when}: {e}"),
        None => format!("{when} (ok)"),
    }
}

fn print_text(s: &Status) {
    let row = |k: &str, v: &str| println!("  {k:<16} {v}");
    println!("Node");
    row("data directory", &s.data_dir);
    row("config file", s.config_file.as_deref().unwrap_or("none"));
    row("instance id", &s.instance_id);
    match &s.state_problem {
        Some(p) => row("state.json", &format!("{} ({p})", s.state)),
        None => row("state.json", s.state),
    }
    println!("Terminal");
    match &s.terminal {
        None => row(
            "onboarded",
            "no: run `spacepos onboard --code <CODE> --api <URL>`",
        ),
        Some(t) => {
            row(
                "onboarded",
                &format!(
                    "{} (store {}, terminal {})",
                    t.client_id, t.store_number, t.terminal_number
                ),
            );
            if let Some(c) = &t.company {
                row("company", c);
            }
            row("ERP", t.api_endpoint.as_deref().unwrap_or("not set"));
            row("broker", t.amqp_url.as_deref().unwrap_or("not set"));
            let presence = if t.report_presence {
                format!("on, every {} s", t.presence_interval_seconds)
            } else {
                "off".to_owned()
            };
            row("presence", &presence);
        }
    }
    row("ERP status", &s.erp_summary());
    println!("Staff");
    let staff = match &s.staff {
        StaffStatus::NotOnboarded => "-".to_owned(),
        StaffStatus::NobodyLoggedIn => "nobody logged in".to_owned(),
        StaffStatus::LoggedIn {
            store_staff_id,
            expires_at,
        } => {
            format!(
                "{store_staff_id}, session valid until {}",
                expires_at.format("%Y-%m-%d %H:%M UTC")
            )
        }
        StaffStatus::Expired {
            store_staff_id,
            expired_at,
            reason,
        } => format!(
            "{store_staff_id}: session expired at {} and could not be refreshed ({reason})",
            expired_at.format("%Y-%m-%d %H:%M UTC")
        ),
        StaffStatus::Unknown { error } => format!("unknown: {error}"),
    };
    row("session", &staff);
    println!("SpaceFuel");
    let slot = match (&s.spacefuel.active_slot, &s.spacefuel.active_version) {
        (Some(slot), Some(v)) => format!("{slot} ({v})"),
        (Some(slot), None) => slot.clone(),
        (None, _) if s.spacefuel.needs_rediscovery => {
            "unknown: state was reset; SpaceFuel will rediscover it".into()
        }
        (None, _) => "not installed".into(),
    };
    row("active slot", &slot);
    let sf = &s.spacefuel;
    if sf.blue.is_some() || sf.green.is_some() {
        row(
            "slots",
            &format!(
                "blue {}, green {}",
                sf.blue.as_deref().unwrap_or("empty"),
                sf.green.as_deref().unwrap_or("empty")
            ),
        );
    }
    if let Some(w) = &sf.switch {
        row("switch", &format!("in progress: {w}"));
    }
    if let Some(service) = &sf.service {
        use spacepos_spacefuel::ServiceState as S;
        let text = match service {
            S::Running { slot, pid } => format!(
                "running from {slot}{}",
                pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
            ),
            S::Starting { slot } => format!("starting from {slot}"),
            S::Stopped => "stopped".into(),
            S::Failed { reason } => format!("FAILED: {reason}"),
            S::NotInstalled => "not installed".into(),
        };
        row("service", &text);
    }
    if let Some(h) = &sf.health {
        let seen = (Utc::now() - h.at).num_seconds();
        row(
            "health",
            &format!(
                "{} {} {} ({}){}",
                h.slot,
                h.version,
                if h.ready { "ready" } else { "NOT READY" },
                age(seen),
                h.detail
                    .as_ref()
                    .map(|d| format!(": {d}"))
                    .unwrap_or_default()
            ),
        );
        for p in &h.pumps {
            row(&format!("pump {}", p.id), &pump_text(&p.state));
        }
        if !h.sales.is_empty() {
            row("unpaid sales", &h.sales.len().to_string());
        }
    }
    println!("Updates");
    match &s.updates {
        None => row(
            "updates",
            "not checked: no trusted update key configured (updates.trusted_keys)",
        ),
        Some(views) => {
            for v in views {
                row(&v.component, &spacepos_node::updates::describe(v));
            }
        }
    }
    println!("Sync");
    let Some(st) = &s.store else {
        row(
            "local store",
            "none yet: `spacepos run` or `spacepos seed` creates it",
        );
        return;
    };
    if st.reonboarding_needed {
        row(
            "ERP",
            "CREDENTIALS REFUSED during the last run: re-onboarding needed",
        );
    }
    let oldest = st
        .outbox
        .oldest_pending_age_seconds
        .map(|s| format!(", oldest {}", age(s)))
        .unwrap_or_default();
    row(
        "queue",
        &format!(
            "{} pending{oldest}; {} parked; {} done",
            st.outbox.pending, st.outbox.parked, st.outbox.done
        ),
    );
    if st.outbox.parked > 0 {
        row(
            "",
            "parked operations need a look: `spacepos ops list --state parked`",
        );
    }
    row(
        "last push",
        &st.last_send
            .as_ref()
            .map(outcome)
            .unwrap_or_else(|| "never".into()),
    );
    row(
        "last pull",
        &st.last_ingest
            .as_ref()
            .map(outcome)
            .unwrap_or_else(|| "never".into()),
    );
    let bus = match &st.bus {
        Some(b) if b["connected"].as_bool() == Some(true) => "connected".to_owned(),
        Some(b) => format!("not connected: {}", b["error"].as_str().unwrap_or("?")),
        None => "never connected".to_owned(),
    };
    row("event bus", &bus);
    row(
        "last event",
        st.last_event_applied_at
            .as_ref()
            .and_then(|v| v.as_str())
            .unwrap_or("none applied yet"),
    );
    row("heartbeat", &heartbeat(st.presence.as_ref()));
    for d in &st.datasets {
        let seq = d
            .sequence
            .map(|s| format!("sequence {s}"))
            .unwrap_or_else(|| "not seeded".into());
        let snap = if d.snapshot_in_progress {
            ", snapshot in progress"
        } else {
            ""
        };
        println!("    {:<16} {:>9} entities, {seq}{snap}", d.name, d.entities);
    }
}

fn pump_text(state: &spacepos_spacefuel::PumpState) -> String {
    use spacepos_spacefuel::PumpState as P;
    match state {
        P::Idle => "idle".into(),
        P::Calling { nozzle } => format!("calling (nozzle {nozzle})"),
        P::Authorised { .. } => "authorised".into(),
        P::Fuelling {
            volume_ml,
            amount_minor,
            ..
        } => format!("fuelling: {volume_ml} ml, {amount_minor} so far"),
        P::Payable => "payable".into(),
        P::Locked => "locked".into(),
        P::Error { reason } => format!("ERROR: {reason}"),
    }
}
