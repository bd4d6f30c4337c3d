use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use spacepos_sync::{
    BusError, Delivery, DeliveryTag, EventPublisher, EventSubscriber, OutgoingEvent,
};
use tokio::sync::Notify;
use tokio::time::{Instant, timeout_at};

use crate::suites::event_bus::BusMessage;

const HOST: &str = "memory-bus";

/// An in-memory broker holding one terminal's queue, its dead-letter queue and
/// the exchange it publishes to; implements [`EventSubscriber`] and
/// [`EventPublisher`] with the semantics of `spacepos-amqp` (checked by
/// [`crate::suites::event_bus`]).
///
/// Clones share the broker. Besides the ports, a test can act as the ERP
/// ([`erp_publish`](Self::erp_publish)), look at what the terminal published
/// ([`published`](Self::published)) and dead-lettered
/// ([`dead_letters`](Self::dead_letters)), and break things:
/// [`disconnect`](Self::disconnect) (connection lost and regained at once:
/// unacknowledged deliveries go back to the queue, redelivered, and the
/// connection generation moves on), [`set_down`](Self::set_down) (broker
/// unreachable until set up again, as during a restart),
/// [`set_refused`](Self::set_refused) and [`set_nack`](Self::set_nack).
#[derive(Debug, Clone)]
pub struct MemoryBus {
    inner: Arc<Mutex<Inner>>,
    arrived: Arc<Notify>,
}

#[derive(Debug)]
struct Inner {
    generation: u64,
    next_tag: u64,
    queue: VecDeque<BusMessage>,
    unacked: BTreeMap<u64, BusMessage>,
    dead_letters: Vec<BusMessage>,
    published: Vec<BusMessage>,
    down: bool,
    refused: Option<String>,
    nack: bool,
    acked: u64,
}

impl Default for MemoryBus {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryBus {
    /// An empty, connected bus (generation 1).
    pub fn new() -> Self {
        MemoryBus {
            inner: Arc::new(Mutex::new(Inner {
                generation: 1,
                next_tag: 1,
                queue: VecDeque::new(),
                unacked: BTreeMap::new(),
                dead_letters: Vec::new(),
                published: Vec::new(),
                down: false,
                refused: None,
                nack: false,
                acked: 0,
            })),
            arrived: Arc::new(Notify::new()),
        }
    }

    /// The ERP publishes an event the terminal's queue is bound to: it is
    /// queued as a persistent JSON message with `type` = `event_type`.
    pub fn erp_publish(&self, event_type: &str, message_id: &str, body: &[u8]) {
        self.lock().queue.push_back(BusMessage {
            routing_key: event_type.to_owned(),
            event_type: Some(event_type.to_owned()),
            message_id: Some(message_id.to_owned()),
            content_type: Some("application/json".into()),
            persistent: true,
            body: body.to_vec(),
            redelivered: false,
        });
        self.arrived.notify_waiters();
    }

    /// The ERP publishes without the `type` property (routing key only).
    pub fn erp_publish_untyped(&self, routing_key: &str, message_id: &str, body: &[u8]) {
        self.erp_publish_raw(BusMessage {
            routing_key: routing_key.to_owned(),
            event_type: None,
            message_id: Some(message_id.to_owned()),
            content_type: Some("application/json".into()),
            persistent: true,
            body: body.to_vec(),
            redelivered: false,
        });
    }

    /// Queue a message exactly as given (to test a missing `type`, for example).
    pub fn erp_publish_raw(&self, message: BusMessage) {
        self.lock().queue.push_back(message);
        self.arrived.notify_waiters();
    }

    /// The connection is lost and regained at once: every unacknowledged
    /// delivery goes back to the front of the queue (in delivery order,
    /// marked redelivered) and the connection generation moves on.
    pub fn disconnect(&self) {
        self.lock().lose_connection();
        self.arrived.notify_waiters();
    }

    /// The broker becomes unreachable (`true`, as when it restarts: the
    /// connection is lost as by [`disconnect`](Self::disconnect)) or reachable
    /// again (`false`). While down, `receive` returns `Unavailable` after its
    /// linger and `publish` returns `Unavailable`.
    pub fn set_down(&self, down: bool) {
        let mut inner = self.lock();
        if down && !inner.down {
            inner.lose_connection();
        }
        inner.down = down;
        drop(inner);
        self.arrived.notify_waiters();
    }

    /// The broker refuses the terminal (`Some(detail)`) or accepts it again.
    pub fn set_refused(&self, detail: Option<&str>) {
        self.lock().refused = detail.map(str::to_owned);
        self.arrived.notify_waiters();
    }

    /// The broker nacks every publish (`true`) or confirms again (`false`).
    pub fn set_nack(&self, nack: bool) {
        self.lock().nack = nack;
    }

    /// What the terminal published, oldest first (kept).
    pub fn published(&self) -> Vec<BusMessage> {
        self.lock().published.clone()
    }

    /// What the terminal published, oldest first, removed from the record.
    pub fn take_published(&self) -> Vec<BusMessage> {
        std::mem::take(&mut self.lock().published)
    }

    /// The dead-letter queue, oldest first (kept).
    pub fn dead_letters(&self) -> Vec<BusMessage> {
        self.lock().dead_letters.clone()
    }

    /// The dead-letter queue, oldest first, emptied.
    pub fn take_dead_letters(&self) -> Vec<BusMessage> {
        std::mem::take(&mut self.lock().dead_letters)
    }

    /// Messages waiting in the terminal's queue (not delivered).
    pub fn ready(&self) -> usize {
        self.lock().queue.len()
    }

    /// Deliveries handed out and not settled yet.
    pub fn unacked(&self) -> usize {
        self.lock().unacked.len()
    }

    /// Deliveries acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.lock().acked
    }

    /// The current connection generation (1 at the start).
    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    fn lose_connection(&mut self) {
        let unacked = std::mem::take(&mut self.unacked);
        for (_, mut message) in unacked.into_iter().rev() {
            message.redelivered = true;
            self.queue.push_front(message);
        }
        self.generation += 1;
        // Tags are per channel: they start over on the new connection.
        self.next_tag = 1;
    }

    fn unusable(&self) -> Option<BusError> {
        if let Some(detail) = &self.refused {
            return Some(BusError::Refused {
                host: HOST.into(),
                detail: detail.clone(),
            });
        }
        self.down.then(|| BusError::Unavailable {
            host: HOST.into(),
            detail: "the broker is down".into(),
        })
    }

    fn settle(&mut self, tag: DeliveryTag) -> Option<BusMessage> {
        if tag.connection != self.generation || self.unusable().is_some() {
            return None;
        }
        self.unacked.remove(&tag.tag)
    }
}

#[async_trait]
impl EventSubscriber for MemoryBus {
    async fn receive(&self, max: usize, linger: Duration) -> Result<Vec<Delivery>, BusError> {
        let deadline = Instant::now() + linger;
        let mut batch = Vec::new();
        if max == 0 {
            return Ok(batch);
        }
        loop {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            {
                let mut inner = self.lock();
                if inner.unusable().is_none() {
                    while batch.len() < max {
                        let Some(message) = inner.queue.pop_front() else {
                            break;
                        };
                        let tag = DeliveryTag {
                            connection: inner.generation,
                            tag: inner.next_tag,
                        };
                        inner.next_tag += 1;
                        batch.push(Delivery {
                            tag,
                            event_type: message
                                .event_type
                                .clone()
                                .unwrap_or_else(|| message.routing_key.clone()),
                            message_id: message.message_id.clone(),
                            body: message.body.clone(),
                            redelivered: message.redelivered,
                        });
                        inner.unacked.insert(tag.tag, message);
                    }
                }
                // Deliveries of a connection lost meanwhile come again later.
                let generation = inner.generation;
                batch.retain(|d| d.tag.connection == generation);
                if batch.len() >= max {
                    return Ok(batch);
                }
            }
            if timeout_at(deadline, arrived).await.is_err() {
                break;
            }
        }
        let inner = self.lock();
        match inner.unusable() {
            Some(error) if batch.is_empty() => Err(error),
            _ => Ok(batch),
        }
    }

    async fn ack(&self, tags: &[DeliveryTag]) -> Result<(), BusError> {
        let mut inner = self.lock();
        for tag in tags {
            if inner.settle(*tag).is_some() {
                inner.acked += 1;
            }
        }
        Ok(())
    }

    async fn dead_letter(&self, tag: DeliveryTag) -> Result<(), BusError> {
        let mut inner = self.lock();
        if let Some(message) = inner.settle(tag) {
            inner.dead_letters.push(message);
        }
        Ok(())
    }
}

#[async_trait]
impl EventPublisher for MemoryBus {
    async fn publish(&self, event: &OutgoingEvent) -> Result<(), BusError> {
        let mut inner = self.lock();
        if let Some(error) = inner.unusable() {
            return Err(error);
        }
        if inner.nack {
            return Err(BusError::NotConfirmed {
                host: HOST.into(),
                detail: "the broker nacked the message".into(),
            });
        }
        inner.published.push(BusMessage {
            routing_key: event.event_type.clone(),
            event_type: Some(event.event_type.clone()),
            message_id: Some(event.message_id.to_string()),
            content_type: Some("application/json".into()),
            persistent: true,
            body: event.body.clone(),
            redelivered: false,
        });
        Ok(())
    }
}
