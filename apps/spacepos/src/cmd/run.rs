//! `spacepos run`: the headless runtime.

use std::sync::Arc;
use std::time::Duration;

use spacepos_amqp::{AmqpConfig, AmqpPublisher, AmqpSubscriber, WireDecoder, WirePresenceEncoder};
use spacepos_auth::jwt::TokenExpectations;
use spacepos_auth::{Onboarding, Sessions};
use spacepos_config::{Config, TerminalRecord};
use spacepos_core::SystemClock;
use spacepos_presence::{PresenceControl, PresenceSettings};
use spacepos_runtime::{BusPorts, PresencePorts, Runtime, RuntimeSettings, SyncPorts, UpdatesMode};

use crate::components::{NodeComponents, SessionStaff};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::cli::RunArgs;
use crate::exit::{CliError, Kind};
use crate::node::Node;

/// The event bus of a node, started.
pub(crate) struct Bus {
    pub(crate) subscriber: Arc<AmqpSubscriber>,
    pub(crate) publisher: Arc<AmqpPublisher>,
}

impl Bus {
    pub(crate) fn start(config: &Config, record: &TerminalRecord) -> Result<Option<Bus>, CliError> {
        let Some(url) = config.node.amqp_url.clone() else {
            return Ok(None);
        };
        let mut amqp = AmqpConfig::new(url, record.client_id.clone());
        amqp.exchange = config.node.exchange.clone();
        let bad = |e: spacepos_amqp::AmqpConfigError| CliError::new(Kind::Config, e.to_string());
        Ok(Some(Bus {
            subscriber: Arc::new(AmqpSubscriber::start(amqp.clone()).map_err(bad)?),
            publisher: Arc::new(AmqpPublisher::start(amqp).map_err(bad)?),
        }))
    }

    pub(crate) fn ports(&self) -> BusPorts {
        BusPorts {
            subscriber: self.subscriber.clone(),
            publisher: self.publisher.clone(),
            decoder: Arc::new(WireDecoder),
        }
    }

    pub(crate) async fn close(&self) {
        self.subscriber.close().await;
        self.publisher.close().await;
    }
}

pub(crate) fn settings(config: &Config) -> RuntimeSettings {
    RuntimeSettings {
        ingest_enabled: config.sync.ingest_enabled,
        send_enabled: config.sync.send_enabled,
        ingest_every: config.sync.ingest_frequency,
        send_every: config.sync.send_frequency,
        retry: config.sync.retry_interval,
    }
}

/// The runtime of an onboarded node, with its bus if it has one.
pub(crate) async fn build(node: &Node, with_bus: bool) -> Result<(Runtime, Option<Bus>), CliError> {
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
    let (client_for_updates, store_for_updates) = (client.clone(), store.clone());
    let ports = SyncPorts {
        datasets: client.clone(),
        operations: client,
        store: store.clone(),
        outbox: store.clone(),
        config_state: store,
        onboarding: Some(onboarding),
        clock: Arc::new(SystemClock),
        bus: bus.as_ref().map(Bus::ports),
        presence: Some(presence),
        updates: match crate::updates::service(
            node,
            &config,
            &record,
            client_for_updates,
            store_for_updates,
            config.updates.trusted_keys.clone(),
        )
        .await?
        {
            Some(u) => Some(UpdatesMode::CheckOnly(u)),
            None => {
                tracing::warn!("{}", crate::updates::NO_TRUSTED_KEYS);
                None
            }
        },
    };
    Ok((Runtime::new(ports, settings(&config)), bus))
}

pub(crate) async fn run(node: &Node, args: RunArgs) -> Result<(), CliError> {
    let record = node.require_record().await?;
    let config = node.config(Some(&record))?;
    let (runtime, bus) = build(node, !args.no_bus).await?;
    println!(
        "SpacePOS running as {} (store {}, terminal {})",
        record.client_id, record.store_number, record.terminal_number
    );
    println!(
        "  ERP:       {}",
        config
            .node
            .api_endpoint
            .as_ref()
            .map(|u| u.as_str())
            .unwrap_or("?")
    );
    match (&config.node.amqp_url, &bus) {
        (Some(url), Some(_)) => println!("  event bus: {url}"),
        (Some(_), None) => println!(
            "  event bus: off (--no-bus); datasets caught up every {} s",
            config.sync.ingest_frequency.as_secs()
        ),
        (None, _) => println!(
            "  event bus: none configured; datasets caught up every {} s",
            config.sync.ingest_frequency.as_secs()
        ),
    }
    println!(
        "  queue:     pushed every {} s; Ctrl-C stops after the current step",
        config.sync.send_frequency.as_secs()
    );

    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        super::erp_sim::wait_for_shutdown().await;
        info!("stopping: finishing the current step");
        trigger.cancel();
    });
    let result = runtime.run(shutdown).await;
    if let Some(bus) = bus {
        tokio::time::timeout(Duration::from_secs(5), bus.close())
            .await
            .ok();
    }
    result.map_err(|e| CliError::new(Kind::Internal, e.to_string()))?;
    println!("SpacePOS stopped.");
    Ok(())
}
