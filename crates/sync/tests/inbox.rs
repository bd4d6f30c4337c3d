//! The inbox against the in-memory bus and store, with the real wire decoder.

#![allow(clippy::unwrap_used)] // test code

use std::sync::Arc;
use std::time::Duration;

use spacepos_amqp::WireDecoder;
use spacepos_erp_wire::events::{DatasetChangedIntegrationEvent, DatasetChangedItem};
use spacepos_sync::{EventSubscriber, Inbox, LocalStore};
use spacepos_testkit::fakes::{MemoryBus, MemoryDatasets, MemoryLocalStore};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const TYPE: &str = "DatasetChangedIntegrationEvent";

/// A store seeded with `products` at sequence 100 (10 entities).
async fn seeded() -> MemoryLocalStore {
    let erp = MemoryDatasets::new();
    erp.add_generated("products", 10, 100);
    let store = MemoryLocalStore::new();
    spacepos_sync::Seeder::new(Arc::new(erp), Arc::new(store.clone()))
        .seed("products", None, &|_| {})
        .await
        .unwrap();
    store
}

fn event(sequence: u64, id: &str, version: u64, price: i64) -> (Uuid, Vec<u8>) {
    let e = DatasetChangedIntegrationEvent {
        id: Uuid::new_v4(),
        creation_date: chrono::Utc::now(),
        dataset: "products".into(),
        sequence,
        store_number: None,
        items: vec![DatasetChangedItem {
            id: id.into(),
            version,
            deleted: false,
            data: serde_json::json!({"price": price}),
        }],
    };
    (e.id, serde_json::to_vec(&e).unwrap())
}

fn publish(bus: &MemoryBus, (id, body): &(Uuid, Vec<u8>)) {
    bus.erp_publish(TYPE, &id.to_string(), body);
}

fn inbox(bus: &MemoryBus, store: &MemoryLocalStore) -> Inbox {
    Inbox::new(
        Arc::new(bus.clone()),
        Arc::new(WireDecoder),
        Arc::new(store.clone()),
    )
}

async fn take(bus: &MemoryBus) -> Vec<spacepos_sync::Delivery> {
    bus.receive(500, Duration::from_millis(5)).await.unwrap()
}

async fn price(store: &MemoryLocalStore, id: &str) -> i64 {
    store.entity("products", id).await.unwrap().unwrap().data["price"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn poison_is_dead_lettered_and_the_good_events_around_it_are_applied_and_acked() {
    let (bus, store) = (MemoryBus::new(), seeded().await);
    publish(&bus, &event(101, "PRODUCTS-0000001", 2, 11));
    bus.erp_publish(TYPE, "poison-1", b"{ not json");
    bus.erp_publish(
        TYPE,
        "poison-2",
        br#"{"Id": "6f3c1e8a-4d4c-4e7e-9a51-2f1d7e6b9c30", "Dataset": "products"}"#,
    );
    bus.erp_publish("SomethingElse", "poison-3", b"{}");
    publish(&bus, &event(102, "PRODUCTS-0000002", 2, 22));
    let mut inbox = inbox(&bus, &store);
    let report = inbox
        .process(take(&bus).await, &CancellationToken::new())
        .await;
    assert_eq!((report.acked, report.dead_lettered), (2, 3));
    assert_eq!(bus.dead_letters().len(), 3);
    assert_eq!((bus.ready(), bus.unacked()), (0, 0), "everything settled");
    assert_eq!(price(&store, "PRODUCTS-0000002").await, 22);
    assert_eq!(
        store.checkpoint("products").await.unwrap().last_sequence,
        Some(102)
    );
}

#[tokio::test]
async fn a_duplicate_delivery_and_an_old_sequence_change_nothing() {
    let (bus, store) = (MemoryBus::new(), seeded().await);
    let first = event(101, "PRODUCTS-0000001", 2, 11);
    publish(&bus, &first);
    let mut inbox = inbox(&bus, &store);
    inbox
        .process(take(&bus).await, &CancellationToken::new())
        .await;
    publish(&bus, &first); // the same Id again
    publish(&bus, &event(100, "PRODUCTS-0000001", 9, 99)); // an old sequence with other data
    inbox
        .process(take(&bus).await, &CancellationToken::new())
        .await;
    let stats = inbox.stats();
    assert_eq!(
        (stats.applied, stats.duplicates, stats.already_applied),
        (1, 1, 1)
    );
    assert_eq!(price(&store, "PRODUCTS-0000001").await, 11);
    assert_eq!(bus.unacked(), 0, "duplicates are acknowledged");
}

#[tokio::test]
async fn a_gap_is_applied_reported_for_catch_up_and_the_sequence_waits() {
    let (bus, store) = (MemoryBus::new(), seeded().await);
    publish(&bus, &event(103, "PRODUCTS-0000003", 2, 33));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut inbox = inbox(&bus, &store).with_gap_reports(tx);
    let report = inbox
        .process(take(&bus).await, &CancellationToken::new())
        .await;
    assert!(report.gaps.contains("products"));
    assert_eq!(
        price(&store, "PRODUCTS-0000003").await,
        33,
        "its items are applied (version rule)"
    );
    assert_eq!(
        store.checkpoint("products").await.unwrap().last_sequence,
        Some(100),
        "the sequence waits for the catch-up"
    );
    drop(inbox);
    assert!(
        rx.try_recv().is_err(),
        "process() reports in its result; run() forwards to the channel"
    );
}

#[tokio::test(start_paused = true)]
async fn local_trouble_is_retried_not_dead_lettered_and_nothing_is_acked_before_the_commit() {
    let (bus, store) = (MemoryBus::new(), seeded().await);
    publish(&bus, &event(101, "PRODUCTS-0000001", 2, 11));
    store.set_unavailable(Some("disk full"));
    let deliveries = take(&bus).await;
    let shutdown = CancellationToken::new();
    let (bus2, store2) = (bus.clone(), store.clone());
    let task = tokio::spawn(async move {
        let mut inbox = inbox(&bus2, &store2);
        inbox.process(deliveries, &CancellationToken::new()).await
    });
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(bus.unacked(), 1, "not acked while the store fails");
    assert!(
        bus.dead_letters().is_empty(),
        "local trouble is never a reason to dead-letter"
    );
    store.set_unavailable(None);
    let report = task.await.unwrap();
    assert_eq!(report.acked, 1);
    assert_eq!(price(&store, "PRODUCTS-0000001").await, 11);
    drop(shutdown);
}

#[tokio::test(start_paused = true)]
async fn shutdown_during_a_retry_acks_nothing_and_the_broker_redelivers() {
    let (bus, store) = (MemoryBus::new(), seeded().await);
    publish(&bus, &event(101, "PRODUCTS-0000001", 2, 11));
    store.set_unavailable(Some("database is locked"));
    let deliveries = take(&bus).await;
    let shutdown = CancellationToken::new();
    let token = shutdown.clone();
    let (bus2, store2) = (bus.clone(), store.clone());
    let task = tokio::spawn(async move { inbox(&bus2, &store2).process(deliveries, &token).await });
    tokio::time::sleep(Duration::from_secs(2)).await;
    shutdown.cancel();
    let report = task.await.unwrap();
    assert_eq!(report.acked, 0);
    // The consumer goes away; the broker delivers again to the next one.
    store.set_unavailable(None);
    bus.disconnect();
    let mut next = inbox(&bus, &store);
    let again = take(&bus).await;
    assert_eq!(again.len(), 1);
    assert!(again[0].redelivered);
    next.process(again, &CancellationToken::new()).await;
    assert_eq!(price(&store, "PRODUCTS-0000001").await, 11);
    assert_eq!(next.stats().applied, 1);
}

#[tokio::test(start_paused = true)]
async fn run_keeps_consuming_through_an_outage_and_reports_gaps() {
    let (bus, store) = (MemoryBus::new(), seeded().await);
    let (tx, mut gaps) = mpsc::unbounded_channel();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        inbox(&bus, &store)
            .with_gap_reports(tx)
            .run(shutdown.clone()),
    );
    publish(&bus, &event(101, "PRODUCTS-0000001", 2, 11));
    tokio::time::sleep(Duration::from_secs(1)).await;
    bus.set_down(true);
    tokio::time::sleep(Duration::from_secs(10)).await;
    bus.set_down(false);
    publish(&bus, &event(105, "PRODUCTS-0000005", 2, 55));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(gaps.recv().await.as_deref(), Some("products"));
    shutdown.cancel();
    let stats = task.await.unwrap();
    assert_eq!((stats.applied, stats.gaps), (1, 1));
    assert_eq!(price(&store, "PRODUCTS-0000005").await, 55);
}

/// A store that refuses for good any batch holding an item with id "POISON".
struct RefusesPoison(MemoryLocalStore);

#[async_trait::async_trait]
impl LocalStore for RefusesPoison {
    async fn checkpoints(
        &self,
    ) -> Result<Vec<spacepos_sync::Checkpoint>, spacepos_sync::StoreError> {
        self.0.checkpoints().await
    }
    async fn checkpoint(
        &self,
        d: &str,
    ) -> Result<spacepos_sync::Checkpoint, spacepos_sync::StoreError> {
        self.0.checkpoint(d).await
    }
    async fn apply_snapshot_page(
        &self,
        p: &spacepos_sync::SnapshotPage,
        f: Option<String>,
    ) -> Result<spacepos_sync::SnapshotStep, spacepos_sync::StoreError> {
        self.0.apply_snapshot_page(p, f).await
    }
    async fn restart_snapshot(&self, d: &str) -> Result<(), spacepos_sync::StoreError> {
        self.0.restart_snapshot(d).await
    }
    async fn apply_changes(
        &self,
        p: &spacepos_sync::ChangesPage,
    ) -> Result<(), spacepos_sync::StoreError> {
        self.0.apply_changes(p).await
    }
    async fn apply_events(
        &self,
        events: &[spacepos_sync::DatasetEvent],
    ) -> Result<Vec<spacepos_sync::EventOutcome>, spacepos_sync::StoreError> {
        if events
            .iter()
            .any(|e| e.items.iter().any(|i| i.id == "POISON"))
        {
            return Err(spacepos_sync::StoreError::Conflict(
                "a version beyond what the local store can hold".into(),
            ));
        }
        self.0.apply_events(events).await
    }
    async fn entity(
        &self,
        d: &str,
        id: &str,
    ) -> Result<Option<spacepos_sync::Entity>, spacepos_sync::StoreError> {
        self.0.entity(d, id).await
    }
    async fn entities(
        &self,
        d: &str,
        a: Option<String>,
        l: u32,
    ) -> Result<Vec<spacepos_sync::Entity>, spacepos_sync::StoreError> {
        self.0.entities(d, a, l).await
    }
    async fn prune_inbox(
        &self,
        c: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, spacepos_sync::StoreError> {
        self.0.prune_inbox(c).await
    }
}

#[tokio::test]
async fn an_event_the_store_can_never_hold_is_dead_lettered_and_the_rest_of_its_batch_applied() {
    let (bus, store) = (MemoryBus::new(), seeded().await);
    publish(&bus, &event(101, "PRODUCTS-0000001", 2, 11));
    publish(&bus, &event(102, "POISON", 2, 0));
    publish(&bus, &event(103, "PRODUCTS-0000003", 2, 33));
    let mut inbox = Inbox::new(
        Arc::new(bus.clone()),
        Arc::new(WireDecoder),
        Arc::new(RefusesPoison(store.clone())),
    );
    let report = inbox
        .process(take(&bus).await, &CancellationToken::new())
        .await;
    assert_eq!((report.acked, report.dead_lettered), (2, 1));
    assert_eq!(bus.dead_letters().len(), 1);
    assert_eq!(price(&store, "PRODUCTS-0000001").await, 11);
    assert_eq!(price(&store, "PRODUCTS-0000003").await, 33);
    assert_eq!(bus.unacked(), 0, "nothing left blocking the queue");
}
