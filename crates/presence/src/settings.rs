//! The presence settings: what they are now, and the ERP's changes to them.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use spacepos_config::{TerminalConfigStore, defaults};
use spacepos_core::Clock;
use spacepos_sync::{BusEvent, BusEventHandler, HandleError};
use tokio::sync::watch;
use tracing::{debug, info};

/// Whether to beat, and how often.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceSettings {
    pub report: bool,
    pub interval: Duration,
}

impl PresenceSettings {
    pub fn new(report: bool, interval_seconds: u32) -> Self {
        PresenceSettings {
            report,
            interval: Duration::from_secs(u64::from(clamp_interval(interval_seconds))),
        }
    }
}

/// The interval range of contract section 7.
pub fn clamp_interval(seconds: u32) -> u32 {
    seconds.clamp(
        *defaults::PRESENCE_INTERVAL_RANGE.start(),
        *defaults::PRESENCE_INTERVAL_RANGE.end(),
    )
}

/// The live settings, shared by the heartbeat (which follows them) and
/// whoever changes them (the ERP's events, `terminals/me` after a reconnect).
#[derive(Debug, Clone)]
pub struct PresenceControl {
    tx: Arc<watch::Sender<PresenceSettings>>,
}

impl PresenceControl {
    pub fn new(initial: PresenceSettings) -> Self {
        PresenceControl {
            tx: Arc::new(watch::channel(initial).0),
        }
    }

    pub fn get(&self) -> PresenceSettings {
        *self.tx.borrow()
    }

    /// Change the settings; the heartbeat follows at once. Returns whether they changed.
    pub fn set(&self, settings: PresenceSettings) -> bool {
        self.tx.send_if_modified(|current| {
            let changed = *current != settings;
            *current = settings;
            changed
        })
    }

    pub fn subscribe(&self) -> watch::Receiver<PresenceSettings> {
        self.tx.subscribe()
    }
}

/// Applies `POSPresenceIntervalUpdatedIntegrationEvent`: for this terminal
/// (`ClientId` = ours), for its store (`ClientId` null, `StoreNumber` = ours)
/// or for everyone (both null). Persists the new values in the terminal record
/// (so a restart keeps them) before the heartbeat follows them.
pub struct PresenceSettingsHandler {
    client_id: String,
    store_number: u32,
    store: Arc<dyn TerminalConfigStore>,
    control: PresenceControl,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PresenceSettingsHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresenceSettingsHandler")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl PresenceSettingsHandler {
    pub fn new(
        client_id: String,
        store_number: u32,
        store: Arc<dyn TerminalConfigStore>,
        control: PresenceControl,
        clock: Arc<dyn Clock>,
    ) -> Self {
        PresenceSettingsHandler {
            client_id,
            store_number,
            store,
            control,
            clock,
        }
    }

    /// Whether an update addressed this way is for this terminal.
    pub fn concerns(&self, client_id: Option<&str>, store_number: Option<u32>) -> bool {
        match (client_id, store_number) {
            (Some(id), _) => id == self.client_id,
            (None, Some(store)) => store == self.store_number,
            (None, None) => true,
        }
    }

    /// Store and apply new settings (from an event or from `terminals/me`).
    pub async fn apply(
        &self,
        interval_seconds: u32,
        report: Option<bool>,
    ) -> Result<PresenceSettings, HandleError> {
        let interval = clamp_interval(interval_seconds);
        if interval != interval_seconds {
            info!(
                asked = interval_seconds,
                used = interval,
                "presence interval out of range; clamped to 30..86400 s"
            );
        }
        let mut record = self
            .store
            .load()
            .await
            .map_err(|e| HandleError::Transient(e.to_string()))?
            .ok_or_else(|| HandleError::Permanent("the terminal is not onboarded".into()))?;
        let report = report.unwrap_or(record.report_presence.unwrap_or(self.control.get().report));
        if record.presence_interval_seconds != Some(interval)
            || record.report_presence != Some(report)
        {
            record.presence_interval_seconds = Some(interval);
            record.report_presence = Some(report);
            record.updated_at = self.clock.now();
            self.store
                .save(&record)
                .await
                .map_err(|e| HandleError::Transient(e.to_string()))?;
        }
        let settings = PresenceSettings::new(report, interval);
        if self.control.set(settings) {
            info!(
                report,
                interval_s = interval,
                "presence settings changed by the ERP"
            );
        }
        Ok(settings)
    }
}

#[async_trait]
impl BusEventHandler for PresenceSettingsHandler {
    async fn handle(&self, event: &BusEvent) -> Result<(), HandleError> {
        match event {
            BusEvent::PresenceIntervalUpdated {
                client_id,
                store_number,
                interval_seconds,
                report_presence,
                ..
            } => {
                if !self.concerns(client_id.as_deref(), *store_number) {
                    debug!("presence settings for another terminal; ignored");
                    return Ok(());
                }
                self.apply(*interval_seconds, *report_presence)
                    .await
                    .map(|_| ())
            }
            _ => Ok(()),
        }
    }
}
