//! The heartbeat loop.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use spacepos_core::{Clock, Secret, TerminalIdentity};
use spacepos_sync::EventPublisher;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::beat::{
    ComponentStatusSource, PresenceBeat, PresenceEncoder, StaffSessionSource, SyncSummarySource,
};
use crate::settings::{PresenceControl, PresenceSettings};

/// The first beat after a start: a random point within one interval, so a fleet
/// started together (a power cut, a rollout) spreads its beats.
pub fn first_offset(interval: Duration) -> Duration {
    interval.mul_f64(fastrand::f64())
}

/// The interval ±10%.
pub fn jittered_interval(interval: Duration) -> Duration {
    interval.mul_f64(0.9 + fastrand::f64() * 0.2)
}

/// What the last beat did, for status screens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BeatRecord {
    pub settings: PresenceSettings,
    pub last_beat_at: Option<DateTime<Utc>>,
    /// `None` while presence is off.
    pub next_beat_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// Sends `POSPresenceEvent` while presence is on.
pub struct Heartbeat {
    identity: TerminalIdentity,
    secret: Secret,
    instance_id: Uuid,
    components: Arc<dyn ComponentStatusSource>,
    staff: Arc<dyn StaffSessionSource>,
    sync: Arc<dyn SyncSummarySource>,
    encoder: Arc<dyn PresenceEncoder>,
    publisher: Arc<dyn EventPublisher>,
    control: PresenceControl,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Heartbeat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Heartbeat")
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

#[allow(clippy::too_many_arguments)] // the beat's parts, each a port
impl Heartbeat {
    pub fn new(
        identity: TerminalIdentity,
        secret: Secret,
        instance_id: Uuid,
        components: Arc<dyn ComponentStatusSource>,
        staff: Arc<dyn StaffSessionSource>,
        sync: Arc<dyn SyncSummarySource>,
        encoder: Arc<dyn PresenceEncoder>,
        publisher: Arc<dyn EventPublisher>,
        control: PresenceControl,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Heartbeat {
            identity,
            secret,
            instance_id,
            components,
            staff,
            sync,
            encoder,
            publisher,
            control,
            clock,
        }
    }

    /// Assemble a beat now, announcing the next one after `next_in`.
    pub async fn assemble(&self, settings: PresenceSettings, next_in: Duration) -> PresenceBeat {
        let now = self.clock.now();
        PresenceBeat {
            event_id: Uuid::new_v4(),
            created_at: now,
            client_id: self.identity.client_id.clone(),
            client_secret: self.secret.clone(),
            store_number: self.identity.store_number,
            terminal_number: self.identity.terminal_number,
            instance_id: self.instance_id,
            store_staff_id: self.staff.current_staff_id().await,
            components: self.components.components().await,
            sync: self.sync.summary().await,
            interval_seconds: u32::try_from(settings.interval.as_secs()).unwrap_or(u32::MAX),
            next_expected_at: now + chrono::Duration::from_std(next_in).unwrap_or_default(),
        }
    }

    /// Beat until `shutdown`, following the settings as they change.
    /// `on_beat` sees every beat's record (for status screens).
    pub async fn run(
        self,
        shutdown: CancellationToken,
        on_beat: impl Fn(&BeatRecord) + Send + Sync,
    ) {
        let mut settings_rx = self.control.subscribe();
        let mut settings = *settings_rx.borrow_and_update();
        let mut last_beat: Option<Instant> = None;
        let mut next: Option<Instant> = settings
            .report
            .then(|| Instant::now() + first_offset(settings.interval));
        let mut record = BeatRecord {
            settings,
            last_beat_at: None,
            next_beat_at: None,
            last_error: None,
        };
        let mut failing = false;
        loop {
            record.settings = settings;
            record.next_beat_at = next.map(|at| {
                self.clock.now() + to_chrono(at.saturating_duration_since(Instant::now()))
            });
            on_beat(&record);
            let wake = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                changed = settings_rx.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let new = *settings_rx.borrow_and_update();
                    next = match (new.report, last_beat, next) {
                        (false, _, _) => None,
                        // Turned on: start like a fresh node.
                        (true, _, None) => Some(Instant::now() + first_offset(new.interval)),
                        // The interval changed: the next beat follows the new one.
                        (true, Some(last), Some(_)) => Some((last + jittered_interval(new.interval)).max(Instant::now())),
                        (true, None, Some(at)) => Some(at.min(Instant::now() + first_offset(new.interval))),
                    };
                    if new.report != settings.report {
                        info!(on = new.report, "presence reporting switched");
                    }
                    settings = new;
                }
                _ = wake => {
                    let following = jittered_interval(settings.interval);
                    let beat = self.assemble(settings, following).await;
                    let event = self.encoder.encode(&beat);
                    match self.publisher.publish(&event).await {
                        Ok(()) => {
                            debug!(next_in_s = following.as_secs(), "presence beat sent");
                            if failing {
                                info!("presence beats are reaching the ERP again");
                                failing = false;
                            }
                            record.last_beat_at = Some(beat.created_at);
                            record.last_error = None;
                        }
                        Err(e) => {
                            // Best effort: a missed beat is not queued.
                            if !failing {
                                warn!(error = %e, "a presence beat was not delivered; the next one follows on schedule");
                                failing = true;
                            }
                            record.last_error = Some(e.to_string());
                        }
                    }
                    let now = Instant::now();
                    last_beat = Some(now);
                    next = Some(now + following);
                }
            }
        }
    }
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or_default()
}
