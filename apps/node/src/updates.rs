//! The update service of a node as the apps compose it, and the views of it
//! that `spacepos updates` and the desktop app show.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Serialize;
use spacepos_amqp::WireTrackingEncoder;
use spacepos_config::{Config, ConfigStateStore, TerminalRecord};
use spacepos_core::{ComponentId, SystemClock};
use spacepos_erp_http::ErpHttpClient;
use spacepos_fs::FileArtifactStore;
use spacepos_manifest::LoopbackManifestServer;
use spacepos_sqlite::SqliteStore;
use spacepos_updates::{
    ComponentInstaller, ComponentView, InstallError, InstallOutcome, ReleaseOutcome, SafePoint,
    StagedRelease, TAURI_WINDOWS_X64_MSI, UpdatePorts, UpdateSettings, Updates,
};

use crate::error::{Kind, NodeError};
use crate::node::Node;
use crate::platform::VERSION;

/// The `config_state` key where the till's software says a sale is open: a
/// JSON string (the reason) while busy, `null` when not.
pub const SAFE_POINT_KEY: &str = "till.busy";

/// The safe point of a headless node: whatever the till's software last said
/// through `spacepos safe-point busy|clear`.
#[derive(Debug)]
pub struct ConfigStateSafePoint(pub Arc<SqliteStore>);

#[async_trait]
impl SafePoint for ConfigStateSafePoint {
    async fn busy(&self) -> Option<String> {
        match self.0.get(SAFE_POINT_KEY).await {
            Ok(Some(serde_json::Value::String(reason))) => Some(reason),
            Ok(_) => None,
            // Cannot tell: treat as busy rather than interrupt a sale.
            Err(e) => Some(format!("cannot read the till's state ({e})")),
        }
    }
}

/// This headless node stages SpacePOS updates for the desktop app, which
/// installs them with Tauri's updater; it installs nothing itself.
#[derive(Debug)]
pub struct DesktopInstalls;

#[async_trait]
impl ComponentInstaller for DesktopInstalls {
    async fn install(&self, staged: &StagedRelease) -> Result<InstallOutcome, InstallError> {
        Err(InstallError::Failed(format!(
            "{} {} is installed by the SpacePOS desktop app, not by this command-line node",
            staged.component, staged.version
        )))
    }
}

/// The message when updates cannot run because no key is trusted.
pub const NO_TRUSTED_KEYS: &str = "updates.trusted_keys is empty: this node cannot verify update signatures, \
     so it does not look for updates; set the ERP's minisign public key(s) (see docs/configuration.md)";

/// The versions this node updates: SpacePOS where the till runs.
/// SpaceFuel's updates are checked, staged and applied by the SpaceFuel
/// service (it knows when the forecourt is quiet); this node shows them from
/// state.json and may snooze them, but never stages them itself.
fn installed(config: &Config) -> BTreeMap<ComponentId, String> {
    let mut installed = BTreeMap::new();
    if config.node.features.till {
        installed.insert(ComponentId::SpacePos, VERSION.to_owned());
    }
    installed
}

/// The update service, or `None` when no key is trusted ([`NO_TRUSTED_KEYS`]
/// says why). `installer` installs SpacePOS; without one, [`DesktopInstalls`]
/// refuses (a headless node stages for the desktop app).
pub async fn service(
    node: &Node,
    config: &Config,
    record: &TerminalRecord,
    client: Arc<ErpHttpClient>,
    store: Arc<SqliteStore>,
    installer: Option<Arc<dyn ComponentInstaller>>,
) -> Result<Option<Updates>, NodeError> {
    let trusted_keys = config.updates.trusted_keys.clone();
    if trusted_keys.is_empty() {
        return Ok(None);
    }
    let settings = UpdateSettings {
        check_interval: config.updates.check_interval,
        snooze: config.updates.snooze,
        max_snoozes: config.updates.max_snoozes,
        trusted_keys,
        installed: installed(config),
        terminal: record.identity(),
        safe_point_poll: Duration::from_secs(2),
        chunk_size: 1024 * 1024,
        manifest_platform: TAURI_WINDOWS_X64_MSI.to_owned(),
    };
    let ports = UpdatePorts {
        releases: client,
        artifacts: Arc::new(FileArtifactStore::new(&node.data_dir)),
        safe_point: Arc::new(ConfigStateSafePoint(store.clone())),
        installer: installer.unwrap_or_else(|| Arc::new(DesktopInstalls)),
        encoder: Arc::new(WireTrackingEncoder),
        manifest: Arc::new(LoopbackManifestServer::new()),
        state: node.state.clone(),
        outbox: store,
        clock: Arc::new(SystemClock),
    };
    Updates::new(ports, settings)
        .map(Some)
        .map_err(|e| NodeError::new(Kind::Config, e.to_string()))
}

// ---- what the CLI and the desktop app show and do -------------------------

/// The update service of an onboarded node, or why it has none.
pub async fn for_node(node: &Node) -> Result<Updates, NodeError> {
    let record = node.require_record().await?;
    let config = node.config(Some(&record))?;
    let client = Arc::new(node.device_client(&config, &record, None)?);
    let store = Arc::new(node.store().await?);
    service(node, &config, &record, client, store, None)
        .await?
        .ok_or_else(|| NodeError::new(Kind::Config, NO_TRUSTED_KEYS))
}

/// An update failure as a node error (the ERP or the artifact store failed).
pub fn failed(e: spacepos_updates::UpdatesError) -> NodeError {
    NodeError::new(Kind::Unreachable, e.to_string())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OutcomeView {
    pub component: String,
    pub version: Option<String>,
    /// `staged`, `already-staged`, `up-to-date`, `downgrade-ignored`, `not-installed`,
    /// `unknown-component`, `previously-rejected`, `rejected`, `busy`, `download-incomplete`.
    pub result: &'static str,
    pub detail: Option<String>,
}

/// The outcome of one release of a check, as scripts and the UI read it.
pub fn outcome_view(o: &ReleaseOutcome) -> OutcomeView {
    let v = |component: &ComponentId, version: Option<&String>, result, detail: Option<String>| {
        OutcomeView {
            component: component.to_string(),
            version: version.cloned(),
            result,
            detail,
        }
    };
    match o {
        ReleaseOutcome::Staged { component, version } => {
            v(component, Some(version), "staged", None)
        }
        ReleaseOutcome::AlreadyStaged { component, version } => {
            v(component, Some(version), "already-staged", None)
        }
        ReleaseOutcome::UpToDate { component, version } => {
            v(component, Some(version), "up-to-date", None)
        }
        ReleaseOutcome::Downgrade {
            component,
            version,
            installed,
        } => v(
            component,
            Some(version),
            "downgrade-ignored",
            Some(format!("{installed} is installed")),
        ),
        ReleaseOutcome::NotInstalled { component } => v(component, None, "not-installed", None),
        ReleaseOutcome::UnknownComponent { name } => OutcomeView {
            component: name.clone(),
            version: None,
            result: "unknown-component",
            detail: None,
        },
        ReleaseOutcome::PreviouslyRejected { component, version } => {
            v(component, Some(version), "previously-rejected", None)
        }
        ReleaseOutcome::Rejected {
            component,
            version,
            reason,
        } => v(component, Some(version), "rejected", Some(reason.clone())),
        ReleaseOutcome::Busy { component } => v(
            component,
            None,
            "busy",
            Some("an installation is in progress".into()),
        ),
        ReleaseOutcome::DownloadIncomplete {
            component,
            version,
            downloaded,
            error,
        } => v(
            component,
            Some(version),
            "download-incomplete",
            Some(format!(
                "{downloaded} bytes kept, resumed at the next check: {error}"
            )),
        ),
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateView {
    pub component: String,
    pub installed: Option<String>,
    pub offered: Option<String>,
    pub staged: Option<String>,
    pub staged_at: Option<DateTime<Utc>>,
    pub notes: Option<String>,
    pub snoozes_left: u32,
    pub snoozed_until: Option<DateTime<Utc>>,
    pub due_at: Option<DateTime<Utc>>,
    pub waiting_for: Option<String>,
    pub applying: Option<String>,
    pub last_rejected: Option<String>,
}

impl From<&ComponentView> for UpdateView {
    fn from(v: &ComponentView) -> Self {
        UpdateView {
            component: v.component.to_string(),
            installed: v.installed.clone(),
            offered: v.offered.clone(),
            staged: v.staged.as_ref().map(|s| s.version.clone()),
            staged_at: v.staged.as_ref().map(|s| s.staged_at),
            notes: v.staged.as_ref().and_then(|s| s.notes.clone()),
            snoozes_left: v.snoozes_left,
            snoozed_until: v.snoozed_until,
            due_at: v.due_at,
            waiting_for: v.waiting_for.clone(),
            applying: v.applying.clone(),
            last_rejected: v
                .last_rejected
                .as_ref()
                .map(|(version, reason)| format!("{version}: {reason}")),
        }
    }
}

/// The update views of this node, for `updates list` and `status`.
pub async fn views(node: &Node) -> Result<Vec<UpdateView>, NodeError> {
    let updates = for_node(node).await?;
    Ok(updates
        .list()
        .await
        .map_err(failed)?
        .iter()
        .map(UpdateView::from)
        .collect())
}

/// One line per component with something to say.
pub fn describe(v: &UpdateView) -> String {
    let Some(installed) = &v.installed else {
        return "not installed on this node".to_owned();
    };
    let mut text = format!("installed {installed}");
    match (&v.staged, &v.applying) {
        (_, Some(a)) => text.push_str(&format!("; installing {a}")),
        (Some(s), None) => {
            text.push_str(&format!("; {s} staged, {}", snoozes(v.snoozes_left)));
            if let Some(until) = v.snoozed_until {
                text.push_str(&format!(", snoozed until {}", until.format("%H:%M UTC")));
            }
            if let Some(w) = &v.waiting_for {
                text.push_str(&format!(", waiting for a safe moment ({w})"));
            }
        }
        (None, None) => {
            if let Some(o) = &v.offered {
                text.push_str(&format!("; {o} offered, not staged"));
            }
        }
    }
    if let Some(r) = &v.last_rejected {
        text.push_str(&format!("; refused {r}"));
    }
    text
}

/// "2 snoozes left".
pub fn snoozes(left: u32) -> String {
    match left {
        0 => "no snooze left".to_owned(),
        1 => "1 snooze left".to_owned(),
        n => format!("{n} snoozes left"),
    }
}
