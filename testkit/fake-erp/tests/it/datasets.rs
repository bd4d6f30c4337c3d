//! Contract section 3: datasets, snapshots, changes.

use std::collections::BTreeMap;

use serde_json::json;
use spacepos_erp_wire::rest::{ChangesPage, DatasetList, SnapshotPage};
use spacepos_fake_erp::{
    DatasetKind, DatasetSpec, EntityChange, EntitySnapshot, FakeErp, FakeErpConfig,
};

use crate::common::{Device, demo, error_of};

/// Pages through a whole snapshot; returns the entities and the asOfSequence.
pub(crate) async fn page_snapshot(
    device: &Device,
    dataset: &str,
    limit: usize,
) -> (BTreeMap<String, EntitySnapshot>, u64) {
    page_snapshot_with(device, dataset, limit, || {}).await
}

/// Like [`page_snapshot`], calling `after_first_page` once the first page arrived.
pub(crate) async fn page_snapshot_with(
    device: &Device,
    dataset: &str,
    limit: usize,
    after_first_page: impl FnOnce(),
) -> (BTreeMap<String, EntitySnapshot>, u64) {
    let mut after_first_page = Some(after_first_page);
    let mut out = BTreeMap::new();
    let mut cursor: Option<String> = None;
    let mut as_of = None;
    let mut last_id: Option<String> = None;
    loop {
        let mut req = device
            .get(&format!("/api/pos/datasets/{dataset}/snapshot"))
            .query(&[("limit", limit.to_string())]);
        if let Some(c) = &cursor {
            req = req.query(&[("cursor", c)]);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let page: SnapshotPage = resp.json().await.unwrap();
        assert_eq!(page.dataset, dataset);
        assert!(page.items.len() <= limit);
        assert_eq!(
            *as_of.get_or_insert(page.as_of_sequence),
            page.as_of_sequence,
            "asOfSequence changed"
        );
        for item in page.items {
            assert!(
                last_id.as_deref() < Some(item.id.as_str()),
                "ids out of order at {}",
                item.id
            );
            last_id = Some(item.id.clone());
            out.insert(
                item.id,
                EntitySnapshot {
                    version: item.version,
                    deleted: item.deleted,
                    data: item.data,
                },
            );
        }
        if let Some(f) = after_first_page.take() {
            f();
        }
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    (out, as_of.unwrap())
}

/// Reads every change after `after`; checks ordering and that no change is split.
pub(crate) async fn read_changes(
    device: &Device,
    dataset: &str,
    mut after: u64,
    limit: usize,
) -> Vec<ChangesPage> {
    let mut pages = Vec::new();
    loop {
        let page: ChangesPage = device
            .get_json(&format!(
                "/api/pos/datasets/{dataset}/changes?after={after}&limit={limit}"
            ))
            .await;
        if let Some(first) = page.items.first() {
            assert_eq!(first.sequence, after + 1, "no hole between pages");
            assert_eq!(page.last_sequence, page.items.last().unwrap().sequence);
        } else {
            assert_eq!(page.last_sequence, after);
        }
        for w in page.items.windows(2) {
            assert!(
                w[1].sequence == w[0].sequence || w[1].sequence == w[0].sequence + 1,
                "ordered, no holes"
            );
        }
        after = page.last_sequence;
        let more = page.has_more;
        pages.push(page);
        if !more {
            return pages;
        }
    }
}

/// The contract's apply rule: write only a greater version.
fn apply(store: &mut BTreeMap<String, EntitySnapshot>, id: String, s: EntitySnapshot) {
    if store.get(&id).is_none_or(|old| s.version > old.version) {
        store.insert(id, s);
    }
}

#[tokio::test]
async fn datasets_list_names_and_sequences() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let list: DatasetList = device.get_json("/api/pos/datasets").await;
    let names: Vec<&str> = list.datasets.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "products",
            "prices",
            "tax_rates",
            "payment_methods",
            "staff"
        ]
    );
    for d in &list.datasets {
        assert_eq!(d.last_sequence, erp.dataset_last_sequence(&d.name).unwrap());
    }
    let seq = erp.mutate_random("prices", 3).unwrap();
    let list: DatasetList = device.get_json("/api/pos/datasets").await;
    assert_eq!(list.datasets[1].last_sequence, *seq.last().unwrap());
}

#[tokio::test]
async fn snapshot_pages_cover_the_dataset_in_id_order() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let (paged, as_of) = page_snapshot(&device, "products", 37).await;
    assert_eq!(as_of, erp.dataset_last_sequence("products").unwrap());
    assert_eq!(paged.len(), 300);
    assert_eq!(paged, erp.dataset_final_state("products").unwrap());
    assert_eq!(paged.keys().next().unwrap(), "P-0000001");
    let p1 = &paged["P-0000001"];
    for field in ["name", "sku", "priceMinor", "taxRateId", "barcode"] {
        assert!(p1.data.get(field).is_some(), "{field}");
    }
    // The last page has a null cursor, also when the size is a multiple of the limit.
    let (paged, _) = page_snapshot(&device, "products", 100).await;
    assert_eq!(paged.len(), 300);
    let page: SnapshotPage = device
        .get_json("/api/pos/datasets/tax_rates/snapshot?limit=5000")
        .await;
    assert_eq!(page.items.len(), 4);
    assert_eq!(page.next_cursor, None);
    assert_eq!(page.items[0].data["name"], "Standard");
}

#[tokio::test]
async fn snapshot_and_changes_validate_their_parameters() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    for q in ["limit=0", "limit=5001", "limit=ten", "limit=-1"] {
        let resp = device
            .get(&format!("/api/pos/datasets/products/snapshot?{q}"))
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(resp).await, (422, "invalid_request".into()), "{q}");
        let resp = device
            .get(&format!("/api/pos/datasets/products/changes?after=1&{q}"))
            .send()
            .await
            .unwrap();
        assert_eq!(error_of(resp).await, (422, "invalid_request".into()), "{q}");
    }
    let resp = device
        .get("/api/pos/datasets/products/snapshot?limit=5000")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    for cursor in ["garbage", "eyJhcyI6OTg3NjUsImFmdGVyIjoiUC0xMDAyIn0"] {
        let resp = device
            .get("/api/pos/datasets/products/snapshot")
            .query(&[("cursor", cursor)])
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(resp).await,
            (422, "invalid_cursor".into()),
            "{cursor}"
        );
    }
    let resp = device
        .get("/api/pos/datasets/products/changes")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await, (422, "invalid_request".into()));
    let resp = device
        .get("/api/pos/datasets/products/changes?after=x")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await, (422, "invalid_request".into()));
    let resp = device
        .get("/api/pos/datasets/nope/snapshot")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await, (404, "unknown_dataset".into()));
    let resp = device
        .get("/api/pos/datasets/nope/changes?after=1")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await, (404, "unknown_dataset".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_stays_consistent_while_the_dataset_changes() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let before = erp.dataset_final_state("products").unwrap();
    let before_seq = erp.dataset_last_sequence("products").unwrap();

    // Once the first page fixed asOfSequence, mutate concurrently while paging:
    // random changes, plus ids that sort before, inside and after the pages to come.
    let mut writer = None;
    let start_writer = || {
        // Some changes surely land between page 1 and page 2 ...
        erp.mutate_random("products", 30).unwrap();
        erp.mutate(
            "products",
            vec![
                EntityChange::delete("P-0000005"),
                EntityChange::delete("P-0000200"),
                EntityChange::upsert("P-0000100", json!({})),
            ],
        )
        .unwrap();
        // ... and more while the pages are read.
        let erp = erp.clone();
        writer = Some(tokio::spawn(async move {
            for i in 0..200u64 {
                erp.mutate_random("products", 1).unwrap();
                if i % 20 == 0 {
                    erp.mutate(
                        "products",
                        vec![
                            EntityChange::upsert(format!("A-{i:04}"), json!({"early": i})),
                            EntityChange::upsert(format!("P-0000150x{i}"), json!({"middle": i})),
                            EntityChange::upsert(format!("Z-{i:04}"), json!({"late": i})),
                            EntityChange::delete(format!("P-{:07}", 290 - i / 20)),
                        ],
                    )
                    .unwrap();
                }
                tokio::task::yield_now().await;
            }
        }));
    };
    let (paged, as_of) = page_snapshot_with(&device, "products", 10, start_writer).await;
    writer.unwrap().await.unwrap();
    assert_eq!(
        as_of, before_seq,
        "the first page fixed asOfSequence before the writer ran"
    );
    assert_eq!(paged, before, "pages follow the state as of asOfSequence");

    // A new snapshot sees everything, tombstones included.
    let after = erp.dataset_final_state("products").unwrap();
    assert_ne!(after, before);
    let (paged, as_of) = page_snapshot(&device, "products", 999).await;
    assert_eq!(as_of, erp.dataset_last_sequence("products").unwrap());
    assert_eq!(paged, after);
    assert!(paged.values().any(|e| e.deleted && e.data.is_null()));
    assert!(paged.contains_key("A-0000") && paged.contains_key("Z-0180"));
}

#[tokio::test]
async fn snapshot_plus_changes_reproduce_the_erp_state() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let (mut store, as_of) = page_snapshot(&device, "products", 1000).await;
    let sequences = erp.mutate_random("products", 60).unwrap();
    assert_eq!(sequences.first(), Some(&(as_of + 1)));
    assert!(sequences.windows(2).all(|w| w[1] == w[0] + 1), "no holes");

    let pages = read_changes(&device, "products", as_of, 7).await;
    assert!(pages.len() > 5);
    let mut per_sequence: BTreeMap<u64, usize> = BTreeMap::new();
    for page in &pages {
        for item in &page.items {
            *per_sequence.entry(item.sequence).or_default() += 1;
            let s = EntitySnapshot {
                version: item.version,
                deleted: item.deleted,
                data: item.data.clone(),
            };
            apply(&mut store, item.id.clone(), s);
        }
    }
    // Every change arrived whole: as many items as its event has.
    for (seq, count) in &per_sequence {
        assert_eq!(
            *count,
            erp.dataset_changed_event("products", *seq)
                .unwrap()
                .items
                .len(),
            "change {seq}"
        );
    }
    assert_eq!(per_sequence.len(), 60);
    assert_eq!(store, erp.dataset_final_state("products").unwrap());
    let last = pages.last().unwrap();
    assert!(!last.has_more);
    assert_eq!(
        last.last_sequence,
        erp.dataset_last_sequence("products").unwrap()
    );
}

#[tokio::test]
async fn a_change_is_never_split_even_when_larger_than_the_limit() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let base = erp.dataset_last_sequence("staff").unwrap();
    let big: Vec<_> = (1..=12)
        .map(|i| EntityChange::upsert(format!("S-{i:07}"), json!({"role": "manager"})))
        .collect();
    erp.mutate("staff", big).unwrap();
    erp.mutate("staff", vec![EntityChange::delete("S-0000013")])
        .unwrap();
    let page: ChangesPage = device
        .get_json(&format!(
            "/api/pos/datasets/staff/changes?after={base}&limit=5"
        ))
        .await;
    assert_eq!(page.items.len(), 12);
    assert!(page.has_more);
    assert_eq!(page.last_sequence, base + 1);
    let page: ChangesPage = device
        .get_json(&format!(
            "/api/pos/datasets/staff/changes?after={}&limit=5",
            base + 1
        ))
        .await;
    assert_eq!(page.items.len(), 1);
    assert!(page.items[0].deleted && page.items[0].data.is_null());
    assert!(!page.has_more);
    let empty: ChangesPage = device
        .get_json(&format!(
            "/api/pos/datasets/staff/changes?after={}",
            base + 2
        ))
        .await;
    assert!(empty.items.is_empty() && !empty.has_more);
    assert_eq!(empty.last_sequence, base + 2);
}

#[tokio::test]
async fn expired_and_future_sequences_answer_410() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let base = erp.dataset_last_sequence("prices").unwrap();
    erp.mutate_random("prices", 20).unwrap();
    let get = |after: u64| {
        device
            .get(&format!("/api/pos/datasets/prices/changes?after={after}"))
            .send()
    };

    // Before the generated state: the fake never held those changes.
    assert_eq!(
        error_of(get(base - 1).await.unwrap()).await,
        (410, "sequence_expired".into())
    );
    assert_eq!(get(base).await.unwrap().status(), 200);
    erp.expire_changes_through("prices", base + 10).unwrap();
    assert_eq!(
        error_of(get(base + 5).await.unwrap()).await,
        (410, "sequence_expired".into())
    );
    let page: ChangesPage = get(base + 10).await.unwrap().json().await.unwrap();
    assert_eq!(page.items.first().unwrap().sequence, base + 11);
    // A sequence the ERP never reached: reseed too.
    assert_eq!(
        error_of(get(base + 21).await.unwrap()).await,
        (410, "sequence_expired".into())
    );
}

#[tokio::test]
async fn explicit_changes_grow_versions_and_make_events() {
    let erp = demo().await;
    let v1 = erp
        .entity("products", "P-0000001")
        .unwrap()
        .unwrap()
        .version;
    let seq = erp
        .mutate(
            "products",
            vec![
                EntityChange::upsert("P-0000001", json!({"name": "Renamed"})),
                EntityChange::delete("P-0000002"),
                EntityChange::upsert("P-9999999", json!({"name": "New"})),
            ],
        )
        .unwrap();
    let state = erp.dataset_final_state("products").unwrap();
    assert_eq!(state["P-0000001"].version, v1 + 1);
    assert!(state["P-0000002"].deleted);
    assert_eq!(state["P-9999999"].version, 1);
    let seq2 = erp
        .mutate(
            "products",
            vec![EntityChange::upsert("P-0000002", json!({"back": true}))],
        )
        .unwrap();
    assert_eq!(seq2, seq + 1);
    assert_eq!(
        erp.entity("products", "P-0000002")
            .unwrap()
            .unwrap()
            .version,
        state["P-0000002"].version + 1
    );

    let event = erp.dataset_changed_event("products", seq).unwrap();
    assert_eq!(
        (event.dataset.as_str(), event.sequence, event.store_number),
        ("products", seq, None)
    );
    assert_eq!(event.items.len(), 3);
    assert_eq!(event.items[1].id, "P-0000002");
    assert!(event.items[1].deleted);
    assert_eq!(
        erp.dataset_changed_event("products", seq).unwrap().id,
        event.id,
        "deterministic Id"
    );
    assert!(erp.dataset_changed_event("products", seq + 5).is_err());
    assert!(erp.dataset_changed_event("nope", seq).is_err());
    // Round-trips as the PascalCase event body.
    let body = serde_json::to_value(&event).unwrap();
    assert_eq!(body["Items"][0]["Data"]["name"], "Renamed");

    assert!(erp.mutate("products", vec![]).is_err());
    assert!(erp.mutate("nope", vec![EntityChange::delete("x")]).is_err());
}

#[tokio::test]
async fn generation_and_random_changes_are_deterministic_per_seed() {
    let config = |seed| FakeErpConfig {
        seed,
        datasets: vec![DatasetSpec::new("catalog", DatasetKind::Products, 500)],
        ..FakeErpConfig::default()
    };
    let a = FakeErp::start(config(7)).await.unwrap();
    let b = FakeErp::start(config(7)).await.unwrap();
    let c = FakeErp::start(config(8)).await.unwrap();
    assert_eq!(
        a.dataset_final_state("catalog").unwrap(),
        b.dataset_final_state("catalog").unwrap()
    );
    assert_ne!(
        a.dataset_final_state("catalog").unwrap(),
        c.dataset_final_state("catalog").unwrap()
    );
    a.mutate_random("catalog", 100).unwrap();
    b.mutate_random("catalog", 100).unwrap();
    assert_eq!(
        a.dataset_final_state("catalog").unwrap(),
        b.dataset_final_state("catalog").unwrap()
    );
    let da = Device::register(&a, 12, 1);
    let db = Device::register(&b, 12, 1);
    let pa: SnapshotPage = da
        .get_json("/api/pos/datasets/catalog/snapshot?limit=50")
        .await;
    let pb: SnapshotPage = db
        .get_json("/api/pos/datasets/catalog/snapshot?limit=50")
        .await;
    assert_eq!(pa, pb);
}
