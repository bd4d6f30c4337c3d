//! SpaceFuel as a component of the updates domain: staging extracts into the
//! inactive slot, installing is the blue/green switch, the safe point is a
//! quiet forecourt.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use spacepos_updates::{
    ComponentInstaller, InstallError, InstallOutcome, SafePoint, StagedRelease,
};

use crate::forecourt::ForecourtController;
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

/// The forecourt's answer to "may SpaceFuel be switched now?": not while a
/// pump is authorised or fuelling, nor while a sale waits in the controller's
/// buffer (payable or locked by a till), nor when the controller cannot say.
pub struct ForecourtSafePoint {
    controller: Arc<dyn ForecourtController>,
}

impl std::fmt::Debug for ForecourtSafePoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForecourtSafePoint").finish_non_exhaustive()
    }
}

impl ForecourtSafePoint {
    pub fn new(controller: Arc<dyn ForecourtController>) -> Self {
        ForecourtSafePoint { controller }
    }
}

#[async_trait]
impl SafePoint for ForecourtSafePoint {
    async fn busy(&self) -> Option<String> {
        let pumps = match self.controller.fp_states().await {
            Ok(p) => p,
            Err(e) => {
                return Some(format!(
                    "the fuel controller cannot say whether a pump is busy ({e})"
                ));
            }
        };
        if let Some(p) = pumps.iter().find(|p| p.state.is_busy()) {
            return Some(format!("pump {} is authorised or fuelling", p.id));
        }
        match self.controller.fuel_sale_trxs().await {
            Ok(sales) if !sales.is_empty() => Some(format!(
                "{} fuel sale(s) wait for payment (pump {})",
                sales.len(),
                sales[0].pump
            )),
            Ok(_) => None,
            Err(e) => Some(format!("the fuel controller cannot list its sales ({e})")),
        }
    }
}
