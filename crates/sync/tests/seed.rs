//! Seeding and catch-up against the in-memory ERP and store.

#![allow(clippy::unwrap_used)] // test code

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use spacepos_core::RemoteError;
use spacepos_sync::{
    ChangesPage, DatasetApi, DatasetApiError, DatasetInfo, DatasetSync, Entity, LocalStore,
    SeedProgress, Seeder, SnapshotPage,
};
use spacepos_testkit::fakes::{MemoryDatasets, MemoryLocalStore};

/// Fails the `n`-th snapshot call (1-based) with a network error, once.
struct FailNthSnapshot {
    inner: MemoryDatasets,
    n: u32,
    calls: AtomicU32,
}

#[async_trait]
impl DatasetApi for FailNthSnapshot {
    async fn datasets(&self) -> Result<Vec<DatasetInfo>, DatasetApiError> {
        self.inner.datasets().await
    }
    async fn snapshot(
        &self,
        d: &str,
        c: Option<String>,
        l: u32,
    ) -> Result<SnapshotPage, DatasetApiError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.n {
            return Err(DatasetApiError::Remote(RemoteError::Unreachable {
                host: "erp".into(),
                detail: "connection reset".into(),
            }));
        }
        self.inner.snapshot(d, c, l).await
    }
    async fn changes(&self, d: &str, a: u64, l: u32) -> Result<ChangesPage, DatasetApiError> {
        self.inner.changes(d, a, l).await
    }
}

fn quiet(_: SeedProgress) {}

async fn local_state(store: &MemoryLocalStore, dataset: &str) -> Vec<Entity> {
    store.entities(dataset, None, 1_000_000).await.unwrap()
}

fn erp_state(erp: &MemoryDatasets, dataset: &str) -> Vec<Entity> {
    erp.final_state(dataset).into_values().collect()
}

#[tokio::test]
async fn a_seed_stores_every_page_and_ends_equal_to_the_erp() {
    let erp = MemoryDatasets::new();
    erp.add_generated("products", 1234, 5000);
    let store = MemoryLocalStore::new();
    let seeder =
        Seeder::new(Arc::new(erp.clone()), Arc::new(store.clone())).with_page_sizes(100, 100);
    let pages = std::sync::Mutex::new(0);
    let sequence = seeder
        .seed("products", None, &|p| {
            if matches!(p, SeedProgress::Page { .. }) {
                *pages.lock().unwrap() += 1;
            }
        })
        .await
        .unwrap();
    assert_eq!(sequence, 5000);
    assert_eq!(
        *pages.lock().unwrap(),
        12,
        "12 full pages reported, then completion"
    );
    assert_eq!(
        local_state(&store, "products").await,
        erp_state(&erp, "products")
    );
    let cp = store.checkpoint("products").await.unwrap();
    assert_eq!((cp.last_sequence, cp.entities), (Some(5000), 1234));
    assert!(cp.snapshot.is_none());
}

#[tokio::test]
async fn a_killed_seed_resumes_at_the_first_page_not_stored() {
    let erp = MemoryDatasets::new();
    erp.add_generated("products", 1234, 5000);
    let store = MemoryLocalStore::new();
    let api = Arc::new(FailNthSnapshot {
        inner: erp.clone(),
        n: 5,
        calls: AtomicU32::new(0),
    });
    let seeder = Seeder::new(api.clone(), Arc::new(store.clone())).with_page_sizes(100, 100);
    assert!(
        seeder.seed("products", None, &quiet).await.is_err(),
        "the 5th page failed"
    );
    let cp = store.checkpoint("products").await.unwrap();
    assert_eq!(
        cp.snapshot.as_ref().unwrap().items_done,
        400,
        "4 pages committed"
    );
    assert_eq!(cp.last_sequence, None);

    // A new seeder, as after a restart.
    let seeder = Seeder::new(api.clone(), Arc::new(store.clone())).with_page_sizes(100, 100);
    seeder.seed("products", None, &quiet).await.unwrap();
    assert_eq!(
        api.calls.load(Ordering::SeqCst),
        4 + 1 + 9,
        "13 pages fetched once each, plus the failed call"
    );
    assert_eq!(
        local_state(&store, "products").await,
        erp_state(&erp, "products")
    );
}

#[tokio::test]
async fn catch_up_applies_changes_in_order_with_tombstones() {
    let erp = MemoryDatasets::new();
    erp.add_generated("products", 50, 100);
    let store = MemoryLocalStore::new();
    let seeder = Seeder::new(Arc::new(erp.clone()), Arc::new(store.clone())).with_page_sizes(20, 2);
    seeder.seed("products", None, &quiet).await.unwrap();
    erp.update(
        "products",
        "PRODUCTS-0000003",
        serde_json::json!({"price": 2}),
    );
    erp.delete("products", "PRODUCTS-0000004");
    let last = erp.update(
        "products",
        "PRODUCTS-0000003",
        serde_json::json!({"price": 3}),
    );
    let r = seeder
        .sync_dataset("products", Some(last), &quiet)
        .await
        .unwrap();
    assert_eq!(
        r,
        DatasetSync::CaughtUp {
            from: 100,
            sequence: last
        }
    );
    assert_eq!(
        local_state(&store, "products").await,
        erp_state(&erp, "products")
    );
    let gone = store
        .entity("products", "PRODUCTS-0000004")
        .await
        .unwrap()
        .unwrap();
    assert!(gone.deleted, "a tombstone is kept");
    assert_eq!(store.checkpoint("products").await.unwrap().entities, 49);
    // Nothing new: no changes call at all when the ERP's sequence is known.
    let (_, changes_before) = erp.calls();
    let r = seeder
        .sync_dataset("products", Some(last), &quiet)
        .await
        .unwrap();
    assert_eq!(r, DatasetSync::UpToDate { sequence: last });
    assert_eq!(erp.calls().1, changes_before);
}

#[tokio::test]
async fn an_expired_sequence_reseeds_and_drops_what_the_erp_purged() {
    let erp = MemoryDatasets::new();
    erp.add_generated("products", 30, 100);
    let store = MemoryLocalStore::new();
    let seeder = Seeder::new(Arc::new(erp.clone()), Arc::new(store.clone())).with_page_sizes(7, 7);
    seeder.seed("products", None, &quiet).await.unwrap();
    // While the till was away: changes, then the ERP purged an entity and its history.
    erp.update("products", "PRODUCTS-0000001", serde_json::json!({"v": 2}));
    erp.purge("products", "PRODUCTS-0000002");
    let last = erp.update("products", "PRODUCTS-0000005", serde_json::json!({"v": 2}));
    erp.expire_through("products", last);
    let r = seeder.sync_dataset("products", None, &quiet).await.unwrap();
    assert_eq!(
        r,
        DatasetSync::Seeded {
            sequence: last,
            reseed: true
        }
    );
    assert!(
        store
            .entity("products", "PRODUCTS-0000002")
            .await
            .unwrap()
            .is_none(),
        "swept by the reseed"
    );
    assert_eq!(
        local_state(&store, "products").await,
        erp_state(&erp, "products")
    );
    assert_eq!(
        store.checkpoint("products").await.unwrap().last_sequence,
        Some(last)
    );
}

#[tokio::test]
async fn sync_all_seeds_new_datasets_and_stops_when_the_erp_fails() {
    let erp = MemoryDatasets::new();
    erp.add_generated("products", 10, 1);
    erp.add_generated("prices", 10, 1);
    let store = MemoryLocalStore::new();
    let seeder = Seeder::new(Arc::new(erp.clone()), Arc::new(store.clone()));
    let results = seeder.sync_all(None, &quiet).await.unwrap();
    assert_eq!(results.len(), 2);
    assert!(
        results
            .iter()
            .all(|(_, r)| matches!(r, Ok(DatasetSync::Seeded { .. })))
    );
    erp.fail_next([RemoteError::Server {
        host: "erp".into(),
        status: 503,
        code: None,
    }]);
    assert!(
        seeder.sync_all(None, &quiet).await.is_err(),
        "the dataset list itself failed"
    );
}

/// Changes the ERP's data while the second snapshot page is being served.
struct ChangesDuringSnapshot {
    inner: MemoryDatasets,
    calls: AtomicU32,
}

#[async_trait]
impl DatasetApi for ChangesDuringSnapshot {
    async fn datasets(&self) -> Result<Vec<DatasetInfo>, DatasetApiError> {
        self.inner.datasets().await
    }
    async fn snapshot(
        &self,
        d: &str,
        c: Option<String>,
        l: u32,
    ) -> Result<SnapshotPage, DatasetApiError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == 1 {
            self.inner.update(
                "products",
                "PRODUCTS-0000001",
                serde_json::json!({"changed": "while paging"}),
            );
        }
        self.inner.snapshot(d, c, l).await
    }
    async fn changes(&self, d: &str, a: u64, l: u32) -> Result<ChangesPage, DatasetApiError> {
        self.inner.changes(d, a, l).await
    }
}

#[tokio::test]
async fn a_first_seed_ends_at_the_erps_sequence_not_at_the_snapshots() {
    let erp = MemoryDatasets::new();
    erp.add_generated("products", 30, 100);
    let store = MemoryLocalStore::new();
    let api = Arc::new(ChangesDuringSnapshot {
        inner: erp.clone(),
        calls: AtomicU32::new(0),
    });
    let seeder = Seeder::new(api, Arc::new(store.clone())).with_page_sizes(10, 10);
    let r = seeder.sync_dataset("products", None, &quiet).await.unwrap();
    assert_eq!(
        r,
        DatasetSync::Seeded {
            sequence: 101,
            reseed: false
        },
        "the change after the snapshot is caught up"
    );
    assert_eq!(
        store.checkpoint("products").await.unwrap().last_sequence,
        Some(101)
    );
    assert_eq!(
        local_state(&store, "products").await,
        erp_state(&erp, "products")
    );
}
