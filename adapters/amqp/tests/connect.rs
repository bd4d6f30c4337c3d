//! Connecting: refusals are `Refused` (and retried slowly), an unreachable
//! broker is `Unavailable` within the caller's bounds, plain AMQP to a remote
//! host is refused before any I/O; no error shows the password.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use spacepos_amqp::{AmqpConfig, AmqpConfigError, AmqpPublisher, AmqpSubscriber, LinkStatus};
use spacepos_core::RedactedUrl;
use spacepos_sync::{BusError, EventPublisher, EventSubscriber, OutgoingEvent};
use spacepos_testkit::rabbitmq;
use tokio::time::Instant;

/// Nothing gets declared in these tests: no names to clean up.
fn config(url: &str) -> AmqpConfig {
    let mut config = AmqpConfig::new(RedactedUrl::parse(url).unwrap(), rabbitmq::unique("test-"));
    config.exchange = rabbitmq::unique("erp_event_bus.test.");
    config
}

#[tokio::test]
async fn bad_credentials_are_refused_without_showing_the_password() {
    let _guard = rabbitmq::shared().await;
    let sub = AmqpSubscriber::start(config(
        "amqp://guest:not-the-password-4711@127.0.0.1:5672/%2f",
    ))
    .unwrap();
    let err = sub
        .wait_connected(Duration::from_secs(15))
        .await
        .expect_err("refused");
    let BusError::Refused { host, detail } = &err else {
        panic!("expected Refused, got {err:?}");
    };
    assert_eq!(host, "127.0.0.1:5672");
    assert!(detail.contains("ACCESS_REFUSED"), "{detail}");
    assert!(detail.contains("password"), "says what to check: {detail}");
    assert!(!err.to_string().contains("4711"), "{err}");
    assert!(matches!(sub.status(), LinkStatus::Refused(_)));
    let started = Instant::now();
    let r = sub.receive(10, Duration::from_millis(300)).await;
    assert!(matches!(r, Err(BusError::Refused { .. })), "{r:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(290),
        "no more often than every linger"
    );
    let publisher = AmqpPublisher::start(config(
        "amqp://guest:not-the-password-4711@127.0.0.1:5672/%2f",
    ))
    .unwrap();
    let r = publisher.publish(&event()).await;
    assert!(matches!(r, Err(BusError::Refused { .. })), "{r:?}");
}

#[tokio::test]
async fn a_missing_virtual_host_is_refused() {
    let _guard = rabbitmq::shared().await;
    let sub =
        AmqpSubscriber::start(config("amqp://guest:guest@127.0.0.1:5672/no-such-vhost")).unwrap();
    let err = sub
        .wait_connected(Duration::from_secs(15))
        .await
        .expect_err("refused");
    let BusError::Refused { detail, .. } = &err else {
        panic!("expected Refused, got {err:?}");
    };
    assert!(detail.contains("virtual host"), "{detail}");
}

#[tokio::test]
async fn an_unreachable_broker_is_unavailable_within_the_callers_bounds() {
    // Nothing listens on port 1.
    let mut c = config("amqp://guest:guest@127.0.0.1:1/%2f");
    c.publish_timeout = Duration::from_millis(800);
    let sub = AmqpSubscriber::start(c.clone()).unwrap();
    let publisher = AmqpPublisher::start(c).unwrap();

    let started = Instant::now();
    let r = sub.receive(10, Duration::from_millis(500)).await;
    let took = started.elapsed();
    let Err(BusError::Unavailable { host, detail }) = &r else {
        panic!("expected Unavailable, got {r:?}");
    };
    assert_eq!(host, "127.0.0.1:1");
    assert!(detail.contains("connecting"), "{detail}");
    assert!(
        took >= Duration::from_millis(490),
        "after the linger: {took:?}"
    );
    assert!(took < Duration::from_secs(3), "{took:?}");
    assert!(matches!(
        sub.status(),
        LinkStatus::Connecting {
            last_error: Some(BusError::Unavailable { .. })
        }
    ));

    let started = Instant::now();
    let r = publisher.publish(&event()).await;
    assert!(matches!(r, Err(BusError::Unavailable { .. })), "{r:?}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(790) && took < Duration::from_secs(3),
        "waits publish_timeout for a connection, then gives up: {took:?}"
    );
    sub.close().await;
    assert_eq!(sub.status(), LinkStatus::Closed);
    let r = sub.receive(10, Duration::from_millis(100)).await;
    assert!(matches!(r, Err(BusError::Unavailable { .. })), "{r:?}");
}

#[tokio::test]
async fn plain_amqp_to_a_remote_host_is_refused_at_start() {
    let err = AmqpSubscriber::start(config("amqp://pos:hunter2@mq.example.com:5672/pos"))
        .expect_err("plain amqp to a remote host");
    assert!(matches!(err, AmqpConfigError::Transport { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("amqps://mq.example.com"), "{text}");
    assert!(!text.contains("hunter2"), "{text}");
}

fn event() -> OutgoingEvent {
    OutgoingEvent {
        event_type: "POSPresenceEvent".into(),
        message_id: uuid::Uuid::new_v4(),
        body: b"{}".to_vec(),
    }
}
