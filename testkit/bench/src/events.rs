//! `events`: applying `DatasetChangedIntegrationEvent`s from RabbitMQ vs a
//! bare lapin consume-and-ack loop on the same queue with the same messages.

use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use clap::Args;
use futures_core::Stream;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};
use spacepos_amqp::{AmqpConfig, AmqpSubscriber, ErpBusClient, WireDecoder};
use spacepos_core::RedactedUrl;
use spacepos_erp_wire::events::{DatasetChangedIntegrationEvent, IntegrationEvent};
use spacepos_fake_erp::{DatasetKind, DatasetSpec, FakeErpConfig};
use spacepos_sqlite::SqliteStore;
use spacepos_sync::{
    BATCH, BusError, BusEvent, Delivery, DeliveryTag, EventDecoder, EventSubscriber, Inbox, LINGER,
    LocalStore, Seeder,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::fixture::{Erp, step};
use crate::report::{Comparison, Figure, thousands};
use crate::timed::{Clocks, Timed};
use crate::{Common, Result};

const DATASET: &str = "products";
/// Entities of the dataset the events change (seeded before they are made).
const BASE_ENTITIES: u64 = 10_000;
const WAIT_LIMIT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Args)]
pub(crate) struct EventsArgs {
    /// `events`: DatasetChangedIntegrationEvents to publish and apply.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub(crate) events: u64,
    /// `events`: the bare consumer acknowledges (multiple = true) every this many deliveries.
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub(crate) raw_ack_every: u64,
    /// `events`: the prefetch of both sides (default: the adapter's default, 1000).
    #[arg(long, value_name = "N")]
    pub(crate) prefetch: Option<u16>,
}

/// One message as the ERP publishes it.
struct Message {
    id: String,
    body: Vec<u8>,
}

pub(crate) async fn run(args: &EventsArgs, common: &Common, dir: &Path) -> Result<Comparison> {
    let n = args.events;
    eprintln!("events: {} DatasetChangedIntegrationEvents", thousands(n));
    let url = RedactedUrl::parse(&common.amqp_url)?;
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    let mut config = AmqpConfig::new(url.clone(), format!("bench-{suffix}"));
    config.exchange = format!("erp_event_bus.bench.{suffix}");
    if let Some(prefetch) = args.prefetch {
        config.prefetch = prefetch;
    }
    let erp_bus = ErpBusClient::connect(&url, &config.exchange).await?;
    let result = measure(args, &config, &erp_bus, dir).await;
    // Whatever happened: the benchmark's queues and exchange go.
    let cleanup = async {
        erp_bus.delete_terminal_queues(&config.client_id).await?;
        erp_bus.delete_exchange().await?;
        Ok::<_, BusError>(())
    }
    .await;
    erp_bus.close().await;
    if let Err(e) = cleanup {
        eprintln!(
            "warning: could not delete the benchmark's exchange {} and queues of {}: {e}",
            config.exchange, config.client_id
        );
    }
    result
}

async fn measure(
    args: &EventsArgs,
    config: &AmqpConfig,
    erp_bus: &ErpBusClient,
    dir: &Path,
) -> Result<Comparison> {
    let n = args.events;
    // The events: n real changes of a seeded dataset, made by the fake ERP.
    let erp = Erp::start(FakeErpConfig {
        datasets: vec![DatasetSpec::of(DatasetKind::Products, BASE_ENTITIES)],
        ..FakeErpConfig::default()
    })
    .await?;
    let store = SqliteStore::open(dir.join("events-product.db")).await?;
    let alone = SqliteStore::open(dir.join("events-store-alone.db")).await?;
    let (messages, last_sequence, items) = step(
        "seed the product's store and make the events (not timed)",
        async {
            let seeder = Seeder::new(Arc::new(erp.product_client()?), Arc::new(store.clone()));
            let base = seeder.seed(DATASET, None, &|_| {}).await?;
            Seeder::new(Arc::new(erp.product_client()?), Arc::new(alone.clone()))
                .seed(DATASET, None, &|_| {})
                .await?;
            let mut messages = Vec::with_capacity(n as usize);
            let mut items = 0usize;
            let mut made = 0u64;
            while made < n {
                let count = (n - made).min(100_000) as usize;
                erp.erp.mutate_random(DATASET, count)?;
                made += count as u64;
            }
            for sequence in base + 1..=base + n {
                let event = erp.erp.dataset_changed_event(DATASET, sequence)?;
                items += event.items.len();
                messages.push(Message {
                    id: event.id.to_string(),
                    body: serde_json::to_vec(&event)?,
                });
            }
            Ok((messages, base + n, items))
        },
    )
    .await?;
    erp.shutdown().await;
    let bytes: usize = messages.iter().map(|m| m.body.len()).sum();

    // The terminal's topology, declared once by the product's subscriber.
    let declare = AmqpSubscriber::start(config.clone())?;
    declare.wait_connected(Duration::from_secs(15)).await?;
    declare.close().await;
    let queue = config.topology().queue;

    // The raw limit: a bare lapin consumer of the same queue.
    publish(erp_bus, &messages).await?;
    let raw = step("raw: bare lapin consume + multiple-ack", async {
        raw_consume(config, &queue, n, args.raw_ack_every).await
    })
    .await?;
    expect_empty(erp_bus, &queue).await?;

    // The product: AmqpSubscriber + WireDecoder + Inbox + SqliteStore.
    publish(erp_bus, &messages).await?;
    let clocks = Clocks::default();
    let (acked_tx, mut acked_rx) = watch::channel(0u64);
    let product = step("product: Inbox (decode, dedupe, commit, ack)", async {
        let start = Instant::now();
        let subscriber = Arc::new(AmqpSubscriber::start(config.clone())?);
        let bus = Arc::new(AckCounter {
            inner: Timed::new(subscriber.clone(), &clocks),
            acked: acked_tx,
        });
        let inbox = Inbox::new(
            bus,
            Timed::new(Arc::new(WireDecoder), &clocks),
            Timed::new(Arc::new(store.clone()), &clocks),
        );
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(inbox.run(shutdown.clone()));
        let waited = tokio::time::timeout(WAIT_LIMIT, acked_rx.wait_for(|acked| *acked >= n))
            .await
            .map(|r| r.is_ok());
        let elapsed = start.elapsed();
        shutdown.cancel();
        let stats = running.await?;
        subscriber.close().await;
        match waited {
            Ok(true) => {}
            _ => {
                return Err(format!(
                    "the product acknowledged {} of {n} events within {WAIT_LIMIT:?} ({stats:?})",
                    *acked_rx.borrow()
                )
                .into());
            }
        }
        if stats.applied != n {
            return Err(format!(
                "the product applied {} of {n} events: {stats:?}",
                stats.applied
            )
            .into());
        }
        Ok(elapsed)
    })
    .await?;
    let checkpoint = store.checkpoint(DATASET).await?;
    if checkpoint.last_sequence != Some(last_sequence) {
        return Err(format!(
            "the dataset is at sequence {:?}, not {last_sequence}",
            checkpoint.last_sequence
        )
        .into());
    }
    store.close().await;
    expect_empty(erp_bus, &queue).await?;

    // Diagnostic: the same events decoded and applied straight to a store
    // seeded the same way, in batches of the Inbox's size (no broker).
    let store_alone = step(
        "diagnostic: the same events applied without the broker",
        async {
            let mut events = Vec::with_capacity(messages.len());
            for (n, m) in messages.iter().enumerate() {
                let delivery = Delivery {
                    tag: DeliveryTag {
                        connection: 1,
                        tag: n as u64 + 1,
                    },
                    event_type: DatasetChangedIntegrationEvent::NAME.into(),
                    message_id: Some(m.id.clone()),
                    body: m.body.clone(),
                    redelivered: false,
                };
                match WireDecoder.decode(&delivery) {
                    Ok(BusEvent::DatasetChanged(e)) => events.push(e),
                    other => return Err(format!("an event did not decode: {other:?}").into()),
                }
            }
            let start = Instant::now();
            for chunk in events.chunks(BATCH) {
                alone.apply_events(chunk).await?;
            }
            Ok(start.elapsed())
        },
    )
    .await?;
    alone.close().await;

    let breakdown = clocks.breakdown(&[
        (
            "bus.receive",
            "EventSubscriber::receive (waiting for up to one batch of deliveries, linger 20 ms)",
        ),
        (
            "decode",
            "EventDecoder::decode (JSON into the domain event)",
        ),
        (
            "store.apply_events",
            "LocalStore::apply_events (SQLite: dedupe, upserts, inbox ids, sequence; one commit)",
        ),
        (
            "bus.ack",
            "EventSubscriber::ack (one multiple-ack per batch)",
        ),
    ]);
    Ok(Comparison {
        title: format!("Apply {} events from RabbitMQ", thousands(n)),
        product_label: format!(
            "`Inbox::run` with `AmqpSubscriber` (prefetch {}), `WireDecoder` and `SqliteStore` \
             (batches of {BATCH}, linger {LINGER:?}): decode, dedupe by id, apply and record in one \
             commit, then one multiple-ack; timed from connecting until the last event is acknowledged",
            config.prefetch
        ),
        raw_label: format!(
            "a bare lapin consumer on the same queue with the same {} messages: manual ack, \
             prefetch {}, `basic.ack(multiple = true)` every {} deliveries, nothing decoded or stored; \
             timed from connecting until the last ack",
            thousands(n),
            config.prefetch,
            args.raw_ack_every
        ),
        product: Figure::rate(n, "events", product),
        raw: Figure::rate(n, "events", raw),
        goal: Some(0.5),
        breakdown,
        notes: vec![
            format!(
                "diagnostic, same run: the same events decoded and applied straight to a store seeded \
             the same way, in batches of {BATCH} (`LocalStore::apply_events`, no broker): {:.2} s, \
             {} events/s",
                store_alone.as_secs_f64(),
                thousands((n as f64 / store_alone.as_secs_f64().max(1e-9)) as u64)
            ),
            format!(
                "the events are {} real random changes of a {}-entity dataset made by the fake ERP \
             ({} entities touched, 1 to 3 per event; {} bytes per message on average), \
             published persistent with confirms before each side runs (not timed); \
             exchange and queues have unique names and are deleted afterwards",
                thousands(n),
                thousands(BASE_ENTITIES),
                thousands(items as u64),
                bytes / messages.len().max(1)
            ),
        ],
    })
}

/// Publish every message as the ERP does (persistent, confirmed), not timed.
async fn publish(erp_bus: &ErpBusClient, messages: &[Message]) -> Result<()> {
    step(
        &format!("publish {} messages (not timed)", messages.len()),
        async {
            for chunk in messages.chunks(1000) {
                let batch: Vec<(&str, &str, &[u8])> = chunk
                    .iter()
                    .map(|m| {
                        (
                            DatasetChangedIntegrationEvent::NAME,
                            m.id.as_str(),
                            m.body.as_slice(),
                        )
                    })
                    .collect();
                erp_bus.publish_all(&batch).await?;
            }
            Ok(())
        },
    )
    .await
}

async fn expect_empty(erp_bus: &ErpBusClient, queue: &str) -> Result<()> {
    match erp_bus.message_count(queue).await? {
        Some(0) => Ok(()),
        other => Err(format!("queue {queue} still holds {other:?} messages").into()),
    }
}

/// Consume `n` messages of `queue`, acknowledging every `ack_every`; the time taken.
async fn raw_consume(config: &AmqpConfig, queue: &str, n: u64, ack_every: u64) -> Result<Duration> {
    let start = Instant::now();
    let connection = Connection::connect(
        config.url.expose().as_str(),
        ConnectionProperties::default(),
    )
    .await?;
    let channel = connection.create_channel().await?;
    channel
        .basic_qos(config.prefetch, BasicQosOptions { global: false })
        .await?;
    let mut consumer = channel
        .basic_consume(
            queue.into(),
            "spacepos-bench-raw".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;
    let ack_every = ack_every.max(1);
    let mut received = 0u64;
    while received < n {
        let next = tokio::time::timeout(
            Duration::from_secs(30),
            std::future::poll_fn(|cx| Pin::new(&mut consumer).poll_next(cx)),
        )
        .await;
        let delivery = match next {
            Ok(Some(Ok(d))) => d,
            Ok(Some(Err(e))) => return Err(e.into()),
            Ok(None) => return Err("the consumer stream ended".into()),
            Err(_) => return Err(format!("no delivery for 30 s after {received} of {n}").into()),
        };
        received += 1;
        if received.is_multiple_of(ack_every) || received == n {
            channel
                .basic_ack(delivery.delivery_tag, BasicAckOptions { multiple: true })
                .await?;
        }
    }
    let elapsed = start.elapsed();
    connection.close(200, "done".into()).await?;
    Ok(elapsed)
}

/// Counts the deliveries acknowledged, so the run ends at the last ack.
struct AckCounter<S> {
    inner: Arc<S>,
    acked: watch::Sender<u64>,
}

#[async_trait]
impl<S: EventSubscriber> EventSubscriber for AckCounter<S> {
    async fn receive(&self, max: usize, linger: Duration) -> Result<Vec<Delivery>, BusError> {
        self.inner.receive(max, linger).await
    }
    async fn ack(&self, tags: &[DeliveryTag]) -> Result<(), BusError> {
        let result = self.inner.ack(tags).await;
        if result.is_ok() {
            self.acked.send_modify(|n| *n += tags.len() as u64);
        }
        result
    }
    async fn dead_letter(&self, tag: DeliveryTag) -> Result<(), BusError> {
        self.inner.dead_letter(tag).await
    }
}
