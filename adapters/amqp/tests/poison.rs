//! A poison message the terminal dead-letters lands in
//! `spacepos.<clientId>.dlq` as it was, marked rejected, and consumption goes on.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use spacepos_amqp::AmqpSubscriber;
use spacepos_erp_wire::events::{DatasetChangedIntegrationEvent, IntegrationEvent};
use spacepos_sync::EventSubscriber;
use spacepos_testkit::rabbitmq;
use tokio::time::Instant;

#[tokio::test]
async fn a_dead_lettered_poison_message_lands_in_the_terminals_dlq() {
    let _guard = rabbitmq::shared().await;
    let names = common::Names::new();
    let sub = AmqpSubscriber::start(names.config()).unwrap();
    sub.wait_connected(Duration::from_secs(15)).await.unwrap();
    let erp = names.erp().await;

    let poison = b"{\"Id\":\"p-1\",\"Sequence\":\"not a number\"".to_vec();
    let kind = DatasetChangedIntegrationEvent::NAME;
    erp.publish(kind, "good-1", &common::body("good-1", 1))
        .await
        .unwrap();
    erp.publish(kind, "p-1", &poison).await.unwrap();
    erp.publish(kind, "good-2", &common::body("good-2", 2))
        .await
        .unwrap();

    let got = common::receive_n(&sub, 3, Duration::from_secs(10)).await;
    let ids: Vec<_> = got.iter().map(|d| d.message_id.clone().unwrap()).collect();
    assert_eq!(ids, ["good-1", "p-1", "good-2"]);
    // The sync loop's order: dead-letter the poison first, then ack the rest.
    sub.dead_letter(got[1].tag).await.unwrap();
    sub.ack(&[got[0].tag, got[2].tag]).await.unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let dead = loop {
        if let Some(m) = erp.get(&names.dlq()).await.unwrap() {
            break m;
        }
        assert!(Instant::now() < deadline, "nothing reached {}", names.dlq());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(dead.body, poison, "body intact");
    assert_eq!(dead.message_id.as_deref(), Some("p-1"));
    assert_eq!(dead.event_type.as_deref(), Some(kind));
    assert_eq!(dead.delivery_mode, Some(2), "still persistent");
    assert_eq!(
        dead.routing_key,
        names.dlq(),
        "through the default exchange, by the queue's dead-letter routing key"
    );
    assert_eq!(dead.death_reason.as_deref(), Some("rejected"));
    assert_eq!(
        erp.get(&names.dlq()).await.unwrap(),
        None,
        "only the poison"
    );

    // Consumption goes on, and the queue holds nothing else.
    erp.publish(kind, "good-3", &common::body("good-3", 3))
        .await
        .unwrap();
    let next = common::receive_n(&sub, 1, Duration::from_secs(10)).await;
    assert_eq!(next[0].message_id.as_deref(), Some("good-3"));
    sub.ack(&[next[0].tag]).await.unwrap();
    sub.close().await;
    assert_eq!(erp.message_count(&names.queue()).await.unwrap(), Some(0));
    erp.close().await;
    names.cleanup(&[]).await;
}
