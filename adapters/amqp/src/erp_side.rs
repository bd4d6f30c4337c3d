//! [`ErpBusClient`]: the ERP's side of the bus, for the fake ERP, demos, tests
//! and operators. No reconnect: one connection, one call at a time.

use lapin::options::{
    BasicGetOptions, BasicPublishOptions, ConfirmSelectOptions, ExchangeDeleteOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};
use spacepos_core::RedactedUrl;
use spacepos_core::endpoint::{EndpointKind, check_transport};
use spacepos_sync::BusError;
use tokio::time::{Duration, timeout};

use crate::config::{amqp_uri, endpoint_of};
use crate::error::classify;
use crate::publisher::properties;
use crate::topology::declare_exchange;

/// A message read back from a queue with [`ErpBusClient::get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage {
    pub routing_key: String,
    /// The AMQP `type` property.
    pub event_type: Option<String>,
    pub message_id: Option<String>,
    pub content_type: Option<String>,
    /// 2 = persistent.
    pub delivery_mode: Option<u8>,
    pub body: Vec<u8>,
    pub redelivered: bool,
    /// The `x-first-death-reason` header the broker adds to a dead letter
    /// (`rejected` for one the terminal dead-lettered).
    pub death_reason: Option<String>,
}

/// What the ERP does on the bus: publish an event to the exchange (routing
/// key = `type` = the event name, persistent, confirmed), read what terminals
/// published through a capture queue, inspect and clean up queues.
///
/// For the fake ERP (`erp-sim`, demos), tests and operators; a terminal uses
/// [`AmqpSubscriber`](crate::AmqpSubscriber) and [`AmqpPublisher`](crate::AmqpPublisher).
#[derive(Debug)]
pub struct ErpBusClient {
    connection: Connection,
    channel: Channel,
    exchange: String,
    host: String,
}

const CALL_TIMEOUT: Duration = Duration::from_secs(30);

impl ErpBusClient {
    /// Connect (TLS rule applied) and declare `exchange` (direct, durable).
    pub async fn connect(url: &RedactedUrl, exchange: &str) -> Result<Self, BusError> {
        let host = endpoint_of(url);
        let refused = |detail: String| BusError::Refused {
            host: host.clone(),
            detail,
        };
        check_transport(url.expose(), EndpointKind::Amqp).map_err(|e| refused(e.to_string()))?;
        let uri = amqp_uri(url, None, CALL_TIMEOUT).map_err(|e| refused(e.to_string()))?;
        let properties =
            ConnectionProperties::default().with_connection_name("spacepos erp-side".into());
        let connection = bounded(
            &host,
            "connecting",
            Connection::connect_uri(uri, properties),
        )
        .await?;
        let channel = bounded(&host, "opening a channel", connection.create_channel()).await?;
        bounded(
            &host,
            "enabling confirms",
            channel.confirm_select(ConfirmSelectOptions::default()),
        )
        .await?;
        bounded(
            &host,
            "declaring the exchange",
            declare_exchange(&channel, exchange),
        )
        .await?;
        Ok(ErpBusClient {
            connection,
            channel,
            exchange: exchange.to_owned(),
            host,
        })
    }

    /// Publish one event as the ERP does and wait for the broker's confirm.
    pub async fn publish(
        &self,
        event_type: &str,
        message_id: &str,
        body: &[u8],
    ) -> Result<(), BusError> {
        self.publish_all(&[(event_type, message_id, body)]).await
    }

    /// Publish a message with routing key `routing_key` but without the
    /// `type` property (as an ERP that predates it would); persistent, confirmed.
    pub async fn publish_untyped(
        &self,
        routing_key: &str,
        message_id: &str,
        body: &[u8],
    ) -> Result<(), BusError> {
        let confirm = self
            .call(
                "publishing",
                self.channel.basic_publish(
                    self.exchange.as_str().into(),
                    routing_key.into(),
                    BasicPublishOptions::default(),
                    body,
                    BasicProperties::default()
                        .with_message_id(message_id.into())
                        .with_content_type("application/json".into())
                        .with_delivery_mode(2),
                ),
            )
            .await?;
        match self.call("waiting for the confirm", confirm).await? {
            Confirmation::Ack(_) => Ok(()),
            _ => Err(BusError::NotConfirmed {
                host: self.host.clone(),
                detail: "the broker did not confirm a message".into(),
            }),
        }
    }

    /// Publish many events pipelined, then wait for every confirm.
    pub async fn publish_all(&self, events: &[(&str, &str, &[u8])]) -> Result<(), BusError> {
        let mut confirms = Vec::with_capacity(events.len());
        for (event_type, message_id, body) in events {
            let confirm = self
                .call(
                    "publishing",
                    self.channel.basic_publish(
                        self.exchange.as_str().into(),
                        (*event_type).into(),
                        BasicPublishOptions::default(),
                        body,
                        properties(event_type, message_id),
                    ),
                )
                .await?;
            confirms.push(confirm);
        }
        for confirm in confirms {
            match self.call("waiting for the confirm", confirm).await? {
                Confirmation::Ack(_) => {}
                _ => {
                    return Err(BusError::NotConfirmed {
                        host: self.host.clone(),
                        detail: "the broker did not confirm a message".into(),
                    });
                }
            }
        }
        Ok(())
    }

    /// Declare a durable queue (no arguments) bound to the exchange with
    /// `event_types`: from now on it receives what terminals publish.
    pub async fn bind_capture_queue(
        &self,
        queue: &str,
        event_types: &[&str],
    ) -> Result<(), BusError> {
        self.call(
            "declaring the capture queue",
            self.channel.queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            ),
        )
        .await?;
        for event_type in event_types {
            self.call(
                "binding the capture queue",
                self.channel.queue_bind(
                    queue.into(),
                    self.exchange.as_str().into(),
                    (*event_type).into(),
                    QueueBindOptions::default(),
                    FieldTable::default(),
                ),
            )
            .await?;
        }
        Ok(())
    }

    /// Take the next message of `queue` (acknowledged: it leaves the queue).
    pub async fn get(&self, queue: &str) -> Result<Option<QueuedMessage>, BusError> {
        let got = self
            .call(
                "reading a queue",
                self.channel
                    .basic_get(queue.into(), BasicGetOptions { no_ack: true }),
            )
            .await?;
        Ok(got.map(|m| {
            let d = m.delivery;
            let text =
                |s: &Option<lapin::types::ShortString>| s.as_ref().map(|s| s.as_str().to_owned());
            QueuedMessage {
                routing_key: d.routing_key.as_str().to_owned(),
                event_type: text(d.properties.kind()),
                message_id: text(d.properties.message_id()),
                content_type: text(d.properties.content_type()),
                delivery_mode: *d.properties.delivery_mode(),
                death_reason: d
                    .properties
                    .headers()
                    .as_ref()
                    .and_then(|h| h.inner().get("x-first-death-reason"))
                    .map(|v| match v {
                        AMQPValue::LongString(s) => s.to_string(),
                        other => format!("{other:?}"),
                    }),
                body: d.data,
                redelivered: d.redelivered,
            }
        }))
    }

    /// Ready messages in `queue` (not those delivered and unacknowledged), or
    /// `None` if the queue does not exist.
    pub async fn message_count(&self, queue: &str) -> Result<Option<u32>, BusError> {
        // A passive declare of a missing queue closes its channel: use a spare one.
        let probe = self
            .call("opening a channel", self.connection.create_channel())
            .await?;
        let declared = timeout(
            CALL_TIMEOUT,
            probe.queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            ),
        )
        .await;
        match declared {
            Ok(Ok(q)) => {
                let _ = probe.close(200, "done".into()).await;
                Ok(Some(q.message_count()))
            }
            Ok(Err(e)) if matches!(e.kind(), lapin::ErrorKind::ProtocolError(p) if p.get_id() == 404) => {
                Ok(None)
            }
            Ok(Err(e)) => Err(classify(&e, &self.host, "inspecting a queue")),
            Err(_) => Err(self.timed_out("inspecting a queue")),
        }
    }

    /// Declare `queue` durable with `arguments` as the terminal does; the
    /// broker refuses (`Refused`, 406) if it exists with other arguments.
    /// A spare channel is used, so a refusal leaves this client usable.
    pub async fn check_queue_arguments(
        &self,
        queue: &str,
        arguments: &[(&str, &str)],
    ) -> Result<(), BusError> {
        let probe = self
            .call("opening a channel", self.connection.create_channel())
            .await?;
        let mut table = FieldTable::default();
        for (k, v) in arguments {
            table.insert((*k).into(), AMQPValue::LongString((*v).into()));
        }
        let declared = timeout(
            CALL_TIMEOUT,
            probe.queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                table,
            ),
        )
        .await;
        match declared {
            Ok(Ok(_)) => {
                let _ = probe.close(200, "done".into()).await;
                Ok(())
            }
            Ok(Err(e)) => Err(classify(&e, &self.host, "declaring a queue")),
            Err(_) => Err(self.timed_out("declaring a queue")),
        }
    }

    /// Delete a queue (missing is fine).
    pub async fn delete_queue(&self, queue: &str) -> Result<(), BusError> {
        self.call(
            "deleting a queue",
            self.channel
                .queue_delete(queue.into(), QueueDeleteOptions::default()),
        )
        .await
        .map(|_| ())
    }

    /// Delete the terminal's queue and dead-letter queue.
    pub async fn delete_terminal_queues(&self, client_id: &str) -> Result<(), BusError> {
        self.delete_queue(&crate::queue_name(client_id)).await?;
        self.delete_queue(&crate::dead_letter_queue_name(client_id))
            .await
    }

    /// Delete the exchange this client publishes to.
    pub async fn delete_exchange(&self) -> Result<(), BusError> {
        self.call(
            "deleting the exchange",
            self.channel.exchange_delete(
                self.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            ),
        )
        .await
    }

    /// Close the connection.
    pub async fn close(self) {
        let _ = timeout(
            Duration::from_secs(5),
            self.connection.close(200, "done".into()),
        )
        .await;
    }

    async fn call<T>(
        &self,
        doing: &str,
        f: impl Future<Output = lapin::Result<T>>,
    ) -> Result<T, BusError> {
        bounded(&self.host, doing, f).await
    }

    fn timed_out(&self, doing: &str) -> BusError {
        BusError::Unavailable {
            host: self.host.clone(),
            detail: format!("{doing}: no answer within {CALL_TIMEOUT:?}"),
        }
    }
}

async fn bounded<T>(
    host: &str,
    doing: &str,
    f: impl Future<Output = lapin::Result<T>>,
) -> Result<T, BusError> {
    match timeout(CALL_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(classify(&e, host, doing)),
        Err(_) => Err(BusError::Unavailable {
            host: host.to_owned(),
            detail: format!("{doing}: no answer within {CALL_TIMEOUT:?}"),
        }),
    }
}
