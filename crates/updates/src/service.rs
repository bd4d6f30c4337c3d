//! [`Updates`]: the updates service.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use chrono::{DateTime, Utc};
use semver::Version;
use serde_json::Value;
use spacepos_config::{
    ApplyingRecord, RejectedArtifact, Slot, StagedRecord, State, StateError, StateStore,
    UpdateOutcomeRecord, UpdateResult,
};
use spacepos_core::{Clock, ComponentId};
use spacepos_sync::{Destination, NewOperation, Outbox, StoreError};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use uuid::Uuid;

use crate::manifest::tauri_manifest;
use crate::model::{
    AppliedRecord, ApplyOutcome, ApplyReport, ArtifactKey, CheckReport, ComponentView,
    DownloadProgress, InstallOutcome, PendingRelease, ReadyRecord, ReleaseComponent,
    ReleaseOutcome, ServedManifest, SnoozeOutcome, SnoozeRefusal, StagedRelease, StagedView,
    UpdateSettings, is_sha256_hex,
};
use crate::ports::{
    ArtifactStore, ArtifactStoreError, ComponentInstaller, InstallError, ManifestError,
    ManifestServer, ReleaseApi, ReleaseApiError, SafePoint, TrackingEncoder, TrackingError,
};
use crate::verify::{TrustedKeys, verify_artifact};

/// Largest artifact downloaded when the ERP announces no size.
pub const MAX_ARTIFACT_SIZE: u64 = 2 * 1024 * 1024 * 1024;

/// How long the run loop waits before trying again after a local failure
/// (state file, outbox, staging area) while applying.
const LOCAL_RETRY: Duration = Duration::from_secs(60);

/// The adapters the updates service works with.
#[derive(Clone)]
pub struct UpdatePorts {
    pub releases: Arc<dyn ReleaseApi>,
    pub artifacts: Arc<dyn ArtifactStore>,
    pub safe_point: Arc<dyn SafePoint>,
    pub installer: Arc<dyn ComponentInstaller>,
    pub encoder: Arc<dyn TrackingEncoder>,
    pub manifest: Arc<dyn ManifestServer>,
    pub state: Arc<dyn StateStore>,
    pub outbox: Arc<dyn Outbox>,
    pub clock: Arc<dyn Clock>,
}

impl fmt::Debug for UpdatePorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UpdatePorts").finish_non_exhaustive()
    }
}

/// Why an updates operation failed.
#[derive(Debug, thiserror::Error)]
pub enum UpdatesError {
    /// The settings cannot work (no trusted key, an installed version that is
    /// not a semantic version).
    #[error("update settings: {0}")]
    Settings(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("the outbox failed: {0}")]
    Outbox(#[from] StoreError),
    #[error(transparent)]
    Artifacts(#[from] ArtifactStoreError),
    #[error("checking for releases failed: {0}")]
    Releases(#[from] ReleaseApiError),
    #[error(transparent)]
    Tracking(#[from] TrackingError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error("no update of {component} is staged")]
    NothingStaged { component: ComponentId },
    /// The installer could not prepare a staged artifact for a local reason
    /// (disk, permissions): the next check tries again.
    #[error("preparing {component} {version} for installation failed: {detail}")]
    Prepare {
        component: ComponentId,
        version: String,
        detail: String,
    },
    #[error("an installation of {component} {version} is in progress")]
    Applying {
        component: ComponentId,
        version: String,
    },
}

/// What one attempt to apply did.
enum TryApply {
    Done(ApplyReport),
    Busy,
}

type ProgressFn = Arc<dyn Fn(&DownloadProgress) + Send + Sync>;

/// Component updates of one node: finds pending releases, downloads and
/// verifies them, stages them, applies them at a safe point (after at most
/// `max_snoozes` snoozes of `snooze` each), and tells the ERP through the
/// outbox (`POSComponentReadyEvent`, `POSComponentAppliedEvent`).
///
/// Cheap to clone: clones share everything. One operation (check, apply,
/// reconcile) runs at a time; `list` and `snooze` work alongside.
#[derive(Clone)]
pub struct Updates {
    inner: Arc<Inner>,
}

struct Inner {
    ports: UpdatePorts,
    settings: UpdateSettings,
    keys: TrustedKeys,
    /// The running version of each installed component.
    installed: Mutex<BTreeMap<ComponentId, String>>,
    /// The version offered at the last check.
    offered: Mutex<BTreeMap<ComponentId, String>>,
    /// Why a due update waits (the safe point's last answer).
    waiting: Mutex<BTreeMap<ComponentId, String>>,
    /// Policy refusals (downgrades, ...) already logged by this process.
    warned: Mutex<HashSet<(ComponentId, String, String)>>,
    progress: Mutex<Option<ProgressFn>>,
    op: tokio::sync::Mutex<()>,
}

impl fmt::Debug for Updates {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Updates")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Order two version strings: semantically when both parse, else `None`.
fn compare(a: &str, b: &str) -> Option<Ordering> {
    Some(
        Version::parse(a.trim())
            .ok()?
            .cmp(&Version::parse(b.trim()).ok()?),
    )
}

fn same_version(a: &str, b: &str) -> bool {
    compare(a, b).map_or(a.trim() == b.trim(), Ordering::is_eq)
}

/// The artifact's file name: the last segment of its URL if it is a plain
/// name, else `<component>-<version>.bin`.
fn file_name_of(url: &str, key: &ArtifactKey) -> String {
    let path = url.split(['?', '#']).next().unwrap_or_default();
    let last = path.rsplit('/').next().unwrap_or_default();
    let plain = !last.is_empty()
        && last.len() <= 128
        && last != "."
        && last != ".."
        && last
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'));
    if plain {
        last.to_owned()
    } else {
        format!("{}-{}.bin", key.component, key.version)
    }
}

fn to_chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Updates {
    /// A service over `ports`. Fails if no trusted key parses or an installed
    /// version is not a semantic version.
    pub fn new(ports: UpdatePorts, settings: UpdateSettings) -> Result<Self, UpdatesError> {
        let keys = TrustedKeys::parse(&settings.trusted_keys).map_err(UpdatesError::Settings)?;
        for (component, version) in &settings.installed {
            Version::parse(version.trim()).map_err(|e| {
                UpdatesError::Settings(format!(
                    "the installed version of {component}, {version:?}, is not a semantic version ({e})"
                ))
            })?;
        }
        Ok(Updates {
            inner: Arc::new(Inner {
                installed: Mutex::new(settings.installed.clone()),
                ports,
                settings,
                keys,
                offered: Mutex::new(BTreeMap::new()),
                waiting: Mutex::new(BTreeMap::new()),
                warned: Mutex::new(HashSet::new()),
                progress: Mutex::new(None),
                op: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// Report download progress to `f` (after every chunk stored).
    pub fn set_progress(&self, f: impl Fn(&DownloadProgress) + Send + Sync + 'static) {
        *lock(&self.inner.progress) = Some(Arc::new(f));
    }

    pub fn settings(&self) -> &UpdateSettings {
        &self.inner.settings
    }

    fn ports(&self) -> &UpdatePorts {
        &self.inner.ports
    }

    fn now(&self) -> DateTime<Utc> {
        self.ports().clock.now()
    }

    fn installed(&self, component: ComponentId) -> Option<String> {
        lock(&self.inner.installed).get(&component).cloned()
    }

    async fn state(&self) -> Result<State, UpdatesError> {
        Ok(self.ports().state.load().await?.state)
    }

    async fn update(
        &self,
        change: impl FnOnce(&mut State) + Send + 'static,
    ) -> Result<State, UpdatesError> {
        Ok(self.ports().state.update(Box::new(change)).await?)
    }

    // ---- check -----------------------------------------------------------------

    /// Ask the ERP for pending releases and stage what is new: skip unknown
    /// components, components not installed here, versions not newer than the
    /// installed one (unless `allowDowngrade`), artifacts staged or refused
    /// before; download the rest (resuming a partial download with `Range`),
    /// verify signature, signed version and sha256, stage, record in
    /// `state.json` and write `POSComponentReadyEvent` to the outbox.
    ///
    /// A refused artifact is deleted, recorded (so it is not downloaded again)
    /// and logged once as a warning naming component, version and reason.
    pub async fn check(&self) -> Result<CheckReport, UpdatesError> {
        let _op = self.inner.op.lock().await;
        let releases = self.ports().releases.pending().await?;
        let mut report = CheckReport::default();
        for release in releases {
            report.outcomes.push(self.consider(release).await?);
        }
        for component in ComponentId::ALL {
            self.enqueue_ready(component).await?;
        }
        Ok(report)
    }

    async fn consider(&self, release: PendingRelease) -> Result<ReleaseOutcome, UpdatesError> {
        let component = match &release.component {
            ReleaseComponent::Known(c) => *c,
            ReleaseComponent::Unknown(name) => {
                debug!(component = %name, version = %release.version, "skipping a release of a component this build does not know");
                return Ok(ReleaseOutcome::UnknownComponent { name: name.clone() });
            }
        };
        let version_text = release.version.trim().to_owned();
        lock(&self.inner.offered).insert(component, version_text.clone());
        let Some(installed) = self.installed(component) else {
            debug!(%component, version = %version_text, "skipping a release of a component not installed here");
            return Ok(ReleaseOutcome::NotInstalled { component });
        };
        let sha256 = release.sha256.trim().to_ascii_lowercase();
        let state = self.state().await?;
        let records = state.updates.component(component);
        if records.applying.is_some() {
            return Ok(ReleaseOutcome::Busy { component });
        }
        if records.is_rejected(&version_text, &sha256) {
            debug!(%component, version = %version_text, "skipping an artifact refused before");
            return Ok(ReleaseOutcome::PreviouslyRejected {
                component,
                version: version_text,
            });
        }
        if let Some(staged) = &records.staged
            && staged.version == version_text
            && staged.sha256 == sha256
        {
            return Ok(ReleaseOutcome::AlreadyStaged {
                component,
                version: version_text,
            });
        }
        let key = ArtifactKey::new(component, version_text.clone(), &sha256);
        let version = match Version::parse(&version_text) {
            Ok(v) => v,
            Err(e) => {
                let reason = format!("{version_text:?} is not a semantic version ({e})");
                return self.refuse(&key, reason).await;
            }
        };
        let current = Version::parse(installed.trim())
            .map_err(|e| UpdatesError::Settings(format!("installed version {installed:?}: {e}")))?;
        match version.cmp(&current) {
            Ordering::Equal => {
                return Ok(ReleaseOutcome::UpToDate {
                    component,
                    version: version_text,
                });
            }
            Ordering::Less if !release.allow_downgrade => {
                let first = lock(&self.inner.warned).insert((
                    component,
                    version_text.clone(),
                    sha256.clone(),
                ));
                if first {
                    warn!(
                        %component,
                        version = %version_text,
                        installed = %installed,
                        "refused update {component} {version_text}: it is older than the installed {installed} \
                         and the ERP did not allow a downgrade; nothing was downloaded"
                    );
                }
                return Ok(ReleaseOutcome::Downgrade {
                    component,
                    version: version_text,
                    installed,
                });
            }
            _ => {}
        }
        if !is_sha256_hex(&sha256) {
            let reason = format!("the announced sha256 {sha256:?} is not a hex SHA-256 digest");
            return self.refuse(&key, reason).await;
        }
        if let Err(reason) = key.check() {
            return self.refuse(&key, reason).await;
        }
        let total = match self.download(&key, &release).await? {
            Ok(Ok(total)) => total,
            Ok(Err(reason)) => return self.refuse(&key, reason).await,
            Err((downloaded, error)) => {
                warn!(
                    %component,
                    version = %version_text,
                    downloaded,
                    "downloading update {component} {version_text} stopped after {downloaded} bytes: {error}; \
                     the next check resumes it"
                );
                return Ok(ReleaseOutcome::DownloadIncomplete {
                    component,
                    version: version_text,
                    downloaded,
                    error,
                });
            }
        };
        let verdict = verify_artifact(
            self.ports().artifacts.as_ref(),
            &key,
            &release.signature,
            &version_text,
            &self.inner.keys,
            self.inner.settings.chunk_size,
        )
        .await?;
        if let Err(reason) = verdict {
            return self.refuse(&key, reason).await;
        }
        let path = self
            .ports()
            .artifacts
            .stage(&key, &file_name_of(&release.url, &key))
            .await?;
        let staged_at = self.now();
        let slot = match component {
            ComponentId::SpaceFuel => state.spacefuel.active_slot.map(Slot::other),
            ComponentId::SpacePos => None,
        };
        let prepared = StagedRelease {
            component,
            version: version_text.clone(),
            previous_version: self.installed(component),
            sha256: sha256.clone(),
            path: path.clone(),
            size: total,
            url: release.url.clone(),
            signature: release.signature.clone(),
            notes: release.notes.clone(),
            pub_date: release.pub_date,
            staged_at,
            slot,
        };
        match self.ports().installer.prepare(&prepared).await {
            Ok(()) => {}
            Err(InstallError::Failed(reason)) => {
                return self
                    .refuse(&key, format!("it cannot be installed: {reason}"))
                    .await;
            }
            Err(InstallError::Backend(e)) => {
                return Err(UpdatesError::Prepare {
                    component,
                    version: version_text,
                    detail: e.to_string(),
                });
            }
        }
        let record = StagedRecord {
            version: version_text.clone(),
            sha256: sha256.clone(),
            path,
            size: total,
            url: release.url.clone(),
            signature: release.signature.clone(),
            notes: release.notes.clone(),
            pub_date: release.pub_date,
            staged_at,
            slot,
            ready_event_id: Uuid::new_v4(),
            ready_queued: false,
        };
        let keep = version_text.clone();
        self.update(move |s| {
            let c = s.updates.component_mut(component);
            c.staged = Some(record);
            c.snoozes.retain(|v, _| *v == keep);
        })
        .await?;
        for other in self.ports().artifacts.list().await? {
            if other.key.component == component && other.key != key {
                self.ports().artifacts.discard(&other.key).await?;
            }
        }
        info!(
            %component,
            version = %version_text,
            "staged update {component} {version_text}: signature, signed version and sha256 verified"
        );
        self.enqueue_ready(component).await?;
        Ok(ReleaseOutcome::Staged {
            component,
            version: version_text,
        })
    }

    /// Delete the artifact, remember the refusal, warn once.
    async fn refuse(
        &self,
        key: &ArtifactKey,
        reason: String,
    ) -> Result<ReleaseOutcome, UpdatesError> {
        if key.check().is_ok() {
            self.ports().artifacts.discard(key).await?;
        }
        let record = RejectedArtifact {
            version: key.version.clone(),
            sha256: key.sha256.clone(),
            reason: reason.clone(),
            at: self.now(),
        };
        let component = key.component;
        self.update(move |s| {
            let c = s.updates.component_mut(component);
            if !c.is_rejected(&record.version, &record.sha256) {
                c.rejected.push(record);
            }
        })
        .await?;
        warn!(
            %component,
            version = %key.version,
            %reason,
            "refused update {component} {}: {reason}; nothing was staged and this artifact will not be downloaded again",
            key.version
        );
        Ok(ReleaseOutcome::Rejected {
            component,
            version: key.version.clone(),
            reason,
        })
    }

    /// Download `key` into the staging area, resuming at what is stored.
    /// `Ok(Ok(total))`: complete; `Ok(Err(reason))`: the artifact is refused;
    /// `Err((downloaded, error))`: stopped, to resume later.
    #[allow(clippy::type_complexity)]
    async fn download(
        &self,
        key: &ArtifactKey,
        release: &PendingRelease,
    ) -> Result<Result<Result<u64, String>, (u64, String)>, UpdatesError> {
        let store = &self.ports().artifacts;
        let api = &self.ports().releases;
        let chunk_size = self.inner.settings.chunk_size.max(1);
        let progress = lock(&self.inner.progress).clone();
        let mut have = store.len(key).await?;
        let mut total: Option<u64> = None;
        let mut restarted = false;
        loop {
            if let Some(t) = total
                && have >= t
            {
                return Ok(Ok(Ok(t)));
            }
            let chunk = match api.fetch_range(&release.url, have, chunk_size).await {
                Ok(chunk) => chunk,
                Err(ReleaseApiError::RangeNotSatisfiable { total: t }) => {
                    if have == t && have > 0 {
                        return Ok(Ok(Ok(t)));
                    }
                    if t == 0 {
                        return Ok(Ok(Err("the ERP serves an empty artifact".into())));
                    }
                    if restarted {
                        return Ok(Err((
                            have,
                            format!("the ERP refused the range from byte {have} of {t}"),
                        )));
                    }
                    // What is stored is longer than the artifact: start over.
                    store.discard(key).await?;
                    have = 0;
                    restarted = true;
                    continue;
                }
                Err(e) => return Ok(Err((have, e.to_string()))),
            };
            if chunk.start != have {
                if chunk.start == 0 && !restarted {
                    // The server ignored the range and sent the whole artifact.
                    store.discard(key).await?;
                    have = 0;
                    restarted = true;
                } else {
                    return Ok(Err((
                        have,
                        format!(
                            "the ERP answered from byte {} when asked from byte {have}",
                            chunk.start
                        ),
                    )));
                }
            }
            if let Some(size) = release.size
                && chunk.total != size
            {
                return Ok(Ok(Err(format!(
                    "the ERP serves {} bytes but announced {size}",
                    chunk.total
                ))));
            }
            if chunk.total > MAX_ARTIFACT_SIZE {
                return Ok(Ok(Err(format!(
                    "the artifact has {} bytes, more than the {MAX_ARTIFACT_SIZE} accepted",
                    chunk.total
                ))));
            }
            total = Some(chunk.total);
            let room = usize::try_from(chunk.total.saturating_sub(have)).unwrap_or(usize::MAX);
            let bytes = &chunk.bytes[..chunk.bytes.len().min(room)];
            if bytes.is_empty() && have < chunk.total {
                return Ok(Err((have, "the ERP sent no bytes".into())));
            }
            if !bytes.is_empty() {
                have = store.append(key, have, bytes).await?;
            }
            if let Some(f) = &progress {
                f(&DownloadProgress {
                    component: key.component,
                    version: key.version.clone(),
                    downloaded: have,
                    total,
                });
            }
        }
    }

    // ---- tracking events -----------------------------------------------------

    /// Write the Ready event of a staged release to the outbox, if not done yet.
    async fn enqueue_ready(&self, component: ComponentId) -> Result<(), UpdatesError> {
        let state = self.state().await?;
        let Some(staged) = state.updates.component(component).staged.clone() else {
            return Ok(());
        };
        if staged.ready_queued {
            return Ok(());
        }
        let record = ReadyRecord {
            event_id: staged.ready_event_id,
            terminal: self.inner.settings.terminal.clone(),
            component,
            version: staged.version.clone(),
            staged_at: staged.staged_at,
            slot: staged.slot,
        };
        let event = self.ports().encoder.ready(&record)?;
        self.enqueue(
            record.event_id,
            event.event_type,
            record.staged_at,
            event.payload,
        )
        .await?;
        let id = staged.ready_event_id;
        self.update(move |s| {
            if let Some(st) = s.updates.component_mut(component).staged.as_mut()
                && st.ready_event_id == id
            {
                st.ready_queued = true;
            }
        })
        .await?;
        Ok(())
    }

    async fn enqueue(
        &self,
        id: Uuid,
        kind: String,
        occurred_at: DateTime<Utc>,
        payload: Value,
    ) -> Result<(), UpdatesError> {
        let op = NewOperation {
            id,
            destination: Destination::EventBus,
            kind,
            occurred_at,
            store_staff_id: None,
            payload,
        };
        match self.ports().outbox.enqueue(&[op]).await {
            Ok(_) => Ok(()),
            Err(StoreError::Conflict(detail)) => {
                // Queued before with other content: it is in the outbox once, keep that.
                warn!(event = %id, %detail, "a tracking event was already queued with other content; keeping the queued one");
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    // ---- apply -------------------------------------------------------------------

    /// Apply the staged update of `component`: wait for the safe point (asking
    /// every `safe_point_poll`), record "applying" with the previous version
    /// in `state.json`, call the installer, record the outcome and write
    /// `POSComponentAppliedEvent` to the outbox. Ignores snoozes: this is the
    /// operator's "install now".
    pub async fn apply(&self, component: ComponentId) -> Result<ApplyReport, UpdatesError> {
        loop {
            match self.try_apply(component).await? {
                TryApply::Done(report) => return Ok(report),
                TryApply::Busy => tokio::time::sleep(self.inner.settings.safe_point_poll).await,
            }
        }
    }

    async fn try_apply(&self, component: ComponentId) -> Result<TryApply, UpdatesError> {
        let _op = self.inner.op.lock().await;
        let state = self.state().await?;
        let records = state.updates.component(component);
        if let Some(applying) = &records.applying {
            return Err(UpdatesError::Applying {
                component,
                version: applying.version.clone(),
            });
        }
        let Some(staged) = records.staged.clone() else {
            return Err(UpdatesError::NothingStaged { component });
        };
        if let Some(reason) = self.ports().safe_point.busy().await {
            let previous = lock(&self.inner.waiting).insert(component, reason.clone());
            if previous.is_none() {
                info!(
                    %component,
                    version = %staged.version,
                    %reason,
                    "update {component} {} waits for a safe point: {reason}",
                    staged.version
                );
            }
            return Ok(TryApply::Busy);
        }
        lock(&self.inner.waiting).remove(&component);
        let previous_version = self.installed(component);
        let record = ApplyingRecord {
            version: staged.version.clone(),
            sha256: staged.sha256.clone(),
            previous_version: previous_version.clone(),
            started_at: self.now(),
            applied_event_id: Uuid::new_v4(),
            outcome: None,
        };
        self.update(move |s| s.updates.component_mut(component).applying = Some(record))
            .await?;
        info!(
            %component,
            version = %staged.version,
            previous = ?previous_version,
            "applying update {component} {} at a safe point",
            staged.version
        );
        let release = StagedRelease {
            component,
            version: staged.version.clone(),
            previous_version: previous_version.clone(),
            sha256: staged.sha256.clone(),
            path: staged.path.clone(),
            size: staged.size,
            url: staged.url.clone(),
            signature: staged.signature.clone(),
            notes: staged.notes.clone(),
            pub_date: staged.pub_date,
            staged_at: staged.staged_at,
            slot: staged.slot,
        };
        let (result, error) = match self.ports().installer.install(&release).await {
            Ok(InstallOutcome::Applied) => (UpdateResult::Applied, None),
            Ok(InstallOutcome::RolledBack { error }) => (UpdateResult::RolledBack, Some(error)),
            Ok(InstallOutcome::RestartPending) => {
                info!(%component, version = %staged.version, "the installer continues outside this process; the result is recorded at the next start");
                return Ok(TryApply::Done(ApplyReport {
                    component,
                    version: staged.version,
                    previous_version,
                    outcome: ApplyOutcome::RestartPending,
                }));
            }
            Err(e) => (UpdateResult::Failed, Some(e.to_string())),
        };
        let report = self.finish(component, result, error).await?;
        Ok(TryApply::Done(report.unwrap_or(ApplyReport {
            component,
            version: staged.version,
            previous_version,
            outcome: ApplyOutcome::Failed {
                error: "the installation record vanished".into(),
            },
        })))
    }

    /// Record the result of the installation in progress (unless recorded
    /// already), write its Applied event to the outbox, then clear the record.
    async fn finish(
        &self,
        component: ComponentId,
        result: UpdateResult,
        error: Option<String>,
    ) -> Result<Option<ApplyReport>, UpdatesError> {
        let outcome = UpdateOutcomeRecord {
            result,
            error,
            at: self.now(),
        };
        let state = self
            .update(move |s| {
                if let Some(a) = s.updates.component_mut(component).applying.as_mut()
                    && a.outcome.is_none()
                {
                    a.outcome = Some(outcome);
                }
            })
            .await?;
        self.report_recorded(component, &state).await
    }

    /// Enqueue the Applied event of a recorded outcome and clear the record.
    async fn report_recorded(
        &self,
        component: ComponentId,
        state: &State,
    ) -> Result<Option<ApplyReport>, UpdatesError> {
        let Some(applying) = state.updates.component(component).applying.clone() else {
            return Ok(None);
        };
        let Some(outcome) = applying.outcome.clone() else {
            return Ok(None);
        };
        let record = AppliedRecord {
            event_id: applying.applied_event_id,
            terminal: self.inner.settings.terminal.clone(),
            component,
            version: applying.version.clone(),
            previous_version: applying.previous_version.clone(),
            result: outcome.result,
            error: outcome.error.clone(),
            applied_at: outcome.at,
        };
        let event = self.ports().encoder.applied(&record)?;
        self.enqueue(record.event_id, event.event_type, outcome.at, event.payload)
            .await?;
        let done = applying.clone();
        let reason = match outcome.result {
            UpdateResult::Applied => None,
            other => Some(format!(
                "installation {}: {}",
                other.as_str(),
                outcome.error.clone().unwrap_or_default()
            )),
        };
        let at = outcome.at;
        self.update(move |s| {
            let c = s.updates.component_mut(component);
            if c.applying.as_ref().map(|a| a.applied_event_id) != Some(done.applied_event_id) {
                return;
            }
            c.applying = None;
            if c.staged
                .as_ref()
                .is_some_and(|st| st.version == done.version && st.sha256 == done.sha256)
            {
                c.staged = None;
            }
            c.snoozes.remove(&done.version);
            if let Some(reason) = reason
                && !c.is_rejected(&done.version, &done.sha256)
            {
                c.rejected.push(RejectedArtifact {
                    version: done.version.clone(),
                    sha256: done.sha256.clone(),
                    reason,
                    at,
                });
            }
        })
        .await?;
        let key = ArtifactKey::new(component, applying.version.clone(), &applying.sha256);
        if key.check().is_ok() {
            self.ports().artifacts.discard(&key).await?;
        }
        let outcome_view = match outcome.result {
            UpdateResult::Applied => {
                lock(&self.inner.installed).insert(component, applying.version.clone());
                info!(%component, version = %applying.version, "update {component} {} applied", applying.version);
                ApplyOutcome::Applied
            }
            UpdateResult::RolledBack => {
                let error = outcome.error.unwrap_or_default();
                warn!(%component, version = %applying.version, %error, "update {component} {} rolled back: {error}", applying.version);
                ApplyOutcome::RolledBack { error }
            }
            UpdateResult::Failed => {
                let error = outcome.error.unwrap_or_default();
                warn!(%component, version = %applying.version, %error, "update {component} {} failed: {error}", applying.version);
                ApplyOutcome::Failed { error }
            }
        };
        Ok(Some(ApplyReport {
            component,
            version: applying.version,
            previous_version: applying.previous_version,
            outcome: outcome_view,
        }))
    }

    /// At start: settle installations left "applying" by the last run. A
    /// target equal to the running version is `Applied`; the previous version
    /// still running is `Failed` (the update did not take effect); either way
    /// the Applied event goes to the outbox and the record is cleared. Also
    /// writes Ready events that a crash kept out of the outbox.
    pub async fn reconcile_at_start(&self) -> Result<Vec<ApplyReport>, UpdatesError> {
        let _op = self.inner.op.lock().await;
        let mut reports = Vec::new();
        for component in ComponentId::ALL {
            let state = self.state().await?;
            if let Some(applying) = state.updates.component(component).applying.clone() {
                let report = if applying.outcome.is_some() {
                    self.report_recorded(component, &state).await?
                } else {
                    let running = self.installed(component);
                    let (result, error) = match &running {
                        Some(r) if same_version(r, &applying.version) => {
                            (UpdateResult::Applied, None)
                        }
                        Some(r)
                            if applying
                                .previous_version
                                .as_deref()
                                .is_some_and(|p| same_version(r, p)) =>
                        {
                            (
                                UpdateResult::Failed,
                                Some(format!(
                                    "the update to {} did not take effect: {r} is still running after the restart",
                                    applying.version
                                )),
                            )
                        }
                        Some(r) => (
                            UpdateResult::Failed,
                            Some(format!(
                                "after the restart {r} runs, neither the update {} nor the previous {}",
                                applying.version,
                                applying.previous_version.as_deref().unwrap_or("(unknown)")
                            )),
                        ),
                        None => (
                            UpdateResult::Failed,
                            Some(format!(
                                "after the restart the component is not installed; the update to {} failed",
                                applying.version
                            )),
                        ),
                    };
                    self.finish(component, result, error).await?
                };
                reports.extend(report);
            }
            // A staged release that is already running needs no applying.
            let state = self.state().await?;
            if let (Some(staged), Some(running)) = (
                state.updates.component(component).staged.clone(),
                self.installed(component),
            ) && same_version(&staged.version, &running)
            {
                self.update(move |s| {
                    let c = s.updates.component_mut(component);
                    if c.staged
                        .as_ref()
                        .is_some_and(|st| st.version == staged.version)
                    {
                        c.staged = None;
                    }
                })
                .await?;
            }
            self.enqueue_ready(component).await?;
        }
        Ok(reports)
    }

    // ---- snooze and list -----------------------------------------------------------

    /// Postpone the staged update of `component` by `snooze`: granted while
    /// fewer than `max_snoozes` were granted for that version (the count is
    /// in `state.json` and survives restarts); refused otherwise, or when
    /// nothing is staged.
    pub async fn snooze(&self, component: ComponentId) -> Result<SnoozeOutcome, UpdatesError> {
        let now = self.now();
        let max = self.inner.settings.max_snoozes;
        let length = to_chrono(self.inner.settings.snooze);
        let verdict: Arc<Mutex<Option<SnoozeOutcome>>> = Arc::new(Mutex::new(None));
        let out = Arc::clone(&verdict);
        self.update(move |s| {
            let c = s.updates.component_mut(component);
            let outcome = if let Some(a) = &c.applying {
                SnoozeOutcome::Refused(SnoozeRefusal::Applying {
                    version: a.version.clone(),
                })
            } else if let Some(staged) = &c.staged {
                let version = staged.version.clone();
                let rec = c.snoozes.entry(version.clone()).or_default();
                if rec.count < max {
                    rec.count += 1;
                    let until = now + length;
                    rec.until = Some(until);
                    SnoozeOutcome::Granted {
                        version,
                        until,
                        left: max - rec.count,
                    }
                } else {
                    SnoozeOutcome::Refused(SnoozeRefusal::NoneLeft { version, max })
                }
            } else {
                SnoozeOutcome::Refused(SnoozeRefusal::NothingStaged)
            };
            *lock(&out) = Some(outcome);
        })
        .await?;
        let outcome = lock(&verdict)
            .take()
            .unwrap_or(SnoozeOutcome::Refused(SnoozeRefusal::NothingStaged));
        match &outcome {
            SnoozeOutcome::Granted {
                version,
                until,
                left,
            } => {
                info!(%component, %version, %until, left, "update {component} {version} snoozed until {until} ({left} snoozes left)")
            }
            SnoozeOutcome::Refused(why) => {
                info!(%component, "snooze of {component} refused: {why}")
            }
        }
        Ok(outcome)
    }

    /// Each component's situation.
    pub async fn list(&self) -> Result<Vec<ComponentView>, UpdatesError> {
        let state = self.state().await?;
        let now = self.now();
        let max = self.inner.settings.max_snoozes;
        let mut views = Vec::new();
        for component in ComponentId::ALL {
            let c = state.updates.component(component);
            let snooze = c
                .staged
                .as_ref()
                .and_then(|st| c.snoozes.get(&st.version))
                .cloned()
                .unwrap_or_default();
            let snoozed_until = snooze.until.filter(|u| *u > now);
            views.push(ComponentView {
                component,
                installed: self.installed(component),
                offered: lock(&self.inner.offered).get(&component).cloned(),
                staged: c.staged.as_ref().map(|st| StagedView {
                    version: st.version.clone(),
                    staged_at: st.staged_at,
                    notes: st.notes.clone(),
                    size: st.size,
                }),
                snoozes_used: snooze.count,
                snoozes_left: max.saturating_sub(snooze.count),
                snoozed_until,
                due_at: c
                    .staged
                    .as_ref()
                    .map(|st| snoozed_until.unwrap_or(st.staged_at.max(now))),
                waiting_for: lock(&self.inner.waiting).get(&component).cloned(),
                applying: c.applying.as_ref().map(|a| a.version.clone()),
                last_rejected: c
                    .rejected
                    .last()
                    .map(|r| (r.version.clone(), r.reason.clone())),
            });
        }
        Ok(views)
    }

    // ---- the Tauri manifest ----------------------------------------------------

    /// The manifest for Tauri's updater of the staged SpacePOS release
    /// (offering the ERP's URL of the artifact), or `None` when nothing is staged.
    pub async fn tauri_manifest(&self) -> Result<Option<Value>, UpdatesError> {
        let state = self.state().await?;
        Ok(state.updates.spacepos.staged.as_ref().map(|st| {
            let release = self.staged_release(ComponentId::SpacePos, st);
            tauri_manifest(&release, &self.inner.settings.manifest_platform, &st.url)
        }))
    }

    /// Serve [`Updates::tauri_manifest`] once on loopback; point the desktop
    /// app's updater at the returned URL.
    pub async fn serve_manifest(&self) -> Result<ServedManifest, UpdatesError> {
        let manifest = self
            .tauri_manifest()
            .await?
            .ok_or(UpdatesError::NothingStaged {
                component: ComponentId::SpacePos,
            })?;
        let bytes =
            serde_json::to_vec(&manifest).map_err(|e| ManifestError::Backend(Box::new(e)))?;
        Ok(self.ports().manifest.serve_once(bytes).await?)
    }

    fn staged_release(&self, component: ComponentId, st: &StagedRecord) -> StagedRelease {
        StagedRelease {
            component,
            version: st.version.clone(),
            previous_version: self.installed(component),
            sha256: st.sha256.clone(),
            path: st.path.clone(),
            size: st.size,
            url: st.url.clone(),
            signature: st.signature.clone(),
            notes: st.notes.clone(),
            pub_date: st.pub_date,
            staged_at: st.staged_at,
            slot: st.slot,
        }
    }

    // ---- the loop --------------------------------------------------------------

    /// Until `shutdown`: settle the last run's installations, check every
    /// `check_interval` and at once on a release event, and apply a staged
    /// update whose snooze is not running at the next safe point.
    pub async fn run(self, shutdown: CancellationToken, mut release_events: mpsc::Receiver<()>) {
        if let Err(e) = self.reconcile_at_start().await {
            warn!(error = %e, "could not settle the updates of the last run; will try again at the next check");
        }
        let mut next_check = Instant::now();
        let mut events_open = true;
        let mut failing = false;
        loop {
            if shutdown.is_cancelled() {
                return;
            }
            if Instant::now() >= next_check {
                match self.check().await {
                    Ok(report) => {
                        if failing {
                            info!("checking for updates works again");
                            failing = false;
                        }
                        debug!(?report, "update check done");
                    }
                    Err(e) => {
                        if !failing {
                            warn!(error = %e, "checking for updates failed; trying again at the next check");
                        }
                        failing = true;
                    }
                }
                next_check = Instant::now() + self.inner.settings.check_interval;
            }
            let mut wake = next_check;
            if let Some(after) = self.apply_due().await {
                wake = wake.min(Instant::now() + after);
            }
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return,
                event = release_events.recv(), if events_open => match event {
                    Some(()) => {
                        while release_events.try_recv().is_ok() {}
                        debug!("a release was published: checking now");
                        next_check = Instant::now();
                    }
                    None => events_open = false,
                },
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    /// Apply every staged update that is due and at a safe point; returns how
    /// long to wait before looking again (`None`: nothing waits).
    async fn apply_due(&self) -> Option<Duration> {
        let state = match self.state().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot read the update state");
                return Some(LOCAL_RETRY);
            }
        };
        let now = self.now();
        let poll = self.inner.settings.safe_point_poll;
        let mut wait: Option<Duration> = None;
        let mut sooner = |d: Duration| wait = Some(wait.map_or(d, |w| w.min(d)));
        for component in ComponentId::ALL {
            let c = state.updates.component(component);
            if c.applying.is_some() {
                continue;
            }
            let Some(staged) = &c.staged else {
                continue;
            };
            if let Some(until) = c.snoozes.get(&staged.version).and_then(|s| s.until)
                && until > now
            {
                sooner((until - now).to_std().unwrap_or(poll));
                continue;
            }
            match self.try_apply(component).await {
                Ok(TryApply::Busy) => sooner(poll),
                Ok(TryApply::Done(_)) => {}
                Err(UpdatesError::NothingStaged { .. } | UpdatesError::Applying { .. }) => {}
                Err(e) => {
                    warn!(%component, error = %e, "applying the update failed locally; trying again later");
                    sooner(LOCAL_RETRY);
                }
            }
        }
        wait
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use async_trait::async_trait;
    use spacepos_config::{LoadedState, StateChange, StateOrigin};
    use spacepos_core::{FixedClock, RemoteError, TerminalIdentity};
    use spacepos_sync::MockOutbox;

    use super::*;
    use crate::ports::{
        MockArtifactStore, MockComponentInstaller, MockManifestServer, MockReleaseApi,
        MockSafePoint, MockTrackingEncoder,
    };

    /// A state store in a mutex (the real ones live in testkit, which an
    /// in-file test cannot use).
    #[derive(Default)]
    struct StubState(Mutex<State>);

    #[async_trait]
    impl StateStore for StubState {
        async fn load(&self) -> Result<LoadedState, StateError> {
            Ok(LoadedState {
                state: lock(&self.0).clone(),
                origin: StateOrigin::Loaded,
            })
        }
        async fn save(&self, state: &State) -> Result<(), StateError> {
            *lock(&self.0) = state.clone();
            Ok(())
        }
        async fn update(&self, change: StateChange) -> Result<State, StateError> {
            let mut s = lock(&self.0);
            change(&mut s);
            Ok(s.clone())
        }
    }

    const KEY: &str = "RWQf6LRCGA9i53mlYecO4IzT51TGPpvWucNSCh1CBM0QTaLn73Y7GFO3";

    fn settings(keys: Vec<String>, pos: &str) -> UpdateSettings {
        let terminal = TerminalIdentity {
            client_id: "trm_1".into(),
            store_number: 12,
            terminal_number: 3,
        };
        let mut installed = BTreeMap::new();
        installed.insert(ComponentId::SpacePos, pos.to_owned());
        UpdateSettings::new(terminal, keys, installed)
    }

    /// Ports whose mocks panic on any call not expected.
    fn ports(releases: MockReleaseApi) -> UpdatePorts {
        UpdatePorts {
            releases: Arc::new(releases),
            artifacts: Arc::new(MockArtifactStore::new()),
            safe_point: Arc::new(MockSafePoint::new()),
            installer: Arc::new(MockComponentInstaller::new()),
            encoder: Arc::new(MockTrackingEncoder::new()),
            manifest: Arc::new(MockManifestServer::new()),
            state: Arc::new(StubState::default()),
            outbox: Arc::new(MockOutbox::new()),
            clock: Arc::new(FixedClock::new(Utc::now())),
        }
    }

    #[test]
    fn settings_without_a_usable_key_or_with_a_bad_version_are_refused() {
        let e = Updates::new(ports(MockReleaseApi::new()), settings(vec![], "1.4.2")).unwrap_err();
        assert!(e.to_string().contains("updates.trusted_keys"), "{e}");
        let e = Updates::new(
            ports(MockReleaseApi::new()),
            settings(vec![KEY.into()], "one"),
        )
        .unwrap_err();
        assert!(e.to_string().contains("not a semantic version"), "{e}");
    }

    #[tokio::test]
    async fn an_unreachable_erp_fails_the_check_and_touches_nothing_else() {
        let mut releases = MockReleaseApi::new();
        releases.expect_pending().times(1).returning(|| {
            Err(ReleaseApiError::Remote(RemoteError::Unreachable {
                host: "erp".into(),
                detail: "refused".into(),
            }))
        });
        let updates = Updates::new(ports(releases), settings(vec![KEY.into()], "1.4.2")).unwrap();
        let e = updates.check().await.unwrap_err();
        assert!(matches!(e, UpdatesError::Releases(_)), "{e:?}");
    }

    #[tokio::test]
    async fn unknown_and_not_installed_components_are_skipped_without_download() {
        let mut releases = MockReleaseApi::new();
        releases.expect_pending().returning(|| {
            let release = |component| PendingRelease {
                component,
                version: "9.0.0".into(),
                notes: None,
                pub_date: None,
                url: "https://erp/x".into(),
                signature: String::new(),
                sha256: "ab".repeat(32),
                size: Some(1),
                allow_downgrade: false,
            };
            Ok(vec![
                release(ReleaseComponent::Unknown("spacewash".into())),
                release(ReleaseComponent::Known(ComponentId::SpaceFuel)),
            ])
        });
        let updates = Updates::new(ports(releases), settings(vec![KEY.into()], "1.4.2")).unwrap();
        let report = updates.check().await.unwrap();
        assert_eq!(
            report.outcomes,
            vec![
                ReleaseOutcome::UnknownComponent {
                    name: "spacewash".into()
                },
                ReleaseOutcome::NotInstalled {
                    component: ComponentId::SpaceFuel
                }
            ]
        );
    }

    #[test]
    fn artifact_file_names_come_from_the_url_when_plain() {
        let key = ArtifactKey::new(ComponentId::SpacePos, "1.5.0", &"a".repeat(64));
        assert_eq!(
            file_name_of(
                "https://erp/api/pos/releases/spacepos/1.5.0/SpacePOS_1.5.0_x64_en-US.msi?x=1",
                &key
            ),
            "SpacePOS_1.5.0_x64_en-US.msi"
        );
        assert_eq!(file_name_of("https://erp/a/..", &key), "spacepos-1.5.0.bin");
        assert_eq!(
            file_name_of("https://erp/a/b%20c", &key),
            "spacepos-1.5.0.bin"
        );
    }

    #[test]
    fn versions_compare_semantically() {
        assert_eq!(compare("1.10.0", "1.9.0"), Some(Ordering::Greater));
        assert!(same_version("1.5.0", " 1.5.0"));
        assert!(!same_version("1.5.0", "1.5.0-rc.1"));
        assert_eq!(compare("x", "1.0.0"), None);
    }
}
