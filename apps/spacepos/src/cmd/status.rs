//! `spacepos status`.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use spacepos_auth::jwt::TokenExpectations;
use spacepos_auth::{Onboarding, OnboardingError, SessionStatus, Sessions};
use spacepos_config::{StateOrigin, TerminalRecord};
use spacepos_core::SystemClock;

use crate::cli::StatusArgs;
use crate::exit::CliError;
use crate::node::Node;

/// Short timeouts: `status` must answer quickly when the ERP is down.
const STATUS_TIMEOUTS: (Duration, Duration) = (Duration::from_secs(3), Duration::from_secs(5));

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Status {
    data_dir: String,
    config_file: Option<String>,
    instance_id: String,
    /// `ok`, `created`, `migrated`, `restored-from-backup`, `reset-after-corruption`.
    state: &'static str,
    state_problem: Option<String>,
    pub(crate) terminal: Option<TerminalStatus>,
    erp: ErpStatus,
    staff: StaffStatus,
    spacefuel: SpaceFuelStatus,
    /// The local store: `None` before the node first ran, seeded or queued anything.
    store: Option<StoreStatus>,
    /// Component updates; `None` when this node cannot verify updates (no trusted key).
    updates: Option<Vec<super::updates::UpdateView>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StoreStatus {
    path: String,
    outbox: OutboxStatus,
    datasets: Vec<DatasetStatus>,
    /// What `spacepos run` last recorded (it may not be running now).
    last_send: Option<serde_json::Value>,
    last_ingest: Option<serde_json::Value>,
    bus: Option<serde_json::Value>,
    last_event_applied_at: Option<serde_json::Value>,
    reonboarding_needed: bool,
    /// What the heartbeat of `spacepos run` last recorded.
    presence: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OutboxStatus {
    pending: u64,
    oldest_pending_age_seconds: Option<i64>,
    parked: u64,
    done: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DatasetStatus {
    name: String,
    entities: u64,
    sequence: Option<u64>,
    snapshot_in_progress: bool,
    last_applied_at: Option<DateTime<Utc>>,
}

impl Status {
    /// One line on the ERP's reachability.
    pub(crate) fn erp_summary(&self) -> String {
        match &self.erp {
            ErpStatus::NotChecked { reason } => format!("not checked ({reason})"),
            ErpStatus::Reachable {
                settings_changed: true,
            } => "reachable; it changed this terminal's settings (stored)".into(),
            ErpStatus::Reachable {
                settings_changed: false,
            } => "reachable; settings up to date".into(),
            ErpStatus::Unreachable { error } => format!("UNREACHABLE: {error}"),
            ErpStatus::ReonboardingNeeded { error } => format!("CREDENTIALS REFUSED: {error}"),
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TerminalStatus {
    client_id: String,
    store_number: u32,
    terminal_number: u32,
    company: Option<String>,
    pub(crate) api_endpoint: Option<String>,
    amqp_url: Option<String>,
    pub(crate) report_presence: bool,
    pub(crate) presence_interval_seconds: u32,
    onboarded_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "state"
)]
enum ErpStatus {
    NotChecked { reason: String },
    Reachable { settings_changed: bool },
    Unreachable { error: String },
    ReonboardingNeeded { error: String },
}

#[derive(Debug, Serialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "state"
)]
enum StaffStatus {
    NotOnboarded,
    NobodyLoggedIn,
    LoggedIn {
        store_staff_id: String,
        expires_at: DateTime<Utc>,
    },
    Expired {
        store_staff_id: String,
        expired_at: DateTime<Utc>,
        reason: String,
    },
    Unknown {
        error: String,
    },
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SpaceFuelStatus {
    /// `blue`, `green`, or null (not installed, or unknown after a state reset).
    active_slot: Option<String>,
    active_version: Option<String>,
    needs_rediscovery: bool,
    blue: Option<String>,
    green: Option<String>,
    /// A switch in progress: `"to green 2.2.0 (checking)"`.
    switch: Option<String>,
    /// The service as its supervisor's pid file says (running, stopped, ...).
    service: Option<spacepos_spacefuel::ServiceState>,
    /// The service's last report: version, readiness, pumps, unpaid sales.
    health: Option<spacepos_spacefuel::HealthReport>,
}

/// SpaceFuel as this machine has it: state.json, the slots, the pid file of
/// the service's supervisor and its last health report.
async fn spacefuel_status(
    node: &Node,
    sf: &spacepos_config::SpaceFuelState,
    reset: bool,
) -> SpaceFuelStatus {
    use spacepos_spacefuel::{HealthProbe, ServiceManager};
    let ext = node.data_dir.join("extensions").join("spacefuel");
    let installed = sf.active_slot.is_some() || sf.blue.is_some() || sf.green.is_some();
    let (service, health) = if installed && ext.exists() {
        let slots = Arc::new(spacepos_fs::FsSlots::new(&ext));
        let supervisor = spacepos_windows_scm::ProcessSupervisor::new(
            slots,
            spacepos_windows_scm::SupervisorOptions::default(),
        );
        (
            Some(supervisor.state().await),
            spacepos_fs::FileHealthProbe::new(&ext).report().await,
        )
    } else {
        (None, None)
    };
    let version_of = |r: Option<&spacepos_config::SlotRecord>| r.map(|r| r.version.clone());
    SpaceFuelStatus {
        active_slot: sf.active_slot.map(|s| s.to_string()),
        active_version: sf.active_version().map(str::to_owned),
        needs_rediscovery: reset && sf.active_slot.is_none(),
        blue: version_of(sf.blue.as_ref()),
        green: version_of(sf.green.as_ref()),
        switch: sf
            .switch
            .as_ref()
            .map(|w| format!("to {} {} ({:?})", w.to, w.to_version, w.step).to_lowercase()),
        service,
        health,
    }
}

pub(crate) async fn run(node: &Node, args: StatusArgs) -> Result<(), CliError> {
    let status = collect(node, args.offline).await?;
    if args.json {
        super::print_json(&status)
    } else {
        print_text(&status);
        Ok(())
    }
}

pub(crate) async fn collect(node: &Node, offline: bool) -> Result<Status, CliError> {
    let mut record = node.record().await?;
    // A bad configuration is reported whether or not the terminal is onboarded.
    node.config(record.as_ref())?;
    let loaded = node.load_state().await?;
    let (state, state_problem) = match &loaded.origin {
        StateOrigin::Loaded => ("ok", None),
        StateOrigin::Created => ("created", None),
        StateOrigin::Migrated { from } => {
            ("migrated", Some(format!("migrated from schema {from}")))
        }
        StateOrigin::RestoredFromBackup { problem, .. } => {
            ("restored-from-backup", Some(problem.clone()))
        }
        StateOrigin::ResetAfterCorruption { problem, .. } => {
            ("reset-after-corruption", Some(problem.clone()))
        }
    };
    let spacefuel = spacefuel_status(
        node,
        &loaded.state.spacefuel,
        loaded.state.reset_after_corruption.is_some(),
    )
    .await;

    let mut erp = ErpStatus::NotChecked {
        reason: "not onboarded".into(),
    };
    let mut staff = StaffStatus::NotOnboarded;
    if let Some(rec) = record.clone() {
        let config = node.config(Some(&rec))?;
        let client = Arc::new(node.device_client(&config, &rec, Some(STATUS_TIMEOUTS))?);
        erp = if offline {
            ErpStatus::NotChecked {
                reason: "--offline".into(),
            }
        } else {
            let onboarding =
                Onboarding::new(client.clone(), node.terminal.clone(), Arc::new(SystemClock));
            match onboarding.refresh_settings().await {
                Ok(r) => {
                    let changed = r.changed;
                    record = Some(r.record);
                    ErpStatus::Reachable {
                        settings_changed: changed,
                    }
                }
                Err(OnboardingError::Remote(e)) if e.needs_reonboarding() => {
                    ErpStatus::ReonboardingNeeded {
                        error: e.to_string(),
                    }
                }
                Err(OnboardingError::Remote(e)) => ErpStatus::Unreachable {
                    error: e.to_string(),
                },
                Err(e) => return Err(e.into()),
            }
        };
        let sessions = Sessions::new(
            client,
            node.credentials.clone(),
            Arc::new(SystemClock),
            TokenExpectations::for_store(rec.store_number),
        );
        staff = match sessions.current().await {
            Ok(SessionStatus::None) => StaffStatus::NobodyLoggedIn,
            Ok(SessionStatus::Active(s)) => StaffStatus::LoggedIn {
                store_staff_id: s.store_staff_id,
                expires_at: s.expires_at,
            },
            Ok(SessionStatus::Expired {
                store_staff_id,
                expired_at,
                reason,
            }) => StaffStatus::Expired {
                store_staff_id,
                expired_at,
                reason,
            },
            Err(e) => StaffStatus::Unknown {
                error: e.to_string(),
            },
        };
    }

    let terminal = match &record {
        Some(rec) => Some(terminal_status(node, rec)?),
        None => None,
    };
    let store = store_status(node).await?;
    let updates = match &record {
        Some(rec) if !node.config(Some(rec))?.updates.trusted_keys.is_empty() => {
            super::updates::views(node).await.ok()
        }
        _ => None,
    };
    Ok(Status {
        data_dir: node.data_dir.display().to_string(),
        config_file: node.config_file().map(|f| f.display().to_string()),
        instance_id: loaded.state.instance_id.to_string(),
        state,
        state_problem,
        terminal,
        erp,
        staff,
        spacefuel,
        store,
        updates,
    })
}

async fn store_status(node: &Node) -> Result<Option<StoreStatus>, CliError> {
    use spacepos_config::{ConfigStateStore, keys};
    use spacepos_sync::{LocalStore, Outbox};
    if !node.store_path().exists() {
        return Ok(None);
    }
    let store = node.store().await?;
    let storage =
        |e: &dyn std::fmt::Display| CliError::new(crate::exit::Kind::Storage, e.to_string());
    let stats = store.stats().await.map_err(|e| storage(&e))?;
    let datasets = store
        .checkpoints()
        .await
        .map_err(|e| storage(&e))?
        .into_iter()
        .map(|c| DatasetStatus {
            name: c.dataset,
            entities: c.entities,
            sequence: c.last_sequence,
            snapshot_in_progress: c.snapshot.is_some(),
            last_applied_at: c.last_applied_at,
        })
        .collect();
    let facts = store.all().await.map_err(|e| storage(&e))?;
    Ok(Some(StoreStatus {
        path: node.store_path().display().to_string(),
        outbox: OutboxStatus {
            pending: stats.pending,
            oldest_pending_age_seconds: stats
                .oldest_pending_created_at
                .map(|t| (Utc::now() - t).num_seconds().max(0)),
            parked: stats.parked,
            done: stats.done,
        },
        datasets,
        last_send: facts.get(keys::LAST_SEND).cloned(),
        last_ingest: facts.get(keys::LAST_INGEST).cloned(),
        bus: facts.get(keys::BUS).cloned(),
        last_event_applied_at: facts.get(keys::LAST_EVENT_APPLIED_AT).cloned(),
        reonboarding_needed: facts
            .get(keys::REONBOARDING_NEEDED)
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        presence: facts.get(keys::PRESENCE).cloned(),
    }))
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

fn age(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

fn terminal_status(node: &Node, rec: &TerminalRecord) -> Result<TerminalStatus, CliError> {
    let config = node.config(Some(rec))?;
    Ok(TerminalStatus {
        client_id: rec.client_id.clone(),
        store_number: rec.store_number,
        terminal_number: rec.terminal_number,
        company: rec
            .company_information
            .as_ref()
            .and_then(|c| c.name.clone()),
        api_endpoint: config.node.api_endpoint.as_ref().map(|u| u.to_string()),
        amqp_url: config.node.amqp_url.as_ref().map(|u| u.redacted()),
        report_presence: config.terminal.report_presence,
        presence_interval_seconds: config.terminal.presence_interval_seconds,
        onboarded_at: rec.onboarded_at,
    })
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
                row(&v.component, &super::updates::describe(v));
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
