//! The runtime's loops together, on the in-memory fakes, with paused time.

#![allow(clippy::unwrap_used)] // test code

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use spacepos_amqp::WireDecoder;
use spacepos_config::{ConfigStateStore, keys};
use spacepos_core::{RemoteError, SystemClock};
use spacepos_runtime::{BusPorts, Runtime, RuntimeSettings, SyncPorts};
use spacepos_sync::{Destination, LocalStore, NewOperation, OperationState, Outbox};
use spacepos_testkit::fakes::{
    MemoryBus, MemoryConfigState, MemoryDatasets, MemoryLocalStore, MemoryOperations, MemoryOutbox,
    OperationsFault,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

struct Node {
    datasets: MemoryDatasets,
    operations: MemoryOperations,
    store: MemoryLocalStore,
    outbox: MemoryOutbox,
    state: MemoryConfigState,
    bus: MemoryBus,
}

impl Node {
    fn new() -> Node {
        let datasets = MemoryDatasets::new();
        datasets.add_generated("products", 20, 100);
        Node {
            datasets,
            operations: MemoryOperations::new(),
            store: MemoryLocalStore::new(),
            outbox: MemoryOutbox::new(),
            state: MemoryConfigState::new(),
            bus: MemoryBus::new(),
        }
    }

    fn runtime(&self, settings: RuntimeSettings) -> Runtime {
        Runtime::new(
            SyncPorts {
                datasets: Arc::new(self.datasets.clone()),
                operations: Arc::new(self.operations.clone()),
                store: Arc::new(self.store.clone()),
                outbox: Arc::new(self.outbox.clone()),
                config_state: Arc::new(self.state.clone()),
                onboarding: None,
                clock: Arc::new(SystemClock),
                bus: Some(BusPorts {
                    subscriber: Arc::new(self.bus.clone()),
                    publisher: Arc::new(self.bus.clone()),
                    decoder: Arc::new(WireDecoder),
                    handler: None,
                }),
            },
            settings,
        )
    }

    /// Publish the ERP's event of change `sequence` on the bus.
    fn publish_event(&self, sequence: u64) {
        let e = self.datasets.event("products", sequence).unwrap();
        let wire = spacepos_erp_wire::events::DatasetChangedIntegrationEvent {
            id: e.event_id,
            creation_date: Utc::now(),
            dataset: e.dataset,
            sequence: e.sequence,
            store_number: None,
            items: e
                .items
                .into_iter()
                .map(|i| spacepos_erp_wire::events::DatasetChangedItem {
                    id: i.id,
                    version: i.version,
                    deleted: i.deleted,
                    data: i.data,
                })
                .collect(),
        };
        self.bus.erp_publish(
            "DatasetChangedIntegrationEvent",
            &e.event_id.to_string(),
            &serde_json::to_vec(&wire).unwrap(),
        );
    }
}

const SETTINGS: RuntimeSettings = RuntimeSettings {
    ingest_enabled: true,
    send_enabled: true,
    ingest_every: Duration::from_secs(600),
    send_every: Duration::from_secs(5),
    retry: Duration::from_secs(60),
};

fn sale() -> NewOperation {
    NewOperation {
        id: Uuid::new_v4(),
        destination: Destination::ErpOperations,
        kind: "sale.completed".into(),
        occurred_at: Utc::now(),
        store_staff_id: None,
        payload: serde_json::json!({"totalMinor": 100}),
    }
}

#[tokio::test(start_paused = true)]
async fn a_gap_in_live_events_triggers_a_catch_up_without_waiting_for_the_ingest_timer() {
    let node = Node::new();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(node.runtime(SETTINGS).run(shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        node.store
            .checkpoint("products")
            .await
            .unwrap()
            .last_sequence,
        Some(100),
        "seeded at start"
    );

    node.datasets
        .update("products", "PRODUCTS-0000001", serde_json::json!({"p": 1}));
    node.datasets
        .update("products", "PRODUCTS-0000002", serde_json::json!({"p": 2}));
    node.datasets
        .update("products", "PRODUCTS-0000003", serde_json::json!({"p": 3}));
    node.publish_event(103); // 101 and 102 never arrive
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        node.store
            .checkpoint("products")
            .await
            .unwrap()
            .last_sequence,
        Some(103),
        "caught up within seconds, not 600 s"
    );
    let local = node.store.entities("products", None, 100).await.unwrap();
    assert_eq!(
        local,
        node.datasets
            .final_state("products")
            .into_values()
            .collect::<Vec<_>>()
    );
    assert!(
        node.state
            .get(keys::LAST_EVENT_APPLIED_AT)
            .await
            .unwrap()
            .is_some()
    );
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn queued_operations_go_out_every_send_frequency_and_survive_an_outage() {
    let node = Node::new();
    node.operations
        .fault_next([OperationsFault::Fail(RemoteError::Server {
            host: "erp".into(),
            status: 503,
            code: None,
        })]);
    node.outbox.enqueue(&[sale(), sale()]).await.unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(node.runtime(SETTINGS).run(shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        node.operations.accepted().is_empty(),
        "the first push failed; the retry waits ~60 s"
    );
    assert_eq!(node.outbox.stats().await.unwrap().pending, 2);
    tokio::time::sleep(Duration::from_secs(80)).await;
    assert_eq!(node.operations.accepted().len(), 2);
    node.outbox.enqueue(&[sale()]).await.unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        node.operations.accepted().len(),
        3,
        "picked up within send_frequency"
    );
    let done = node
        .outbox
        .list(Some(OperationState::Done), 10)
        .await
        .unwrap();
    assert_eq!(done.len(), 3);
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let last = node.state.get(keys::LAST_SEND).await.unwrap().unwrap();
    assert_eq!(last["ok"], true, "{last}");
}

#[tokio::test(start_paused = true)]
async fn a_401_stops_device_calls_and_is_recorded_for_status() {
    let node = Node::new();
    node.operations
        .fault_next([OperationsFault::Fail(RemoteError::Unauthorized {
            host: "erp".into(),
        })]);
    node.outbox.enqueue(&[sale()]).await.unwrap();
    let shutdown = CancellationToken::new();
    let runtime = node.runtime(RuntimeSettings {
        ingest_enabled: false,
        ..SETTINGS
    });
    let gate = runtime.gate();
    let task = tokio::spawn(runtime.run(shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert!(gate.is_closed());
    assert_eq!(node.operations.batches().len(), 1, "no call after the 401");
    assert_eq!(
        node.state.get(keys::REONBOARDING_NEEDED).await.unwrap(),
        Some(serde_json::json!(true))
    );
    assert_eq!(
        node.outbox.stats().await.unwrap().pending,
        1,
        "kept for after re-onboarding"
    );
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_every_loop_and_records_the_bus_as_stopped() {
    let node = Node::new();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(node.runtime(SETTINGS).run(shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let bus = node.state.get(keys::BUS).await.unwrap().unwrap();
    assert_eq!(bus["connected"], true, "{bus}");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops promptly")
        .unwrap()
        .unwrap();
    let bus = node.state.get(keys::BUS).await.unwrap().unwrap();
    assert_eq!(bus["connected"], false, "{bus}");
}
