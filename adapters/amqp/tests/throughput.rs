//! 10,000 messages received and acknowledged in batches (one multiple-ack per
//! batch): every one acknowledged, the queue empty afterwards; prints rates.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use spacepos_amqp::AmqpSubscriber;
use spacepos_erp_wire::events::{DatasetChangedIntegrationEvent, IntegrationEvent};
use spacepos_sync::EventSubscriber;
use spacepos_testkit::rabbitmq;
use tokio::time::Instant;

const COUNT: usize = 10_000;

async fn run(poison_every: Option<usize>) {
    let _guard = rabbitmq::shared().await;
    let names = common::Names::new();
    let sub = AmqpSubscriber::start(names.config()).unwrap();
    sub.wait_connected(Duration::from_secs(15)).await.unwrap();
    let erp = names.erp().await;

    let ids: Vec<String> = (0..COUNT).map(|n| format!("m-{n}")).collect();
    let bodies: Vec<Vec<u8>> = ids
        .iter()
        .enumerate()
        .map(|(n, id)| common::body(id, n))
        .collect();
    let kind = DatasetChangedIntegrationEvent::NAME;
    let started = Instant::now();
    for chunk in ids.iter().zip(&bodies).collect::<Vec<_>>().chunks(1000) {
        let events: Vec<(&str, &str, &[u8])> = chunk
            .iter()
            .map(|(id, body)| (kind, id.as_str(), body.as_slice()))
            .collect();
        erp.publish_all(&events).await.unwrap();
    }
    let published = started.elapsed();

    let started = Instant::now();
    let mut received = 0usize;
    let mut dead = 0usize;
    let mut batches = 0usize;
    let mut next_expected = 0usize;
    let deadline = Instant::now() + Duration::from_secs(120);
    while received < COUNT {
        assert!(
            Instant::now() < deadline,
            "only {received} of {COUNT} received"
        );
        let batch = sub.receive(500, Duration::from_millis(50)).await.unwrap();
        if batch.is_empty() {
            continue;
        }
        batches += 1;
        let mut acks = Vec::with_capacity(batch.len());
        for d in &batch {
            assert_eq!(
                d.message_id.as_deref(),
                Some(ids[next_expected].as_str()),
                "in order"
            );
            next_expected += 1;
            match poison_every {
                Some(every) if received.is_multiple_of(every) => {
                    sub.dead_letter(d.tag).await.unwrap();
                    dead += 1;
                }
                _ => acks.push(d.tag),
            }
            received += 1;
        }
        sub.ack(&acks).await.unwrap();
    }
    let consumed = started.elapsed();
    let rate = |d: Duration| COUNT as f64 / d.as_secs_f64();
    println!(
        "{COUNT} messages ({} bytes each): ERP published with confirms in {published:?} ({:.0} msg/s); \
         received and acked in {batches} batches in {consumed:?} ({:.0} msg/s), {dead} dead-lettered",
        bodies[0].len(),
        rate(published),
        rate(consumed),
    );

    // Closing requeues whatever was not acknowledged: nothing may be left.
    sub.close().await;
    assert_eq!(
        erp.message_count(&names.queue()).await.unwrap(),
        Some(0),
        "all acknowledged"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let expected_dead = u32::try_from(dead).unwrap();
    while erp.message_count(&names.dlq()).await.unwrap() != Some(expected_dead) {
        assert!(Instant::now() < deadline, "dead letters missing");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    erp.close().await;
    names.cleanup(&[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_received_and_acked_in_batches() {
    run(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_messages_with_one_percent_dead_lettered() {
    run(Some(100)).await;
}
