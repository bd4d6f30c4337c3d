//! [`AmqpPublisher`]: confirmed publishing to the ERP's exchange as an [`EventPublisher`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection};
use spacepos_sync::{BusError, EventPublisher, OutgoingEvent};
use tokio::time::{Instant, timeout_at};

use crate::config::{AmqpConfig, AmqpConfigError};
use crate::link::{Link, LinkStatus, Role, Shutdown, start};
use crate::topology::declare_exchange;

/// Publishes events to the ERP's exchange with publisher confirms; implements
/// [`EventPublisher`].
///
/// Each message goes to the exchange with routing key = `type` = the event
/// name, `message_id` = the event's `Id`, `content_type` =
/// `application/json`, `delivery_mode` = 2 (persistent). `publish` returns
/// `Ok` only once the broker confirmed the message.
///
/// Messages are not published `mandatory`: a message no queue is bound for
/// is confirmed and dropped by the broker (the ERP binds its own queues).
/// `mandatory` would report it, but lapin logs a returned message with its
/// body at WARN (`lapin::returned_messages`), and a presence beat carries the
/// terminal's client secret.
///
/// Like [`AmqpSubscriber`](crate::AmqpSubscriber), it keeps its own connection
/// (a publisher blocked by a broker resource alarm does not hold up the
/// consumer's acknowledgements) and reconnects in the background.
#[derive(Debug)]
pub struct AmqpPublisher {
    link: Arc<Link<PublisherSession>>,
    shutdown: Shutdown,
}

impl AmqpPublisher {
    /// Validate `config` and start connecting in the background.
    ///
    /// # Panics
    /// Outside a Tokio runtime (it spawns the connection task).
    pub fn start(config: AmqpConfig) -> Result<Self, AmqpConfigError> {
        let (link, shutdown) = start(PublisherRole, config)?;
        Ok(AmqpPublisher { link, shutdown })
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

    /// Close the connection. Later publishes fail with `Unavailable`.
    pub async fn close(&self) {
        self.shutdown.signal();
        self.link.wait_closed().await;
    }
}

/// The AMQP properties of an outgoing event (contract section 7).
pub(crate) fn properties(event_type: &str, message_id: &str) -> BasicProperties {
    BasicProperties::default()
        .with_message_id(message_id.into())
        .with_type(event_type.into())
        .with_content_type("application/json".into())
        .with_delivery_mode(2)
}

#[async_trait]
impl EventPublisher for AmqpPublisher {
    /// Waits for a connection and the broker's confirm, together at most
    /// `publish_timeout`. A message lapin could not even send (the channel was
    /// already gone) is sent again on the next connection within that time;
    /// one that was sent but not confirmed is [`BusError::NotConfirmed`]: the
    /// caller sends it again (the ERP dedupes by `message_id`).
    async fn publish(&self, event: &OutgoingEvent) -> Result<(), BusError> {
        let deadline = Instant::now() + self.link.config.publish_timeout;
        let message_id = event.message_id.to_string();
        let mut seen_generation = 0;
        loop {
            let (generation, session) = self.link.wait_up(seen_generation, deadline).await?;
            seen_generation = generation;
            let sent = session
                .channel
                .basic_publish(
                    self.link.config.exchange.as_str().into(),
                    event.event_type.as_str().into(),
                    BasicPublishOptions::default(),
                    &event.body,
                    properties(&event.event_type, &message_id),
                )
                .await;
            let confirm = match sent {
                Ok(confirm) => confirm,
                Err(_) => {
                    // Not sent: wait for the next connection and try again.
                    self.link.kick();
                    continue;
                }
            };
            let not_confirmed = |detail: String| BusError::NotConfirmed {
                host: self.link.host.clone(),
                detail,
            };
            return match timeout_at(deadline, confirm).await {
                Ok(Ok(Confirmation::Ack(_))) => Ok(()),
                Ok(Ok(Confirmation::Nack(_))) => Err(not_confirmed(format!(
                    "the broker refused to take {} {message_id} (nack); send it again later",
                    event.event_type
                ))),
                Ok(Ok(Confirmation::NotRequested)) => Err(not_confirmed(
                    "publisher confirms are not enabled on the channel".into(),
                )),
                Ok(Err(e)) => {
                    self.link.kick();
                    Err(not_confirmed(format!(
                        "the channel closed before the broker confirmed {} {message_id}: {e}",
                        event.event_type
                    )))
                }
                Err(_) => Err(not_confirmed(format!(
                    "no confirm for {} {message_id} within {:?}",
                    event.event_type, self.link.config.publish_timeout
                ))),
            };
        }
    }
}

pub(crate) struct PublisherSession {
    channel: Channel,
}

impl std::fmt::Debug for PublisherSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublisherSession")
            .field("channel", &self.channel.id())
            .finish()
    }
}

struct PublisherRole;

impl Role for PublisherRole {
    type Session = PublisherSession;
    type Driver = ();
    const NAME: &'static str = "publisher";

    async fn open(
        &self,
        connection: &Connection,
        config: &AmqpConfig,
        _generation: u64,
    ) -> lapin::Result<(PublisherSession, ())> {
        let channel = connection.create_channel().await?;
        declare_exchange(&channel, &config.exchange).await?;
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok((PublisherSession { channel }, ()))
    }

    fn channel(session: &PublisherSession) -> &Channel {
        &session.channel
    }

    async fn serve(&self, _session: &Arc<PublisherSession>, (): ()) -> String {
        // Nothing to drive: the supervisor watches the connection.
        std::future::pending().await
    }
}
