//! The runtime's handler of consumed events other than dataset changes.

use std::sync::Arc;

use async_trait::async_trait;
use spacepos_config::{ConfigStateStore, keys};
use spacepos_core::Clock;
use spacepos_presence::PresenceSettingsHandler;
use spacepos_sync::{BusEvent, BusEventHandler, HandleError};
use tokio::sync::mpsc;
use tracing::{debug, warn};

/// Routes presence settings to presence and release announcements to the
/// update checker (a nudge: "check now").
pub(crate) struct RuntimeEvents {
    pub(crate) presence: Option<Arc<PresenceSettingsHandler>>,
    pub(crate) releases: Option<mpsc::Sender<()>>,
    /// Where the announcement is recorded for the node's other processes.
    pub(crate) config_state: Arc<dyn ConfigStateStore>,
    pub(crate) clock: Arc<dyn Clock>,
}

#[async_trait]
impl BusEventHandler for RuntimeEvents {
    async fn handle(&self, event: &BusEvent) -> Result<(), HandleError> {
        match event {
            BusEvent::PresenceIntervalUpdated { .. } => match &self.presence {
                Some(p) => p.handle(event).await,
                None => Ok(()),
            },
            BusEvent::ReleasePublished {
                component, version, ..
            } => {
                debug!(?component, %version, "a release was published; checking for updates now");
                if let Some(tx) = &self.releases {
                    // A nudge: if one is already waiting, this one adds nothing.
                    let _ = tx.try_send(());
                }
                // Best effort: the other processes also check on their timer.
                let note = serde_json::json!({
                    "component": component.map(|c| c.to_string()),
                    "version": version,
                    "at": self.clock.now(),
                });
                if let Err(e) = self.config_state.put(keys::RELEASE_PUBLISHED, &note).await {
                    warn!(error = %e, "could not record the release announcement for the node's other processes");
                }
                Ok(())
            }
            BusEvent::DatasetChanged(_) => Ok(()),
        }
    }
}
