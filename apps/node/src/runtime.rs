//! The runtime of an onboarded node, composed from its adapters: what
//! `spacepos run` and the desktop app start.

use std::sync::Arc;

use async_trait::async_trait;
use spacepos_amqp::{AmqpConfig, AmqpPublisher, AmqpSubscriber, WireDecoder, WirePresenceEncoder};
use spacepos_auth::jwt::TokenExpectations;
use spacepos_auth::{Onboarding, Sessions};
use spacepos_config::{Config, ConfigStateError, ConfigStateStore, TerminalRecord};
use spacepos_core::SystemClock;
use spacepos_presence::{PresenceControl, PresenceSettings};
use spacepos_runtime::{BusPorts, PresencePorts, Runtime, RuntimeSettings, SyncPorts, UpdatesMode};
use spacepos_sqlite::SqliteStore;
use spacepos_updates::{ComponentInstaller, Updates};
use tokio::sync::Notify;

use crate::components::{NodeComponents, SessionStaff};
use crate::error::{Kind, NodeError};
use crate::node::Node;

/// The event bus of a node, started.
#[allow(missing_debug_implementations)] // connections; nothing useful to print
pub struct Bus {
    pub subscriber: Arc<AmqpSubscriber>,
    pub publisher: Arc<AmqpPublisher>,
}

impl Bus {
    pub fn start(config: &Config, record: &TerminalRecord) -> Result<Option<Bus>, NodeError> {
        let Some(url) = config.node.amqp_url.clone() else {
            return Ok(None);
        };
        let mut amqp = AmqpConfig::new(url, record.client_id.clone());
        amqp.exchange = config.node.exchange.clone();
        let bad = |e: spacepos_amqp::AmqpConfigError| NodeError::new(Kind::Config, e.to_string());
        Ok(Some(Bus {
            subscriber: Arc::new(AmqpSubscriber::start(amqp.clone()).map_err(bad)?),
            publisher: Arc::new(AmqpPublisher::start(amqp).map_err(bad)?),
        }))
    }

    pub fn ports(&self) -> BusPorts {
        BusPorts {
            subscriber: self.subscriber.clone(),
            publisher: self.publisher.clone(),
            decoder: Arc::new(WireDecoder),
        }
    }

    pub async fn close(&self) {
        self.subscriber.close().await;
        self.publisher.close().await;
    }
}

pub fn settings(config: &Config) -> RuntimeSettings {
    RuntimeSettings {
        ingest_enabled: config.sync.ingest_enabled,
        send_enabled: config.sync.send_enabled,
        ingest_every: config.sync.ingest_frequency,
        send_every: config.sync.send_frequency,
        retry: config.sync.retry_interval,
    }
}

/// Who installs SpacePOS on this node.
#[derive(Clone)]
#[allow(missing_debug_implementations)] // a trait object; nothing useful to print
pub enum SpacePosInstalls {
    /// Nobody here: a headless node checks and stages (reporting Ready); the
    /// desktop app installs.
    Elsewhere,
    /// This process (the desktop app, through Tauri's updater): the runtime
    /// also applies due updates at safe points.
    Here(Arc<dyn ComponentInstaller>),
}

/// An onboarded node's runtime and the handles the app keeps while it runs.
#[allow(missing_debug_implementations)] // wraps services; nothing useful to print
pub struct Composed {
    pub runtime: Runtime,
    pub bus: Option<Bus>,
    /// The update service the runtime runs (shared state: snoozes and
    /// installs asked for by the operator go through it); `None` when no
    /// update key is trusted.
    pub updates: Option<Updates>,
    pub store: Arc<SqliteStore>,
    pub record: TerminalRecord,
    pub config: Config,
}

/// The runtime of an onboarded node, with its bus if it has one.
///
/// `on_change`, when given, is notified after every fact the runtime records
/// for status (send and ingest outcomes, the bus, presence): the desktop app
/// pushes a new view then instead of having its window poll.
pub async fn build(
    node: &Node,
    with_bus: bool,
    installs: SpacePosInstalls,
    on_change: Option<Arc<Notify>>,
) -> Result<Composed, NodeError> {
    let record = node.require_record().await?;
    let config = node.config(Some(&record))?;
    let client = Arc::new(node.device_client(&config, &record, None)?);
    let store = Arc::new(node.store().await?);
    let onboarding = Arc::new(Onboarding::new(
        client.clone(),
        node.terminal.clone(),
        Arc::new(SystemClock),
    ));
    let bus = if with_bus {
        Bus::start(&config, &record)?
    } else {
        None
    };
    let instance_id = node.load_state().await?.state.instance_id;
    let sessions = Sessions::new(
        client.clone(),
        node.credentials.clone(),
        Arc::new(SystemClock),
        TokenExpectations::for_store(record.store_number),
    );
    let presence = PresencePorts {
        identity: record.identity(),
        secret: record.client_secret.clone(),
        instance_id,
        components: Arc::new(NodeComponents {
            till: config.node.features.till,
            state: node.state.clone(),
        }),
        staff: Arc::new(SessionStaff(sessions)),
        encoder: Arc::new(WirePresenceEncoder),
        control: PresenceControl::new(PresenceSettings::new(
            config.terminal.report_presence,
            config.terminal.presence_interval_seconds,
        )),
        terminal_store: node.terminal.clone(),
    };
    let installer = match &installs {
        SpacePosInstalls::Elsewhere => None,
        SpacePosInstalls::Here(i) => Some(i.clone()),
    };
    let updates = crate::updates::service(
        node,
        &config,
        &record,
        client.clone(),
        store.clone(),
        installer,
    )
    .await?;
    if updates.is_none() {
        tracing::warn!("{}", crate::updates::NO_TRUSTED_KEYS);
    }
    let store_for_state = store.clone();
    let ports = SyncPorts {
        datasets: client.clone(),
        operations: client,
        store: store.clone(),
        outbox: store.clone(),
        config_state: match on_change {
            Some(notify) => Arc::new(NotifyingConfigState {
                inner: store,
                notify,
            }),
            None => store,
        },
        onboarding: Some(onboarding),
        clock: Arc::new(SystemClock),
        bus: bus.as_ref().map(Bus::ports),
        presence: Some(presence),
        updates: updates.clone().map(|u| match installs {
            SpacePosInstalls::Elsewhere => UpdatesMode::CheckOnly(u),
            SpacePosInstalls::Here(_) => UpdatesMode::Full(u),
        }),
    };
    Ok(Composed {
        runtime: Runtime::new(ports, settings(&config)),
        bus,
        updates,
        store: store_for_state,
        record,
        config,
    })
}

/// The runtime's `config_state`, telling `notify` after every write.
struct NotifyingConfigState {
    inner: Arc<SqliteStore>,
    notify: Arc<Notify>,
}

#[async_trait]
impl ConfigStateStore for NotifyingConfigState {
    async fn get(&self, key: &str) -> Result<Option<serde_json::Value>, ConfigStateError> {
        self.inner.get(key).await
    }

    async fn put(&self, key: &str, value: &serde_json::Value) -> Result<(), ConfigStateError> {
        let result = self.inner.put(key, value).await;
        self.notify.notify_one();
        result
    }

    async fn all(
        &self,
    ) -> Result<std::collections::BTreeMap<String, serde_json::Value>, ConfigStateError> {
        self.inner.all().await
    }
}
