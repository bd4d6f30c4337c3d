//! Contract section 4: operations.

use chrono::Utc;
use serde_json::json;
use spacepos_erp_wire::rest::{Operation, OperationStatus, OperationsRequest, OperationsResponse};
use spacepos_fake_erp::RejectRule;
use uuid::Uuid;

use crate::common::{Device, demo, error_of};

pub(crate) fn sale(n: u64) -> Operation {
    Operation {
        id: Uuid::new_v4(),
        kind: "sale.completed".into(),
        occurred_at: Utc::now(),
        store_staff_id: Some("S-0042".into()),
        payload: json!({"receiptNumber": format!("12-1-{n:06}"), "totalMinor": 100 + n, "currency": "GBP"}),
    }
}

pub(crate) async fn submit(device: &Device, ops: &[Operation]) -> OperationsResponse {
    let resp = device
        .post("/api/pos/operations")
        .json(&OperationsRequest {
            operations: ops.to_vec(),
        })
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

fn statuses(r: &OperationsResponse) -> Vec<OperationStatus> {
    r.results.iter().map(|r| r.status).collect()
}

#[tokio::test]
async fn operations_are_idempotent_by_id() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let batch: Vec<_> = (0..3).map(sale).collect();
    let first = submit(&device, &batch).await;
    assert_eq!(statuses(&first), [OperationStatus::Accepted; 3]);
    assert_eq!(
        first.results.iter().map(|r| r.id).collect::<Vec<_>>(),
        batch.iter().map(|o| o.id).collect::<Vec<_>>()
    );
    assert!(first.results.iter().all(|r| r.error.is_none()));

    // The retry of a batch whose answer was lost: all duplicates, nothing added.
    let mut retry = batch.clone();
    retry.push(sale(3));
    let second = submit(&device, &retry).await;
    assert_eq!(
        statuses(&second),
        [
            OperationStatus::Duplicate,
            OperationStatus::Duplicate,
            OperationStatus::Duplicate,
            OperationStatus::Accepted
        ]
    );
    // An id twice in one batch: the second is a duplicate.
    let twin = sale(4);
    let third = submit(&device, &[twin.clone(), twin]).await;
    assert_eq!(
        statuses(&third),
        [OperationStatus::Accepted, OperationStatus::Duplicate]
    );

    assert_eq!(erp.accepted_count(), 5);
    assert_eq!(erp.duplicate_answers(), 4);
    let accepted = erp.accepted_operations();
    assert_eq!(accepted[0].operation, batch[0], "full body kept");
    assert_eq!(
        accepted[3].operation.payload["receiptNumber"], "12-1-000003",
        "acceptance order"
    );
    assert!(
        accepted
            .iter()
            .all(|a| a.client_id == device.creds.client_id)
    );
}

#[tokio::test]
async fn reject_rules_apply_on_every_attempt_and_are_not_remembered() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let mut fuel = sale(1);
    fuel.kind = "fuel.sale.completed".into();
    fuel.payload = json!({"pump": 4, "grade": "FUEL-X"});
    let by_id = sale(2);
    let refund = Operation {
        kind: "refund.completed".into(),
        ..sale(3)
    };
    let fine = sale(4);
    erp.add_reject_rule(RejectRule::by_payload(
        "/grade",
        json!("FUEL-X"),
        "unknown_grade",
    ));
    erp.add_reject_rule(RejectRule::by_id(by_id.id, "bad_receipt"));
    erp.add_reject_rule(RejectRule::by_type("refund.completed", "refunds_closed"));
    let batch = [fuel.clone(), by_id.clone(), refund.clone(), fine.clone()];
    for _ in 0..2 {
        let r = submit(&device, &batch).await;
        let errors: Vec<Option<&str>> = r.results.iter().map(|r| r.error.as_deref()).collect();
        assert_eq!(
            errors[..3],
            [
                Some("unknown_grade"),
                Some("bad_receipt"),
                Some("refunds_closed")
            ]
        );
        assert_eq!(r.results[0].status, OperationStatus::Rejected);
    }
    assert_eq!(erp.accepted_count(), 1);
    assert_eq!(erp.rejected_answers(), 6);
    // Once the rules are gone, the same operations are accepted (nothing was remembered).
    erp.clear_reject_rules();
    let r = submit(&device, &batch).await;
    assert_eq!(
        statuses(&r),
        [
            OperationStatus::Accepted,
            OperationStatus::Accepted,
            OperationStatus::Accepted,
            OperationStatus::Duplicate
        ]
    );
    // A rule does not turn an accepted id into a rejection: duplicate wins.
    erp.add_reject_rule(RejectRule::by_id(fine.id, "too_late"));
    assert_eq!(
        statuses(&submit(&device, &[fine]).await),
        [OperationStatus::Duplicate]
    );
}

#[tokio::test]
async fn batches_over_500_and_malformed_bodies_are_422() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let too_many: Vec<_> = (0..501).map(sale).collect();
    let resp = device
        .post("/api/pos/operations")
        .json(&OperationsRequest {
            operations: too_many,
        })
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await, (422, "too_many_operations".into()));
    assert_eq!(
        erp.accepted_count(),
        0,
        "nothing of a refused batch is kept"
    );
    let exactly: Vec<_> = (0..500).map(sale).collect();
    assert_eq!(submit(&device, &exactly).await.results.len(), 500);

    for body in [
        "{",
        "{}",
        r#"{"operations": [{"id": "not-a-uuid"}]}"#,
        r#"{"operations": 5}"#,
    ] {
        let resp = device
            .post("/api/pos/operations")
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(resp).await,
            (422, "invalid_request".into()),
            "{body}"
        );
    }
    let empty = submit(&device, &[]).await;
    assert!(empty.results.is_empty());
    let recorded = erp
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.body_json.is_some())
        .unwrap();
    assert_eq!(recorded.body_json, Some(json!({"operations": []})));
}
