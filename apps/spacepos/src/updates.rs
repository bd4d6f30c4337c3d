//! The update service of this node, as the CLI composes it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use spacepos_amqp::WireTrackingEncoder;
use spacepos_config::{Config, ConfigStateStore, TerminalRecord};
use spacepos_core::{ComponentId, SystemClock};
use spacepos_erp_http::ErpHttpClient;
use spacepos_fs::FileArtifactStore;
use spacepos_manifest::LoopbackManifestServer;
use spacepos_sqlite::SqliteStore;
use spacepos_updates::{
    ComponentInstaller, InstallError, InstallOutcome, SafePoint, StagedRelease,
    TAURI_WINDOWS_X64_MSI, UpdatePorts, UpdateSettings, Updates,
};

use crate::exit::{CliError, Kind};
use crate::node::Node;
use crate::platform::VERSION;

/// The `config_state` key where the till's software says a sale is open: a
/// JSON string (the reason) while busy, `null` when not.
pub(crate) const SAFE_POINT_KEY: &str = "till.busy";

/// The safe point of a headless node: whatever the till's software last said
/// through `spacepos safe-point busy|clear`.
pub(crate) struct ConfigStateSafePoint(pub(crate) Arc<SqliteStore>);

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
pub(crate) struct DesktopInstalls;

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
pub(crate) const NO_TRUSTED_KEYS: &str = "updates.trusted_keys is empty: this node cannot verify update signatures, \
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

/// The update service, or `None` with the reason when no key is trusted.
pub(crate) async fn service(
    node: &Node,
    config: &Config,
    record: &TerminalRecord,
    client: Arc<ErpHttpClient>,
    store: Arc<SqliteStore>,
    trusted_keys: Vec<String>,
) -> Result<Option<Updates>, CliError> {
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
        installer: Arc::new(DesktopInstalls),
        encoder: Arc::new(WireTrackingEncoder),
        manifest: Arc::new(LoopbackManifestServer::new()),
        state: node.state.clone(),
        outbox: store,
        clock: Arc::new(SystemClock),
    };
    Updates::new(ports, settings)
        .map(Some)
        .map_err(|e| CliError::new(Kind::Config, e.to_string()))
}
