//! Contract suite of [`EventSubscriber`] and [`EventPublisher`] (contract
//! section 7); stamp it with [`crate::event_bus_suite!`].
//!
//! A case needs more than the ports: it publishes into the terminal's queue
//! as the ERP does, reads what reached the exchange and the dead-letter queue,
//! and loses the connection. [`EventBusHarness`] gives it those, for the
//! in-memory fake ([`crate::fakes::MemoryBus`]) and for the RabbitMQ adapter
//! alike. Against a real broker, messages move asynchronously: the cases wait
//! for them (up to [`PATIENCE`]) instead of expecting them at once.

use std::time::Duration;

use async_trait::async_trait;
use spacepos_erp_wire::events::{
    DatasetChangedIntegrationEvent, IntegrationEvent, PosPresenceEvent,
    PosReleasePublishedIntegrationEvent,
};
use spacepos_sync::{BusError, Delivery, EventPublisher, EventSubscriber, OutgoingEvent};
use tokio::time::Instant;
use uuid::Uuid;

/// How long a case waits for something a broker does asynchronously
/// (redelivery after a reconnect, dead-lettering).
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A message as it sits in a queue: what the ERP sees of a published event,
/// or what lands in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusMessage {
    pub routing_key: String,
    /// The AMQP `type` property.
    pub event_type: Option<String>,
    pub message_id: Option<String>,
    pub content_type: Option<String>,
    /// `delivery_mode` = 2.
    pub persistent: bool,
    pub body: Vec<u8>,
    pub redelivered: bool,
}

/// A bus under test: the terminal's two ports plus what the ERP and the
/// broker can do around them.
#[async_trait]
pub trait EventBusHarness: Send + Sync {
    /// The terminal's queue. It exists (is declared) when the factory returns.
    fn subscriber(&self) -> &dyn EventSubscriber;
    /// Publishing to the ERP's exchange.
    fn publisher(&self) -> &dyn EventPublisher;
    /// Publish into the terminal's queue as the ERP does: to the exchange,
    /// routing key = `type` = `event_type`, `message_id`, persistent.
    async fn erp_publish(&self, event_type: &str, message_id: &str, body: &[u8]);
    /// The same without the `type` property (an ERP that predates it).
    async fn erp_publish_untyped(&self, routing_key: &str, message_id: &str, body: &[u8]);
    /// What the publisher under test published to the exchange since the
    /// last call, oldest first (taken away).
    async fn take_published(&self) -> Vec<BusMessage>;
    /// What is in the terminal's dead-letter queue now, oldest first (taken away).
    async fn take_dead_letters(&self) -> Vec<BusMessage>;
    /// The subscriber's connection is lost, as by a network failure: the
    /// broker takes back every delivery not acknowledged. Returns once the
    /// connection is gone; the subscriber reconnects by itself.
    async fn lose_connection(&self);
    /// Clean up after a passing case (a harness that must also clean up
    /// after a failing one does it on drop).
    async fn finish(&self) {}
}

/// Receive until `n` deliveries arrived or [`PATIENCE`] passed, waiting out
/// `Unavailable` while the subscriber reconnects.
pub async fn receive_n(subscriber: &dyn EventSubscriber, n: usize) -> Vec<Delivery> {
    let deadline = Instant::now() + PATIENCE;
    let mut got: Vec<Delivery> = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        match subscriber
            .receive(n - got.len(), Duration::from_millis(250))
            .await
        {
            Ok(batch) => got.extend(batch),
            Err(BusError::Unavailable { .. }) => {}
            Err(e) => panic!("receive failed: {e}"),
        }
    }
    assert_eq!(
        got.len(),
        n,
        "expected {n} deliveries within {PATIENCE:?}, got {:?}",
        ids(&got)
    );
    got
}

/// Receive for `linger` and expect nothing (waiting out `Unavailable`).
async fn expect_nothing(subscriber: &dyn EventSubscriber, linger: Duration) {
    let deadline = Instant::now() + linger;
    while Instant::now() < deadline {
        match subscriber.receive(10, Duration::from_millis(250)).await {
            Ok(batch) => assert!(batch.is_empty(), "expected nothing, got {:?}", ids(&batch)),
            Err(BusError::Unavailable { .. }) => {}
            Err(e) => panic!("receive failed: {e}"),
        }
    }
}

fn ids(deliveries: &[Delivery]) -> Vec<String> {
    deliveries
        .iter()
        .map(|d| d.message_id.clone().unwrap_or_default())
        .collect()
}

/// The ERP publishes `n` `DatasetChangedIntegrationEvent`s; returns their ids in order.
async fn erp_publish_n(bus: &dyn EventBusHarness, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    for sequence in 0..n {
        let id = Uuid::new_v4().to_string();
        bus.erp_publish(
            DatasetChangedIntegrationEvent::NAME,
            &id,
            &body(&id, sequence),
        )
        .await;
        out.push(id);
    }
    out
}

fn body(id: &str, sequence: usize) -> Vec<u8> {
    format!(r#"{{"Id":"{id}","CreationDate":"2025-05-06T07:08:09Z","Dataset":"items","Sequence":{sequence},"Items":[]}}"#)
        .into_bytes()
}

/// EventSubscriber: "`receive` waits for deliveries, returns up to `max` of
/// them, and returns early once `linger` has passed with at least one (or an
/// empty batch after `linger` with none)"; a delivery carries the `type`, the
/// `message_id` and the body as published.
pub async fn case_receive_returns_up_to_max_and_lingers(bus: &dyn EventBusHarness) {
    let sent = erp_publish_n(bus, 5).await;
    let sub = bus.subscriber();

    let long = Duration::from_secs(10);
    let started = Instant::now();
    let first = sub.receive(3, long).await.expect("receive");
    assert_eq!(ids(&first), sent[..3], "max deliveries, in queue order");
    assert!(
        started.elapsed() < long / 2,
        "a full batch does not wait for the linger ({:?})",
        started.elapsed()
    );
    let d = &first[0];
    assert_eq!(d.event_type, DatasetChangedIntegrationEvent::NAME);
    assert_eq!(d.body, body(&sent[0], 0));
    assert!(!d.redelivered);

    let linger = Duration::from_millis(700);
    let started = Instant::now();
    let rest = sub.receive(10, linger).await.expect("receive");
    let took = started.elapsed();
    assert_eq!(ids(&rest), sent[3..], "the rest");
    assert!(
        took >= linger.mul_f64(0.9),
        "fewer than max: returned after the linger, not {took:?}"
    );
    assert!(
        took < linger + Duration::from_secs(3),
        "but soon after it ({took:?})"
    );

    let linger = Duration::from_millis(300);
    let started = Instant::now();
    let none = sub.receive(10, linger).await.expect("receive");
    assert!(none.is_empty(), "{:?}", ids(&none));
    assert!(
        started.elapsed() >= linger.mul_f64(0.9),
        "an empty batch after the linger"
    );

    let tags: Vec<_> = first.iter().chain(&rest).map(|d| d.tag).collect();
    sub.ack(&tags).await.expect("ack");
}

/// EventSubscriber: "A delivery not acknowledged is delivered again (after a
/// reconnect ...)", marked redelivered, with a tag of the new connection.
pub async fn case_unacked_deliveries_come_back_after_a_disconnect(bus: &dyn EventBusHarness) {
    let sent = erp_publish_n(bus, 3).await;
    let sub = bus.subscriber();
    let first = receive_n(sub, 3).await;
    assert_eq!(ids(&first), sent);
    sub.ack(&[first[0].tag]).await.expect("ack the first");

    bus.lose_connection().await;
    let again = receive_n(sub, 2).await;
    assert_eq!(ids(&again), sent[1..], "the unacknowledged ones, in order");
    for d in &again {
        assert!(d.redelivered, "{d:?}");
        assert!(
            d.tag.connection > first[0].tag.connection,
            "a tag of the new connection: {:?} after {:?}",
            d.tag,
            first[0].tag
        );
    }
    assert_eq!(again[0].body, body(&sent[1], 1), "the body is intact");
    sub.ack(&again.iter().map(|d| d.tag).collect::<Vec<_>>())
        .await
        .expect("ack");
}

/// EventSubscriber: "`ack` acknowledges deliveries": an acknowledged delivery
/// never comes back, not even after the connection is lost.
pub async fn case_ack_is_final(bus: &dyn EventBusHarness) {
    erp_publish_n(bus, 2).await;
    let sub = bus.subscriber();
    let got = receive_n(sub, 2).await;
    sub.ack(&[got[0].tag, got[1].tag]).await.expect("ack");

    bus.lose_connection().await;
    let after = erp_publish_n(bus, 1).await;
    let next = receive_n(sub, 1).await;
    assert_eq!(
        ids(&next),
        after,
        "only the new message, not the acknowledged ones"
    );
    sub.ack(&[next[0].tag]).await.expect("ack");
    expect_nothing(sub, Duration::from_millis(500)).await;
}

/// EventSubscriber: "`ack` acknowledges deliveries" — those given, and no
/// others: acknowledging the 1st, 2nd and 4th of five leaves the 3rd and 5th
/// unacknowledged (they come back after a reconnect).
pub async fn case_ack_acknowledges_only_the_given_deliveries(bus: &dyn EventBusHarness) {
    let sent = erp_publish_n(bus, 5).await;
    let sub = bus.subscriber();
    let got = receive_n(sub, 5).await;
    sub.ack(&[got[0].tag, got[1].tag, got[3].tag])
        .await
        .expect("ack");

    bus.lose_connection().await;
    let again = receive_n(sub, 2).await;
    assert_eq!(ids(&again), vec![sent[2].clone(), sent[4].clone()]);
    sub.ack(&again.iter().map(|d| d.tag).collect::<Vec<_>>())
        .await
        .expect("ack");
    expect_nothing(sub, Duration::from_millis(500)).await;
}

/// EventSubscriber: "`dead_letter` rejects one without requeue, so it lands
/// in the terminal's dead-letter queue", with its body, `type` and
/// `message_id` intact; it is not delivered again.
pub async fn case_dead_letter_lands_in_the_dlq_with_body_intact(bus: &dyn EventBusHarness) {
    let poison_id = Uuid::new_v4().to_string();
    let poison: Vec<u8> = b"{\"Id\": not json \xff\x00 \xc3\xbc".to_vec();
    let event_type = PosReleasePublishedIntegrationEvent::NAME;
    bus.erp_publish(event_type, &poison_id, &poison).await;
    let good = erp_publish_n(bus, 1).await;
    let sub = bus.subscriber();
    let got = receive_n(sub, 2).await;
    assert_eq!(ids(&got), vec![poison_id.clone(), good[0].clone()]);
    assert_eq!(got[0].event_type, event_type);

    sub.dead_letter(got[0].tag).await.expect("dead_letter");
    sub.ack(&[got[1].tag]).await.expect("ack the good one");

    let deadline = Instant::now() + PATIENCE;
    let mut dlq = Vec::new();
    while dlq.is_empty() && Instant::now() < deadline {
        dlq = bus.take_dead_letters().await;
        if dlq.is_empty() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert_eq!(dlq.len(), 1, "one dead letter: {dlq:?}");
    assert_eq!(dlq[0].body, poison, "body intact");
    assert_eq!(dlq[0].message_id.as_deref(), Some(poison_id.as_str()));
    assert_eq!(dlq[0].event_type.as_deref(), Some(event_type));
    expect_nothing(sub, Duration::from_millis(500)).await;
}

/// `Delivery::event_type`: "The AMQP `type` property, or the routing key when
/// `type` is missing."
pub async fn case_event_type_falls_back_to_the_routing_key(bus: &dyn EventBusHarness) {
    let kind = PosReleasePublishedIntegrationEvent::NAME;
    bus.erp_publish_untyped(kind, "untyped", b"{}").await;
    bus.erp_publish(kind, "typed", b"{}").await;
    let got = receive_n(bus.subscriber(), 2).await;
    assert_eq!(ids(&got), ["untyped", "typed"]);
    assert_eq!(got[0].event_type, kind, "from the routing key");
    assert_eq!(got[1].event_type, kind, "from the type property");
    bus.subscriber()
        .ack(&[got[0].tag, got[1].tag])
        .await
        .expect("ack");
}

/// EventPublisher: "`publish` returns `Ok` only after the broker confirmed the
/// message (persistent, `message_id`, `type`, `content_type` set)", routed by
/// its type (contract section 7), in publishing order.
pub async fn case_publish_is_confirmed_and_carries_the_properties(bus: &dyn EventBusHarness) {
    let events: Vec<OutgoingEvent> = (0..3)
        .map(|n| {
            let id = Uuid::new_v4();
            OutgoingEvent {
                event_type: PosPresenceEvent::NAME.to_owned(),
                message_id: id,
                body: format!(r#"{{"Id":"{id}","ClientSecret":"s3cr3t","Beat":{n}}}"#).into_bytes(),
            }
        })
        .collect();
    for event in &events {
        bus.publisher()
            .publish(event)
            .await
            .expect("publish confirmed");
    }
    let published = bus.take_published().await;
    assert_eq!(published.len(), 3, "{published:?}");
    for (event, message) in events.iter().zip(&published) {
        let id = event.message_id.to_string();
        assert_eq!(message.routing_key, event.event_type, "routing key = type");
        assert_eq!(
            message.event_type.as_deref(),
            Some(event.event_type.as_str())
        );
        assert_eq!(message.message_id.as_deref(), Some(id.as_str()));
        assert_eq!(message.content_type.as_deref(), Some("application/json"));
        assert!(message.persistent, "delivery_mode 2");
        assert_eq!(message.body, event.body);
    }
}

/// `DeliveryTag`: "acknowledgements of deliveries made on a connection that
/// has since been lost are ignored (the broker redelivers)": acknowledging or
/// dead-lettering an old tag succeeds, settles nothing of the new connection
/// (whose tag numbers start over) and leaves the subscriber working.
pub async fn case_acking_a_tag_of_an_old_connection_is_harmless(bus: &dyn EventBusHarness) {
    let sent = erp_publish_n(bus, 1).await;
    let sub = bus.subscriber();
    let old = receive_n(sub, 1).await.remove(0);

    bus.lose_connection().await;
    let new = receive_n(sub, 1).await.remove(0);
    assert_eq!(new.message_id.as_deref(), Some(sent[0].as_str()));
    assert!(
        new.tag.connection > old.tag.connection,
        "{:?} after {:?}",
        new.tag,
        old.tag
    );

    sub.ack(&[old.tag]).await.expect("acking an old tag is Ok");
    sub.dead_letter(old.tag)
        .await
        .expect("dead-lettering an old tag is Ok");

    let next = erp_publish_n(bus, 1).await;
    let b = receive_n(sub, 1).await.remove(0);
    assert_eq!(
        b.message_id.as_deref(),
        Some(next[0].as_str()),
        "still consuming"
    );
    assert_eq!(
        b.tag.connection, new.tag.connection,
        "on the same connection"
    );
    sub.ack(&[b.tag]).await.expect("ack");

    bus.lose_connection().await;
    let again = receive_n(sub, 1).await.remove(0);
    assert_eq!(
        again.message_id.as_deref(),
        Some(sent[0].as_str()),
        "the old tag settled nothing: the message is still unacknowledged"
    );
    sub.ack(&[again.tag]).await.expect("ack");
    assert!(
        bus.take_dead_letters().await.is_empty(),
        "nothing was dead-lettered"
    );
}

/// Stamp one `#[tokio::test]` per case of the event bus suite. The argument
/// is an expression evaluating to a future of a fresh [`EventBusHarness`].
#[macro_export]
macro_rules! event_bus_suite {
    ($factory:expr) => {
        $crate::event_bus_suite!(@cases $factory;
            case_receive_returns_up_to_max_and_lingers,
            case_unacked_deliveries_come_back_after_a_disconnect,
            case_ack_is_final,
            case_ack_acknowledges_only_the_given_deliveries,
            case_dead_letter_lands_in_the_dlq_with_body_intact,
            case_event_type_falls_back_to_the_routing_key,
            case_publish_is_confirmed_and_carries_the_properties,
            case_acking_a_tag_of_an_old_connection_is_harmless,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let bus = $factory.await;
                $crate::suites::event_bus::$case(&bus).await;
                $crate::suites::event_bus::EventBusHarness::finish(&bus).await;
            }
        )+
    };
}
