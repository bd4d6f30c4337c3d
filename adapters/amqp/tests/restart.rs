//! A broker restart (`rabbitmqctl stop_app` + `start_app`) while consuming
//! and publishing: nothing is lost, unacknowledged deliveries come back, a
//! publish made while the broker is down completes once it is back, every
//! caller gets an answer within its bounds, and each outage is one warning
//! per connection (no password) plus one info line when back.
//!
//! Alone in its test binary: it installs a global log subscriber, and it
//! holds the exclusive broker guard.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use spacepos_amqp::{AmqpPublisher, AmqpSubscriber, LinkStatus};
use spacepos_erp_wire::events::{
    DatasetChangedIntegrationEvent, IntegrationEvent, PosPresenceEvent,
};
use spacepos_sync::{BusError, EventPublisher, EventSubscriber, OutgoingEvent};
use spacepos_testkit::rabbitmq;
use tokio::time::Instant;

#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn install() -> Self {
        let logs = Logs::default();
        let writer = logs.clone();
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "spacepos_amqp=info,lapin=info,amq_protocol=info,amq_protocol_tcp=info",
            ))
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .init();
        logs
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }
}

fn beat(n: u32) -> OutgoingEvent {
    let id = uuid::Uuid::new_v4();
    OutgoingEvent {
        event_type: PosPresenceEvent::NAME.into(),
        message_id: id,
        body: format!(r#"{{"Id":"{id}","ClientSecret":"top-secret-{n}","Beat":{n}}}"#).into_bytes(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_loses_nothing_and_logs_one_warning_per_outage() {
    let logs = Logs::install();
    let guard = rabbitmq::exclusive().await;
    let names = common::Names::new();
    let capture = format!("{}.published", names.client_id);
    let erp = names.erp().await;
    erp.bind_capture_queue(&capture, &[PosPresenceEvent::NAME])
        .await
        .unwrap();

    let sub = AmqpSubscriber::start(names.config()).unwrap();
    sub.wait_connected(Duration::from_secs(15)).await.unwrap();
    let mut config = names.config();
    config.publish_timeout = Duration::from_secs(60);
    let publisher = Arc::new(AmqpPublisher::start(config).unwrap());
    publisher
        .wait_connected(Duration::from_secs(15))
        .await
        .unwrap();
    let mut config = names.config();
    config.publish_timeout = Duration::from_secs(1);
    config.connection_name = format!("spacepos {} impatient", names.client_id);
    let impatient = AmqpPublisher::start(config).unwrap();
    impatient
        .wait_connected(Duration::from_secs(15))
        .await
        .unwrap();

    let beats: Vec<OutgoingEvent> = (0..5).map(beat).collect();
    publisher
        .publish(&beats[0])
        .await
        .expect("before the restart");

    let sent: Vec<String> = (0..20).map(|n| format!("event-{n}")).collect();
    let bodies: Vec<Vec<u8>> = sent
        .iter()
        .enumerate()
        .map(|(n, id)| common::body(id, n))
        .collect();
    let events: Vec<(&str, &str, &[u8])> = sent
        .iter()
        .zip(&bodies)
        .map(|(id, body)| {
            (
                DatasetChangedIntegrationEvent::NAME,
                id.as_str(),
                body.as_slice(),
            )
        })
        .collect();
    erp.publish_all(&events).await.unwrap();
    erp.close().await;
    let first = common::receive_n(&sub, 10, Duration::from_secs(10)).await;
    assert_eq!(first[0].tag.connection, 1);
    sub.ack(&first[..5].iter().map(|d| d.tag).collect::<Vec<_>>())
        .await
        .unwrap();

    // ---- the broker goes away ----
    let stop_took = rabbitmq::stop_app(&guard).await;

    let started = Instant::now();
    let r = sub.receive(10, Duration::from_millis(500)).await;
    let took = started.elapsed();
    assert!(matches!(r, Err(BusError::Unavailable { .. })), "{r:?}");
    assert!(
        took >= Duration::from_millis(490) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(
        matches!(sub.status(), LinkStatus::Connecting { .. }),
        "{:?}",
        sub.status()
    );
    // Acks of the lost connection are ignored: the broker redelivers those.
    sub.ack(&first[5..].iter().map(|d| d.tag).collect::<Vec<_>>())
        .await
        .expect("acking tags of a lost connection is harmless");

    let started = Instant::now();
    let r = impatient.publish(&beats[1]).await;
    let took = started.elapsed();
    assert!(matches!(r, Err(BusError::Unavailable { .. })), "{r:?}");
    assert!(
        took >= Duration::from_millis(990) && took < Duration::from_secs(3),
        "{took:?}"
    );

    let waiting = Arc::clone(&publisher);
    let beat2 = beats[2].clone();
    let pending = tokio::spawn(async move { waiting.publish(&beat2).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pending.is_finished(), "a publish waits for the broker");

    // ---- and comes back ----
    let start_took = rabbitmq::start_app(&guard).await;
    let up = Instant::now();
    pending
        .await
        .unwrap()
        .expect("the publish made while the broker was down succeeds once it is back");
    let publish_back_after = up.elapsed();

    let rest = common::receive_n(&sub, 15, Duration::from_secs(60)).await;
    let subscriber_back_after = up.elapsed();
    let got: BTreeSet<&str> = rest
        .iter()
        .map(|d| d.message_id.as_deref().unwrap())
        .collect();
    let expected: BTreeSet<&str> = sent[5..].iter().map(String::as_str).collect();
    assert_eq!(got, expected, "every message not acknowledged, none twice");
    for d in &rest {
        assert_eq!(d.tag.connection, 2, "one reconnection");
        let n: usize = d.message_id.as_deref().unwrap()["event-".len()..]
            .parse()
            .unwrap();
        // With the default prefetch the broker had sent all 20 before the restart
        // (10 still in the subscriber's buffer): the 10 handed out surely.
        assert!(
            d.redelivered || n >= 10,
            "handed out before the restart = redelivered: {d:?}"
        );
    }
    sub.ack(&rest.iter().map(|d| d.tag).collect::<Vec<_>>())
        .await
        .unwrap();
    publisher
        .publish(&beats[3])
        .await
        .expect("after the restart");
    impatient
        .publish(&beats[4])
        .await
        .expect("after the restart");

    let erp = names.erp().await;
    let mut beat_ids = BTreeSet::new();
    while let Some(m) = erp.get(&capture).await.unwrap() {
        beat_ids.insert(m.message_id.unwrap());
    }
    let expected: BTreeSet<String> = [0, 2, 3, 4]
        .iter()
        .map(|&n| beats[n].message_id.to_string())
        .collect();
    assert_eq!(
        beat_ids, expected,
        "every confirmed beat reached the ERP (beat 1 was refused)"
    );
    sub.close().await;
    assert_eq!(
        erp.message_count(&names.queue()).await.unwrap(),
        Some(0),
        "nothing left"
    );
    erp.close().await;
    publisher.close().await;
    impatient.close().await;
    drop(guard);
    names.cleanup(&[&capture]).await;

    println!(
        "broker restart: stop_app {stop_took:?}, start_app {start_took:?} (until the port listened); \
         a publish waiting since before the restart completed {publish_back_after:?} after start_app returned, \
         the subscriber had all 15 messages {subscriber_back_after:?} after"
    );
    let text = logs.text();
    println!("---- logs ----\n{text}---- end of logs ----");
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("spacepos_amqp"))
        .collect();
    let count = |level: &str, what: &str| {
        ours.iter()
            .filter(|l| l.contains(level) && l.contains(what))
            .count()
    };
    assert_eq!(
        count("WARN", "lost the connection"),
        3,
        "one warning per connection and outage"
    );
    assert_eq!(
        ours.iter().filter(|l| l.contains("WARN")).count(),
        3,
        "and no warning per attempt: {ours:#?}"
    );
    assert_eq!(
        count("INFO", "reconnected to the event bus"),
        3,
        "{ours:#?}"
    );
    assert!(
        ours.iter().all(|l| !l.contains("guest:guest")),
        "no password in our logs"
    );
    assert!(!text.contains("top-secret"), "no message body in any log");
    assert!(
        ours.iter()
            .any(|l| l.contains("host=\"127.0.0.1:5672\"") || l.contains("host=127.0.0.1:5672")),
        "the host is named"
    );
}
