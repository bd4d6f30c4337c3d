//! [`AmqpSubscriber`]: the terminal's queue as an [`EventSubscriber`].

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, Consumer};
use spacepos_sync::{BusError, Delivery, DeliveryTag, EventSubscriber};
use tokio::sync::{Mutex as AsyncMutex, mpsc};
use tokio::time::{Instant, sleep_until, timeout_at};

use crate::config::{AmqpConfig, AmqpConfigError};
use crate::link::{Link, LinkState, LinkStatus, Role, Shutdown, next, start};
use crate::topology::declare_terminal_topology;

/// Consumes the terminal's queue `spacepos.<clientId>` with manual
/// acknowledgements; implements [`EventSubscriber`].
///
/// [`start`](Self::start) returns at once: a background task connects,
/// declares the topology, sets `basic.qos(prefetch)` and consumes, and does it
/// again after every loss (see the crate docs). Deliveries carry the
/// connection's generation in [`DeliveryTag::connection`]; acknowledgements of
/// an earlier generation are ignored, since the broker delivers those messages
/// again.
///
/// `receive(max, linger)` returns as soon as it holds `max` deliveries, or
/// when `linger` has passed, or, with at least one delivery, when the
/// connection already holds `prefetch` unsettled deliveries (the broker sends
/// no more until some are settled, so waiting would gain nothing). Ask for at
/// most `prefetch` at a time.
///
/// Dropping the subscriber stops the task and closes the connection (the
/// broker requeues what was not acknowledged); [`close`](Self::close) does the
/// same and waits for it.
#[derive(Debug)]
pub struct AmqpSubscriber {
    // Dropped first: the supervisor sees the shutdown before the closed buffer.
    shutdown: Shutdown,
    link: Arc<Link<SubscriberSession>>,
    deliveries: AsyncMutex<mpsc::UnboundedReceiver<Delivery>>,
}

impl AmqpSubscriber {
    /// Validate `config` and start connecting in the background.
    ///
    /// # Panics
    /// Outside a Tokio runtime (it spawns the connection task).
    pub fn start(config: AmqpConfig) -> Result<Self, AmqpConfigError> {
        let (tx, rx) = mpsc::unbounded_channel();
        let (link, shutdown) = start(SubscriberRole { deliveries: tx }, config)?;
        Ok(AmqpSubscriber {
            shutdown,
            link,
            deliveries: AsyncMutex::new(rx),
        })
    }

    /// Where the connection stands.
    pub fn status(&self) -> LinkStatus {
        self.link.status()
    }

    /// Wait until connected (at most `within`); returns the generation.
    /// A refused terminal fails at once.
    pub async fn wait_connected(&self, within: Duration) -> Result<u64, BusError> {
        self.link
            .wait_up(0, Instant::now() + within)
            .await
            .map(|(generation, _)| generation)
    }

    /// Whether the connection holds `prefetch` unsettled deliveries.
    fn window_full(&self) -> bool {
        self.link.live().is_some_and(|(_, session)| {
            session.outstanding().len() >= usize::from(self.link.config.prefetch)
        })
    }

    /// Stop consuming and close the connection (the broker requeues every
    /// delivery not acknowledged). Later calls fail with `Unavailable`.
    pub async fn close(&self) {
        self.shutdown.signal();
        self.link.wait_closed().await;
    }
}

#[async_trait]
impl EventSubscriber for AmqpSubscriber {
    async fn receive(&self, max: usize, linger: Duration) -> Result<Vec<Delivery>, BusError> {
        let deadline = Instant::now() + linger;
        let mut batch = Vec::new();
        if max == 0 {
            return Ok(batch);
        }
        let Ok(mut rx) = timeout_at(deadline, self.deliveries.lock()).await else {
            // Another receive holds the queue for the whole linger.
            return Ok(batch);
        };
        let mut open = true;
        while batch.len() < max {
            let delivery = match rx.try_recv() {
                Ok(d) => Some(d),
                Err(mpsc::error::TryRecvError::Disconnected) => {
                    open = false;
                    None
                }
                // The broker sends no more than `prefetch` unsettled deliveries:
                // with the window full, waiting for the linger gains nothing.
                Err(mpsc::error::TryRecvError::Empty)
                    if !batch.is_empty() && self.window_full() =>
                {
                    None
                }
                Err(mpsc::error::TryRecvError::Empty) => {
                    match timeout_at(deadline, rx.recv()).await {
                        Ok(Some(d)) => Some(d),
                        Ok(None) => {
                            open = false;
                            None
                        }
                        Err(_) => None,
                    }
                }
            };
            match delivery {
                // Deliveries of a lost connection come again on the new one.
                Some(d) if Some(d.tag.connection) == self.link.live_generation() => batch.push(d),
                Some(_) => {}
                None => break,
            }
        }
        drop(rx);
        let live = self.link.live_generation();
        batch.retain(|d| Some(d.tag.connection) == live);
        if !batch.is_empty() || live.is_some() {
            return Ok(batch);
        }
        if !open {
            // Closed: still honour "no more often than every linger".
            sleep_until(deadline).await;
        }
        match self.link.state() {
            LinkState::Up { .. } => Ok(batch),
            _ => Err(self.link.unavailable("connecting to the broker")),
        }
    }

    async fn ack(&self, tags: &[DeliveryTag]) -> Result<(), BusError> {
        // Not connected: every tag is of a lost connection, and those are redelivered.
        let Some((generation, session)) = self.link.live() else {
            return Ok(());
        };
        let requested: BTreeSet<u64> = tags
            .iter()
            .filter(|t| t.connection == generation)
            .map(|t| t.tag)
            .collect();
        if requested.is_empty() {
            return Ok(());
        }
        // One settlement at a time per channel, so that a multiple-ack never
        // overtakes a reject of a tag below it (the broker would close the channel).
        let _settling = session.settling.lock().await;
        let plan = plan_acks(&mut session.outstanding(), &requested);
        let result = async {
            if let Some(up_to) = plan.multiple_up_to {
                session
                    .channel
                    .basic_ack(up_to, BasicAckOptions { multiple: true })
                    .await?;
            }
            for tag in plan.single {
                session
                    .channel
                    .basic_ack(tag, BasicAckOptions { multiple: false })
                    .await?;
            }
            Ok::<(), lapin::Error>(())
        }
        .await;
        result.map_err(|e| {
            self.link.kick();
            BusError::Unavailable {
                host: self.link.host.clone(),
                detail: format!(
                    "acknowledging: {e}; the connection is lost and the broker will deliver those messages again"
                ),
            }
        })
    }

    async fn dead_letter(&self, tag: DeliveryTag) -> Result<(), BusError> {
        let Some((generation, session)) = self.link.live() else {
            return Ok(());
        };
        let _settling = session.settling.lock().await;
        if tag.connection != generation || !session.outstanding().remove(&tag.tag) {
            return Ok(());
        }
        session
            .channel
            .basic_reject(tag.tag, BasicRejectOptions { requeue: false })
            .await
            .map_err(|e| {
                self.link.kick();
                BusError::Unavailable {
                    host: self.link.host.clone(),
                    detail: format!(
                        "dead-lettering: {e}; the connection is lost and the broker will deliver the message again"
                    ),
                }
            })
    }
}

pub(crate) struct SubscriberSession {
    channel: Channel,
    /// Delivery tags the broker gave this channel and nobody settled yet,
    /// including those still waiting in the buffer for `receive`.
    outstanding: Mutex<BTreeSet<u64>>,
    /// Held while acks or a reject are planned and handed to lapin.
    settling: AsyncMutex<()>,
}

impl std::fmt::Debug for SubscriberSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriberSession")
            .field("channel", &self.channel.id())
            .field("outstanding", &self.outstanding().len())
            .finish()
    }
}

impl SubscriberSession {
    fn outstanding(&self) -> MutexGuard<'_, BTreeSet<u64>> {
        self.outstanding
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

struct SubscriberRole {
    deliveries: mpsc::UnboundedSender<Delivery>,
}

impl Role for SubscriberRole {
    type Session = SubscriberSession;
    type Driver = (Consumer, u64);
    const NAME: &'static str = "subscriber";

    async fn open(
        &self,
        connection: &Connection,
        config: &AmqpConfig,
        generation: u64,
    ) -> lapin::Result<(SubscriberSession, (Consumer, u64))> {
        let channel = connection.create_channel().await?;
        let topology = config.topology();
        declare_terminal_topology(&channel, &topology).await?;
        channel
            .basic_qos(config.prefetch, BasicQosOptions { global: false })
            .await?;
        let consumer = channel
            .basic_consume(
                topology.queue.as_str().into(),
                format!("spacepos.{}.{generation}", config.client_id).into(),
                BasicConsumeOptions {
                    no_ack: false,
                    ..BasicConsumeOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        let session = SubscriberSession {
            channel,
            outstanding: Mutex::new(BTreeSet::new()),
            settling: AsyncMutex::new(()),
        };
        Ok((session, (consumer, generation)))
    }

    fn channel(session: &SubscriberSession) -> &Channel {
        &session.channel
    }

    async fn serve(
        &self,
        session: &Arc<SubscriberSession>,
        (mut consumer, generation): (Consumer, u64),
    ) -> String {
        loop {
            match next(&mut consumer).await {
                Some(Ok(d)) => {
                    session.outstanding().insert(d.delivery_tag);
                    let event_type = d
                        .properties
                        .kind()
                        .as_ref()
                        .map(|t| t.as_str())
                        .filter(|t| !t.is_empty())
                        .unwrap_or_else(|| d.routing_key.as_str())
                        .to_owned();
                    let delivery = Delivery {
                        tag: DeliveryTag {
                            connection: generation,
                            tag: d.delivery_tag,
                        },
                        event_type,
                        message_id: d.properties.message_id().as_ref().map(|m| m.as_str().to_owned()),
                        body: d.data,
                        redelivered: d.redelivered,
                    };
                    if self.deliveries.send(delivery).is_err() {
                        // The subscriber is gone; shutdown follows.
                        return "the subscriber was dropped".into();
                    }
                }
                Some(Err(e)) => return format!("the consumer failed: {e}"),
                None => return "the broker cancelled the consumer (queue deleted?) or the channel closed".into(),
            }
        }
    }
}

/// How to acknowledge a set of delivery tags.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct AckPlan {
    /// One `basic.ack(multiple = true)` up to this tag: every outstanding tag
    /// at or below it was requested.
    pub(crate) multiple_up_to: Option<u64>,
    /// The requested tags above that prefix, one `basic.ack` each.
    pub(crate) single: Vec<u64>,
}

/// Plan acknowledgements of `requested` and remove them from `outstanding`.
/// Tags not outstanding (settled before, or never delivered on this channel)
/// are skipped: acknowledging an unknown tag is a channel error.
pub(crate) fn plan_acks(outstanding: &mut BTreeSet<u64>, requested: &BTreeSet<u64>) -> AckPlan {
    let mut plan = AckPlan::default();
    let mut prefix = 0usize;
    let mut in_prefix = true;
    for tag in outstanding.iter() {
        if !requested.contains(tag) {
            if in_prefix {
                in_prefix = false;
            }
            continue;
        }
        if in_prefix {
            prefix += 1;
            plan.multiple_up_to = Some(*tag);
        } else {
            plan.single.push(*tag);
        }
    }
    if prefix == 1 {
        // One tag alone: a plain ack says the same thing.
        plan.single.extend(plan.multiple_up_to.take());
        plan.single.sort_unstable();
    }
    outstanding.retain(|t| !requested.contains(t));
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(tags: &[u64]) -> BTreeSet<u64> {
        tags.iter().copied().collect()
    }

    #[test]
    fn a_whole_batch_is_one_multiple_ack() {
        let mut out = set(&(1..=100).collect::<Vec<_>>());
        let plan = plan_acks(&mut out, &set(&(1..=100).collect::<Vec<_>>()));
        assert_eq!(
            plan,
            AckPlan {
                multiple_up_to: Some(100),
                single: vec![]
            }
        );
        assert!(out.is_empty());
    }

    #[test]
    fn a_dead_lettered_delivery_in_the_middle_does_not_break_the_prefix() {
        // 3 was dead-lettered first, so it is no longer outstanding.
        let mut out = set(&[1, 2, 4, 5, 6]);
        let plan = plan_acks(&mut out, &set(&[1, 2, 4, 5]));
        assert_eq!(plan.multiple_up_to, Some(5));
        assert!(plan.single.is_empty());
        assert_eq!(
            out,
            set(&[6]),
            "the delivery still buffered stays outstanding"
        );
    }

    #[test]
    fn a_gap_splits_into_prefix_and_single_acks() {
        let mut out = set(&[1, 2, 3, 4, 5]);
        let plan = plan_acks(&mut out, &set(&[1, 2, 4]));
        assert_eq!(plan.multiple_up_to, Some(2));
        assert_eq!(plan.single, vec![4]);
        assert_eq!(out, set(&[3, 5]));
    }

    #[test]
    fn no_prefix_means_single_acks_only() {
        let mut out = set(&[1, 2, 3, 4]);
        let plan = plan_acks(&mut out, &set(&[2, 4]));
        assert_eq!(plan.multiple_up_to, None);
        assert_eq!(plan.single, vec![2, 4]);
        let mut out = set(&[7, 8]);
        let plan = plan_acks(&mut out, &set(&[7]));
        assert_eq!(
            plan,
            AckPlan {
                multiple_up_to: None,
                single: vec![7]
            }
        );
    }

    #[test]
    fn unknown_and_already_settled_tags_are_skipped() {
        let mut out = set(&[5, 6]);
        let plan = plan_acks(&mut out, &set(&[1, 2, 5, 6, 99]));
        assert_eq!(plan.multiple_up_to, Some(6));
        assert!(plan.single.is_empty());
        let plan = plan_acks(&mut out, &set(&[5, 6]));
        assert_eq!(plan, AckPlan::default(), "acking twice sends nothing");
    }
}
