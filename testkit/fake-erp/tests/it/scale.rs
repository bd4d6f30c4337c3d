//! Sizes from the brief: a 1,000,000-entity snapshot and 100,000 operations.
//! Timings are printed (`cargo test -- --nocapture` shows them).

use std::time::Instant;

use serde::Deserialize;
use serde::de::IgnoredAny;
use spacepos_erp_wire::rest::{OperationStatus, SnapshotPage};
use spacepos_fake_erp::{DatasetKind, DatasetSpec, FakeErp, FakeErpConfig};

use crate::common::Device;
use crate::operations::{sale, submit};

/// What the 1M test reads of a page: ids and versions; `data` is skipped
/// (its shape is checked by the other snapshot tests, and full parsing in a
/// debug build costs as much as serving).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LightPage {
    as_of_sequence: u64,
    items: Vec<LightItem>,
    next_cursor: Option<String>,
}

#[derive(Debug, Deserialize)]
struct LightItem {
    id: String,
    version: u64,
    #[allow(dead_code)]
    data: IgnoredAny,
}

/// `nextCursor` read from the end of a page, so that the next request can be
/// sent while this page is parsed (the wire type writes it last).
fn next_cursor_of(page: &[u8]) -> Option<String> {
    let key = b"\"nextCursor\":";
    let at = page.windows(key.len()).rposition(|w| w == key)?;
    let rest = page.get(at + key.len()..page.len().checked_sub(1)?)?;
    serde_json::from_slice::<Option<String>>(rest)
        .ok()
        .flatten()
}

async fn fetch_page(device: Device, cursor: Option<String>) -> Vec<u8> {
    let mut req = device
        .get("/api/pos/datasets/products/snapshot")
        .query(&[("limit", "5000")]);
    if let Some(c) = &cursor {
        req = req.query(&[("cursor", c)]);
    }
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    resp.bytes().await.unwrap().to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_million_entity_snapshot_pages_without_holding_the_dataset() {
    const SIZE: u64 = 1_000_000;
    let erp = FakeErp::start(FakeErpConfig {
        datasets: vec![DatasetSpec::new("products", DatasetKind::Products, SIZE)],
        ..FakeErpConfig::default()
    })
    .await
    .unwrap();
    let device = Device::register(&erp, 12, 1);
    let started = Instant::now();
    let (mut count, mut pages) = (0u64, 0u32);
    let mut last_id = String::new();
    let mut as_of = None;
    let mut next = Some(tokio::spawn(fetch_page(device.clone(), None)));
    while let Some(fetching) = next.take() {
        let bytes = fetching.await.unwrap();
        let cursor = next_cursor_of(&bytes);
        if let Some(c) = cursor.clone() {
            next = Some(tokio::spawn(fetch_page(device.clone(), Some(c))));
        }
        pages += 1;
        if pages == 1 {
            // The first page is a valid wire page; changes made while paging do
            // not show up in this snapshot.
            let full: SnapshotPage = serde_json::from_slice(&bytes).unwrap();
            assert_eq!(full.items[0].id, "P-00000001");
            erp.mutate_random("products", 50).unwrap();
        }
        let page: LightPage = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(page.next_cursor, cursor);
        assert_eq!(
            *as_of.get_or_insert(page.as_of_sequence),
            page.as_of_sequence
        );
        for item in &page.items {
            assert!(item.id > last_id, "{} after {last_id}", item.id);
            assert!(item.version >= 1);
            last_id.clone_from(&item.id);
        }
        count += page.items.len() as u64;
    }
    let elapsed = started.elapsed();
    println!("1,000,000-entity snapshot: {pages} pages of 5000 in {elapsed:.2?}");
    assert_eq!(count, SIZE);
    assert_eq!(pages, 200);
    assert_eq!(last_id, "P-01000000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_operations_in_batches_of_500() {
    let erp = FakeErp::start(FakeErpConfig::default()).await.unwrap();
    let device = Device::register(&erp, 12, 1);
    let started = Instant::now();
    let mut sent = 0u64;
    for b in 0..200u64 {
        let batch: Vec<_> = (0..500).map(|i| sale(b * 500 + i)).collect();
        let r = submit(&device, &batch).await;
        assert!(
            r.results
                .iter()
                .all(|r| r.status == OperationStatus::Accepted)
        );
        sent += 500;
    }
    let elapsed = started.elapsed();
    println!("100,000 operations in 200 batches of 500: {elapsed:.2?}");
    assert_eq!(erp.accepted_count() as u64, sent);
    // A retry of a batch deep in the log is still answered duplicate, quickly.
    let accepted = erp.accepted_operations();
    let replay: Vec<_> = accepted[50_000..50_500]
        .iter()
        .map(|a| a.operation.clone())
        .collect();
    let started = Instant::now();
    let r = submit(&device, &replay).await;
    assert!(
        r.results
            .iter()
            .all(|r| r.status == OperationStatus::Duplicate)
    );
    println!(
        "replay of 500 duplicates after 100,000 accepted: {:.2?}",
        started.elapsed()
    );
    assert_eq!(erp.duplicate_answers(), 500);
}
