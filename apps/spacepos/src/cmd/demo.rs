//! `spacepos demo`: a terminal onboards against the built-in ERP simulator, step by step.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use spacepos_amqp::{ErpBusClient, WireDecoder};
use spacepos_auth::SessionStatus;
use spacepos_config::TerminalRecord;
use spacepos_core::{RedactedUrl, Secret, SystemClock};
use spacepos_fake_erp::{EntityChange, FakeErp, FakeErpConfig, Route};
use spacepos_sync::{
    DatasetSync, DeviceGate, EventSubscriber, Inbox, LocalStore, NewOperation, Outbox, Seeder,
    SendTimers, Sender,
};
use tokio_util::sync::CancellationToken;
use url::Url;
use uuid::Uuid;

/// The broker the demo uses when it answers.
const LOCAL_AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

async fn rabbitmq_on_loopback() -> bool {
    let connect = tokio::net::TcpStream::connect("127.0.0.1:5672");
    matches!(
        tokio::time::timeout(Duration::from_millis(500), connect).await,
        Ok(Ok(_))
    )
}

use crate::cli::DemoArgs;
use spacepos_node::Node;
use spacepos_node::error::{Kind, NodeError};

const STEPS: usize = 11;

fn step(n: usize, text: impl AsRef<str>) {
    println!("[{n}/{STEPS}] {}", text.as_ref());
}

fn detail(text: impl AsRef<str>) {
    println!("      {}", text.as_ref());
}

pub(crate) async fn run(args: DemoArgs, data_dir: &tempfile::TempDir) -> Result<(), NodeError> {
    println!("SpacePOS demo: a terminal onboards against the built-in ERP simulator.\n");

    // Live events go through RabbitMQ when one answers on loopback.
    let broker = !args.no_bus && rabbitmq_on_loopback().await;
    let mut config = FakeErpConfig::demo();
    config.amqp_url = broker.then(|| LOCAL_AMQP.to_owned());
    let erp = FakeErp::start(config.clone()).await.map_err(|e| {
        NodeError::new(
            Kind::Internal,
            format!("cannot start the ERP simulator: {e}"),
        )
    })?;
    let result = steps(&erp, &config, data_dir).await;
    erp.shutdown().await;
    result?;

    if args.keep {
        println!(
            "\nThe data directory is kept: {}",
            data_dir.path().display()
        );
        println!(
            "Look around with: spacepos --data-dir {} status --offline",
            data_dir.path().display()
        );
    } else {
        println!("\nThe temporary data directory is removed (use --keep to keep it).");
    }
    Ok(())
}

async fn steps(
    erp: &FakeErp,
    config: &FakeErpConfig,
    data_dir: &tempfile::TempDir,
) -> Result<(), NodeError> {
    step(
        1,
        format!(
            "Started the ERP simulator at {} ({} datasets, {} onboarding codes, {} staff accounts)",
            erp.base_url(),
            config.datasets.len(),
            config.onboarding_codes.len(),
            config.staff.len()
        ),
    );

    let node = Node::isolated(data_dir.path());
    step(
        2,
        format!(
            "Using a temporary data directory: {}",
            node.data_dir.display()
        ),
    );

    let code = config
        .onboarding_codes
        .last()
        .map(|c| c.code.clone())
        .ok_or_else(|| NodeError::new(Kind::Internal, "the demo data has no onboarding code"))?;
    let api =
        Url::parse(erp.base_url()).map_err(|e| NodeError::new(Kind::Internal, e.to_string()))?;
    let node_config = node.config(None)?;
    let record = spacepos_node::onboard::onboard(&node, &node_config, &api, &code, false).await?;
    step(
        3,
        format!(
            "Onboarded with code {code}: client {}, store {}, terminal {}{}",
            record.client_id,
            record.store_number,
            record.terminal_number,
            record
                .company_information
                .as_ref()
                .and_then(|c| c.name.as_deref())
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ),
    );
    detail(format!(
        "credentials, identity and endpoints saved in one step to {}",
        node.terminal.path().display()
    ));
    detail(format!(
        "file mode {}; the client secret is never printed",
        mode_of(node.terminal.path())
    ));

    let status = spacepos_node::status::collect(&node, false).await?;
    step(
        4,
        format!(
            "Read this terminal's settings from the ERP (GET /api/pos/terminals/me): {}",
            status.erp_summary()
        ),
    );
    if let Some(t) = &status.terminal {
        detail(format!(
            "presence {}, every {} s; ERP {}",
            if t.report_presence { "on" } else { "off" },
            t.presence_interval_seconds,
            t.api_endpoint.as_deref().unwrap_or("?")
        ));
    }

    let staff = config
        .staff
        .first()
        .ok_or_else(|| NodeError::new(Kind::Internal, "the demo data has no staff account"))?;
    let session =
        spacepos_node::staff::login(&node, &staff.staff_code, &Secret::new(staff.pin.expose()))
            .await?;
    step(
        5,
        format!(
            "Logged in staff {} as {}: the access token verified against the ERP's keys (valid until {})",
            staff.staff_code,
            session.store_staff_id,
            session.expires_at.format("%H:%M UTC")
        ),
    );

    erp.pause().await;
    let sessions = spacepos_node::staff::sessions(&node).await?;
    let offline = sessions.current().await?;
    erp.resume().await.map_err(|e| {
        NodeError::new(
            Kind::Internal,
            format!("cannot restart the ERP simulator: {e}"),
        )
    })?;
    match offline {
        SessionStatus::Active(s) => step(
            6,
            format!(
                "Stopped the ERP: the staff session of {} still verifies offline, with the cached keys",
                s.store_staff_id
            ),
        ),
        other => {
            return Err(NodeError::new(
                Kind::Internal,
                format!("the session did not survive the ERP outage: {other:?}"),
            ));
        }
    }

    sync_steps(erp, &node, &record).await?;
    update_and_presence_steps(erp, &node, &record).await?;

    let device_calls: Vec<_> = erp
        .requests()
        .into_iter()
        .filter(|r| r.route != Some(Route::Onboard))
        .collect();
    let with_headers = device_calls
        .iter()
        .filter(|r| {
            ["x-client-id", "x-client-secret", "x-terminal"]
                .iter()
                .all(|h| r.header(h).is_some())
                && r.header("user-agent")
                    .is_some_and(|ua| ua.starts_with("SpacePOS/"))
        })
        .count();
    println!(
        "\nDone. The ERP recorded {} device calls; {} carried X-Client-Id, X-Client-Secret, X-Terminal and a User-Agent.",
        device_calls.len(),
        with_headers
    );
    Ok(())
}

fn mode_of(path: &std::path::Path) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(path) {
            Ok(m) => format!("{:03o}, owner only", m.permissions().mode() & 0o777),
            Err(e) => format!("unknown ({e})"),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        "protected by the data directory's ACL".to_owned()
    }
}

/// Steps 7-9: seed, push queued sales, apply a live change.
async fn sync_steps(erp: &FakeErp, node: &Node, record: &TerminalRecord) -> Result<(), NodeError> {
    let config = node.config(Some(record))?;
    let client = Arc::new(node.device_client(&config, record, None)?);
    let store = Arc::new(node.store().await?);
    let internal = |e: &dyn std::fmt::Display| NodeError::new(Kind::Internal, e.to_string());

    let seeder = Seeder::new(client.clone(), store.clone());
    let results = seeder
        .sync_all(None, &|_| {})
        .await
        .map_err(|e| internal(&e))?;
    let mut total = 0;
    for (dataset, _) in &results {
        total += store
            .checkpoint(dataset)
            .await
            .map_err(|e| internal(&e))?
            .entities;
    }
    step(
        7,
        format!(
            "Seeded {} datasets from snapshots: {total} entities in {}",
            results.len(),
            node.store_path().display()
        ),
    );

    let sales: Vec<NewOperation> = (1..=3)
        .map(|n| NewOperation {
            id: Uuid::new_v4(),
            destination: spacepos_sync::Destination::ErpOperations,
            kind: "sale.completed".into(),
            occurred_at: Utc::now(),
            store_staff_id: Some("S-0042".into()),
            payload: serde_json::json!({"receiptNumber": format!("12-3-{n:06}"), "totalMinor": 250 * n, "currency": "GBP"}),
        })
        .collect();
    store.enqueue(&sales).await.map_err(|e| internal(&e))?;
    let sender = Sender::to_erp(
        store.clone(),
        client.clone(),
        DeviceGate::new(),
        Arc::new(SystemClock),
        SendTimers {
            every: Duration::from_secs(5),
            retry: Duration::from_secs(60),
        },
    );
    let report = sender.drain().await.map_err(|e| internal(&e))?;
    step(
        8,
        format!(
            "Queued 3 sales in the outbox and pushed them: {} done, {} parked; the ERP holds {} operations",
            report.done,
            report.parked,
            erp.accepted_count()
        ),
    );

    // A price changes at the ERP.
    let price = store
        .entities("prices", None, 1)
        .await
        .map_err(|e| internal(&e))?
        .into_iter()
        .next()
        .ok_or_else(|| NodeError::new(Kind::Internal, "the demo has no prices"))?;
    let mut data = price.data.clone();
    data["priceMinor"] = serde_json::json!(data["priceMinor"].as_i64().unwrap_or(100) + 10);
    let sequence = erp
        .mutate(
            "prices",
            vec![EntityChange::Upsert {
                id: price.id.clone(),
                data,
            }],
        )
        .map_err(|e| internal(&e))?;
    let how = match &config.node.amqp_url {
        Some(url) => {
            live_event(
                erp,
                node,
                store.clone(),
                url,
                &record.client_id,
                &config.node.exchange,
                sequence,
            )
            .await?
        }
        None => {
            let r = seeder
                .sync_dataset("prices", None, &|_| {})
                .await
                .map_err(|e| internal(&e))?;
            if !matches!(r, DatasetSync::CaughtUp { .. }) {
                return Err(NodeError::new(
                    Kind::Internal,
                    format!("the catch-up did not happen: {r:?}"),
                ));
            }
            "RabbitMQ is not reachable on 127.0.0.1:5672, so it came through GET /api/pos/datasets/prices/changes".to_owned()
        }
    };
    let now = store
        .entity("prices", &price.id)
        .await
        .map_err(|e| internal(&e))?;
    let version = now.map(|e| e.version).unwrap_or(0);
    step(
        9,
        format!(
            "The ERP changed price {} (sequence {sequence}); version {} -> {version} here: {how}",
            price.id, price.version
        ),
    );
    Ok(())
}

/// Publish the change as the ERP does and let the terminal's inbox apply it.
async fn live_event(
    erp: &FakeErp,
    node: &Node,
    store: Arc<spacepos_sqlite::SqliteStore>,
    url: &RedactedUrl,
    client_id: &str,
    exchange: &str,
    sequence: u64,
) -> Result<String, NodeError> {
    let internal = |e: &dyn std::fmt::Display| NodeError::new(Kind::Internal, e.to_string());
    let record = node.require_record().await?;
    let config = node.config(Some(&record))?;
    let bus = spacepos_node::runtime::Bus::start(&config, &record)?
        .ok_or_else(|| NodeError::new(Kind::Internal, "no bus"))?;
    let result = async {
        bus.subscriber.wait_connected(Duration::from_secs(10)).await.map_err(|e| internal(&e))?;
        let event = erp.dataset_changed_event("prices", sequence).map_err(|e| internal(&e))?;
        let body = serde_json::to_vec(&event).map_err(|e| internal(&e))?;
        let publisher = ErpBusClient::connect(url, exchange).await.map_err(|e| internal(&e))?;
        publisher
            .publish("DatasetChangedIntegrationEvent", &event.id.to_string(), &body)
            .await
            .map_err(|e| internal(&e))?;
        let subscriber: Arc<dyn EventSubscriber> = bus.subscriber.clone();
        let mut inbox = Inbox::new(subscriber.clone(), Arc::new(WireDecoder), store.clone());
        let token = CancellationToken::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while store.checkpoint("prices").await.map_err(|e| internal(&e))?.last_sequence < Some(sequence) {
            if tokio::time::Instant::now() > deadline {
                return Err(NodeError::new(Kind::Internal, "the live event did not arrive within 15 s"));
            }
            let deliveries = subscriber.receive(100, Duration::from_millis(50)).await.map_err(|e| internal(&e))?;
            inbox.process(deliveries, &token).await;
        }
        Ok::<_, NodeError>((publisher, format!("it arrived as a DatasetChangedIntegrationEvent through RabbitMQ ({}) and was applied", url)))
    }
    .await;
    bus.close().await;
    let (publisher, how) = result?;
    // The demo's terminal is gone with its temporary directory: so are its queues.
    publisher.delete_terminal_queues(client_id).await.ok();
    publisher.close().await;
    Ok(how)
}

/// Steps 10-11: a signed release is staged; a presence beat is sent.
async fn update_and_presence_steps(
    erp: &FakeErp,
    node: &Node,
    record: &TerminalRecord,
) -> Result<(), NodeError> {
    let internal = |e: &dyn std::fmt::Display| NodeError::new(Kind::Internal, e.to_string());
    let config = node.config(Some(record))?;
    let client = Arc::new(node.device_client(&config, record, None)?);
    let store = Arc::new(node.store().await?);

    let release = erp
        .publish_release(
            spacepos_fake_erp::ReleaseSpec::new(spacepos_core::ComponentId::SpacePos, "0.2.0")
                .with_size(3 * 1024 * 1024),
        )
        .map_err(|e| internal(&e))?;
    let mut config = config;
    config.updates.trusted_keys = vec![erp.update_keys().primary.key_line];
    let updates =
        spacepos_node::updates::service(node, &config, record, client.clone(), store.clone(), None)
            .await?
            .ok_or_else(|| NodeError::new(Kind::Internal, "no update service"))?;
    let chunks = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = chunks.clone();
    updates.set_progress(move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    });
    let report = updates.check().await.map_err(|e| internal(&e))?;
    if report.staged().is_empty() {
        return Err(NodeError::new(
            Kind::Internal,
            format!("the release was not staged: {report:?}"),
        ));
    }
    step(
        10,
        format!(
            "The ERP published SpacePOS {} ({} KiB): downloaded in {} ranged requests, minisign signature \
             (version {}) and sha256 verified, staged; POSComponentReadyEvent queued in the outbox",
            release.version,
            release.size.unwrap_or(0) / 1024,
            chunks.load(std::sync::atomic::Ordering::Relaxed),
            release.version,
        ),
    );
    detail(
        "snooze it with `spacepos updates snooze spacepos` (3 times, 5 minutes each); the desktop app installs it at a safe moment",
    );

    let Some(url) = config.node.amqp_url.clone() else {
        step(
            11,
            "Presence beats need the event bus: no RabbitMQ here, so no beat was sent",
        );
        return Ok(());
    };
    let mut amqp = spacepos_amqp::AmqpConfig::new(url, record.client_id.clone());
    amqp.exchange = config.node.exchange.clone();
    let publisher = Arc::new(spacepos_amqp::AmqpPublisher::start(amqp).map_err(|e| internal(&e))?);
    publisher
        .wait_connected(Duration::from_secs(10))
        .await
        .map_err(|e| internal(&e))?;
    // The Ready event goes out with confirms, as the runtime's bus sender does.
    let bus_sender = Sender::to_bus(
        store.clone(),
        publisher.clone(),
        DeviceGate::new(),
        Arc::new(SystemClock),
        SendTimers {
            every: Duration::from_secs(5),
            retry: Duration::from_secs(30),
        },
    );
    let published = bus_sender.drain().await.map_err(|e| internal(&e))?;
    let instance_id = node.load_state().await?.state.instance_id;
    let heartbeat = spacepos_presence::Heartbeat::new(
        record.identity(),
        record.client_secret.clone(),
        instance_id,
        Arc::new(spacepos_node::components::NodeComponents {
            till: true,
            state: node.state.clone(),
        }),
        Arc::new(NoStaff),
        Arc::new(StoreSummary(store.clone())),
        Arc::new(spacepos_amqp::WirePresenceEncoder),
        publisher.clone(),
        spacepos_presence::PresenceControl::new(spacepos_presence::PresenceSettings::new(
            true, 300,
        )),
        Arc::new(SystemClock),
    );
    let settings =
        spacepos_presence::PresenceSettings::new(true, config.terminal.presence_interval_seconds);
    let beat = heartbeat
        .assemble(
            settings,
            Duration::from_secs(u64::from(config.terminal.presence_interval_seconds)),
        )
        .await;
    let event =
        spacepos_presence::PresenceEncoder::encode(&spacepos_amqp::WirePresenceEncoder, &beat);
    spacepos_sync::EventPublisher::publish(publisher.as_ref(), &event)
        .await
        .map_err(|e| internal(&e))?;
    publisher.close().await;
    step(
        11,
        format!(
            "Sent {} tracking event(s) and a POSPresenceEvent through RabbitMQ with confirms: {} component(s), \
             {} pending operation(s), next beat expected at {}",
            published.done,
            beat.components.len(),
            beat.sync.pending_operations,
            beat.next_expected_at.format("%H:%M:%S UTC")
        ),
    );
    Ok(())
}

struct NoStaff;

#[async_trait::async_trait]
impl spacepos_presence::StaffSessionSource for NoStaff {
    async fn current_staff_id(&self) -> Option<String> {
        None
    }
}

/// The outbox figures of a beat, read from the store.
struct StoreSummary(Arc<spacepos_sqlite::SqliteStore>);

#[async_trait::async_trait]
impl spacepos_presence::SyncSummarySource for StoreSummary {
    async fn summary(&self) -> spacepos_presence::SyncSummary {
        let stats = self.0.stats().await.unwrap_or_default();
        spacepos_presence::SyncSummary {
            pending_operations: stats.pending,
            oldest_pending_age_seconds: None,
            parked_operations: stats.parked,
            last_event_applied_at: None,
        }
    }
}
