//! SpaceFuel as a component of the updates domain: staging extracts into the
//! inactive slot, installing is the blue/green switch, the safe point is a
//! quiet forecourt.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use spacepos_updates::{
    ComponentInstaller, InstallError, InstallOutcome, SafePoint, StagedRelease,
};

use std::time::Duration;

use spacepos_core::Clock;

use crate::forecourt::{FuelSaleTrx, Pump};
use crate::slots::{HealthProbe, ServiceManager, ServiceState};
use crate::switch::{SwitchError, SwitchOutcome, Switcher};

/// [`ComponentInstaller`] of the SpaceFuel component.
#[derive(Debug)]
pub struct SpaceFuelInstaller {
    switcher: Arc<Switcher>,
}

impl SpaceFuelInstaller {
    pub fn new(switcher: Arc<Switcher>) -> Self {
        SpaceFuelInstaller { switcher }
    }
}

fn install_error(e: SwitchError) -> InstallError {
    match e {
        SwitchError::Refused(reason) => InstallError::Failed(reason),
        other => InstallError::Backend(Box::new(other)),
    }
}

#[async_trait]
impl ComponentInstaller for SpaceFuelInstaller {
    async fn prepare(&self, staged: &StagedRelease) -> Result<(), InstallError> {
        self.switcher
            .stage(Path::new(&staged.path), &staged.version)
            .await
            .map(|_| ())
            .map_err(install_error)
    }

    async fn install(&self, staged: &StagedRelease) -> Result<InstallOutcome, InstallError> {
        match self.switcher.switch(&staged.version).await {
            Ok(SwitchOutcome::Applied { .. }) => Ok(InstallOutcome::Applied),
            Ok(SwitchOutcome::RolledBack { error, .. }) => Ok(InstallOutcome::RolledBack { error }),
            // Nothing was switched: the running version still runs.
            Err(e) => Err(InstallError::Failed(e.to_string())),
        }
    }
}

/// Why the forecourt is not quiet, if it is not: a pump authorised or
/// fuelling, or a sale waiting in the controller's buffer (payable or locked
/// by a till).
pub fn forecourt_busy(pumps: &[Pump], sales: &[FuelSaleTrx]) -> Option<String> {
    if let Some(p) = pumps.iter().find(|p| p.state.is_busy()) {
        return Some(format!("pump {} is authorised or fuelling", p.id));
    }
    sales.first().map(|s| {
        format!(
            "{} fuel sale(s) wait to be paid and cleared (pump {})",
            sales.len(),
            s.pump
        )
    })
}

/// The forecourt's answer to "may SpaceFuel be switched now?", from the
/// running service's own report ([`crate::HealthReport`]): busy per
/// [`forecourt_busy`], or when a running service has not reported for
/// [`REPORT_STALE_AFTER`] (it cannot say). A service that does not run
/// cannot have a pump fuelling under its control: that is quiet.
pub struct ForecourtSafePoint {
    health: Arc<dyn HealthProbe>,
    service: Arc<dyn ServiceManager>,
    clock: Arc<dyn Clock>,
}

/// A report older than this does not count.
pub const REPORT_STALE_AFTER: Duration = Duration::from_secs(10);

impl std::fmt::Debug for ForecourtSafePoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForecourtSafePoint").finish_non_exhaustive()
    }
}

impl ForecourtSafePoint {
    pub fn new(
        health: Arc<dyn HealthProbe>,
        service: Arc<dyn ServiceManager>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        ForecourtSafePoint {
            health,
            service,
            clock,
        }
    }
}

#[async_trait]
impl SafePoint for ForecourtSafePoint {
    async fn busy(&self) -> Option<String> {
        if !matches!(
            self.service.state().await,
            ServiceState::Running { .. } | ServiceState::Starting { .. }
        ) {
            return None;
        }
        let Some(report) = self.health.report().await else {
            return Some("SpaceFuel has not reported its forecourt yet".into());
        };
        let age = (self.clock.now() - report.at).to_std().unwrap_or_default();
        if age > REPORT_STALE_AFTER {
            return Some(format!(
                "SpaceFuel has not reported its forecourt for {} s",
                age.as_secs()
            ));
        }
        if !report.ready {
            return Some(format!(
                "the fuel controller cannot say whether a pump is busy ({})",
                report.detail.as_deref().unwrap_or("not ready")
            ));
        }
        forecourt_busy(&report.pumps, &report.sales)
    }
}
