//! The ERP's RabbitMQ event bus (contract section 7), over lapin.
//!
//! Owns the terminal's side of the bus: the topology it declares, consuming
//! its queue with manual acknowledgements, confirmed publishing, and
//! reconnecting after a broker restart or a network loss. Implements the sync
//! domain's ports [`EventSubscriber`](spacepos_sync::EventSubscriber)
//! ([`AmqpSubscriber`]) and [`EventPublisher`](spacepos_sync::EventPublisher)
//! ([`AmqpPublisher`]), and the updates domain's
//! [`TrackingEncoder`](spacepos_updates::TrackingEncoder) ([`WireTrackingEncoder`]:
//! Ready/Applied records as outbox entries in the wire format); [`ErpBusClient`] is the ERP's side (publishing events
//! as the ERP does, reading queues) for the fake ERP, demos and tests.
//!
//! **Topology**, declared on every (re)connection (all declarations are
//! idempotent): the exchange (`erp_event_bus` unless configured; direct,
//! durable); the terminal's durable queue `spacepos.<clientId>` with
//! `x-dead-letter-exchange` = `""` and `x-dead-letter-routing-key` =
//! `spacepos.<clientId>.dlq`, bound to the exchange with each name of
//! [`CONSUMED_EVENTS`](spacepos_erp_wire::events::CONSUMED_EVENTS); the
//! durable dead-letter queue `spacepos.<clientId>.dlq`. Both are classic
//! queues, the broker's default type (no `x-queue-type` argument). A queue
//! that exists with other arguments makes the broker refuse the declaration
//! (406): that is [`BusError::Refused`](spacepos_sync::BusError::Refused),
//! which needs an operator. The publisher declares the exchange only.
//!
//! **Consuming**: `basic.qos(prefetch)` (default 1000, two batches of the sync
//! loop), manual acknowledgement.
//! An event's type is its AMQP `type` property, else its routing key.
//! `dead_letter` is `basic.reject(requeue = false)`, so the message lands in
//! the dead-letter queue with its body. **Ack strategy**: the subscriber keeps
//! the set of outstanding delivery tags of the current channel (delivered by
//! the broker and not yet settled, including those still buffered for
//! `receive`). `ack(tags)` sends ONE `basic.ack(multiple = true)` up to the
//! highest tag of the longest run of outstanding tags that are all in the
//! set (the normal case: the sync loop dead-letters the poison deliveries of
//! a batch, then acks the rest, which is one frame), and individual acks for
//! the requested tags above that run. Tags that are not outstanding (settled
//! already, or of an older connection) are skipped, since acknowledging an
//! unknown tag is a channel error. On this machine, multiple-acks make
//! consuming about 4 times faster than one ack per message.
//!
//! **Publishing**: publisher confirms; properties `message_id`, `type`,
//! `content_type = application/json`, `delivery_mode = 2`; routing key = the
//! event type. `publish` returns `Ok` only after the broker's ack; a nack or a
//! channel closed before the confirm is `NotConfirmed`. Not `mandatory`: see
//! [`AmqpPublisher`].
//!
//! **Reconnect**: the subscriber and the publisher each own a connection and
//! a background task (started by `start`, stopped by `close` or drop). When the
//! connection fails, the channel closes or the consumer stream ends, the task
//! reconnects with exponential backoff and jitter (from `reconnect_min`, 0.5 s,
//! doubling to `reconnect_max`, 30 s; a connection that lived at least
//! `reconnect_max` starts over at the minimum), declares the topology again and
//! consumes again. Each connection is a new *generation*, carried in
//! [`DeliveryTag::connection`](spacepos_sync::DeliveryTag): deliveries of a lost
//! generation are dropped from `receive` and their acknowledgements ignored,
//! because the broker delivers them again (delivery tag numbers restart at 1 on
//! every channel, so without the generation a stale ack would settle the wrong
//! message). Refusals (bad credentials 403, missing virtual host 530, topology
//! mismatch 406) are retried at `reconnect_max` only. Logs: one warning per
//! outage with the host and the redacted URL, one info line when connected
//! again, never one line per attempt; message bodies are never logged.
//!
//! lapin 4's own `enable_auto_recover()` is not used: it replays the topology
//! on the same `Channel` object, whose delivery tags restart at 1 without a
//! signal this adapter could attach a generation to; its default backoff
//! gives up after 16 tries; and the loop here decides what is logged. Our
//! loop is short, and its states are visible as [`LinkStatus`].
//!
//! **Logging caveat (lapin 4.12 / amq-protocol 10.6)**: at TRACE, target
//! `lapin::channels` logs every incoming frame with `Debug` (message bodies
//! included), `lapin::io_loop` logs every outgoing method frame (the SASL
//! `connection.start-ok` response holds the broker password) and
//! `lapin::frames` logs discarded outgoing frames with their bodies; at WARN,
//! `lapin::returned_messages` logs returned messages with their bodies. Apps
//! must cap `lapin` (and `amq_protocol*`) at INFO or below in their filters.

mod backoff;
mod codec;
mod config;
mod erp_side;
mod error;
mod link;
mod presence_encoder;
mod publisher;
mod subscriber;
mod topology;
mod tracking;

pub use codec::WireDecoder;
pub use config::{
    AmqpConfig, AmqpConfigError, DEFAULT_EXCHANGE, Topology, dead_letter_queue_name, queue_name,
};
pub use erp_side::{ErpBusClient, QueuedMessage};
pub use link::LinkStatus;
pub use presence_encoder::WirePresenceEncoder;
pub use publisher::AmqpPublisher;
pub use subscriber::AmqpSubscriber;
pub use tracking::WireTrackingEncoder;
