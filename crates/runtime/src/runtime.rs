use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use spacepos_auth::{Onboarding, OnboardingError};
use spacepos_config::{ConfigStateStore, TerminalConfigStore, keys};
use spacepos_core::{Clock, Secret, TerminalIdentity};
use spacepos_presence::{
    BeatRecord, ComponentStatusSource, Heartbeat, PresenceControl, PresenceEncoder,
    PresenceSettingsHandler, StaffSessionSource, SyncSummary, SyncSummarySource,
};
use spacepos_sync::{
    DatasetApi, DeviceGate, DrainReport, EventDecoder, EventPublisher, EventSubscriber, Inbox,
    InboxProgress, LocalStore, OperationsApi, Outbox, SeedProgress, Seeder, SendTimers, Sender,
    jittered,
};
use spacepos_updates::Updates;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use uuid::Uuid;

use crate::events::RuntimeEvents;

use crate::health::{Health, LoopReport};

/// The adapters a node's sync needs.
#[derive(Clone)]
pub struct SyncPorts {
    pub datasets: Arc<dyn DatasetApi>,
    pub operations: Arc<dyn OperationsApi>,
    pub store: Arc<dyn LocalStore>,
    pub outbox: Arc<dyn Outbox>,
    pub config_state: Arc<dyn ConfigStateStore>,
    /// `terminals/me` at start; `None` when the node has no ERP identity to refresh.
    pub onboarding: Option<Arc<Onboarding>>,
    pub clock: Arc<dyn Clock>,
    pub bus: Option<BusPorts>,
    /// Presence heartbeats (needs the bus).
    pub presence: Option<PresencePorts>,
    /// Component updates: checked on a timer and at once on a release event.
    pub updates: Option<UpdatesMode>,
}

/// How much of the update flow this node runs.
#[derive(Clone)]
#[allow(missing_debug_implementations)] // wraps the service; nothing useful to print
pub enum UpdatesMode {
    /// Check, stage, and apply due updates at safe points (the desktop app, the
    /// SpaceFuel service: they can install).
    Full(Updates),
    /// Check and stage (reporting Ready) only: a headless node that cannot
    /// install SpacePOS itself; the desktop app installs what is staged.
    CheckOnly(Updates),
}

/// What the heartbeat needs besides the bus (the runtime adds the sync summary).
#[derive(Clone)]
#[allow(missing_debug_implementations)] // trait objects; nothing useful to print
pub struct PresencePorts {
    pub identity: TerminalIdentity,
    pub secret: Secret,
    pub instance_id: Uuid,
    pub components: Arc<dyn ComponentStatusSource>,
    pub staff: Arc<dyn StaffSessionSource>,
    pub encoder: Arc<dyn PresenceEncoder>,
    /// The live settings (from the configuration at start).
    pub control: PresenceControl,
    /// Where ERP changes of the settings are persisted.
    pub terminal_store: Arc<dyn TerminalConfigStore>,
}

/// The event bus side, when the node has a broker.
#[derive(Clone)]
#[allow(missing_debug_implementations)] // trait objects; nothing useful to print
pub struct BusPorts {
    pub subscriber: Arc<dyn EventSubscriber>,
    pub publisher: Arc<dyn EventPublisher>,
    pub decoder: Arc<dyn EventDecoder>,
}

impl std::fmt::Debug for SyncPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SyncPorts")
            .field("bus", &self.bus.is_some())
            .finish_non_exhaustive()
    }
}

/// The sync toggles and timers (from `Config::sync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeSettings {
    pub ingest_enabled: bool,
    pub send_enabled: bool,
    pub ingest_every: Duration,
    pub send_every: Duration,
    pub retry: Duration,
}

/// Why the runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("a loop of the runtime failed: {0}")]
    Loop(String),
}

/// A node's sync, running.
pub struct Runtime {
    ports: SyncPorts,
    settings: RuntimeSettings,
    gate: DeviceGate,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    pub fn new(ports: SyncPorts, settings: RuntimeSettings) -> Self {
        Runtime {
            ports,
            settings,
            gate: DeviceGate::new(),
        }
    }

    /// The gate that stops device calls after a 401 (shared with the app).
    pub fn gate(&self) -> DeviceGate {
        self.gate.clone()
    }

    /// Run every loop until `shutdown`; returns once each has finished its
    /// current unit of work.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), RuntimeError> {
        let health = Health::new(self.ports.config_state.clone());
        health.reonboarding_needed(false).await;

        let mut loops = JoinSet::new();
        let (gap_tx, gap_rx) = mpsc::unbounded_channel();
        let timers = SendTimers {
            every: self.settings.send_every,
            retry: self.settings.retry,
        };

        if self.settings.send_enabled {
            let sender = Sender::to_erp(
                self.ports.outbox.clone(),
                self.ports.operations.clone(),
                self.gate.clone(),
                self.ports.clock.clone(),
                timers,
            );
            let (health, gate, token) = (health.clone(), self.gate.clone(), shutdown.clone());
            loops.spawn(async move {
                let (tx, rx) = watch::channel(None::<DrainReport>);
                let recorder = tokio::spawn(record_drains(health, gate, rx, token.clone()));
                sender
                    .run(token, move |r| {
                        let _ = tx.send(Some(r.clone()));
                    })
                    .await;
                let _ = recorder.await;
                "send"
            });
        }

        let (release_tx, release_rx) = mpsc::channel::<()>(8);
        if let Some(mode) = self.ports.updates.clone() {
            let token = shutdown.clone();
            loops.spawn(async move {
                match mode {
                    UpdatesMode::Full(updates) => {
                        if let Err(e) = updates.reconcile_at_start().await {
                            warn!(error = %e, "could not settle the outcome of the last update");
                        }
                        updates.run(token, release_rx).await;
                    }
                    UpdatesMode::CheckOnly(updates) => check_only(updates, release_rx, token).await,
                }
                "updates"
            });
        }
        let presence_handler = self.ports.presence.as_ref().map(|p| {
            Arc::new(PresenceSettingsHandler::new(
                p.identity.client_id.clone(),
                p.identity.store_number,
                p.terminal_store.clone(),
                p.control.clone(),
                self.ports.clock.clone(),
            ))
        });
        self.apply_refreshed_settings(presence_handler.as_deref(), &health)
            .await;
        let (progress_tx, progress_rx) = watch::channel(InboxProgress::default());

        if let Some(bus) = self.ports.bus.clone() {
            let sender = Sender::to_bus(
                self.ports.outbox.clone(),
                bus.publisher.clone(),
                self.gate.clone(),
                self.ports.clock.clone(),
                SendTimers {
                    every: self.settings.send_every,
                    retry: self.settings.retry.min(Duration::from_secs(30)),
                },
            );
            let token = shutdown.clone();
            loops.spawn(async move {
                sender.run(token, |_| {}).await;
                "publish"
            });

            if self.settings.ingest_enabled {
                let handler = RuntimeEvents {
                    presence: presence_handler.clone(),
                    releases: self.ports.updates.is_some().then(|| release_tx.clone()),
                    config_state: self.ports.config_state.clone(),
                    clock: self.ports.clock.clone(),
                };
                let inbox = Inbox::new(
                    bus.subscriber.clone(),
                    bus.decoder.clone(),
                    self.ports.store.clone(),
                )
                .with_gap_reports(gap_tx.clone())
                .with_handler(Arc::new(handler))
                .with_progress(progress_tx);
                let token = shutdown.clone();
                let reconnects = Reconnects {
                    onboarding: self.ports.onboarding.clone(),
                    presence: presence_handler.clone(),
                    gate: self.gate.clone(),
                };
                let recorder = tokio::spawn(record_inbox(
                    health.clone(),
                    progress_rx.clone(),
                    reconnects,
                    token.clone(),
                ));
                loops.spawn(async move {
                    inbox.run(token).await;
                    let _ = recorder.await;
                    "consume"
                });
            }

            if let Some(p) = self.ports.presence.clone() {
                let summary = RuntimeSyncSummary {
                    outbox: self.ports.outbox.clone(),
                    inbox: progress_rx.clone(),
                };
                let heartbeat = Heartbeat::new(
                    p.identity,
                    p.secret,
                    p.instance_id,
                    p.components,
                    p.staff,
                    Arc::new(summary),
                    p.encoder,
                    bus.publisher.clone(),
                    p.control,
                    self.ports.clock.clone(),
                );
                let (beat_tx, beat_rx) = watch::channel(None::<BeatRecord>);
                let token = shutdown.clone();
                let recorder = tokio::spawn(record_beats(health.clone(), beat_rx, token.clone()));
                loops.spawn(async move {
                    heartbeat
                        .run(token, move |r| {
                            let _ = beat_tx.send(Some(r.clone()));
                        })
                        .await;
                    let _ = recorder.await;
                    "presence"
                });
            }
        }
        drop(gap_tx);

        if self.settings.ingest_enabled {
            let seeder = Seeder::new(self.ports.datasets.clone(), self.ports.store.clone());
            let (health, gate, token, settings) = (
                health.clone(),
                self.gate.clone(),
                shutdown.clone(),
                self.settings,
            );
            let store = self.ports.store.clone();
            loops.spawn(async move {
                ingest_loop(seeder, store, gap_rx, health, gate, settings, token).await;
                "ingest"
            });
        }

        let mut failure = None;
        while let Some(joined) = loops.join_next().await {
            match joined {
                Ok(name) => info!(loop_name = name, "stopped"),
                Err(e) => {
                    warn!(error = %e, "a loop ended abnormally");
                    failure = Some(e.to_string());
                    shutdown.cancel();
                }
            }
        }
        match failure {
            Some(f) => Err(RuntimeError::Loop(f)),
            None => Ok(()),
        }
    }

    /// `GET /api/pos/terminals/me` at start: settings the ERP changed while this
    /// node was not running land now, presence included. Best effort.
    async fn apply_refreshed_settings(
        &self,
        presence: Option<&PresenceSettingsHandler>,
        health: &Health,
    ) {
        let reconnects = Reconnects {
            onboarding: self.ports.onboarding.clone(),
            presence: None,
            gate: self.gate.clone(),
        };
        if let Some(record) = reconnects.refresh().await
            && let Some(p) = presence
            && let Some(interval) = record.presence_interval_seconds
        {
            let _ = p.apply(interval, record.report_presence).await;
        }
        if self.gate.is_closed() {
            health.reonboarding_needed(true).await;
        }
    }
}

/// Re-reads `terminals/me` after the broker connection comes back: a presence
/// change published while the terminal was disconnected never reaches it as an event.
#[derive(Clone)]
struct Reconnects {
    onboarding: Option<Arc<Onboarding>>,
    presence: Option<Arc<PresenceSettingsHandler>>,
    gate: DeviceGate,
}

impl Reconnects {
    async fn refresh(&self) -> Option<spacepos_config::TerminalRecord> {
        let onboarding = self.onboarding.as_ref()?;
        match onboarding.refresh_settings().await {
            Ok(r) => {
                if r.changed {
                    info!("the ERP changed this terminal's settings while it was away; stored");
                }
                Some(r.record)
            }
            Err(OnboardingError::Remote(e)) => {
                self.gate.observe(&e);
                warn!(error = %e, "could not read this terminal's settings from the ERP");
                None
            }
            Err(e) => {
                warn!(error = %e, "could not refresh this terminal's settings");
                None
            }
        }
    }

    async fn after_reconnect(&self) {
        if let Some(record) = self.refresh().await
            && let (Some(p), Some(interval)) = (&self.presence, record.presence_interval_seconds)
            && let Err(e) = p.apply(interval, record.report_presence).await
        {
            warn!(error = %e, "could not apply the refreshed presence settings");
        }
    }
}

/// The sync figures of a beat: the outbox now, and the consumer's last event.
struct RuntimeSyncSummary {
    outbox: Arc<dyn Outbox>,
    inbox: watch::Receiver<InboxProgress>,
}

#[async_trait::async_trait]
impl SyncSummarySource for RuntimeSyncSummary {
    async fn summary(&self) -> SyncSummary {
        let stats = self.outbox.stats().await.unwrap_or_default();
        SyncSummary {
            pending_operations: stats.pending,
            oldest_pending_age_seconds: stats
                .oldest_pending_created_at
                .map(|t| u64::try_from((Utc::now() - t).num_seconds()).unwrap_or(0)),
            parked_operations: stats.parked,
            last_event_applied_at: self.inbox.borrow().last_event_applied_at,
        }
    }
}

/// Check for releases every `check_interval` and at once on a release event;
/// stage what verifies. Never installs.
async fn check_only(
    updates: Updates,
    mut release_events: mpsc::Receiver<()>,
    shutdown: CancellationToken,
) {
    let every = updates.settings().check_interval;
    loop {
        match updates.check().await {
            Ok(report) => tracing::debug!(?report, "update check done"),
            Err(e) => warn!(error = %e, "could not check for updates; trying again later"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
            Some(()) = release_events.recv() => {}
        }
    }
}

/// Write the heartbeat's record to `config_state` when it changes.
async fn record_beats(
    health: Health,
    mut beats: watch::Receiver<Option<BeatRecord>>,
    shutdown: CancellationToken,
) {
    loop {
        let stop = tokio::select! {
            _ = shutdown.cancelled() => true,
            changed = beats.changed() => changed.is_err(),
        };
        let record = beats.borrow_and_update().clone();
        if let Some(r) = record {
            let value = json!({
                "on": r.settings.report,
                "intervalSeconds": r.settings.interval.as_secs(),
                "lastBeatAt": r.last_beat_at.map(|t| t.to_rfc3339()),
                "nextBeatAt": if stop { None } else { r.next_beat_at.map(|t| t.to_rfc3339()) },
                "error": r.last_error,
            });
            health.put(keys::PRESENCE, &value).await;
        }
        if stop {
            return;
        }
    }
}

/// Write the send loop's outcome to `config_state`, off the send path: when it
/// sent something or its outcome changed, and at least once a minute.
async fn record_drains(
    health: Health,
    gate: DeviceGate,
    mut reports: watch::Receiver<Option<DrainReport>>,
    shutdown: CancellationToken,
) {
    const HEARTBEAT: Duration = Duration::from_secs(60);
    let mut last_error: Option<Option<String>> = None;
    let mut last_write = tokio::time::Instant::now() - HEARTBEAT;
    let mut gate_reported = false;
    loop {
        let stop = tokio::select! {
            _ = shutdown.cancelled() => true,
            changed = reports.changed() => changed.is_err(),
        };
        let latest = reports.borrow_and_update().clone();
        if let Some(r) = latest {
            let changed = last_error.as_ref() != Some(&r.error);
            if r.sent > 0 || changed || last_write.elapsed() >= HEARTBEAT || stop {
                let report = LoopReport {
                    at: Utc::now(),
                    ok: r.error.is_none(),
                    error: r.error.clone(),
                    detail: json!({"sent": r.sent, "done": r.done, "parked": r.parked}),
                };
                health.record(keys::LAST_SEND, &report).await;
                last_error = Some(r.error);
                last_write = tokio::time::Instant::now();
            }
        }
        if gate.is_closed() && !gate_reported {
            health.reonboarding_needed(true).await;
            gate_reported = true;
        }
        if stop {
            return;
        }
    }
}

/// Write the consume loop's progress to `config_state`: the bus connection
/// when it changes, the last event applied at most once a second.
async fn record_inbox(
    health: Health,
    mut progress: watch::Receiver<InboxProgress>,
    reconnects: Reconnects,
    shutdown: CancellationToken,
) {
    let mut written = InboxProgress::default();
    let mut first = true;
    let mut was_connected = false;
    let mut lost = false;
    loop {
        let stop = tokio::select! {
            _ = shutdown.cancelled() => true,
            changed = progress.changed() => changed.is_err(),
        };
        let now = progress.borrow_and_update().clone();
        if was_connected && !now.connected {
            lost = true;
        }
        if now.connected && lost {
            lost = false;
            let r = reconnects.clone();
            tokio::spawn(async move { r.after_reconnect().await });
        }
        was_connected |= now.connected;
        if first || now.connected != written.connected || now.error != written.error || stop {
            let bus = json!({"at": Utc::now().to_rfc3339(), "connected": now.connected && !stop,
                             "error": if stop { Some("stopped".to_owned()) } else { now.error.clone() },
                             "applied": now.stats.applied, "deadLettered": now.stats.dead_lettered});
            health.put(keys::BUS, &bus).await;
        }
        if now.last_event_applied_at != written.last_event_applied_at
            && let Some(at) = now.last_event_applied_at
        {
            health
                .put(keys::LAST_EVENT_APPLIED_AT, &json!(at.to_rfc3339()))
                .await;
        }
        written = now;
        first = false;
        if stop {
            return;
        }
        // At most one write a second while events stream in.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Event ids are kept this long for deduplication; older replays are still
/// recognised by their sequence.
const INBOX_KEEP: chrono::Duration = chrono::Duration::days(7);
const INBOX_PRUNE_EVERY: Duration = Duration::from_secs(24 * 3600);

/// Seed or catch up every dataset at `ingest_every`, and the datasets the
/// consumer reports gaps for at once.
async fn ingest_loop(
    seeder: Seeder,
    store: Arc<dyn LocalStore>,
    mut gaps: mpsc::UnboundedReceiver<String>,
    health: Health,
    gate: DeviceGate,
    settings: RuntimeSettings,
    shutdown: CancellationToken,
) {
    // The seeder logs each completed snapshot itself.
    let log_progress = |_: SeedProgress| {};
    let mut pending_gaps: BTreeSet<String> = BTreeSet::new();
    let mut failing = false;
    let mut pruned_at: Option<tokio::time::Instant> = None;
    loop {
        if pruned_at.is_none_or(|at| at.elapsed() >= INBOX_PRUNE_EVERY) {
            let cutoff = Utc::now() - INBOX_KEEP;
            match store.prune_inbox(cutoff).await {
                Ok(n) if n > 0 => info!(event_ids = n, "forgot event ids older than 7 days"),
                Ok(_) => {}
                Err(e) => warn!(error = %e, "could not prune the inbox; trying again tomorrow"),
            }
            pruned_at = Some(tokio::time::Instant::now());
        }
        if gate.is_closed() {
            shutdown.cancelled().await;
            return;
        }
        let result = if pending_gaps.is_empty() {
            seeder.sync_all(None, &log_progress).await.map(|results| {
                let errors: Vec<String> = results
                    .iter()
                    .filter_map(|(d, r)| r.as_ref().err().map(|e| format!("{d}: {e}")))
                    .collect();
                (results.len(), errors)
            })
        } else {
            let mut errors = Vec::new();
            let n = pending_gaps.len();
            for dataset in std::mem::take(&mut pending_gaps) {
                if let Err(e) = seeder.sync_dataset(&dataset, None, &log_progress).await {
                    errors.push(format!("{dataset}: {e}"));
                }
            }
            Ok((n, errors))
        };
        let (ok, error) = match result {
            Ok((_, errors)) if errors.is_empty() => (true, None),
            Ok((_, errors)) => (false, Some(errors.join("; "))),
            Err(e) => {
                if let Some(r) = e.remote() {
                    gate.observe(r);
                }
                (false, Some(e.to_string()))
            }
        };
        health
            .record(
                spacepos_config::keys::LAST_INGEST,
                &LoopReport {
                    at: Utc::now(),
                    ok,
                    error: error.clone(),
                    detail: json!({}),
                },
            )
            .await;
        let wait = if ok {
            if failing {
                info!("datasets in sync again");
                failing = false;
            }
            settings.ingest_every
        } else {
            if !failing {
                warn!(
                    error = error.as_deref().unwrap_or(""),
                    "could not sync datasets; retrying later"
                );
                failing = true;
            }
            jittered(settings.retry)
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
            Some(dataset) = gaps.recv() => {
                pending_gaps.insert(dataset);
                while let Ok(more) = gaps.try_recv() {
                    pending_gaps.insert(more);
                }
            }
        }
    }
}
