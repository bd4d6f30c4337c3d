//! The blue/green switch: staging into the inactive slot, the journaled,
//! health-gated switch with automatic rollback, and recovery after a crash.
//!
//! Every step is written to `state.json` (`spacefuel.switch`) before it is
//! taken, so a process killed at any point finds on restart what it was
//! doing and [`Switcher::recover`] ends with exactly one active slot, complete
//! and verified, running:
//!
//! | journal at the crash | recovery |
//! | --- | --- |
//! | `stopping` (old slot still active) | abort: the old slot stays active and is started again; the update stays staged for the next safe point |
//! | `starting` / `checking` (new slot active) | finish: start the new slot, check its health within the grace, then commit or roll back |
//! | `rolling_back` (old slot active again) | finish the rollback: restart the old slot, report `RolledBack` |

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use spacepos_config::{
    Slot, SlotRecord, State, StateError, StateStore, SwitchRecord, SwitchStep, UpdateOutcomeRecord,
    UpdateResult,
};
use spacepos_core::{Clock, ComponentId};
use tracing::{info, warn};

use crate::slots::{HealthProbe, ServiceManager, ServiceState, SlotError, SlotFs};

/// How the switch waits for the new service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchSettings {
    /// How long a started service has to report healthy (default 60 s).
    pub grace: Duration,
    /// How often the health probe is asked within the grace (default 1 s).
    pub poll: Duration,
}

impl Default for SwitchSettings {
    fn default() -> Self {
        SwitchSettings {
            grace: Duration::from_secs(60),
            poll: Duration::from_secs(1),
        }
    }
}

/// The points of a switch, in order, each reached right after its step is
/// durable. An observer sees every one (the service app uses it to pause at a
/// named point, so tests can kill the process exactly there).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SwitchPoint {
    /// The inactive slot holds the new version; its record is not stored yet.
    Extracted,
    /// The new version's slot record is stored (Ready follows).
    Staged,
    /// The switch is journaled (`stopping`); the old service still runs.
    Journaled,
    /// The old service is stopped; the old slot is still the active one.
    Stopped,
    /// The new slot is active (`starting`); its service is not started yet.
    Flipped,
    /// The new service was started (`checking`); its health is not known yet.
    Started,
    /// The new service reported healthy; the switch is not committed yet.
    Healthy,
    /// The switch is committed and its outcome recorded.
    Committed,
    /// The health check failed; the old slot is active again (`rolling_back`).
    RollbackFlipped,
    /// The old service runs again; the rollback is not committed yet.
    RollbackStarted,
}

impl SwitchPoint {
    pub const ALL: [SwitchPoint; 10] = [
        SwitchPoint::Extracted,
        SwitchPoint::Staged,
        SwitchPoint::Journaled,
        SwitchPoint::Stopped,
        SwitchPoint::Flipped,
        SwitchPoint::Started,
        SwitchPoint::Healthy,
        SwitchPoint::Committed,
        SwitchPoint::RollbackFlipped,
        SwitchPoint::RollbackStarted,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SwitchPoint::Extracted => "extracted",
            SwitchPoint::Staged => "staged",
            SwitchPoint::Journaled => "journaled",
            SwitchPoint::Stopped => "stopped",
            SwitchPoint::Flipped => "flipped",
            SwitchPoint::Started => "started",
            SwitchPoint::Healthy => "healthy",
            SwitchPoint::Committed => "committed",
            SwitchPoint::RollbackFlipped => "rollback-flipped",
            SwitchPoint::RollbackStarted => "rollback-started",
        }
    }

    pub fn parse(text: &str) -> Option<SwitchPoint> {
        SwitchPoint::ALL.into_iter().find(|p| p.name() == text)
    }
}

/// Sees each [`SwitchPoint`] as it is reached.
#[async_trait]
pub trait SwitchObserver: Send + Sync + 'static {
    async fn reached(&self, point: SwitchPoint);
}

/// Why staging or switching failed.
#[derive(Debug, thiserror::Error)]
pub enum SwitchError {
    /// The artifact cannot be installed (unsafe, invalid, wrong version):
    /// nothing changed and it must not be tried again.
    #[error("{0}")]
    Refused(String),
    /// A local failure (disk, state file, service manager) before anything
    /// changed; trying again later may work.
    #[error("{0}")]
    Local(String),
    #[error(transparent)]
    State(#[from] StateError),
}

/// What a switch ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SwitchOutcome {
    /// The new slot is active and healthy.
    Applied { slot: Slot, version: String },
    /// The new slot did not come up healthy; the old one is active and running again.
    RolledBack { slot: Option<Slot>, error: String },
}

/// What [`Switcher::recover`] found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recovery {
    /// No switch was in progress; the active slot was checked and runs.
    Clean { active: Option<Slot> },
    /// A switch interrupted before the flip was abandoned: the old slot runs,
    /// the update stays staged for the next safe point.
    Abandoned {
        active: Option<Slot>,
        version: String,
    },
    /// A switch interrupted after the flip was finished.
    Finished(SwitchOutcome),
}

/// The adapters the switch works with.
#[derive(Clone)]
pub struct SwitchPorts {
    pub state: Arc<dyn StateStore>,
    pub slots: Arc<dyn SlotFs>,
    pub service: Arc<dyn ServiceManager>,
    pub health: Arc<dyn HealthProbe>,
    pub clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for SwitchPorts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SwitchPorts").finish_non_exhaustive()
    }
}

/// Runs SpaceFuel's blue/green switches.
pub struct Switcher {
    ports: SwitchPorts,
    settings: SwitchSettings,
    observer: Option<Arc<dyn SwitchObserver>>,
    op: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Switcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Switcher")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

fn slot_error(e: SlotError) -> SwitchError {
    match e {
        SlotError::Unsafe { .. } | SlotError::Invalid { .. } => SwitchError::Refused(e.to_string()),
        SlotError::Incomplete { .. } | SlotError::Io { .. } => SwitchError::Local(e.to_string()),
    }
}

fn slot_name(slot: Option<Slot>) -> String {
    slot.map_or_else(|| "(none)".to_string(), |s| s.to_string())
}

impl Switcher {
    pub fn new(ports: SwitchPorts, settings: SwitchSettings) -> Self {
        Switcher {
            ports,
            settings,
            observer: None,
            op: tokio::sync::Mutex::new(()),
        }
    }

    pub fn with_observer(mut self, observer: Arc<dyn SwitchObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    pub fn settings(&self) -> SwitchSettings {
        self.settings
    }

    async fn reached(&self, point: SwitchPoint) {
        if let Some(o) = &self.observer {
            o.reached(point).await;
        }
    }

    async fn update(
        &self,
        change: impl FnOnce(&mut State) + Send + 'static,
    ) -> Result<State, SwitchError> {
        Ok(self.ports.state.update(Box::new(change)).await?)
    }

    /// Extract a verified artifact of `version` into the inactive slot (blue
    /// on a first installation) and record it there. The active slot is never
    /// touched. Returns the slot.
    pub async fn stage(
        &self,
        artifact: &std::path::Path,
        version: &str,
    ) -> Result<Slot, SwitchError> {
        let _op = self.op.lock().await;
        let state = self.ports.state.load().await?.state;
        if let Some(sw) = &state.spacefuel.switch {
            return Err(SwitchError::Local(format!(
                "a switch to {} {} is in progress; staging waits until it is finished",
                sw.to, sw.to_version
            )));
        }
        let target = state.spacefuel.active_slot.map_or(Slot::Blue, Slot::other);
        let manifest = self
            .ports
            .slots
            .extract(target, artifact.to_path_buf())
            .await
            .map_err(slot_error)?;
        if manifest.version != version {
            // Do not leave a complete slot that claims another version.
            if let Err(e) = self.ports.slots.clear(target).await {
                warn!(slot = %target, error = %e, "could not clear a refused SpaceFuel slot");
            }
            return Err(SwitchError::Refused(format!(
                "its slot.json says version {}, the release is {version}",
                manifest.version
            )));
        }
        self.reached(SwitchPoint::Extracted).await;
        let now = self.ports.clock.now();
        let version = version.to_string();
        self.update(move |s| {
            *s.spacefuel.slot_mut(target) = Some(SlotRecord {
                version,
                verified: true,
                installed_at: now,
            });
        })
        .await?;
        self.reached(SwitchPoint::Staged).await;
        Ok(target)
    }

    /// Switch to the inactive slot holding `version`. Call it at a safe
    /// point: the old service is stopped first.
    pub async fn switch(&self, version: &str) -> Result<SwitchOutcome, SwitchError> {
        let _op = self.op.lock().await;
        let state = self.ports.state.load().await?.state;
        let sf = &state.spacefuel;
        if let Some(sw) = &sf.switch {
            return Err(SwitchError::Local(format!(
                "a switch to {} {} is already in progress",
                sw.to, sw.to_version
            )));
        }
        let from = sf.active_slot;
        let to = from.map_or(Slot::Blue, Slot::other);
        match sf.slot(to) {
            Some(r) if r.version == version && r.verified => {}
            Some(r) => {
                return Err(SwitchError::Local(format!(
                    "slot {to} holds SpaceFuel {} (verified: {}), not {version}; stage {version} first",
                    r.version, r.verified
                )));
            }
            None => {
                return Err(SwitchError::Local(format!(
                    "slot {to} holds no SpaceFuel installation; stage {version} first"
                )));
            }
        }
        let manifest = self.ports.slots.manifest(to).await.map_err(slot_error)?;
        if manifest.version != version {
            return Err(SwitchError::Local(format!(
                "slot {to} on disk holds {}, state.json says {version}; stage {version} again",
                manifest.version
            )));
        }
        let record = SwitchRecord {
            from,
            from_version: sf.active_version().map(str::to_string),
            to,
            to_version: version.to_string(),
            step: SwitchStep::Stopping,
            started_at: self.ports.clock.now(),
            error: None,
        };
        info!(from = %slot_name(from), %to, version, "switching SpaceFuel from {} to {to} ({version})", slot_name(from));
        let journal = record.clone();
        self.update(move |s| s.spacefuel.switch = Some(journal))
            .await?;
        self.reached(SwitchPoint::Journaled).await;

        if let Err(e) = self.ports.service.stop().await {
            // Nothing was flipped: keep the old slot, make sure it runs.
            warn!(error = %e, "the SpaceFuel service did not stop; the switch is abandoned");
            self.update(|s| s.spacefuel.switch = None).await?;
            self.ensure_running(from).await;
            return Err(SwitchError::Local(format!(
                "the switch to {version} was abandoned, the running version was kept: {e}"
            )));
        }
        self.reached(SwitchPoint::Stopped).await;
        self.update(move |s| {
            s.spacefuel.active_slot = Some(to);
            if let Some(sw) = s.spacefuel.switch.as_mut() {
                sw.step = SwitchStep::Starting;
            }
        })
        .await?;
        self.reached(SwitchPoint::Flipped).await;
        self.forward(record).await
    }

    /// Start the new slot, check its health within the grace, then commit or roll back.
    async fn forward(&self, record: SwitchRecord) -> Result<SwitchOutcome, SwitchError> {
        let to = record.to;
        if let Err(e) = self.ports.service.start(to).await {
            return self.roll_back(record, e.to_string()).await;
        }
        self.update(|s| {
            if let Some(sw) = s.spacefuel.switch.as_mut() {
                sw.step = SwitchStep::Checking;
            }
        })
        .await?;
        self.reached(SwitchPoint::Started).await;
        match self.wait_healthy(to, &record.to_version).await {
            Ok(()) => {
                self.reached(SwitchPoint::Healthy).await;
                let version = record.to_version.clone();
                let now = self.ports.clock.now();
                self.update(move |s| {
                    s.spacefuel.switch = None;
                    s.spacefuel.active_slot = Some(to);
                    record_outcome(s, &version, UpdateResult::Applied, None, now);
                })
                .await?;
                self.reached(SwitchPoint::Committed).await;
                info!(slot = %to, version = %record.to_version, "SpaceFuel {} runs from slot {to} and is healthy", record.to_version);
                Ok(SwitchOutcome::Applied {
                    slot: to,
                    version: record.to_version,
                })
            }
            Err(error) => self.roll_back(record, error).await,
        }
    }

    /// Poll the health probe until it passes or the grace ends; a service
    /// that stopped by itself fails at once.
    async fn wait_healthy(&self, slot: Slot, version: &str) -> Result<(), String> {
        let deadline = tokio::time::Instant::now() + self.settings.grace;
        loop {
            let last = match self.ports.health.check(slot, version).await {
                Ok(()) => match self.report_is_from_the_running_service().await {
                    Ok(()) => return Ok(()),
                    Err(e) => e,
                },
                Err(e) => e,
            };
            if let ServiceState::Failed { reason } = self.ports.service.state().await {
                return Err(format!("SpaceFuel {version} stopped by itself: {reason}"));
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "SpaceFuel {version} was not healthy within {} s: {last}",
                    self.settings.grace.as_secs()
                ));
            }
            tokio::time::sleep(self.settings.poll).await;
        }
    }

    /// A report says nothing about a service started after it: when the
    /// service manager knows the running pid, the report must come from it
    /// (not from the process a crash or a restart replaced).
    async fn report_is_from_the_running_service(&self) -> Result<(), String> {
        let ServiceState::Running { pid: Some(pid), .. } = self.ports.service.state().await else {
            return Ok(());
        };
        match self.ports.health.report().await {
            Some(report) if report.pid != pid => Err(format!(
                "the health report is from process {}, the service runs as process {pid}",
                report.pid
            )),
            _ => Ok(()),
        }
    }

    /// Make the old slot active again, restart it and record RolledBack.
    async fn roll_back(
        &self,
        record: SwitchRecord,
        error: String,
    ) -> Result<SwitchOutcome, SwitchError> {
        warn!(
            to = %record.to,
            version = %record.to_version,
            %error,
            "SpaceFuel {} failed in slot {}: rolling back to {}",
            record.to_version,
            record.to,
            slot_name(record.from)
        );
        if let Err(e) = self.ports.service.stop().await {
            warn!(error = %e, "stopping the failed SpaceFuel service failed");
        }
        let from = record.from;
        let journal_error = error.clone();
        self.update(move |s| {
            s.spacefuel.active_slot = from;
            if let Some(sw) = s.spacefuel.switch.as_mut() {
                sw.step = SwitchStep::RollingBack;
                sw.error = Some(journal_error);
            }
        })
        .await?;
        self.reached(SwitchPoint::RollbackFlipped).await;
        self.finish_rollback(record, error).await
    }

    async fn finish_rollback(
        &self,
        record: SwitchRecord,
        error: String,
    ) -> Result<SwitchOutcome, SwitchError> {
        let from = record.from;
        if let Some(from) = from {
            if let Err(e) = self.ports.service.start(from).await {
                warn!(slot = %from, error = %e, "the previous SpaceFuel slot did not start again");
            } else if let Some(v) = &record.from_version
                && let Err(e) = self.wait_healthy(from, v).await
            {
                warn!(slot = %from, error = %e, "the previous SpaceFuel version runs again but is not healthy");
            }
        }
        self.reached(SwitchPoint::RollbackStarted).await;
        let (version, now, err) = (
            record.to_version.clone(),
            self.ports.clock.now(),
            error.clone(),
        );
        self.update(move |s| {
            s.spacefuel.switch = None;
            s.spacefuel.active_slot = from;
            record_outcome(s, &version, UpdateResult::RolledBack, Some(err), now);
        })
        .await?;
        info!(slot = %slot_name(from), "SpaceFuel rolled back to slot {}", slot_name(from));
        Ok(SwitchOutcome::RolledBack { slot: from, error })
    }

    /// At start: finish or roll back an interrupted switch, then make sure the
    /// active slot is complete and running.
    pub async fn recover(&self) -> Result<Recovery, SwitchError> {
        let _op = self.op.lock().await;
        let state = self.ports.state.load().await?.state;
        let Some(record) = state.spacefuel.switch.clone() else {
            let active = self.active_slot(&state).await?;
            self.ensure_running(active).await;
            return Ok(Recovery::Clean { active });
        };
        warn!(
            to = %record.to,
            version = %record.to_version,
            step = ?record.step,
            "a SpaceFuel switch to {} {} was interrupted; finishing it",
            record.to,
            record.to_version
        );
        match record.step {
            SwitchStep::Stopping => {
                let (from, version) = (record.from, record.to_version.clone());
                let v = version.clone();
                self.update(move |s| {
                    s.spacefuel.switch = None;
                    s.spacefuel.active_slot = from;
                    // The update did not start: it stays staged and is applied
                    // at the next safe point, not reported as failed.
                    let c = s.updates.component_mut(ComponentId::SpaceFuel);
                    if c.applying
                        .as_ref()
                        .is_some_and(|a| a.version == v && a.outcome.is_none())
                    {
                        c.applying = None;
                    }
                })
                .await?;
                self.ensure_running(from).await;
                Ok(Recovery::Abandoned {
                    active: from,
                    version,
                })
            }
            SwitchStep::Starting | SwitchStep::Checking => {
                // Whatever half-started must not run twice.
                if let Err(e) = self.ports.service.stop().await {
                    warn!(error = %e, "stopping the interrupted SpaceFuel service failed");
                }
                let manifest_ok = matches!(
                    self.ports.slots.manifest(record.to).await,
                    Ok(m) if m.version == record.to_version
                );
                if !manifest_ok {
                    let error = format!(
                        "slot {} does not hold a complete SpaceFuel {}",
                        record.to, record.to_version
                    );
                    return Ok(Recovery::Finished(self.roll_back(record, error).await?));
                }
                Ok(Recovery::Finished(self.forward(record).await?))
            }
            SwitchStep::RollingBack => {
                if let Err(e) = self.ports.service.stop().await {
                    warn!(error = %e, "stopping the SpaceFuel service failed");
                }
                let error = record
                    .error
                    .clone()
                    .unwrap_or_else(|| "the switch was interrupted".into());
                Ok(Recovery::Finished(
                    self.finish_rollback(record, error).await?,
                ))
            }
        }
    }

    /// The active slot, checked against the disk; discovered when
    /// `state.json` had to start over.
    async fn active_slot(&self, state: &State) -> Result<Option<Slot>, SwitchError> {
        if let Some(active) = state.spacefuel.active_slot {
            if let Err(e) = self.ports.slots.manifest(active).await {
                return Err(SwitchError::Local(format!(
                    "the active SpaceFuel slot {active} is not usable ({e}); \
                     reinstall SpaceFuel or choose the other slot with `spacefuel-service slot use {}`",
                    active.other()
                )));
            }
            return Ok(Some(active));
        }
        if state.reset_after_corruption.is_none() {
            return Ok(None);
        }
        // state.json started over: find the installation on disk, never guess.
        let mut complete = Vec::new();
        for slot in [Slot::Blue, Slot::Green] {
            if let Ok(m) = self.ports.slots.manifest(slot).await {
                complete.push((slot, m.version));
            }
        }
        match complete.as_slice() {
            [] => Ok(None),
            [(slot, version)] => {
                let (slot, version) = (*slot, version.clone());
                let now = self.ports.clock.now();
                self.update(move |s| {
                    s.spacefuel.active_slot = Some(slot);
                    *s.spacefuel.slot_mut(slot) = Some(SlotRecord {
                        version,
                        verified: true,
                        installed_at: now,
                    });
                })
                .await?;
                warn!(%slot, "state.json was rebuilt: SpaceFuel slot {slot} is the only complete one and is active again");
                Ok(Some(slot))
            }
            _ => Err(SwitchError::Local(format!(
                "state.json was rebuilt and both SpaceFuel slots are complete ({}); \
                 choose the active one with `spacefuel-service slot use blue|green`",
                complete
                    .iter()
                    .map(|(s, v)| format!("{s} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        }
    }

    /// Make `slot` the active one by hand (after `state.json` was lost, when
    /// both slots are complete). Refused while a switch is in progress or
    /// when the slot is not complete.
    pub async fn use_slot(&self, slot: Slot) -> Result<String, SwitchError> {
        let _op = self.op.lock().await;
        let state = self.ports.state.load().await?.state;
        if state.spacefuel.switch.is_some() {
            return Err(SwitchError::Local(
                "a switch is in progress; start the service so it finishes first".into(),
            ));
        }
        let manifest = self.ports.slots.manifest(slot).await.map_err(slot_error)?;
        let (version, now) = (manifest.version.clone(), self.ports.clock.now());
        self.update(move |s| {
            s.spacefuel.active_slot = Some(slot);
            let keep_time = s.spacefuel.slot(slot).map(|r| r.installed_at);
            *s.spacefuel.slot_mut(slot) = Some(SlotRecord {
                version,
                verified: true,
                installed_at: keep_time.unwrap_or(now),
            });
        })
        .await?;
        Ok(manifest.version)
    }

    /// The watchdog's step: unless a switch runs right now, start the active
    /// slot's service if it stopped (a crash). Returns whether it was started.
    pub async fn keep_running(&self) -> Result<bool, SwitchError> {
        let Ok(_op) = self.op.try_lock() else {
            return Ok(false); // a switch or a recovery is at work
        };
        let state = self.ports.state.load().await?.state;
        if state.spacefuel.switch.is_some() {
            return Ok(false);
        }
        let Some(active) = state.spacefuel.active_slot else {
            return Ok(false);
        };
        match self.ports.service.state().await {
            ServiceState::Running { slot, .. } | ServiceState::Starting { slot }
                if slot == active =>
            {
                Ok(false)
            }
            other => {
                warn!(slot = %active, state = ?other, "the SpaceFuel service is not running ({other:?}); starting slot {active} again");
                self.ensure_running(Some(active)).await;
                Ok(true)
            }
        }
    }

    /// Start the service from `slot` unless it already runs from there.
    async fn ensure_running(&self, slot: Option<Slot>) {
        let Some(slot) = slot else {
            return;
        };
        match self.ports.service.state().await {
            ServiceState::Running { slot: s, .. } | ServiceState::Starting { slot: s }
                if s == slot => {}
            _ => {
                if let Err(e) = self.ports.service.stop().await {
                    warn!(error = %e, "stopping the SpaceFuel service failed");
                }
                if let Err(e) = self.ports.service.start(slot).await {
                    warn!(%slot, error = %e, "SpaceFuel could not be started from slot {slot}");
                }
            }
        }
    }
}

/// Record the outcome on the SpaceFuel installation the updates service has
/// in progress, if it is this version (the updates service reports it).
fn record_outcome(
    s: &mut State,
    version: &str,
    result: UpdateResult,
    error: Option<String>,
    at: chrono::DateTime<chrono::Utc>,
) {
    let c = s.updates.component_mut(ComponentId::SpaceFuel);
    if let Some(a) = c.applying.as_mut()
        && a.version == version
        && a.outcome.is_none()
    {
        a.outcome = Some(UpdateOutcomeRecord { result, error, at });
    }
}
