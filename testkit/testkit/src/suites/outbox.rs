//! Contract suite of [`Outbox`]; stamp it with [`crate::outbox_suite!`].
//!
//! Cases that take a second argument open another instance over the same
//! storage ([`Reopen`]): a restarted process, or the other process of the node.

use async_trait::async_trait;
use chrono::{DateTime, Duration, TimeZone as _, Utc};
use serde_json::json;
use spacepos_sync::{
    Destination, NewOperation, OperationOutcome, OperationResult, OperationState, Outbox,
    OutboxStats, QueuedOperation, StoreError,
};
use uuid::Uuid;

use super::{Guarded, Reopen};

/// A `sale.completed` operation for the ERP with a fresh id; `n` goes into
/// its payload (and receipt number).
pub fn sale(n: u32) -> NewOperation {
    NewOperation {
        id: Uuid::new_v4(),
        destination: Destination::ErpOperations,
        kind: "sale.completed".into(),
        occurred_at: Utc
            .with_ymd_and_hms(2026, 11, 24, 8, 15, 2)
            .single()
            .unwrap_or_default()
            + Duration::nanoseconds(123_456_789)
            + Duration::seconds(i64::from(n)),
        store_staff_id: Some("S-0042".into()),
        payload: json!({
            "receiptNumber": format!("12-3-{n:06}"),
            "totalMinor": 16019 + n,
            "currency": "GBP",
            "lines": [{"productId": "P-1001", "quantity": 10.978, "amountMinor": 16019 + n}],
        }),
    }
}

/// A `POSComponentReadyEvent` for the event bus with a fresh id.
pub fn bus_event(n: u32) -> NewOperation {
    NewOperation {
        id: Uuid::new_v4(),
        destination: Destination::EventBus,
        kind: "POSComponentReadyEvent".into(),
        occurred_at: Utc::now(),
        store_staff_id: None,
        payload: json!({"Component": "SpaceFuel", "Version": format!("2.3.{n}")}),
    }
}

fn accepted(id: Uuid) -> OperationResult {
    OperationResult {
        id,
        outcome: OperationOutcome::Accepted,
    }
}

fn duplicate(id: Uuid) -> OperationResult {
    OperationResult {
        id,
        outcome: OperationOutcome::Duplicate,
    }
}

fn rejected(id: Uuid, error: &str) -> OperationResult {
    OperationResult {
        id,
        outcome: OperationOutcome::Rejected {
            error: error.into(),
        },
    }
}

fn ids(ops: &[QueuedOperation]) -> Vec<Uuid> {
    ops.iter().map(|o| o.id).collect()
}

async fn pending_ids(outbox: &dyn Outbox, destination: Destination) -> Vec<Uuid> {
    ids(&outbox.pending(destination, 10_000).await.expect("pending"))
}

async fn entry(outbox: &dyn Outbox, id: Uuid) -> QueuedOperation {
    outbox
        .get(id)
        .await
        .expect("get")
        .expect("the entry exists")
}

/// Clause: "`enqueue` is durable when it returns; the operations of one call
/// are stored in one transaction": each comes back pending, as given, with
/// no attempt yet and `seq` in call order; `get` returns the same entry.
pub async fn case_enqueue_returns_pending_entries(outbox: &dyn Outbox) {
    let ops = vec![sale(1), sale(2), bus_event(3)];
    let before = Utc::now();
    let queued = outbox.enqueue(&ops).await.expect("enqueue");
    assert_eq!(queued.len(), 3);
    for (q, op) in queued.iter().zip(&ops) {
        assert_eq!(q.id, op.id);
        assert_eq!(q.destination, op.destination);
        assert_eq!(q.kind, op.kind);
        assert_eq!(q.occurred_at, op.occurred_at, "times keep their precision");
        assert_eq!(q.store_staff_id, op.store_staff_id);
        assert_eq!(q.payload, op.payload);
        assert_eq!(q.state, OperationState::Pending);
        assert_eq!(q.attempts, 0);
        assert_eq!(
            (q.next_attempt_at, q.last_error.as_deref(), q.completed_at),
            (None, None, None)
        );
        assert!(
            q.created_at >= before - Duration::seconds(5)
                && q.created_at <= Utc::now() + Duration::seconds(5)
        );
        assert_eq!(entry(outbox, q.id).await, *q);
    }
    assert!(queued[0].seq < queued[1].seq && queued[1].seq < queued[2].seq);
    assert_eq!(outbox.get(Uuid::new_v4()).await.expect("get"), None);
    assert!(
        outbox
            .enqueue(&[])
            .await
            .expect("enqueue nothing")
            .is_empty()
    );
}

/// Clause: "An id already queued is not queued twice (same content: the
/// existing entry is returned ...)", also within one call and whatever state
/// the entry reached.
pub async fn case_enqueue_is_idempotent_by_id(outbox: &dyn Outbox) {
    let a = sale(1);
    let first = outbox
        .enqueue(std::slice::from_ref(&a))
        .await
        .expect("enqueue");
    let b = sale(2);
    let again = outbox
        .enqueue(&[a.clone(), b.clone(), b.clone()])
        .await
        .expect("enqueue again");
    assert_eq!(again[0], first[0], "the existing entry is returned");
    assert_eq!(again[1], again[2], "twice in one call: one entry");
    assert_eq!(outbox.list(None, 100).await.expect("list").len(), 2);

    outbox
        .record_results(&[accepted(a.id)], Utc::now())
        .await
        .expect("results");
    let done = outbox
        .enqueue(std::slice::from_ref(&a))
        .await
        .expect("enqueue a done id");
    assert_eq!(done[0].state, OperationState::Done, "not queued again");
    assert_eq!(
        pending_ids(outbox, Destination::ErpOperations).await,
        vec![b.id]
    );
}

/// Clause: "... different content: [`StoreError::Conflict`]", naming the id;
/// nothing of that call is queued.
pub async fn case_enqueue_conflict_names_the_id_and_queues_nothing(outbox: &dyn Outbox) {
    let a = sale(1);
    outbox
        .enqueue(std::slice::from_ref(&a))
        .await
        .expect("enqueue");
    let mut changed = a.clone();
    changed.payload = json!({"receiptNumber": "12-3-999999"});
    let innocent = sale(2);
    let err = outbox
        .enqueue(&[innocent.clone(), changed])
        .await
        .expect_err("another operation under a queued id");
    match &err {
        StoreError::Conflict(message) => {
            assert!(message.contains(&a.id.to_string()), "{message}");
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    assert!(!err.is_transient());
    assert_eq!(
        outbox.get(innocent.id).await.expect("get"),
        None,
        "nothing of the call"
    );

    let mut other_kind = sale(3);
    let twice = NewOperation {
        kind: "sale.voided".into(),
        ..other_kind.clone()
    };
    other_kind.store_staff_id = None;
    assert!(matches!(
        outbox.enqueue(&[other_kind.clone(), twice]).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(outbox.get(other_kind.id).await.expect("get"), None);
    assert_eq!(outbox.list(None, 100).await.expect("list").len(), 1);
}

/// Clause: "`pending` returns pending entries of a destination in creation
/// order (`seq`)", at most `limit`.
pub async fn case_pending_is_per_destination_in_creation_order(outbox: &dyn Outbox) {
    let mut erp = Vec::new();
    let mut bus = Vec::new();
    for n in 0..6 {
        let op = if n % 3 == 2 { bus_event(n) } else { sale(n) };
        let queued = outbox
            .enqueue(std::slice::from_ref(&op))
            .await
            .expect("enqueue");
        if op.destination == Destination::EventBus {
            bus.push(queued[0].id);
        } else {
            erp.push(queued[0].id);
        }
    }
    assert_eq!(pending_ids(outbox, Destination::ErpOperations).await, erp);
    assert_eq!(pending_ids(outbox, Destination::EventBus).await, bus);
    let two = outbox
        .pending(Destination::ErpOperations, 2)
        .await
        .expect("pending");
    assert_eq!(ids(&two), erp[..2]);
    assert!(two[0].seq < two[1].seq);
}

/// Clause: "`pending_after` the same, starting after `seq`": the entries
/// after a given one, per destination, in order, pending only, limited.
pub async fn case_pending_after_starts_after_the_given_entry(outbox: &dyn Outbox) {
    let mut erp = Vec::new();
    for n in 0..8 {
        let op = if n % 4 == 3 { bus_event(n) } else { sale(n) };
        let queued = outbox
            .enqueue(std::slice::from_ref(&op))
            .await
            .expect("enqueue");
        if op.destination == Destination::ErpOperations {
            erp.push(queued[0].clone());
        }
    }
    let after = erp[1].seq;
    let rest = outbox
        .pending_after(Destination::ErpOperations, after, 100)
        .await
        .expect("pending_after");
    assert_eq!(
        ids(&rest),
        ids(&erp[2..]),
        "the ERP's entries after the second, in order"
    );
    let two = outbox
        .pending_after(Destination::ErpOperations, after, 2)
        .await
        .expect("pending_after");
    assert_eq!(ids(&two), ids(&erp[2..4]));
    // Entries no longer pending are skipped.
    outbox
        .record_results(
            &[OperationResult {
                id: erp[2].id,
                outcome: OperationOutcome::Accepted,
            }],
            Utc::now(),
        )
        .await
        .expect("results");
    let rest = outbox
        .pending_after(Destination::ErpOperations, after, 100)
        .await
        .expect("pending_after");
    assert_eq!(ids(&rest), ids(&erp[3..]));
    let last = erp.last().expect("entries").seq;
    assert!(
        outbox
            .pending_after(Destination::ErpOperations, last, 100)
            .await
            .expect("pending_after")
            .is_empty()
    );
}

/// Clause: "`pending` returns pending entries ... in creation order (`seq`),
/// across every process that enqueued": two instances enqueueing in turn (and
/// at once) make one order; each sees what the other queued.
pub async fn case_creation_order_holds_across_instances(
    outbox: &dyn Outbox,
    reopen: &dyn Reopen<dyn Outbox>,
) {
    let other = reopen.reopen().await;
    let mut expected = Vec::new();
    for n in 0..10 {
        let by: &dyn Outbox = if n % 2 == 0 { outbox } else { &*other };
        expected.push(by.enqueue(&[sale(n)]).await.expect("enqueue")[0].id);
    }
    assert_eq!(
        pending_ids(outbox, Destination::ErpOperations).await,
        expected
    );
    assert_eq!(
        pending_ids(&*other, Destination::ErpOperations).await,
        expected
    );

    let (a, b) = tokio::join!(
        async {
            let mut mine = Vec::new();
            for n in 100..120 {
                mine.push(outbox.enqueue(&[sale(n)]).await.expect("enqueue A")[0].seq);
            }
            mine
        },
        async {
            let mut mine = Vec::new();
            for n in 200..220 {
                mine.push(other.enqueue(&[sale(n)]).await.expect("enqueue B")[0].seq);
            }
            mine
        }
    );
    assert!(
        a.windows(2).all(|w| w[0] < w[1]),
        "each instance's order holds: {a:?}"
    );
    assert!(b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
    let all = outbox
        .pending(Destination::ErpOperations, 1000)
        .await
        .expect("pending");
    assert_eq!(all.len(), 50);
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq), "seq order");
    let mut seqs: Vec<i64> = all.iter().map(|o| o.seq).collect();
    seqs.dedup();
    assert_eq!(seqs.len(), 50, "no seq given twice");
}

/// Clause: "`record_results` marks `Accepted`/`Duplicate` done and `Rejected`
/// parked with the error, in one transaction": a parked entry does not block
/// the ones after it; ids missing from the results stay pending.
pub async fn case_results_mark_done_and_park_rejected(outbox: &dyn Outbox) {
    let ops: Vec<NewOperation> = (0..5).map(sale).collect();
    let queued = outbox.enqueue(&ops).await.expect("enqueue");
    let at = Utc
        .with_ymd_and_hms(2026, 11, 24, 9, 0, 0)
        .single()
        .unwrap_or_default();
    outbox
        .record_results(
            &[
                accepted(queued[0].id),
                rejected(queued[1].id, "unknown_grade: FUEL-X"),
                duplicate(queued[2].id),
            ],
            at,
        )
        .await
        .expect("results");
    let done = entry(outbox, queued[0].id).await;
    assert_eq!(
        (done.state, done.completed_at),
        (OperationState::Done, Some(at))
    );
    let parked = entry(outbox, queued[1].id).await;
    assert_eq!(parked.state, OperationState::Parked);
    assert_eq!(parked.last_error.as_deref(), Some("unknown_grade: FUEL-X"));
    assert_eq!(
        entry(outbox, queued[2].id).await.state,
        OperationState::Done
    );
    assert_eq!(
        pending_ids(outbox, Destination::ErpOperations).await,
        vec![queued[3].id, queued[4].id],
        "the parked one does not hold back later ones"
    );
    assert_eq!(outbox.record_results(&[], at).await.ok(), Some(()));
}

/// Clause: "`record_results` ...; ids not pending are left alone" (done and
/// parked entries keep their state; unknown ids are ignored).
pub async fn case_results_leave_entries_that_are_not_pending_alone(outbox: &dyn Outbox) {
    let queued = outbox.enqueue(&[sale(1), sale(2)]).await.expect("enqueue");
    let (a, b) = (queued[0].id, queued[1].id);
    let at = Utc::now();
    outbox
        .record_results(&[accepted(a), rejected(b, "bad_total")], at)
        .await
        .expect("results");
    outbox
        .record_results(
            &[rejected(a, "late"), accepted(b), accepted(Uuid::new_v4())],
            at + Duration::minutes(1),
        )
        .await
        .expect("late results");
    let a = entry(outbox, a).await;
    assert_eq!(
        (a.state, a.last_error.as_deref(), a.completed_at),
        (OperationState::Done, None, Some(at))
    );
    let b = entry(outbox, b).await;
    assert_eq!(b.state, OperationState::Parked);
    assert_eq!(b.last_error.as_deref(), Some("bad_total"));
}

/// Clause: "`record_failure` counts an attempt and keeps the entries pending"
/// (with the error and the time of the next attempt), in creation order.
pub async fn case_a_failure_counts_an_attempt_and_keeps_entries_pending(outbox: &dyn Outbox) {
    let queued = outbox
        .enqueue(&[sale(1), sale(2), sale(3)])
        .await
        .expect("enqueue");
    let next = Utc
        .with_ymd_and_hms(2026, 11, 24, 9, 5, 0)
        .single()
        .unwrap_or_default();
    let first_two = [queued[0].id, queued[1].id];
    outbox
        .record_failure(&first_two, "connection refused", Some(next))
        .await
        .expect("failure");
    outbox
        .record_failure(&first_two, "HTTP 503", Some(next + Duration::minutes(5)))
        .await
        .expect("failure");
    for id in first_two {
        let e = entry(outbox, id).await;
        assert_eq!(e.state, OperationState::Pending);
        assert_eq!(e.attempts, 2);
        assert_eq!(e.last_error.as_deref(), Some("HTTP 503"));
        assert_eq!(e.next_attempt_at, Some(next + Duration::minutes(5)));
    }
    // A failure without a wait clears the recorded one.
    outbox
        .record_failure(&first_two, "connection reset", None)
        .await
        .expect("failure");
    assert_eq!(entry(outbox, first_two[0]).await.next_attempt_at, None);
    assert_eq!(entry(outbox, queued[2].id).await.attempts, 0);
    assert_eq!(
        pending_ids(outbox, Destination::ErpOperations).await,
        ids(&queued)
    );

    // a done entry is not pending: left alone
    outbox
        .record_results(&[accepted(queued[2].id)], Utc::now())
        .await
        .expect("results");
    outbox
        .record_failure(&[queued[2].id], "late", Some(next))
        .await
        .expect("failure of a done entry");
    let done = entry(outbox, queued[2].id).await;
    assert_eq!((done.state, done.last_error), (OperationState::Done, None));
}

/// Clause: "`retry` turns a parked entry pending again (keeping its id)": it
/// keeps its place in creation order, its attempts and its last error.
pub async fn case_retry_turns_a_parked_entry_pending(outbox: &dyn Outbox) {
    let queued = outbox.enqueue(&[sale(1), sale(2)]).await.expect("enqueue");
    outbox
        .record_results(&[rejected(queued[0].id, "unknown_product")], Utc::now())
        .await
        .expect("results");
    let retried = outbox.retry(queued[0].id).await.expect("retry");
    assert_eq!(retried.id, queued[0].id);
    assert_eq!(retried.seq, queued[0].seq);
    assert_eq!(retried.state, OperationState::Pending);
    assert_eq!(retried.attempts, 1);
    assert_eq!(retried.last_error.as_deref(), Some("unknown_product"));
    assert_eq!(retried.completed_at, None);
    assert_eq!(entry(outbox, queued[0].id).await, retried);
    assert_eq!(
        pending_ids(outbox, Destination::ErpOperations).await,
        ids(&queued),
        "back in its place"
    );
}

/// Clause: "`retry` ...; anything else is [`StoreError::NotFound`] or
/// [`StoreError::Conflict`]" (unknown id: not found; pending or done: conflict).
pub async fn case_retry_of_anything_but_a_parked_entry_fails(outbox: &dyn Outbox) {
    let unknown = Uuid::new_v4();
    match outbox.retry(unknown).await {
        Err(StoreError::NotFound(message)) => {
            assert!(message.contains(&unknown.to_string()), "{message}")
        }
        other => panic!("expected NotFound, got {other:?}"),
    }
    let queued = outbox.enqueue(&[sale(1), sale(2)]).await.expect("enqueue");
    assert!(matches!(
        outbox.retry(queued[0].id).await,
        Err(StoreError::Conflict(_))
    ));
    outbox
        .record_results(&[accepted(queued[1].id)], Utc::now())
        .await
        .expect("results");
    assert!(matches!(
        outbox.retry(queued[1].id).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(
        entry(outbox, queued[1].id).await.state,
        OperationState::Done
    );
}

/// Clause: "`list`: Entries in creation order, newest last; `state` filters":
/// with more than `limit`, the newest `limit` of them.
pub async fn case_list_filters_by_state_newest_last(outbox: &dyn Outbox) {
    let ops: Vec<NewOperation> = (0..8).map(sale).collect();
    let queued = outbox.enqueue(&ops).await.expect("enqueue");
    outbox
        .record_results(
            &[
                accepted(queued[0].id),
                rejected(queued[1].id, "x"),
                accepted(queued[2].id),
                rejected(queued[5].id, "y"),
            ],
            Utc::now(),
        )
        .await
        .expect("results");
    let all = outbox.list(None, 100).await.expect("list all");
    assert_eq!(ids(&all), ids(&queued));
    let newest = outbox.list(None, 3).await.expect("list 3");
    assert_eq!(ids(&newest), ids(&queued[5..]));
    let parked = outbox
        .list(Some(OperationState::Parked), 10)
        .await
        .expect("parked");
    assert_eq!(ids(&parked), vec![queued[1].id, queued[5].id]);
    let last_done = outbox
        .list(Some(OperationState::Done), 1)
        .await
        .expect("done");
    assert_eq!(ids(&last_done), vec![queued[2].id]);
    let pending = outbox
        .list(Some(OperationState::Pending), 2)
        .await
        .expect("pending");
    assert_eq!(ids(&pending), vec![queued[6].id, queued[7].id]);
}

/// Clause (of `stats`): counts for status screens: pending, the oldest pending
/// `created_at`, parked, done.
pub async fn case_stats_count_each_state(outbox: &dyn Outbox) {
    assert_eq!(outbox.stats().await.expect("stats"), OutboxStats::default());
    let first = outbox.enqueue(&[sale(1), sale(2)]).await.expect("enqueue");
    let later = outbox
        .enqueue(&[sale(3), bus_event(4), sale(5)])
        .await
        .expect("enqueue");
    outbox
        .record_results(
            &[
                accepted(first[0].id),
                rejected(later[0].id, "x"),
                duplicate(later[2].id),
            ],
            Utc::now(),
        )
        .await
        .expect("results");
    let stats = outbox.stats().await.expect("stats");
    assert_eq!((stats.pending, stats.parked, stats.done), (2, 1, 2));
    assert_eq!(stats.oldest_pending_created_at, Some(first[1].created_at));
}

/// Clause: "`enqueue` is durable when it returns": another instance over the
/// same storage (a restarted process) finds every entry as it was left.
pub async fn case_entries_survive_a_new_instance(
    outbox: &dyn Outbox,
    reopen: &dyn Reopen<dyn Outbox>,
) {
    let queued = outbox
        .enqueue(&[sale(1), sale(2), bus_event(3)])
        .await
        .expect("enqueue");
    outbox
        .record_results(&[rejected(queued[0].id, "bad")], Utc::now())
        .await
        .expect("results");
    let restarted = reopen.reopen().await;
    let parked = entry(&*restarted, queued[0].id).await;
    assert_eq!(parked, entry(outbox, queued[0].id).await);
    assert_eq!(parked.state, OperationState::Parked);
    assert_eq!(entry(&*restarted, queued[1].id).await, queued[1]);
    assert_eq!(
        pending_ids(&*restarted, Destination::EventBus).await,
        vec![queued[2].id]
    );
}

/// Clause: "the operations of one call are stored in one transaction": a call
/// of more than one statement's worth (1,200 operations) stores all, in order.
pub async fn case_a_large_enqueue_is_stored_whole_in_order(outbox: &dyn Outbox) {
    let ops: Vec<NewOperation> = (0..1200).map(sale).collect();
    let queued = outbox.enqueue(&ops).await.expect("enqueue 1200");
    assert_eq!(ids(&queued), ops.iter().map(|o| o.id).collect::<Vec<_>>());
    assert!(queued.windows(2).all(|w| w[0].seq < w[1].seq));
    let pending = outbox
        .pending(Destination::ErpOperations, 500)
        .await
        .expect("pending");
    assert_eq!(ids(&pending), ids(&queued[..500]));
    let results: Vec<OperationResult> = queued.iter().map(|q| accepted(q.id)).collect();
    outbox
        .record_results(&results, Utc::now())
        .await
        .expect("results");
    assert_eq!(outbox.stats().await.expect("stats").done, 1200);
}

#[async_trait]
impl<S: Outbox, G: Send + Sync + 'static> Outbox for Guarded<S, G> {
    async fn enqueue(
        &self,
        operations: &[NewOperation],
    ) -> Result<Vec<QueuedOperation>, StoreError> {
        self.store.enqueue(operations).await
    }

    async fn pending(
        &self,
        destination: Destination,
        limit: usize,
    ) -> Result<Vec<QueuedOperation>, StoreError> {
        self.store.pending(destination, limit).await
    }

    async fn pending_after(
        &self,
        destination: Destination,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<QueuedOperation>, StoreError> {
        self.store
            .pending_after(destination, after_seq, limit)
            .await
    }

    async fn record_results(
        &self,
        results: &[OperationResult],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.store.record_results(results, at).await
    }

    async fn record_failure(
        &self,
        ids: &[Uuid],
        error: &str,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        self.store.record_failure(ids, error, next_attempt_at).await
    }

    async fn retry(&self, id: Uuid) -> Result<QueuedOperation, StoreError> {
        self.store.retry(id).await
    }

    async fn get(&self, id: Uuid) -> Result<Option<QueuedOperation>, StoreError> {
        self.store.get(id).await
    }

    async fn list(
        &self,
        state: Option<OperationState>,
        limit: usize,
    ) -> Result<Vec<QueuedOperation>, StoreError> {
        self.store.list(state, limit).await
    }

    async fn stats(&self) -> Result<OutboxStats, StoreError> {
        self.store.stats().await
    }
}

/// Stamp one `#[tokio::test]` per case of the [`Outbox`] suite.
///
/// `$factory` evaluates to a future of a fresh outbox, evaluated once per
/// test; it must also implement [`Reopen<dyn Outbox>`](Reopen) (fakes do; wrap
/// an adapter in a [`Guarded`] whose guard does).
#[macro_export]
macro_rules! outbox_suite {
    ($factory:expr) => {
        $crate::outbox_suite!(@cases $factory;
            case_enqueue_returns_pending_entries,
            case_enqueue_is_idempotent_by_id,
            case_enqueue_conflict_names_the_id_and_queues_nothing,
            case_pending_is_per_destination_in_creation_order,
            case_pending_after_starts_after_the_given_entry,
            case_results_mark_done_and_park_rejected,
            case_results_leave_entries_that_are_not_pending_alone,
            case_a_failure_counts_an_attempt_and_keeps_entries_pending,
            case_retry_turns_a_parked_entry_pending,
            case_retry_of_anything_but_a_parked_entry_fails,
            case_list_filters_by_state_newest_last,
            case_stats_count_each_state,
            case_a_large_enqueue_is_stored_whole_in_order;
            reopen:
            case_creation_order_holds_across_instances,
            case_entries_survive_a_new_instance,
        );
    };
    (@cases $factory:expr; $($case:ident),+ ; reopen: $($reopen_case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let outbox = $factory.await;
                $crate::suites::outbox::$case(&outbox).await;
            }
        )+
        $(
            #[tokio::test]
            async fn $reopen_case() {
                let outbox = $factory.await;
                $crate::suites::outbox::$reopen_case(&outbox, &outbox).await;
            }
        )+
    };
}
