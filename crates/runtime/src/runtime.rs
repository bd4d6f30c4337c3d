use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use spacepos_auth::{Onboarding, OnboardingError};
use spacepos_config::{ConfigStateStore, keys};
use spacepos_core::Clock;
use spacepos_sync::{
    BusEventHandler, DatasetApi, DeviceGate, DrainReport, EventDecoder, EventPublisher,
    EventSubscriber, Inbox, InboxProgress, LocalStore, OperationsApi, Outbox, SeedProgress, Seeder,
    SendTimers, Sender, jittered,
};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

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
}

/// The event bus side, when the node has a broker.
#[derive(Clone)]
#[allow(missing_debug_implementations)] // trait objects; nothing useful to print
pub struct BusPorts {
    pub subscriber: Arc<dyn EventSubscriber>,
    pub publisher: Arc<dyn EventPublisher>,
    pub decoder: Arc<dyn EventDecoder>,
    /// Applies consumed events other than dataset changes.
    pub handler: Option<Arc<dyn BusEventHandler>>,
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
        self.refresh_settings(&health).await;

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
                let mut inbox = Inbox::new(
                    bus.subscriber.clone(),
                    bus.decoder.clone(),
                    self.ports.store.clone(),
                )
                .with_gap_reports(gap_tx.clone());
                if let Some(handler) = bus.handler.clone() {
                    inbox = inbox.with_handler(handler);
                }
                let (tx, rx) = watch::channel(InboxProgress::default());
                inbox = inbox.with_progress(tx);
                let token = shutdown.clone();
                let recorder = tokio::spawn(record_inbox(health.clone(), rx, token.clone()));
                loops.spawn(async move {
                    inbox.run(token).await;
                    let _ = recorder.await;
                    "consume"
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
    /// node was not running land now. Best effort.
    async fn refresh_settings(&self, health: &Health) {
        let Some(onboarding) = &self.ports.onboarding else {
            return;
        };
        match onboarding.refresh_settings().await {
            Ok(r) if r.changed => {
                info!("the ERP changed this terminal's settings while it was not running; stored")
            }
            Ok(_) => {}
            Err(OnboardingError::Remote(e)) => {
                self.gate.observe(&e);
                if self.gate.is_closed() {
                    health.reonboarding_needed(true).await;
                }
                warn!(error = %e, "could not read this terminal's settings from the ERP at start");
            }
            Err(e) => warn!(error = %e, "could not refresh this terminal's settings"),
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
    shutdown: CancellationToken,
) {
    let mut written = InboxProgress::default();
    let mut first = true;
    loop {
        let stop = tokio::select! {
            _ = shutdown.cancelled() => true,
            changed = progress.changed() => changed.is_err(),
        };
        let now = progress.borrow_and_update().clone();
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
