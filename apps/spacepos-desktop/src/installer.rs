//! SpacePOS installs itself: the update service's `ComponentInstaller`
//! port, implemented over Tauri's updater ([`crate::updater::SelfUpdate`]).
//!
//! Called by `spacepos-updates` at a safe point with "applying" already
//! recorded: it serves the staged release's manifest once on loopback, lets
//! the updater fetch and verify the package (a trusted key, the signed
//! version) with the device headers, and starts the installer. On Windows
//! the MSI replaces the app, which exits; the outcome is settled at the next
//! start (`Updates::reconcile_at_start`), which writes Applied.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use spacepos_node::Node;
use spacepos_updates::{ComponentInstaller, InstallError, InstallOutcome, StagedRelease, Updates};
use tauri::{AppHandle, Runtime};

use crate::updater::{DeviceHeaders, SelfUpdate};

/// The app's own installer. `app` and `service` are filled in once they
/// exist: the app after it is built, the update service after this
/// installer was handed to it.
pub struct TauriInstaller<R: Runtime> {
    pub app: Arc<OnceLock<AppHandle<R>>>,
    pub node: Node,
    pub service: Arc<OnceLock<Updates>>,
}

impl<R: Runtime> std::fmt::Debug for TauriInstaller<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TauriInstaller")
    }
}

fn failed(e: impl std::fmt::Display) -> InstallError {
    InstallError::Failed(e.to_string())
}

#[async_trait]
impl<R: Runtime> ComponentInstaller for TauriInstaller<R> {
    async fn install(&self, staged: &StagedRelease) -> Result<InstallOutcome, InstallError> {
        let app = self
            .app
            .get()
            .ok_or_else(|| failed("the app is not ready yet"))?;
        let updates = self
            .service
            .get()
            .ok_or_else(|| failed("the update service is not ready yet"))?;
        let record = self
            .node
            .record()
            .await
            .map_err(failed)?
            .ok_or_else(|| failed("this till is not onboarded"))?;
        let config = self.node.config(Some(&record)).map_err(failed)?;
        let erp = config
            .node
            .api_endpoint
            .clone()
            .ok_or_else(|| failed("no ERP address is configured"))?;
        let served = updates.serve_manifest().await.map_err(failed)?;
        let device = DeviceHeaders {
            erp,
            credentials: record.credentials(),
            terminal: record.identity(),
        };
        let update = SelfUpdate::new(&served, device, &config.updates.trusted_keys)
            .map_err(failed)?
            .with_target(updates.settings().manifest_platform.clone())
            .check(app)
            .await
            .map_err(failed)?
            .ok_or_else(|| {
                failed(format!(
                    "the updater found no version newer than this one in the manifest of {} {}",
                    staged.component, staged.version
                ))
            })?;
        update
            .download_and_install(|_, _| {}, || {})
            .await
            .map_err(failed)?;
        Ok(InstallOutcome::RestartPending)
    }
}
