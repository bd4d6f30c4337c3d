//! Contract suites of the ERP-facing ports of sync, [`DatasetApi`] and
//! [`OperationsApi`]; stamp them with [`crate::erp_sync_suite!`].

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use spacepos_sync::{
    DatasetApi, DatasetApiError, Destination, OperationOutcome, OperationState, OperationsApi,
    QueuedOperation,
};
use uuid::Uuid;

/// The ERP side under test, with the set-up the cases need.
#[async_trait]
pub trait ErpSyncHarness: Send + Sync {
    fn datasets(&self) -> Arc<dyn DatasetApi>;
    fn operations(&self) -> Arc<dyn OperationsApi>;
    /// A dataset holding more than 25 entities.
    fn dataset(&self) -> String;
    /// Change entity `id` (new data) in one change; returns the sequence.
    async fn update(&self, dataset: &str, id: &str) -> u64;
    /// Delete entity `id` in one change; returns the sequence.
    async fn delete(&self, dataset: &str, id: &str) -> u64;
    /// The ERP's state now: id -> (version, deleted).
    async fn state(&self, dataset: &str) -> BTreeMap<String, (u64, bool)>;
    async fn expire_through(&self, dataset: &str, sequence: u64);
    /// Reject every operation of `kind` with `error`.
    async fn reject_kind(&self, kind: &str, error: &str);
}

fn operation(n: u128, kind: &str) -> QueuedOperation {
    let at = Utc
        .with_ymd_and_hms(2026, 11, 25, 8, 0, 0)
        .single()
        .unwrap_or_default();
    QueuedOperation {
        seq: n as i64,
        id: Uuid::new_v4(),
        destination: Destination::ErpOperations,
        kind: kind.to_owned(),
        occurred_at: at,
        store_staff_id: Some("S-0042".into()),
        payload: serde_json::json!({"receiptNumber": format!("12-3-{n:06}"), "totalMinor": 100}),
        state: OperationState::Pending,
        created_at: at,
        attempts: 0,
        next_attempt_at: None,
        last_error: None,
        completed_at: None,
    }
}

async fn full_snapshot(
    api: &dyn DatasetApi,
    dataset: &str,
    limit: u32,
) -> (u64, Vec<(String, u64, bool)>, usize) {
    let mut cursor = None;
    let mut all = Vec::new();
    let mut as_of = None;
    let mut pages = 0;
    loop {
        let page = api
            .snapshot(dataset, cursor, limit)
            .await
            .expect("snapshot page");
        pages += 1;
        assert!(
            page.items.len() <= limit as usize,
            "a page holds at most `limit` items"
        );
        assert_eq!(
            *as_of.get_or_insert(page.as_of_sequence),
            page.as_of_sequence,
            "one asOfSequence per snapshot"
        );
        all.extend(page.items.into_iter().map(|e| (e.id, e.version, e.deleted)));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return (as_of.unwrap_or(0), all, pages),
        }
    }
}

/// DatasetApi: "following `next_cursor` until it is `None` yields every entity
/// exactly once", all pages at the first page's `as_of_sequence`.
pub async fn case_snapshot_pages_yield_every_entity_once(erp: &dyn ErpSyncHarness) {
    let dataset = erp.dataset();
    let (_, items, pages) = full_snapshot(erp.datasets().as_ref(), &dataset, 7).await;
    assert!(pages > 3, "several pages");
    let mut ids: Vec<&String> = items.iter().map(|(id, _, _)| id).collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n, "no entity twice");
    let expected = erp.state(&dataset).await;
    let got: BTreeMap<String, (u64, bool)> =
        items.into_iter().map(|(id, v, d)| (id, (v, d))).collect();
    assert_eq!(got, expected);
}

/// DatasetApi: "`changes(after)` returns items with `sequence > after` in
/// sequence order"; applying snapshot + changes reproduces the ERP's state.
pub async fn case_changes_after_a_snapshot_reproduce_the_erp(erp: &dyn ErpSyncHarness) {
    let dataset = erp.dataset();
    let api = erp.datasets();
    let (as_of, items, _) = full_snapshot(api.as_ref(), &dataset, 1000).await;
    let mut local: BTreeMap<String, (u64, bool)> =
        items.into_iter().map(|(id, v, d)| (id, (v, d))).collect();
    let ids: Vec<String> = local.keys().take(3).cloned().collect();
    let s1 = erp.update(&dataset, &ids[0]).await;
    let s2 = erp.delete(&dataset, &ids[1]).await;
    let s3 = erp.update(&dataset, &ids[0]).await;
    assert!(s1 < s2 && s2 < s3);
    let mut after = as_of;
    let mut last_seen = as_of;
    loop {
        let page = api.changes(&dataset, after, 2).await.expect("changes");
        for c in &page.items {
            assert!(
                c.sequence > as_of && c.sequence >= last_seen,
                "ordered, after the sequence"
            );
            last_seen = c.sequence;
            let slot = local.entry(c.entity.id.clone()).or_insert((0, false));
            if c.entity.version > slot.0 {
                *slot = (c.entity.version, c.entity.deleted);
            }
        }
        after = page.last_sequence;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(after, s3);
    assert_eq!(local, erp.state(&dataset).await);
}

/// DatasetApi: "an `after` the ERP no longer holds is `SequenceExpired`".
pub async fn case_an_expired_sequence_is_reported(erp: &dyn ErpSyncHarness) {
    let dataset = erp.dataset();
    let ids: Vec<String> = erp.state(&dataset).await.into_keys().take(2).collect();
    let s1 = erp.update(&dataset, &ids[0]).await;
    erp.update(&dataset, &ids[1]).await;
    erp.expire_through(&dataset, s1).await;
    let r = erp.datasets().changes(&dataset, s1 - 1, 100).await;
    assert!(
        matches!(r, Err(DatasetApiError::SequenceExpired { .. })),
        "{r:?}"
    );
}

/// OperationsApi: results per id; "an id already accepted is `Duplicate`".
pub async fn case_operations_are_idempotent_by_id(erp: &dyn ErpSyncHarness) {
    let api = erp.operations();
    let batch: Vec<QueuedOperation> = (1..=5).map(|n| operation(n, "sale.completed")).collect();
    let first = api.submit(&batch).await.expect("submit");
    assert_eq!(first.len(), 5);
    assert!(
        first
            .iter()
            .all(|r| r.outcome == OperationOutcome::Accepted),
        "{first:?}"
    );
    let again = api.submit(&batch).await.expect("submit again");
    assert!(
        again
            .iter()
            .all(|r| r.outcome == OperationOutcome::Duplicate),
        "{again:?}"
    );
    let ids: Vec<Uuid> = again.iter().map(|r| r.id).collect();
    assert_eq!(ids, batch.iter().map(|o| o.id).collect::<Vec<_>>());
}

/// OperationsApi: a rejected operation is answered `Rejected` with the error,
/// the others of the batch are accepted.
pub async fn case_a_rejected_operation_does_not_block_its_batch(erp: &dyn ErpSyncHarness) {
    erp.reject_kind("fuel.sale.completed", "unknown_grade")
        .await;
    let api = erp.operations();
    let batch = vec![
        operation(1, "sale.completed"),
        operation(2, "fuel.sale.completed"),
        operation(3, "sale.completed"),
    ];
    let results = api.submit(&batch).await.expect("submit");
    assert_eq!(results[0].outcome, OperationOutcome::Accepted);
    assert_eq!(
        results[1].outcome,
        OperationOutcome::Rejected {
            error: "unknown_grade".into()
        }
    );
    assert_eq!(results[2].outcome, OperationOutcome::Accepted);
}

/// Stamp one `#[tokio::test]` per case of the DatasetApi and OperationsApi suites.
#[macro_export]
macro_rules! erp_sync_suite {
    ($factory:expr) => {
        $crate::erp_sync_suite!(@cases $factory;
            case_snapshot_pages_yield_every_entity_once,
            case_changes_after_a_snapshot_reproduce_the_erp,
            case_an_expired_sequence_is_reported,
            case_operations_are_idempotent_by_id,
            case_a_rejected_operation_does_not_block_its_batch,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let erp = $factory.await;
                $crate::suites::erp_sync::$case(&erp).await;
            }
        )+
    };
}
