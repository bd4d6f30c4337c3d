//! Shared set-up of the adapter's broker tests: a unique exchange and client
//! id per test, the ERP's side of the bus, and clean-up.

#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use spacepos_amqp::{AmqpConfig, ErpBusClient};
use spacepos_sync::{BusError, Delivery, EventSubscriber};
use spacepos_testkit::rabbitmq::{self, unique};
use tokio::time::Instant;

/// One test's names on the broker. Dropped without [`cleanup`](Self::cleanup)
/// (a failed test), it still deletes the exchange and the terminal's queues.
pub struct Names {
    pub exchange: String,
    pub client_id: String,
    cleaned: AtomicBool,
}

impl Names {
    pub fn new() -> Self {
        Names {
            exchange: unique("erp_event_bus.test."),
            client_id: unique("test-"),
            cleaned: AtomicBool::new(false),
        }
    }

    /// The adapter's configuration for these names, reconnecting fast.
    pub fn config(&self) -> AmqpConfig {
        let mut config = AmqpConfig::new(rabbitmq::url(), &self.client_id);
        config.exchange = self.exchange.clone();
        config
    }

    pub fn queue(&self) -> String {
        spacepos_amqp::queue_name(&self.client_id)
    }

    pub fn dlq(&self) -> String {
        spacepos_amqp::dead_letter_queue_name(&self.client_id)
    }

    pub async fn erp(&self) -> ErpBusClient {
        ErpBusClient::connect(&rabbitmq::url(), &self.exchange)
            .await
            .expect("the ERP side connects")
    }

    /// Delete the exchange and the terminal's queues (plus `extra` queues).
    pub async fn cleanup(&self, extra: &[&str]) {
        let erp = self.erp().await;
        erp.delete_terminal_queues(&self.client_id)
            .await
            .expect("delete queues");
        for q in extra {
            erp.delete_queue(q).await.expect("delete queue");
        }
        erp.delete_exchange().await.expect("delete exchange");
        erp.close().await;
        self.cleaned.store(true, Ordering::SeqCst);
    }
}

impl Drop for Names {
    fn drop(&mut self) {
        if self.cleaned.load(Ordering::SeqCst) {
            return;
        }
        let (exchange, client_id) = (self.exchange.clone(), self.client_id.clone());
        // The test's runtime is unwinding: clean up from a thread of our own.
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
                    let _ = erp.delete_queue(&format!("{client_id}.published")).await;
                    let _ = erp.delete_exchange().await;
                    erp.close().await;
                }
            });
        });
        let _ = cleanup.join();
    }
}

/// A DatasetChanged-like body for message `n`.
pub fn body(id: &str, n: usize) -> Vec<u8> {
    format!(
        r#"{{"Id":"{id}","CreationDate":"2025-05-06T07:08:09Z","Dataset":"items","Sequence":{n},"Items":[{{"Id":"item-{n}","Version":{n},"Data":{{"Name":"Item {n}","Price":1.5}}}}]}}"#
    )
    .into_bytes()
}

/// Receive until `n` deliveries arrived (waiting out `Unavailable`) or `within` passed.
pub async fn receive_n(sub: &dyn EventSubscriber, n: usize, within: Duration) -> Vec<Delivery> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < n && Instant::now() < deadline {
        match sub.receive(n - got.len(), Duration::from_millis(250)).await {
            Ok(batch) => got.extend(batch),
            Err(BusError::Unavailable { .. }) => {}
            Err(e) => panic!("receive failed: {e}"),
        }
    }
    assert_eq!(got.len(), n, "expected {n} deliveries within {within:?}");
    got
}
