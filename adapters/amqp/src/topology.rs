//! Declaring the terminal's part of the broker topology (contract section 7).
//! Every declaration is idempotent, so it runs on every (re)connection: a
//! broker that lost its definitions (a fresh node, a deleted queue) gets
//! them back.

use lapin::options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

use crate::config::Topology;

/// The exchange: direct, durable.
pub(crate) async fn declare_exchange(channel: &Channel, exchange: &str) -> lapin::Result<()> {
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Direct,
            ExchangeDeclareOptions {
                durable: true,
                ..ExchangeDeclareOptions::default()
            },
            FieldTable::default(),
        )
        .await
}

/// The arguments of the terminal's queue: dead letters go through the default
/// exchange to the terminal's own dead-letter queue.
pub(crate) fn queue_arguments(topology: &Topology) -> FieldTable {
    let mut args = FieldTable::default();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(LongString::from("")),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(LongString::from(topology.dead_letter_queue.as_str())),
    );
    args
}

/// The exchange, the dead-letter queue, the terminal's queue and its bindings.
pub(crate) async fn declare_terminal_topology(
    channel: &Channel,
    topology: &Topology,
) -> lapin::Result<()> {
    declare_exchange(channel, &topology.exchange).await?;
    let durable = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    channel
        .queue_declare(
            topology.dead_letter_queue.as_str().into(),
            durable,
            FieldTable::default(),
        )
        .await?;
    channel
        .queue_declare(
            topology.queue.as_str().into(),
            durable,
            queue_arguments(topology),
        )
        .await?;
    for event in &topology.bindings {
        channel
            .queue_bind(
                topology.queue.as_str().into(),
                topology.exchange.as_str().into(),
                (*event).into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
    }
    Ok(())
}
