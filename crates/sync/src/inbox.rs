//! The inbox: consuming the terminal's queue exactly once in effect.
//!
//! A batch of deliveries is decoded; poison (undecodable, or an event no
//! handler can apply) is dead-lettered with one log line each; dataset events
//! are applied in ONE store transaction that also records their ids and moves
//! the datasets' sequences; other events go to their handler; then everything
//! handled is acknowledged, and only then. Local trouble (disk full, busy) is
//! retried with backoff, never dead-lettered. A sequence gap asks the ingest
//! loop for a catch-up.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use crate::bus_event::{BusEvent, BusEventHandler, EventDecoder, HandleError};
use crate::model::{DatasetEvent, EventOutcome};
use crate::ports::{BusError, Delivery, DeliveryTag, EventSubscriber, LocalStore};

/// Deliveries taken per batch (one store transaction, one multiple-ack).
pub const BATCH: usize = 1000;
/// How long a batch waits to fill once it has a first delivery.
pub const LINGER: Duration = Duration::from_millis(20);
/// First wait after a transient local failure; doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(30);

/// Counters of one consumer, for tests, benchmarks and status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboxStats {
    pub applied: u64,
    pub duplicates: u64,
    pub already_applied: u64,
    pub gaps: u64,
    pub other: u64,
    pub dead_lettered: u64,
}

/// What the consume loop has done so far, published after every batch and
/// every change of connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InboxProgress {
    pub stats: InboxStats,
    /// Whether the last `receive` reached the bus.
    pub connected: bool,
    /// The last bus error, while disconnected.
    pub error: Option<String>,
    pub last_event_applied_at: Option<DateTime<Utc>>,
}

/// The consume loop.
pub struct Inbox {
    bus: Arc<dyn EventSubscriber>,
    decoder: Arc<dyn EventDecoder>,
    store: Arc<dyn LocalStore>,
    handler: Option<Arc<dyn BusEventHandler>>,
    /// Datasets that showed a gap, for the ingest loop.
    gaps: Option<mpsc::UnboundedSender<String>>,
    batch: usize,
    linger: Duration,
    stats: InboxStats,
    progress: Option<watch::Sender<InboxProgress>>,
    last_event_applied_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Inbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inbox")
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// What one processed batch did (beyond the counters).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub acked: usize,
    pub dead_lettered: usize,
    /// Datasets whose events showed a gap.
    pub gaps: BTreeSet<String>,
    /// Whether a dataset event was applied (for "last event applied at").
    pub applied_any: bool,
}

impl Inbox {
    pub fn new(
        bus: Arc<dyn EventSubscriber>,
        decoder: Arc<dyn EventDecoder>,
        store: Arc<dyn LocalStore>,
    ) -> Self {
        Inbox {
            bus,
            decoder,
            store,
            handler: None,
            gaps: None,
            batch: BATCH,
            linger: LINGER,
            stats: InboxStats::default(),
            progress: None,
            last_event_applied_at: None,
        }
    }

    /// Who applies the events that are not dataset changes.
    pub fn with_handler(mut self, handler: Arc<dyn BusEventHandler>) -> Self {
        self.handler = Some(handler);
        self
    }

    /// Where to report datasets that need a catch-up.
    pub fn with_gap_reports(mut self, gaps: mpsc::UnboundedSender<String>) -> Self {
        self.gaps = Some(gaps);
        self
    }

    /// Where to publish [`InboxProgress`] (for status screens).
    pub fn with_progress(mut self, progress: watch::Sender<InboxProgress>) -> Self {
        self.progress = Some(progress);
        self
    }

    fn publish(&self, connected: bool, error: Option<String>) {
        if let Some(tx) = &self.progress {
            let next = InboxProgress {
                stats: self.stats,
                connected,
                error,
                last_event_applied_at: self.last_event_applied_at,
            };
            tx.send_if_modified(|current| {
                let changed = *current != next;
                *current = next;
                changed
            });
        }
    }

    pub fn with_batch(mut self, batch: usize, linger: Duration) -> Self {
        self.batch = batch.max(1);
        self.linger = linger;
        self
    }

    pub fn stats(&self) -> InboxStats {
        self.stats
    }

    /// Consume until `shutdown`. A batch in progress is finished (committed and
    /// acknowledged) before returning; nothing uncommitted is acknowledged.
    pub async fn run(mut self, shutdown: CancellationToken) -> InboxStats {
        // Connecting takes a moment at start and after a broker restart: only an
        // outage that lasts is worth a warning.
        const OUTAGE_WORTH_A_WARNING: Duration = Duration::from_secs(5);
        let mut outage = false;
        let mut unavailable_since: Option<tokio::time::Instant> = None;
        loop {
            let received = tokio::select! {
                _ = shutdown.cancelled() => break,
                r = self.bus.receive(self.batch, self.linger) => r,
            };
            match received {
                Ok(deliveries) => {
                    unavailable_since = None;
                    if outage {
                        info!("consuming events again");
                        outage = false;
                    }
                    if deliveries.is_empty() {
                        self.publish(true, None);
                        continue;
                    }
                    let report = self.process(deliveries, &shutdown).await;
                    if report.applied_any {
                        self.last_event_applied_at = Some(Utc::now());
                    }
                    self.publish(true, None);
                    if let Some(tx) = &self.gaps {
                        for dataset in report.gaps {
                            let _ = tx.send(dataset);
                        }
                    }
                }
                Err(BusError::Refused { host, detail }) => {
                    error!(%host, %detail, "the event bus refused this terminal; events are not consumed until restart");
                    self.publish(false, Some(format!("refused by {host}: {detail}")));
                    shutdown.cancelled().await;
                    break;
                }
                Err(e) => {
                    let since = *unavailable_since.get_or_insert_with(tokio::time::Instant::now);
                    if !outage && since.elapsed() >= OUTAGE_WORTH_A_WARNING {
                        warn!(error = %e, "event bus unavailable; events will be caught up when it is back");
                        outage = true;
                    }
                    self.publish(false, Some(e.to_string()));
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(self.linger.max(Duration::from_millis(200))) => {}
                    }
                }
            }
        }
        self.stats
    }

    /// Handle one batch of deliveries. Returns once every delivery is acknowledged
    /// or dead-lettered, or (on shutdown during a retry) without acknowledging
    /// what was not committed.
    pub async fn process(
        &mut self,
        deliveries: Vec<Delivery>,
        shutdown: &CancellationToken,
    ) -> BatchReport {
        let mut report = BatchReport::default();
        let mut dataset_events: Vec<(DeliveryTag, DatasetEvent)> = Vec::new();
        let mut others: Vec<(DeliveryTag, BusEvent)> = Vec::new();
        for d in &deliveries {
            match self.decoder.decode(d) {
                Ok(BusEvent::DatasetChanged(e)) => dataset_events.push((d.tag, e)),
                Ok(other) => others.push((d.tag, other)),
                Err(why) => {
                    self.dead_letter(d, &why.0).await;
                    report.dead_lettered += 1;
                }
            }
        }

        let mut acks: Vec<DeliveryTag> = Vec::with_capacity(deliveries.len());
        if !dataset_events.is_empty() {
            let events: Vec<DatasetEvent> = dataset_events.iter().map(|(_, e)| e.clone()).collect();
            let Some(outcomes) = self.apply_with_retry(&events, shutdown).await else {
                return report; // shutting down: nothing acked, the broker redelivers
            };
            for ((tag, event), outcome) in dataset_events.iter().zip(outcomes) {
                let outcome = match outcome {
                    Ok(outcome) => outcome,
                    Err(reason) => {
                        if let Some(d) = deliveries.iter().find(|d| d.tag == *tag) {
                            self.dead_letter(
                                d,
                                &format!("the local store cannot hold it: {reason}"),
                            )
                            .await;
                            report.dead_lettered += 1;
                        }
                        continue;
                    }
                };
                acks.push(*tag);
                match outcome {
                    EventOutcome::Applied => {
                        self.stats.applied += 1;
                        report.applied_any = true;
                    }
                    EventOutcome::Duplicate => self.stats.duplicates += 1,
                    EventOutcome::AlreadyApplied => self.stats.already_applied += 1,
                    EventOutcome::Gap => {
                        self.stats.gaps += 1;
                        report.applied_any = true;
                        report.gaps.insert(event.dataset.clone());
                    }
                }
            }
        }

        for (tag, event) in others {
            match self.handle_with_retry(&event, shutdown).await {
                Some(Ok(())) => {
                    self.stats.other += 1;
                    acks.push(tag);
                }
                Some(Err(why)) => {
                    if let Some(d) = deliveries.iter().find(|d| d.tag == tag) {
                        self.dead_letter(d, &why).await;
                        report.dead_lettered += 1;
                    }
                }
                None => break, // shutting down: what was committed is still acked below
            }
        }

        if !acks.is_empty() {
            acks.sort();
            if let Err(e) = self.bus.ack(&acks).await {
                // The deliveries come back after the reconnect; their ids dedupe them.
                debug!(error = %e, "acknowledgement not delivered; the broker will redeliver");
            }
            report.acked = acks.len();
        }
        report
    }

    async fn dead_letter(&mut self, d: &Delivery, why: &str) {
        self.stats.dead_lettered += 1;
        warn!(
            event_type = %d.event_type,
            message_id = d.message_id.as_deref().unwrap_or("-"),
            reason = %why,
            "dead-lettered an event that cannot be applied"
        );
        if let Err(e) = self.bus.dead_letter(d.tag).await {
            debug!(error = %e, "dead-letter not delivered; the broker will redeliver it");
        }
    }

    /// Apply dataset events in one transaction, retrying local trouble until it
    /// passes. If the store refuses the batch for good (an event it can never
    /// hold), the events are applied one by one so that only the culprits are
    /// dead-lettered (`Err(reason)`) and the rest go on. `None` on shutdown.
    async fn apply_with_retry(
        &self,
        events: &[DatasetEvent],
        shutdown: &CancellationToken,
    ) -> Option<Vec<Result<EventOutcome, String>>> {
        match self.apply_retrying(events, shutdown).await? {
            Ok(outcomes) => Some(outcomes.into_iter().map(Ok).collect()),
            Err(e) if events.len() == 1 => Some(vec![Err(e.to_string())]),
            Err(e) => {
                warn!(error = %e, events = events.len(), "the store refused a batch of events; applying them one by one");
                let mut results = Vec::with_capacity(events.len());
                for event in events {
                    let result = match self
                        .apply_retrying(std::slice::from_ref(event), shutdown)
                        .await?
                    {
                        Ok(mut outcomes) => outcomes
                            .pop()
                            .ok_or_else(|| "the store gave no outcome".to_owned()),
                        Err(e) => Err(e.to_string()),
                    };
                    results.push(result);
                }
                Some(results)
            }
        }
    }

    /// One store call, retried while the failure is transient. `None` on
    /// shutdown; `Some(Err)` for a permanent refusal.
    async fn apply_retrying(
        &self,
        events: &[DatasetEvent],
        shutdown: &CancellationToken,
    ) -> Option<Result<Vec<EventOutcome>, crate::ports::StoreError>> {
        let mut wait = FIRST_RETRY;
        loop {
            match self.store.apply_events(events).await {
                Ok(outcomes) => return Some(Ok(outcomes)),
                Err(e) if !e.is_transient() => return Some(Err(e)),
                Err(e) => {
                    warn!(error = %e, events = events.len(), retry_in_ms = wait.as_millis() as u64,
                          "could not store events; keeping them and retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(MAX_RETRY);
                }
            }
        }
    }

    /// Hand a non-dataset event to its handler. `Some(Err(reason))` = dead-letter.
    async fn handle_with_retry(
        &self,
        event: &BusEvent,
        shutdown: &CancellationToken,
    ) -> Option<Result<(), String>> {
        let Some(handler) = &self.handler else {
            debug!(event_id = %event.event_id(), "no handler for this event on this node; acknowledged");
            return Some(Ok(()));
        };
        let mut wait = FIRST_RETRY;
        loop {
            match handler.handle(event).await {
                Ok(()) => return Some(Ok(())),
                Err(HandleError::Permanent(why)) => return Some(Err(why)),
                Err(HandleError::Transient(why)) => {
                    warn!(reason = %why, "could not apply an event; retrying");
                    tokio::select! {
                        _ = shutdown.cancelled() => return None,
                        _ = tokio::time::sleep(wait) => {}
                    }
                    wait = (wait * 2).min(MAX_RETRY);
                }
            }
        }
    }
}
