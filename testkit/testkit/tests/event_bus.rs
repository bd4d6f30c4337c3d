//! The event bus suite against the in-memory fake and against the RabbitMQ
//! adapter on 127.0.0.1:5672 (unique exchange and queues per test, deleted
//! afterwards; a missing broker fails with how to start it), plus the fake's
//! fault switches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use spacepos_amqp::{AmqpConfig, AmqpPublisher, AmqpSubscriber, ErpBusClient, QueuedMessage};
use spacepos_erp_wire::events::{
    IntegrationEvent, PosComponentAppliedEvent, PosComponentReadyEvent, PosPresenceEvent,
};
use spacepos_sync::{BusError, EventPublisher, EventSubscriber, OutgoingEvent};
use spacepos_testkit::fakes::MemoryBus;
use spacepos_testkit::rabbitmq::{self, BrokerGuard, unique};
use spacepos_testkit::suites::event_bus::{BusMessage, EventBusHarness};
use tokio::time::Instant;

struct Memory(MemoryBus);

#[async_trait]
impl EventBusHarness for Memory {
    fn subscriber(&self) -> &dyn EventSubscriber {
        &self.0
    }
    fn publisher(&self) -> &dyn EventPublisher {
        &self.0
    }
    async fn erp_publish(&self, event_type: &str, message_id: &str, body: &[u8]) {
        self.0.erp_publish(event_type, message_id, body);
    }
    async fn erp_publish_untyped(&self, routing_key: &str, message_id: &str, body: &[u8]) {
        self.0.erp_publish_untyped(routing_key, message_id, body);
    }
    async fn take_published(&self) -> Vec<BusMessage> {
        self.0.take_published()
    }
    async fn take_dead_letters(&self) -> Vec<BusMessage> {
        self.0.take_dead_letters()
    }
    async fn lose_connection(&self) {
        self.0.disconnect();
    }
}

mod memory_bus {
    spacepos_testkit::event_bus_suite!(async {
        super::Memory(spacepos_testkit::fakes::MemoryBus::new())
    });
}

/// The adapter on a unique exchange and client id, with the ERP's side.
struct Rabbit {
    subscriber: AmqpSubscriber,
    publisher: AmqpPublisher,
    erp: ErpBusClient,
    client_id: String,
    capture: String,
    exchange: String,
    cleaned: AtomicBool,
    _guard: BrokerGuard,
}

const PUBLISHED_EVENTS: [&str; 3] = [
    PosPresenceEvent::NAME,
    PosComponentReadyEvent::NAME,
    PosComponentAppliedEvent::NAME,
];

async fn rabbit() -> Rabbit {
    let guard = rabbitmq::shared().await;
    let exchange = unique("erp_event_bus.test.");
    let client_id = unique("test-");
    let erp = ErpBusClient::connect(&rabbitmq::url(), &exchange)
        .await
        .expect("the ERP side connects");
    let capture = format!("{client_id}.published");
    erp.bind_capture_queue(&capture, &PUBLISHED_EVENTS)
        .await
        .expect("capture queue");
    let mut config = AmqpConfig::new(rabbitmq::url(), &client_id);
    config.exchange = exchange.clone();
    let subscriber = AmqpSubscriber::start(config.clone()).expect("subscriber config");
    subscriber
        .wait_connected(Duration::from_secs(15))
        .await
        .expect("the subscriber connects and declares its queue");
    let publisher = AmqpPublisher::start(config).expect("publisher config");
    Rabbit {
        subscriber,
        publisher,
        erp,
        client_id,
        capture,
        exchange,
        cleaned: AtomicBool::new(false),
        _guard: guard,
    }
}

fn bus_message(m: QueuedMessage) -> BusMessage {
    BusMessage {
        routing_key: m.routing_key,
        event_type: m.event_type,
        message_id: m.message_id,
        content_type: m.content_type,
        persistent: m.delivery_mode == Some(2),
        body: m.body,
        redelivered: m.redelivered,
    }
}

impl Rabbit {
    async fn drain(&self, queue: &str) -> Vec<BusMessage> {
        let mut out = Vec::new();
        while let Some(m) = self.erp.get(queue).await.expect("basic.get") {
            out.push(bus_message(m));
        }
        out
    }
}

#[async_trait]
impl EventBusHarness for Rabbit {
    fn subscriber(&self) -> &dyn EventSubscriber {
        &self.subscriber
    }
    fn publisher(&self) -> &dyn EventPublisher {
        &self.publisher
    }
    async fn erp_publish(&self, event_type: &str, message_id: &str, body: &[u8]) {
        self.erp
            .publish(event_type, message_id, body)
            .await
            .expect("the ERP publishes");
    }
    async fn erp_publish_untyped(&self, routing_key: &str, message_id: &str, body: &[u8]) {
        self.erp
            .publish_untyped(routing_key, message_id, body)
            .await
            .expect("the ERP publishes");
    }
    async fn take_published(&self) -> Vec<BusMessage> {
        self.drain(&self.capture).await
    }
    async fn take_dead_letters(&self) -> Vec<BusMessage> {
        self.drain(&spacepos_amqp::dead_letter_queue_name(&self.client_id))
            .await
    }
    async fn lose_connection(&self) {
        let name = format!("spacepos {}/subscriber", self.client_id);
        let closed = rabbitmq::close_connections(&name).await;
        assert_eq!(closed, 1, "the broker closed the subscriber's connection");
    }
    async fn finish(&self) {
        self.subscriber.close().await;
        self.publisher.close().await;
        self.erp
            .delete_terminal_queues(&self.client_id)
            .await
            .expect("delete the terminal's queues");
        self.erp
            .delete_queue(&self.capture)
            .await
            .expect("delete the capture queue");
        self.erp
            .delete_exchange()
            .await
            .expect("delete the exchange");
        self.cleaned.store(true, Ordering::SeqCst);
    }
}

/// A failed case still deletes its exchange and queues (on a thread of its
/// own: the test's runtime is unwinding).
impl Drop for Rabbit {
    fn drop(&mut self) {
        if self.cleaned.load(Ordering::SeqCst) {
            return;
        }
        let (client_id, capture, exchange) = (
            self.client_id.clone(),
            self.capture.clone(),
            self.exchange.clone(),
        );
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async {
                if let Ok(erp) = ErpBusClient::connect(&rabbitmq::url(), &exchange).await {
                    let _ = erp.delete_terminal_queues(&client_id).await;
                    let _ = erp.delete_queue(&capture).await;
                    let _ = erp.delete_exchange().await;
                    erp.close().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

mod rabbitmq_bus {
    spacepos_testkit::event_bus_suite!(super::rabbit());
}

// ---- the fake's fault switches ---------------------------------------------

#[tokio::test]
async fn memory_bus_down_is_unavailable_after_the_linger_and_loses_unacked() {
    let bus = MemoryBus::new();
    bus.erp_publish("DatasetChangedIntegrationEvent", "m1", b"{}");
    let got = bus
        .receive(10, Duration::from_millis(10))
        .await
        .expect("receive");
    assert_eq!(got.len(), 1);
    assert_eq!(bus.generation(), 1);

    bus.set_down(true);
    assert_eq!(bus.generation(), 2, "a restart is a new connection");
    let linger = Duration::from_millis(200);
    let started = Instant::now();
    let r = bus.receive(10, linger).await;
    assert!(matches!(r, Err(BusError::Unavailable { .. })), "{r:?}");
    assert!(
        started.elapsed() >= linger,
        "not more often than every linger"
    );
    let event = OutgoingEvent {
        event_type: "POSPresenceEvent".into(),
        message_id: uuid::Uuid::new_v4(),
        body: b"{}".to_vec(),
    };
    assert!(matches!(
        bus.publish(&event).await,
        Err(BusError::Unavailable { .. })
    ));
    bus.ack(&[got[0].tag])
        .await
        .expect("acking while down is ignored");

    bus.set_down(false);
    let again = bus
        .receive(10, Duration::from_millis(10))
        .await
        .expect("receive");
    assert_eq!(again.len(), 1, "the unacknowledged delivery comes back");
    assert!(again[0].redelivered);
    assert_eq!(again[0].tag.connection, 2);
    bus.publish(&event)
        .await
        .expect("publish after the restart");
    assert_eq!(bus.published().len(), 1);
}

#[tokio::test]
async fn memory_bus_receive_wakes_up_when_the_erp_publishes() {
    let bus = MemoryBus::new();
    let erp = bus.clone();
    let publisher = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        erp.erp_publish("DatasetChangedIntegrationEvent", "late", b"{}");
    });
    let started = Instant::now();
    let got = bus
        .receive(1, Duration::from_secs(5))
        .await
        .expect("receive");
    assert_eq!(got.len(), 1);
    assert!(started.elapsed() < Duration::from_secs(2));
    publisher.await.expect("publisher task");
}

#[tokio::test]
async fn memory_bus_refused_and_nack_switches() {
    let bus = MemoryBus::new();
    bus.set_refused(Some("ACCESS_REFUSED"));
    let r = bus.receive(1, Duration::from_millis(10)).await;
    assert!(matches!(r, Err(BusError::Refused { .. })), "{r:?}");
    bus.set_refused(None);
    bus.set_nack(true);
    let event = OutgoingEvent {
        event_type: "POSPresenceEvent".into(),
        message_id: uuid::Uuid::new_v4(),
        body: b"{}".to_vec(),
    };
    let r = bus.publish(&event).await;
    assert!(matches!(r, Err(BusError::NotConfirmed { .. })), "{r:?}");
    assert!(bus.published().is_empty(), "a nacked message was not taken");
}
