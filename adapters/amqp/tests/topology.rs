//! The topology of contract section 7, as the broker sees it after the
//! terminal connected (read back with `rabbitmqctl` and passive declares),
//! declared again after a loss, and refused when the broker holds a queue of
//! the same name with other arguments.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use spacepos_amqp::{AmqpSubscriber, LinkStatus};
use spacepos_erp_wire::events::{
    CONSUMED_EVENTS, DatasetChangedIntegrationEvent, IntegrationEvent,
};
use spacepos_sync::{BusError, EventSubscriber};
use spacepos_testkit::rabbitmq::{self, rabbitmqctl};
use tokio::time::Instant;

/// Lines of a `rabbitmqctl list_*` table whose first column is `name`.
fn rows<'a>(table: &'a str, name: &str) -> Vec<Vec<&'a str>> {
    table
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|cols| cols.first() == Some(&name))
        .collect()
}

#[tokio::test]
async fn connecting_declares_the_exchange_the_queue_its_dlq_and_bindings() {
    let _guard = rabbitmq::shared().await;
    let names = common::Names::new();
    let sub = AmqpSubscriber::start(names.config()).unwrap();
    sub.wait_connected(Duration::from_secs(15)).await.unwrap();

    let exchanges = rabbitmqctl(&[
        "list_exchanges",
        "-q",
        "--no-table-headers",
        "name",
        "type",
        "durable",
    ])
    .await;
    assert_eq!(
        rows(&exchanges, &names.exchange),
        vec![vec![names.exchange.as_str(), "direct", "true"]],
        "the exchange: direct, durable"
    );

    let queues = rabbitmqctl(&[
        "list_queues",
        "-q",
        "--no-table-headers",
        "name",
        "durable",
        "type",
        "arguments",
    ])
    .await;
    let queue = rows(&queues, &names.queue());
    assert_eq!(queue.len(), 1, "{queues}");
    assert_eq!(queue[0][1..3], ["true", "classic"], "durable classic queue");
    // rabbitmqctl prints the empty string as the empty Erlang list `[]`.
    assert_eq!(
        queue[0][3],
        format!(
            r#"[{{"x-dead-letter-exchange",[]}},{{"x-dead-letter-routing-key","{}"}}]"#,
            names.dlq()
        )
    );
    let dlq = rows(&queues, &names.dlq());
    assert_eq!(
        dlq,
        vec![vec![names.dlq().as_str(), "true", "classic", "[]"]]
    );

    let bindings = rabbitmqctl(&[
        "list_bindings",
        "-q",
        "--no-table-headers",
        "source_name",
        "destination_name",
        "destination_kind",
        "routing_key",
    ])
    .await;
    let mut bound: Vec<&str> = rows(&bindings, &names.exchange)
        .into_iter()
        .map(|cols| {
            assert_eq!(cols[1..3], [names.queue().as_str(), "queue"], "{cols:?}");
            cols[3]
        })
        .collect();
    bound.sort_unstable();
    let mut expected = CONSUMED_EVENTS.to_vec();
    expected.sort_unstable();
    assert_eq!(bound, expected, "one binding per consumed event");

    // The same through AMQP: both queues exist, and a declaration with the
    // contract's arguments is accepted (the broker checks equivalence).
    let erp = names.erp().await;
    assert_eq!(erp.message_count(&names.queue()).await.unwrap(), Some(0));
    assert_eq!(erp.message_count(&names.dlq()).await.unwrap(), Some(0));
    erp.check_queue_arguments(
        &names.queue(),
        &[
            ("x-dead-letter-exchange", ""),
            ("x-dead-letter-routing-key", names.dlq().as_str()),
        ],
    )
    .await
    .expect("the contract's arguments");
    let other = erp
        .check_queue_arguments(
            &names.queue(),
            &[("x-dead-letter-routing-key", "elsewhere")],
        )
        .await;
    assert!(matches!(other, Err(BusError::Refused { .. })), "{other:?}");
    erp.close().await;

    sub.close().await;
    names.cleanup(&[]).await;
}

#[tokio::test]
async fn the_topology_is_declared_again_after_the_queue_disappeared() {
    let _guard = rabbitmq::shared().await;
    let names = common::Names::new();
    let sub = AmqpSubscriber::start(names.config()).unwrap();
    assert_eq!(
        sub.wait_connected(Duration::from_secs(15)).await.unwrap(),
        1
    );

    // An operator deletes the queues: the broker cancels the consumer, the
    // subscriber reconnects and declares them again.
    let erp = names.erp().await;
    erp.delete_terminal_queues(&names.client_id).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(sub.status(), LinkStatus::Connected { generation } if generation >= 2) {
        assert!(
            Instant::now() < deadline,
            "no reconnect: {:?}",
            sub.status()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(erp.message_count(&names.queue()).await.unwrap(), Some(0));
    assert_eq!(erp.message_count(&names.dlq()).await.unwrap(), Some(0));

    erp.publish(DatasetChangedIntegrationEvent::NAME, "after", b"{}")
        .await
        .unwrap();
    let got = common::receive_n(&sub, 1, Duration::from_secs(10)).await;
    assert_eq!(got[0].message_id.as_deref(), Some("after"));
    sub.ack(&[got[0].tag]).await.unwrap();
    erp.close().await;
    sub.close().await;
    names.cleanup(&[]).await;
}

#[tokio::test]
async fn a_queue_with_other_arguments_is_refused_with_what_to_do() {
    let _guard = rabbitmq::shared().await;
    let names = common::Names::new();
    let erp = names.erp().await;
    // Someone declared the terminal's queue without dead-lettering.
    erp.check_queue_arguments(&names.queue(), &[])
        .await
        .unwrap();

    let sub = AmqpSubscriber::start(names.config()).unwrap();
    let err = sub
        .wait_connected(Duration::from_secs(15))
        .await
        .expect_err("refused");
    let BusError::Refused { detail, .. } = &err else {
        panic!("expected Refused, got {err:?}");
    };
    assert!(detail.contains("PRECONDITION_FAILED"), "{detail}");
    assert!(detail.contains("operator"), "{detail}");
    assert!(matches!(sub.status(), LinkStatus::Refused(_)));
    sub.close().await;
    erp.close().await;
    names.cleanup(&[]).await;
}
