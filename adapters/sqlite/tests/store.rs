//! The SQLite store beyond the port suites (those run in `spacepos-testkit`):
//! bulk speed, contention, damaged files, caller transactions, schema versions.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use spacepos_sqlite::{ErrorKind, SqliteStore, StoreOptions, sqlx};
use spacepos_sync::{
    Destination, Entity, LocalStore, NewOperation, OperationState, Outbox, SnapshotPage,
    SnapshotStep, StoreError,
};
use uuid::Uuid;

fn sale(n: u64) -> NewOperation {
    NewOperation {
        id: Uuid::new_v4(),
        destination: Destination::ErpOperations,
        kind: "sale.completed".into(),
        occurred_at: Utc::now(),
        store_staff_id: None,
        payload: json!({"receiptNumber": format!("12-3-{n:06}"), "totalMinor": 1999}),
    }
}

fn product(i: u64) -> Entity {
    Entity {
        id: format!("P-{i:08}"),
        version: 1,
        deleted: false,
        data: json!({"name": format!("product {i}"), "sku": format!("SKU-{i}"), "priceMinor": 100 + i, "taxRateId": "T-STD", "barcode": null}),
    }
}

/// On the target's disk (not a tmpfs), so that fsync costs what it costs.
fn workdir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

fn quick(busy_timeout_ms: u64, retry_for_ms: u64) -> StoreOptions {
    StoreOptions {
        busy_timeout: Duration::from_millis(busy_timeout_ms),
        retry_for: Duration::from_millis(retry_for_ms),
        ..StoreOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100k_entity_snapshot_in_pages_of_5000() {
    let dir = workdir();
    let store = SqliteStore::open(dir.path().join("spacepos.db"))
        .await
        .unwrap();
    let (pages, size) = (20u64, 5000u64);
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut in_store = Duration::ZERO;
    for p in 0..pages {
        let page = SnapshotPage {
            dataset: "products".into(),
            as_of_sequence: 42,
            items: (p * size..(p + 1) * size).map(product).collect(),
            next_cursor: (p + 1 < pages).then(|| format!("after-{p}")),
        };
        let t = Instant::now();
        let fetched_with = p.checked_sub(1).map(|q| format!("after-{q}"));
        let step = store
            .apply_snapshot_page(&page, fetched_with)
            .await
            .unwrap();
        slowest = slowest.max(t.elapsed());
        in_store += t.elapsed();
        assert_eq!(step == SnapshotStep::Complete, p + 1 == pages);
    }
    let elapsed = start.elapsed();
    println!(
        "snapshot of {} entities in pages of {size}: {:.2} s with building the pages; \
         in apply_snapshot_page {:.2} s = {:.0} rows/s; slowest page {} ms",
        pages * size,
        elapsed.as_secs_f64(),
        in_store.as_secs_f64(),
        (pages * size) as f64 / in_store.as_secs_f64(),
        slowest.as_millis()
    );
    let checkpoint = store.checkpoint("products").await.unwrap();
    assert_eq!(
        (checkpoint.entities, checkpoint.last_sequence),
        (100_000, Some(42))
    );
    assert!(
        elapsed < Duration::from_secs(60),
        "far too slow: {elapsed:?}"
    );

    // a reseed of the same size, half the entities gone: the sweep removes them
    let start = Instant::now();
    for p in 0..pages / 2 {
        let page = SnapshotPage {
            dataset: "products".into(),
            as_of_sequence: 43,
            items: (p * size..(p + 1) * size).map(product).collect(),
            next_cursor: (p + 1 < pages / 2).then(|| format!("after-{p}")),
        };
        let fetched_with = p.checked_sub(1).map(|q| format!("after-{q}"));
        store
            .apply_snapshot_page(&page, fetched_with)
            .await
            .unwrap();
    }
    println!(
        "reseed of 50,000 sweeping 50,000: {:.2} s",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(store.checkpoint("products").await.unwrap().entities, 50_000);
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}

#[tokio::test]
async fn enqueue_latency_of_one_operation() {
    let dir = workdir();
    let store = SqliteStore::open(dir.path().join("spacepos.db"))
        .await
        .unwrap();
    let mut latencies = Vec::new();
    for n in 0..300 {
        let t = Instant::now();
        store.enqueue(&[sale(n)]).await.unwrap();
        latencies.push(t.elapsed());
    }
    latencies.sort();
    println!(
        "enqueue of one operation (durable commit): p50 {} us, p99 {} us, max {} us",
        latencies[150].as_micros(),
        latencies[297].as_micros(),
        latencies[299].as_micros()
    );
    let t = Instant::now();
    let batch: Vec<NewOperation> = (0..500).map(sale).collect();
    store.enqueue(&batch).await.unwrap();
    println!(
        "enqueue of 500 operations in one call: {} ms",
        t.elapsed().as_millis()
    );
}

#[tokio::test]
async fn a_file_that_is_not_a_database_is_named_with_what_to_do() {
    let dir = workdir();
    let path = dir.path().join("spacepos.db");
    std::fs::write(&path, "this is a text file, not a database\n".repeat(200)).unwrap();
    let err = SqliteStore::open(&path).await.unwrap_err();
    let message = err.to_string();
    println!("{message}");
    assert_eq!(err.kind(), ErrorKind::NotADatabase);
    assert_eq!(err.path(), path);
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("not a SQLite database"), "{message}");
    assert!(message.contains("move the file aside"), "{message}");
    assert!(!err.is_transient());
}

#[tokio::test]
async fn a_path_that_cannot_be_a_file_is_named() {
    let dir = workdir();
    let path = dir.path().join("a-directory");
    std::fs::create_dir(&path).unwrap();
    let err = SqliteStore::open(&path).await.unwrap_err();
    println!("{err}");
    assert_eq!(err.kind(), ErrorKind::CantOpen);
    assert!(err.to_string().contains(&path.display().to_string()));
}

#[tokio::test]
async fn integrity_check_says_ok() {
    let dir = workdir();
    let store = SqliteStore::open(dir.path().join("spacepos.db"))
        .await
        .unwrap();
    store.enqueue(&[sale(1), sale(2)]).await.unwrap();
    store
        .apply_snapshot_page(
            &SnapshotPage {
                dataset: "products".into(),
                as_of_sequence: 1,
                items: (0..1000).map(product).collect(),
                next_cursor: None,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}

#[tokio::test]
async fn the_directory_is_created_and_a_second_open_finds_the_data() {
    let dir = workdir();
    let path = dir.path().join("deep").join("er").join("spacepos.db");
    let first = SqliteStore::open(&path).await.unwrap();
    let queued = first.enqueue(&[sale(1)]).await.unwrap();
    first.close().await;
    let second = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        second.get(queued[0].id).await.unwrap(),
        Some(queued[0].clone())
    );
    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(second.begin_write().await.unwrap().connection())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
}

#[tokio::test]
async fn a_write_connection_has_the_pragmas() {
    let dir = workdir();
    let store = SqliteStore::open(dir.path().join("spacepos.db"))
        .await
        .unwrap();
    let mut tx = store.begin_write().await.unwrap();
    let conn = tx.connection();
    let (sync,): (i64,) = sqlx::query_as("PRAGMA synchronous")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let (fk,): (i64,) = sqlx::query_as("PRAGMA foreign_keys")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    let (busy,): (i64,) = sqlx::query_as("PRAGMA busy_timeout")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert_eq!(
        (sync, fk, busy),
        (2, 1, 50),
        "synchronous=FULL, foreign_keys=ON, busy_timeout=50 ms"
    );
    tx.rollback().await.unwrap();
}

#[tokio::test]
async fn a_caller_transaction_stores_its_rows_and_operations_together() {
    let dir = workdir();
    let store = SqliteStore::open(dir.path().join("spacepos.db"))
        .await
        .unwrap();
    let fuel_sale = NewOperation {
        kind: "fuel.sale.completed".into(),
        ..sale(1)
    };

    // rolled back: neither the caller's row nor the operation
    let mut tx = store.begin_write().await.unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS fuel_sales (fdc_id TEXT PRIMARY KEY, amount_minor INTEGER NOT NULL)")
        .execute(tx.connection())
        .await
        .unwrap();
    sqlx::query("INSERT INTO fuel_sales VALUES ('FDC-4-771', 4691)")
        .execute(tx.connection())
        .await
        .unwrap();
    tx.enqueue(std::slice::from_ref(&fuel_sale)).await.unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(store.get(fuel_sale.id).await.unwrap(), None);

    // committed: both
    let mut tx = store.begin_write().await.unwrap();
    sqlx::query("CREATE TABLE IF NOT EXISTS fuel_sales (fdc_id TEXT PRIMARY KEY, amount_minor INTEGER NOT NULL)")
        .execute(tx.connection())
        .await
        .unwrap();
    sqlx::query("INSERT INTO fuel_sales VALUES ('FDC-4-771', 4691)")
        .execute(tx.connection())
        .await
        .unwrap();
    let queued = tx.enqueue(std::slice::from_ref(&fuel_sale)).await.unwrap();
    assert_eq!(
        store.get(fuel_sale.id).await.unwrap(),
        None,
        "not visible before the commit"
    );
    // a conflicting operation fails alone; the transaction goes on
    let mut conflicting = fuel_sale.clone();
    conflicting.payload = json!({"other": true});
    let innocent = sale(2);
    assert!(matches!(
        tx.enqueue(&[innocent.clone(), conflicting]).await,
        Err(StoreError::Conflict(_))
    ));
    tx.commit().await.unwrap();
    assert_eq!(
        store.get(fuel_sale.id).await.unwrap(),
        Some(queued[0].clone())
    );
    assert_eq!(
        store.get(innocent.id).await.unwrap(),
        None,
        "the failed call queued nothing"
    );
    let mut tx = store.begin_write().await.unwrap();
    let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM fuel_sales")
        .fetch_one(tx.connection())
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_holding_the_lock_is_waited_out() {
    let dir = workdir();
    let path = dir.path().join("spacepos.db");
    let holder = SqliteStore::open(&path).await.unwrap();
    // SQLite's own wait is short here, so the store's retries do the waiting.
    let other = SqliteStore::open_with(&path, quick(100, 20_000))
        .await
        .unwrap();

    let tx = holder.begin_write().await.unwrap();
    let release = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        tx.commit().await.unwrap();
    });
    let t = Instant::now();
    let queued = other.enqueue(&[sale(1)]).await.unwrap();
    let waited = t.elapsed();
    release.await.unwrap();
    println!(
        "enqueue waited {} ms for the other writer",
        waited.as_millis()
    );
    assert!(waited >= Duration::from_millis(1200), "{waited:?}");
    assert_eq!(queued[0].state, OperationState::Pending);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_held_beyond_the_retry_window_is_unavailable_naming_the_file() {
    let dir = workdir();
    let path = dir.path().join("spacepos.db");
    let holder = SqliteStore::open(&path).await.unwrap();
    let other = SqliteStore::open_with(&path, quick(100, 600))
        .await
        .unwrap();

    let tx = holder.begin_write().await.unwrap();
    let op = sale(1);
    let t = Instant::now();
    let err = other.enqueue(std::slice::from_ref(&op)).await.unwrap_err();
    println!("{err}");
    assert!(t.elapsed() >= Duration::from_millis(600));
    match &err {
        StoreError::Unavailable { location, detail } => {
            assert_eq!(location, &path.display().to_string());
            assert!(detail.contains("locked"), "{detail}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(err.is_transient());
    tx.rollback().await.unwrap();
    // once the lock is gone the same call succeeds
    other.enqueue(&[op]).await.unwrap();
}

#[tokio::test]
async fn a_schema_migrated_further_by_a_newer_component_still_opens() {
    let dir = workdir();
    let path = dir.path().join("spacepos.db");
    let store = SqliteStore::open(&path).await.unwrap();
    let mut tx = store.begin_write().await.unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from a newer SpacePOS', 1, x'00', 0)",
    )
    .execute(tx.connection())
    .await
    .unwrap();
    sqlx::query("ALTER TABLE outbox ADD COLUMN added_later TEXT")
        .execute(tx.connection())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    store.close().await;

    let older = SqliteStore::open(&path).await.unwrap();
    older.enqueue(&[sale(1)]).await.unwrap();
    assert_eq!(older.stats().await.unwrap().pending, 1);
}
