//! What a node knows about itself, collected for `spacepos status` and the desktop app's status screen.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use spacepos_auth::jwt::TokenExpectations;
use spacepos_auth::{Onboarding, OnboardingError, SessionStatus, Sessions};
use spacepos_config::{StateOrigin, TerminalRecord};
use spacepos_core::SystemClock;
use spacepos_sqlite::SqliteStore;

use crate::error::NodeError;
use crate::node::Node;

/// Short timeouts: `status` must answer quickly when the ERP is down.
const STATUS_TIMEOUTS: (Duration, Duration) = (Duration::from_secs(3), Duration::from_secs(5));

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    pub data_dir: String,
    pub config_file: Option<String>,
    pub instance_id: String,
    /// `ok`, `created`, `migrated`, `restored-from-backup`, `reset-after-corruption`.
    pub state: &'static str,
    pub state_problem: Option<String>,
    pub terminal: Option<TerminalStatus>,
    pub erp: ErpStatus,
    pub staff: StaffStatus,
    pub spacefuel: SpaceFuelStatus,
    /// The local store: `None` before the node first ran, seeded or queued anything.
    pub store: Option<StoreStatus>,
    /// Component updates; `None` when this node cannot verify updates (no trusted key).
    pub updates: Option<Vec<crate::updates::UpdateView>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreStatus {
    pub path: String,
    pub outbox: OutboxStatus,
    pub datasets: Vec<DatasetStatus>,
    /// What `spacepos run` last recorded (it may not be running now).
    pub last_send: Option<serde_json::Value>,
    pub last_ingest: Option<serde_json::Value>,
    pub bus: Option<serde_json::Value>,
    pub last_event_applied_at: Option<serde_json::Value>,
    pub reonboarding_needed: bool,
    /// What the heartbeat of `spacepos run` last recorded.
    pub presence: Option<serde_json::Value>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxStatus {
    pub pending: u64,
    pub oldest_pending_age_seconds: Option<i64>,
    pub parked: u64,
    pub done: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetStatus {
    pub name: String,
    pub entities: u64,
    pub sequence: Option<u64>,
    pub snapshot_in_progress: bool,
    pub last_applied_at: Option<DateTime<Utc>>,
}

impl Status {
    /// One line on the ERP's reachability.
    pub fn erp_summary(&self) -> String {
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
pub struct TerminalStatus {
    pub client_id: String,
    pub store_number: u32,
    pub terminal_number: u32,
    pub company: Option<String>,
    pub api_endpoint: Option<String>,
    pub amqp_url: Option<String>,
    pub report_presence: bool,
    pub presence_interval_seconds: u32,
    pub onboarded_at: DateTime<Utc>,
}

#[derive(Debug, Serialize)]
#[serde(
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    tag = "state"
)]
pub enum ErpStatus {
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
pub enum StaffStatus {
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
pub struct SpaceFuelStatus {
    /// `blue`, `green`, or null (not installed, or unknown after a state reset).
    pub active_slot: Option<String>,
    pub active_version: Option<String>,
    pub needs_rediscovery: bool,
    pub blue: Option<String>,
    pub green: Option<String>,
    /// A switch in progress: `"to green 2.2.0 (checking)"`.
    pub switch: Option<String>,
    /// The service as its supervisor's pid file says (running, stopped, ...).
    pub service: Option<spacepos_spacefuel::ServiceState>,
    /// The service's last report: version, readiness, pumps, unpaid sales.
    pub health: Option<spacepos_spacefuel::HealthReport>,
}

/// SpaceFuel as this machine has it: state.json, the slots, the pid file of
/// the service's supervisor and its last health report.
pub async fn spacefuel_status(
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

/// Everything `spacepos status` shows. `offline`: do not ask the ERP (its
/// state is then `NotChecked`).
pub async fn collect(node: &Node, offline: bool) -> Result<Status, NodeError> {
    collect_with(node, offline, None, None).await
}

/// [`collect`], reading the local store through `store` and the updates
/// through `updates` when the caller has them open (the desktop app, every
/// few seconds) instead of opening them again.
pub async fn collect_with(
    node: &Node,
    offline: bool,
    store: Option<&SqliteStore>,
    updates: Option<&spacepos_updates::Updates>,
) -> Result<Status, NodeError> {
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
    let store = store_status(node, store).await?;
    let updates = match (&record, updates) {
        (Some(_), Some(live)) => live
            .list()
            .await
            .ok()
            .map(|l| l.iter().map(crate::updates::UpdateView::from).collect()),
        (Some(rec), None) if !node.config(Some(rec))?.updates.trusted_keys.is_empty() => {
            crate::updates::views(node).await.ok()
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

pub async fn store_status(
    node: &Node,
    open: Option<&SqliteStore>,
) -> Result<Option<StoreStatus>, NodeError> {
    use spacepos_config::{ConfigStateStore, keys};
    use spacepos_sync::{LocalStore, Outbox};
    if !node.store_path().exists() {
        return Ok(None);
    }
    let opened;
    let store = match open {
        Some(s) => s,
        None => {
            opened = node.store().await?;
            &opened
        }
    };
    let storage =
        |e: &dyn std::fmt::Display| NodeError::new(crate::error::Kind::Storage, e.to_string());
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

pub fn age(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

pub fn terminal_status(node: &Node, rec: &TerminalRecord) -> Result<TerminalStatus, NodeError> {
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
