//! The app's backend: one node (`spacepos-node`), its runtime while the
//! terminal is onboarded, and the [`View`] pushed to the window.
//!
//! The window never polls. A new view is pushed when the runtime records a
//! fact (its `config_state` notifies, see `spacepos_node::runtime::build`),
//! when a download progresses, after every command, and when a re-read of
//! the local files every [`Backend::REFRESH`] finds a change made by another
//! process (till software queueing a sale with `spacepos ops submit`, the
//! SpaceFuel service's health report). Unchanged views are not pushed.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use chrono::Utc;
use spacepos_config::ConfigStateStore;
use spacepos_core::endpoint::{EndpointKind, check_transport};
use spacepos_core::{ComponentId, Secret};
use spacepos_node::runtime::{SpacePosInstalls, build};
use spacepos_node::{Node, NodeError, SqliteStore};
use spacepos_sync::{OperationState, Outbox};
use spacepos_updates::{ComponentInstaller, DownloadProgress, SnoozeOutcome, Updates};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use url::Url;
use uuid::Uuid;

use crate::view::{ErrorDto, Extras, View};

/// Where views go: the window (a Tauri event), or a test's recorder.
pub trait ViewSink: Send + Sync + 'static {
    fn push(&self, view: &View);
}

/// How this build installs SpacePOS: with an installer (Tauri's updater; the
/// Windows MSI) that needs the update service it belongs to, or not at all
/// (Linux builds show and stage updates; the package installs on Windows).
#[derive(Clone, Default)]
#[allow(missing_debug_implementations)] // trait objects
pub struct SelfInstall {
    pub installer: Option<Arc<dyn ComponentInstaller>>,
    /// Handed the update service once it exists (the installer serves its manifest).
    pub service: Option<Arc<OnceLock<Updates>>>,
}

struct Running {
    store: Arc<SqliteStore>,
    updates: Option<Updates>,
}

/// The reply to "Snooze".
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SnoozeDto {
    pub version: String,
    pub until: chrono::DateTime<Utc>,
    pub left: u32,
}

/// The reply to "Install now": `installing` or `waiting` (for a safe moment).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallDto {
    pub result: &'static str,
    pub detail: Option<String>,
}

struct Inner {
    node: Node,
    sink: Arc<dyn ViewSink>,
    install: SelfInstall,
    running: tokio::sync::Mutex<Option<Running>>,
    changed: Arc<Notify>,
    downloads: Arc<Mutex<BTreeMap<ComponentId, DownloadProgress>>>,
    last: Mutex<Option<View>>,
    shutdown: CancellationToken,
}

/// The backend the commands talk to. Cheap to clone.
#[derive(Clone)]
#[allow(missing_debug_implementations)] // services and trait objects
pub struct Backend {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Backend {
    /// How often the local files are re-read for changes of other processes.
    pub const REFRESH: Duration = Duration::from_secs(2);

    pub fn new(node: Node, sink: Arc<dyn ViewSink>, install: SelfInstall) -> Backend {
        Backend {
            inner: Arc::new(Inner {
                node,
                sink,
                install,
                running: tokio::sync::Mutex::new(None),
                changed: Arc::new(Notify::new()),
                downloads: Arc::new(Mutex::new(BTreeMap::new())),
                last: Mutex::new(None),
                shutdown: CancellationToken::new(),
            }),
        }
    }

    /// Start the runtime if the terminal is onboarded, and the view pusher.
    /// Runs on the async runtime; returns at once.
    pub async fn start(&self) -> Result<(), NodeError> {
        let started = if self.inner.node.record().await?.is_some() {
            self.start_runtime().await
        } else {
            Ok(())
        };
        let me = self.clone();
        tokio::spawn(async move { me.push_changes().await });
        self.inner.changed.notify_one();
        started
    }

    /// Stop the runtime (after its current step) and the pusher.
    pub fn stop(&self) {
        self.inner.shutdown.cancel();
    }

    async fn start_runtime(&self) -> Result<(), NodeError> {
        let mut running = self.inner.running.lock().await;
        if running.is_some() {
            return Ok(());
        }
        let installs = match &self.inner.install.installer {
            Some(i) => SpacePosInstalls::Here(i.clone()),
            None => SpacePosInstalls::Elsewhere,
        };
        let composed = build(
            &self.inner.node,
            true,
            installs,
            Some(self.inner.changed.clone()),
        )
        .await?;
        if let Some(updates) = &composed.updates {
            let (downloads, changed) = (self.inner.downloads.clone(), self.inner.changed.clone());
            updates.set_progress(move |p| {
                lock(&downloads).insert(p.component, p.clone());
                changed.notify_one();
            });
            if let Some(slot) = &self.inner.install.service {
                let _ = slot.set(updates.clone());
            }
        }
        *running = Some(Running {
            store: composed.store.clone(),
            updates: composed.updates.clone(),
        });
        let (runtime, bus) = (composed.runtime, composed.bus);
        let stop = self.inner.shutdown.child_token();
        tokio::spawn(async move {
            if let Err(e) = runtime.run(stop).await {
                tracing::error!(error = %e, "the runtime stopped");
            }
            if let Some(bus) = bus {
                tokio::time::timeout(Duration::from_secs(5), bus.close())
                    .await
                    .ok();
            }
        });
        Ok(())
    }

    async fn push_changes(&self) {
        loop {
            tokio::select! {
                _ = self.inner.shutdown.cancelled() => return,
                _ = self.inner.changed.notified() => {}
                _ = tokio::time::sleep(Self::REFRESH) => {}
            }
            // Facts come in bursts (a drain records, then the bus): one view for them.
            tokio::time::sleep(Duration::from_millis(50)).await;
            self.refresh().await;
        }
    }

    /// Collect the view and push it if it changed.
    pub async fn refresh(&self) -> Option<View> {
        match self.view().await {
            Ok(view) => Some(view),
            Err(e) => {
                tracing::warn!(error = %e, "could not collect the status for the window");
                None
            }
        }
    }

    /// The view now (pushed too, if it changed).
    pub async fn view(&self) -> Result<View, NodeError> {
        let (store, updates) = match &*self.inner.running.lock().await {
            Some(r) => (Some(r.store.clone()), r.updates.clone()),
            None => (None, None),
        };
        let node = &self.inner.node;
        let status =
            spacepos_node::status::collect_with(node, true, store.as_deref(), updates.as_ref())
                .await?;
        let config = node.config(node.record().await?.as_ref())?;
        let mut extras = Extras {
            api_preset: config.node.api_endpoint.as_ref().map(Url::to_string),
            installs_spacepos: self.inner.install.installer.is_some(),
            downloads: lock(&self.inner.downloads).values().cloned().collect(),
            ..Extras::default()
        };
        if let Some(store) = &store {
            extras.parked = store
                .list(Some(OperationState::Parked), 100)
                .await
                .map_err(spacepos_node::ops::store_error)?;
        }
        if status.terminal.is_some() {
            match &updates {
                Some(u) => {
                    extras.updates = Some(u.list().await.map_err(spacepos_node::updates::failed)?)
                }
                None => {
                    extras.updates_note = Some(
                        "This till does not look for updates: no update signing key is configured \
                         (updates.trusted_keys)."
                            .into(),
                    )
                }
            }
        }
        let view = View::build(&status, extras, Utc::now());
        let mut last = lock(&self.inner.last);
        if last.as_ref().is_none_or(|l| !view.same_as(l)) {
            self.inner.sink.push(&view);
            *last = Some(view.clone());
        }
        Ok(view)
    }

    /// Onboard with `code` at `api` (or the configured ERP), then start the runtime.
    pub async fn onboard(&self, code: &str, api: Option<&str>) -> Result<View, ErrorDto> {
        let node = &self.inner.node;
        let code = code.trim();
        if code.is_empty() {
            return Err(ErrorDto::new(
                "invalid",
                "Enter the onboarding code the ERP gave for this till.",
            ));
        }
        if node.record().await.map_err(ErrorDto::from)?.is_some() {
            return Err(ErrorDto::new(
                "refused",
                "This till is already onboarded. To move it to another ERP, use `spacepos onboard --force` on this machine.",
            ));
        }
        let config = node.config(None).map_err(ErrorDto::from)?;
        let api = match api.map(str::trim).filter(|a| !a.is_empty()) {
            Some(text) => {
                let url = Url::parse(text).map_err(|e| {
                    ErrorDto::new(
                        "invalid",
                        format!("The ERP address {text:?} is not a URL ({e}); it looks like https://erp.example.com/"),
                    )
                })?;
                check_transport(&url, EndpointKind::Http).map_err(|e| {
                    ErrorDto::new("invalid", format!("The ERP address {text}: {e}"))
                })?;
                url
            }
            None => config.node.api_endpoint.clone().ok_or_else(|| {
                ErrorDto::new(
                    "invalid",
                    "Enter the ERP address (for example https://erp.example.com/).",
                )
            })?,
        };
        spacepos_node::onboard::onboard(node, &config, &api, code, false).await?;
        self.start_runtime().await?;
        self.inner.changed.notify_one();
        Ok(self.view().await?)
    }

    async fn running_store(&self) -> Result<Arc<SqliteStore>, ErrorDto> {
        match &*self.inner.running.lock().await {
            Some(r) => Ok(r.store.clone()),
            None => Err(ErrorDto::new(
                "not-onboarded",
                "This till is not onboarded yet.",
            )),
        }
    }

    async fn updates(&self) -> Result<Updates, ErrorDto> {
        match &*self.inner.running.lock().await {
            Some(Running {
                updates: Some(u), ..
            }) => Ok(u.clone()),
            Some(_) => Err(ErrorDto::new(
                "config",
                spacepos_node::updates::NO_TRUSTED_KEYS,
            )),
            None => Err(ErrorDto::new(
                "not-onboarded",
                "This till is not onboarded yet.",
            )),
        }
    }

    /// Put a parked operation back in the queue; it goes with the next push.
    pub async fn retry(&self, id: &str) -> Result<View, ErrorDto> {
        let id = Uuid::from_str(id.trim())
            .map_err(|_| ErrorDto::new("invalid", format!("{id:?} is not an operation id")))?;
        let store = self.running_store().await?;
        store
            .retry(id)
            .await
            .map_err(|e| ErrorDto::from(spacepos_node::ops::store_error(e)))?;
        Ok(self.view().await?)
    }

    fn component(name: &str) -> Result<ComponentId, ErrorDto> {
        ComponentId::from_str(name).map_err(|e| ErrorDto::new("invalid", e.to_string()))
    }

    pub async fn snooze(&self, component: &str) -> Result<SnoozeDto, ErrorDto> {
        let component = Self::component(component)?;
        let updates = self.updates().await?;
        let outcome = updates
            .snooze(component)
            .await
            .map_err(|e| ErrorDto::from(spacepos_node::updates::failed(e)))?;
        self.inner.changed.notify_one();
        match outcome {
            SnoozeOutcome::Granted {
                version,
                until,
                left,
            } => Ok(SnoozeDto {
                version,
                until,
                left,
            }),
            SnoozeOutcome::Refused(why) => {
                Err(ErrorDto::new("refused", format!("Snooze refused: {why}.")))
            }
        }
    }

    /// "Install now": SpacePOS through Tauri's updater at the next safe
    /// moment (now if no sale is open); SpaceFuel is its service's to apply.
    pub async fn install(&self, component: &str) -> Result<InstallDto, ErrorDto> {
        let component = Self::component(component)?;
        if component == ComponentId::SpaceFuel {
            return Err(ErrorDto::new(
                "refused",
                "SpaceFuel updates are applied by the SpaceFuel service at a quiet moment on the forecourt (no pump busy, no unpaid sale).",
            ));
        }
        if self.inner.install.installer.is_none() {
            return Err(ErrorDto::new(
                "refused",
                "This build cannot install SpacePOS itself: the update is staged and installs with the Windows package (MSI).",
            ));
        }
        let updates = self.updates().await?;
        let store = self.running_store().await?;
        let busy =
            match ConfigStateStore::get(&*store, spacepos_node::updates::SAFE_POINT_KEY).await {
                Ok(Some(serde_json::Value::String(reason))) => Some(reason),
                _ => None,
            };
        let changed = self.inner.changed.clone();
        tokio::spawn(async move {
            match updates.apply(component).await {
                Ok(report) => tracing::info!(?report, "update applied"),
                Err(e) => tracing::warn!(error = %e, "the update could not be applied"),
            }
            changed.notify_one();
        });
        self.inner.changed.notify_one();
        Ok(match busy {
            Some(reason) => InstallDto {
                result: "waiting",
                detail: Some(format!("Waiting for a safe moment: {reason}.")),
            },
            None => InstallDto {
                result: "installing",
                detail: Some("Installing: SpacePOS restarts when it is done.".into()),
            },
        })
    }

    pub async fn staff_login(&self, staff: &str, pin: String) -> Result<View, ErrorDto> {
        let staff = staff.trim();
        if staff.is_empty() || pin.is_empty() {
            return Err(ErrorDto::new("invalid", "Enter your staff code and PIN."));
        }
        let pin = Secret::new(pin);
        spacepos_node::staff::login(&self.inner.node, staff, &pin).await?;
        Ok(self.view().await?)
    }

    pub async fn staff_logout(&self) -> Result<View, ErrorDto> {
        spacepos_node::staff::logout(&self.inner.node).await?;
        Ok(self.view().await?)
    }
}
