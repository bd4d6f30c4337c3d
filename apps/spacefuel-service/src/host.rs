//! The host: what the service manager runs. Recovers an interrupted switch,
//! supervises the active slot's worker and keeps it running, applies SpaceFuel
//! updates at a quiet moment, and on SpaceFuel-only sites runs sync, presence
//! and update checks through the runtime.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use spacepos_amqp::{
    AmqpConfig, AmqpPublisher, AmqpSubscriber, WireDecoder, WirePresenceEncoder,
    WireTrackingEncoder,
};
use spacepos_auth::Onboarding;
use spacepos_config::{Config, StateStore, TerminalRecord};
use spacepos_core::{Clock, ComponentId, SystemClock};
use spacepos_erp_http::{ErpHttpClient, ErpHttpConfig};
use spacepos_fs::{FileArtifactStore, FileHealthProbe, FsSlots};
use spacepos_manifest::LoopbackManifestServer;
use spacepos_presence::{
    ComponentReport, ComponentState, ComponentStatusSource, PresenceControl, PresenceSettings,
    StaffSessionSource,
};
use spacepos_runtime::{BusPorts, PresencePorts, Runtime, RuntimeSettings, SyncPorts, UpdatesMode};
use spacepos_spacefuel::{
    ForecourtSafePoint, HealthProbe, Recovery, ServiceManager, ServiceState, SlotFs,
    SpaceFuelInstaller, SwitchOutcome, SwitchPorts, SwitchSettings, Switcher,
};
use spacepos_updates::{TAURI_WINDOWS_X64_MSI, UpdatePorts, UpdateSettings, Updates};
use spacepos_windows_scm::{ProcessSupervisor, SLOT_PLACEHOLDER, SupervisorOptions};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::node::{Node, ensure_dir};
use crate::observer::PauseAt;
use crate::worker::wait_for_signal;
use crate::{EXIT_CONFIG, EXIT_INTERNAL, EXIT_REFUSED, Failure};

/// How often the watchdog checks that the active slot runs.
const WATCHDOG: Duration = Duration::from_secs(2);

/// The ports of this site's SpaceFuel, built once.
pub(crate) struct Site {
    pub(crate) service: Arc<dyn ServiceManager>,
    pub(crate) health: Arc<dyn HealthProbe>,
    pub(crate) switcher: Arc<Switcher>,
}

impl Site {
    pub(crate) fn new(node: &Node, config: &Config) -> Site {
        let ext = node.extensions_dir();
        let slots: Arc<dyn SlotFs> = Arc::new(FsSlots::new(&ext));
        let mut args: Vec<OsString> = vec![
            "worker".into(),
            "--slot".into(),
            SLOT_PLACEHOLDER.into(),
            "--data-dir".into(),
            node.data_dir.clone().into(),
        ];
        if let Some(file) = node.config_file() {
            args.push("--config".into());
            args.push(file.into());
        }
        let service: Arc<dyn ServiceManager> = Arc::new(ProcessSupervisor::new(
            slots.clone(),
            SupervisorOptions {
                args,
                log_file: Some(node.data_dir.join("logs").join("spacefuel-worker.log")),
                ..SupervisorOptions::default()
            },
        ));
        let health: Arc<dyn HealthProbe> = Arc::new(FileHealthProbe::new(&ext));
        let switcher = Switcher::new(
            SwitchPorts {
                state: node.state.clone(),
                slots: slots.clone(),
                service: service.clone(),
                health: health.clone(),
                clock: Arc::new(SystemClock),
            },
            SwitchSettings {
                grace: config.spacefuel.health_grace,
                poll: Duration::from_millis(500),
            },
        )
        .with_observer(Arc::new(PauseAt::from_env(ext)));
        Site {
            service,
            health,
            switcher: Arc::new(switcher),
        }
    }
}

/// The host until Ctrl-C or SIGTERM (`run`, in a console or under systemd).
pub(crate) async fn run(node: &Node) -> Result<(), Failure> {
    run_until(node, wait_for_signal()).await
}

/// The host until `stop` completes (a signal; on Windows the service's Stop
/// or Shutdown). `stop` is first polled once an interrupted switch has been
/// recovered, so a signal handler it installs is installed only then.
pub(crate) async fn run_until(
    node: &Node,
    stop: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Failure> {
    ensure_dir(&node.extensions_dir())?;
    ensure_dir(&node.data_dir.join("logs"))?;
    let record = node.record().await?;
    let config = node.config(record.as_ref())?;
    node.load_state().await?;
    let site = Site::new(node, &config);

    match site.switcher.recover().await {
        Ok(Recovery::Clean { active: Some(slot) }) => {
            info!(%slot, "SpaceFuel runs from slot {slot}")
        }
        Ok(Recovery::Clean { active: None }) => warn!(
            "SpaceFuel is not installed yet: no slot holds a release; it is installed by the next SpaceFuel update"
        ),
        Ok(Recovery::Abandoned { active, version }) => warn!(
            ?active,
            %version,
            "a switch to {version} was interrupted before it took effect; the previous version runs and {version} is applied again at the next quiet moment"
        ),
        Ok(Recovery::Finished(SwitchOutcome::Applied { slot, version })) => {
            info!(%slot, %version, "an interrupted switch was finished: {version} runs from slot {slot}")
        }
        Ok(Recovery::Finished(SwitchOutcome::RolledBack { slot, error })) => {
            warn!(?slot, %error, "an interrupted switch was rolled back: {error}")
        }
        Err(e) => return Err(Failure::new(EXIT_REFUSED, e.to_string())),
    }

    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        stop.await;
        info!("stopping SpaceFuel: finishing the current step");
        trigger.cancel();
    });
    let watchdog = {
        let (switcher, token) = (site.switcher.clone(), shutdown.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = token.cancelled() => return,
                    () = tokio::time::sleep(WATCHDOG) => {}
                }
                if let Err(e) = switcher.keep_running().await {
                    warn!(error = %e, "the SpaceFuel watchdog could not check the service");
                }
            }
        })
    };

    let result = match record {
        Some(record) => connected(node, &config, &record, &site, shutdown.clone()).await,
        None => {
            warn!(
                "this node is not onboarded: SpaceFuel serves the forecourt and stores its sales; \
                 they reach the ERP once the node is onboarded (spacepos onboard)"
            );
            shutdown.cancelled().await;
            Ok(())
        }
    };
    shutdown.cancel();
    let _ = watchdog.await;
    if let Err(e) = site.service.stop().await {
        error!(error = %e, "the SpaceFuel worker did not stop: {e}");
    }
    info!("SpaceFuel stopped");
    result
}

/// An onboarded node: SpaceFuel's own updates always; on a SpaceFuel-only
/// site also the sync send loop, presence and the bus through the runtime.
async fn connected(
    node: &Node,
    config: &Config,
    record: &TerminalRecord,
    site: &Site,
    shutdown: CancellationToken,
) -> Result<(), Failure> {
    let api = config.node.api_endpoint.clone().ok_or_else(|| {
        Failure::new(
            EXIT_CONFIG,
            "no ERP address: node.api_endpoint is not set and the onboarding record has none",
        )
    })?;
    let client = Arc::new(
        ErpHttpClient::new(
            ErpHttpConfig::new(api, node.client_info())
                .with_device(record.credentials(), record.identity()),
        )
        .map_err(|e| Failure::new(EXIT_CONFIG, e.to_string()))?,
    );
    let store = Arc::new(node.store().await?);
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let state = node.load_state().await?;
    let updates = if config.updates.trusted_keys.is_empty() {
        warn!(
            "updates.trusted_keys is empty: SpaceFuel cannot verify update signatures, so it does not look for updates"
        );
        None
    } else {
        let mut installed = BTreeMap::new();
        if let Some(v) = state.spacefuel.active_version() {
            installed.insert(ComponentId::SpaceFuel, v.to_owned());
        }
        let updates = Updates::new(
            UpdatePorts {
                releases: client.clone(),
                artifacts: Arc::new(FileArtifactStore::new(&node.data_dir)),
                safe_point: Arc::new(ForecourtSafePoint::new(
                    site.health.clone(),
                    site.service.clone(),
                    clock.clone(),
                )),
                installer: Arc::new(SpaceFuelInstaller::new(site.switcher.clone())),
                encoder: Arc::new(WireTrackingEncoder),
                manifest: Arc::new(LoopbackManifestServer::new()),
                state: node.state.clone(),
                outbox: store.clone(),
                clock: clock.clone(),
            },
            UpdateSettings {
                check_interval: config.updates.check_interval,
                snooze: config.updates.snooze,
                max_snoozes: config.updates.max_snoozes,
                trusted_keys: config.updates.trusted_keys.clone(),
                installed,
                terminal: record.identity(),
                safe_point_poll: Duration::from_secs(2),
                chunk_size: 1024 * 1024,
                manifest_platform: TAURI_WINDOWS_X64_MSI.to_owned(),
            },
        )
        .map_err(|e| Failure::new(EXIT_CONFIG, e.to_string()))?;
        Some(updates)
    };

    if config.node.features.till {
        // A till runs here: it pushes the shared outbox (fuel sales, Ready
        // and Applied included) and beats for the node; SpaceFuel applies
        // its own updates, because it knows when the forecourt is quiet.
        info!("a till runs on this site: SpaceFuel checks and applies its own updates only");
        if let Some(updates) = updates {
            if let Err(e) = updates.reconcile_at_start().await {
                warn!(error = %e, "could not settle the outcome of the last SpaceFuel update");
            }
            // The till consumes the bus and records each release
            // announcement; a new one for SpaceFuel makes this check at once.
            let (release_tx, release_rx) = tokio::sync::mpsc::channel(1);
            let watcher = tokio::spawn(watch_release_notes(
                store.clone(),
                release_tx,
                shutdown.clone(),
            ));
            updates.run(shutdown, release_rx).await;
            let _ = watcher.await;
        } else {
            shutdown.cancelled().await;
        }
        return Ok(());
    }

    info!("SpaceFuel-only site: SpaceFuel also runs sync, presence and update checks");
    let onboarding = Arc::new(Onboarding::new(
        client.clone(),
        node.terminal.clone(),
        clock.clone(),
    ));
    let bus = match config.node.amqp_url.clone() {
        Some(url) => {
            let mut amqp = AmqpConfig::new(url, record.client_id.clone());
            amqp.exchange = config.node.exchange.clone();
            let bad = |e: spacepos_amqp::AmqpConfigError| Failure::new(EXIT_CONFIG, e.to_string());
            Some((
                Arc::new(AmqpSubscriber::start(amqp.clone()).map_err(bad)?),
                Arc::new(AmqpPublisher::start(amqp).map_err(bad)?),
            ))
        }
        None => None,
    };
    let presence = PresencePorts {
        identity: record.identity(),
        secret: record.client_secret.clone(),
        instance_id: state.instance_id,
        components: Arc::new(SpaceFuelComponent {
            state: node.state.clone(),
            service: site.service.clone(),
        }),
        staff: Arc::new(NoStaff),
        encoder: Arc::new(WirePresenceEncoder),
        control: PresenceControl::new(PresenceSettings::new(
            config.terminal.report_presence,
            config.terminal.presence_interval_seconds,
        )),
        terminal_store: node.terminal.clone(),
    };
    let runtime = Runtime::new(
        SyncPorts {
            datasets: client.clone(),
            operations: client,
            store: store.clone(),
            outbox: store.clone(),
            config_state: store,
            onboarding: Some(onboarding),
            clock,
            bus: bus.as_ref().map(|(s, p)| BusPorts {
                subscriber: s.clone(),
                publisher: p.clone(),
                decoder: Arc::new(WireDecoder),
            }),
            presence: bus.as_ref().map(|_| presence),
            updates: updates.map(UpdatesMode::Full),
        },
        RuntimeSettings {
            ingest_enabled: config.sync.ingest_enabled,
            send_enabled: config.sync.send_enabled,
            ingest_every: config.sync.ingest_frequency,
            send_every: config.sync.send_frequency,
            retry: config.sync.retry_interval,
        },
    );
    let result = runtime.run(shutdown).await;
    if let Some((s, p)) = bus {
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            s.close().await;
            p.close().await;
        })
        .await;
    }
    result.map_err(|e| Failure::new(EXIT_INTERNAL, e.to_string()))
}

/// Presence on a SpaceFuel-only site: SpaceFuel alone, with its active slot
/// and the state of its service.
struct SpaceFuelComponent {
    state: Arc<dyn StateStore>,
    service: Arc<dyn ServiceManager>,
}

#[async_trait]
impl ComponentStatusSource for SpaceFuelComponent {
    async fn components(&self) -> Vec<ComponentReport> {
        let Ok(loaded) = self.state.load().await else {
            return Vec::new();
        };
        let sf = loaded.state.spacefuel;
        let Some(slot) = sf.active_slot else {
            return vec![ComponentReport {
                component: ComponentId::SpaceFuel,
                version: "none".into(),
                state: ComponentState::NotInstalled,
                active_slot: None,
                detail: None,
            }];
        };
        let (state, detail) = if sf.switch.is_some() {
            (ComponentState::Updating, None)
        } else {
            match self.service.state().await {
                ServiceState::Running { .. } | ServiceState::Starting { .. } => {
                    (ComponentState::Running, None)
                }
                ServiceState::Failed { reason } => (ComponentState::Degraded, Some(reason)),
                ServiceState::Stopped | ServiceState::NotInstalled => {
                    (ComponentState::Stopped, None)
                }
            }
        };
        vec![ComponentReport {
            component: ComponentId::SpaceFuel,
            version: sf.active_version().unwrap_or("unknown").to_owned(),
            state,
            active_slot: Some(slot),
            detail,
        }]
    }
}

/// Nobody logs in at a forecourt PC.
struct NoStaff;

#[async_trait]
impl StaffSessionSource for NoStaff {
    async fn current_staff_id(&self) -> Option<String> {
        None
    }
}

/// How often a till site's host looks for a release the till consumed.
const RELEASE_NOTE_POLL: Duration = Duration::from_secs(5);

/// On a till site: nudge the update check when the till records a new
/// `POSReleasePublishedIntegrationEvent` for SpaceFuel (or an unknown
/// component) in `config_state`.
async fn watch_release_notes(
    store: Arc<spacepos_sqlite::SqliteStore>,
    nudge: tokio::sync::mpsc::Sender<()>,
    shutdown: CancellationToken,
) {
    use spacepos_config::{ConfigStateStore, keys};
    let mut last = store.get(keys::RELEASE_PUBLISHED).await.ok().flatten();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(RELEASE_NOTE_POLL) => {}
        }
        let Ok(now) = store.get(keys::RELEASE_PUBLISHED).await else {
            continue;
        };
        if now.is_some() && now != last {
            let component = now
                .as_ref()
                .and_then(|v| v.get("component"))
                .and_then(|c| c.as_str());
            if matches!(component, None | Some("spacefuel")) {
                info!("the till consumed a release announcement; checking SpaceFuel updates now");
                let _ = nudge.try_send(());
            }
            last = now;
        }
    }
}
