//! The outbox send loop: every queued operation reaches the ERP exactly once in
//! effect, in creation order, whatever fails in between.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use spacepos_core::{Clock, RemoteError};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};
use uuid::Uuid;

use crate::model::{Destination, OperationOutcome, OperationResult};
use crate::ports::{EventPublisher, MAX_BATCH, OperationsApi, Outbox, OutgoingEvent, StoreError};

/// Whether device calls to the ERP are allowed. Closed for good (until the
/// terminal is onboarded again) the first time the ERP answers 401.
#[derive(Debug, Clone, Default)]
pub struct DeviceGate {
    closed: Arc<AtomicBool>,
    changed: Arc<Notify>,
}

impl DeviceGate {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stop every device call: the ERP refused the credentials.
    pub fn close(&self) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            error!(
                "the ERP refused this terminal's credentials: device calls stopped; re-onboarding needed"
            );
            self.changed.notify_waiters();
        }
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Record the failure, closing the gate if it means re-onboarding.
    pub fn observe(&self, e: &RemoteError) {
        if e.needs_reonboarding() {
            self.close();
        }
    }
}

/// Timers of the send loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendTimers {
    /// `send_frequency`: how often the queue is pushed.
    pub every: Duration,
    /// `data_sync_retry_interval_minutes`: the wait after a failure (with ±20% jitter)
    /// unless the ERP asked for another with `Retry-After`.
    pub retry: Duration,
}

/// What one drain did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DrainReport {
    pub sent: u64,
    pub done: u64,
    pub parked: u64,
    /// Set when the drain stopped on a failure: wait this long before the next.
    pub retry_after: Option<Duration>,
    pub error: Option<String>,
}

/// Where a destination's operations go.
#[derive(Clone)]
enum Transport {
    Erp(Arc<dyn OperationsApi>),
    Bus(Arc<dyn EventPublisher>),
}

/// Pushes the outbox of one destination.
#[derive(Clone)]
pub struct Sender {
    outbox: Arc<dyn Outbox>,
    transport: Transport,
    gate: DeviceGate,
    clock: Arc<dyn Clock>,
    timers: SendTimers,
    wake: Arc<Notify>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("timers", &self.timers)
            .finish_non_exhaustive()
    }
}

/// Wait `base` ±20%, so a fleet of tills does not retry in lockstep.
pub fn jittered(base: Duration) -> Duration {
    let factor = 0.8 + fastrand::f64() * 0.4;
    base.mul_f64(factor)
}

impl Sender {
    /// Operations to `POST /api/pos/operations`.
    pub fn to_erp(
        outbox: Arc<dyn Outbox>,
        api: Arc<dyn OperationsApi>,
        gate: DeviceGate,
        clock: Arc<dyn Clock>,
        timers: SendTimers,
    ) -> Self {
        Sender {
            outbox,
            transport: Transport::Erp(api),
            gate,
            clock,
            timers,
            wake: Arc::new(Notify::new()),
        }
    }

    /// Events to publish on the bus with confirms (Ready/Applied tracking events).
    pub fn to_bus(
        outbox: Arc<dyn Outbox>,
        publisher: Arc<dyn EventPublisher>,
        gate: DeviceGate,
        clock: Arc<dyn Clock>,
        timers: SendTimers,
    ) -> Self {
        Sender {
            outbox,
            transport: Transport::Bus(publisher),
            gate,
            clock,
            timers,
            wake: Arc::new(Notify::new()),
        }
    }

    fn destination(&self) -> Destination {
        match self.transport {
            Transport::Erp(_) => Destination::ErpOperations,
            Transport::Bus(_) => Destination::EventBus,
        }
    }

    /// A handle that makes the loop send now instead of at its next tick.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Push pending operations in creation order, in batches, until the queue is
    /// empty or a call fails. Never sends while the device gate is closed.
    ///
    /// Pipelined: while batch N is in flight, the results of batch N-1 are
    /// recorded and batch N+1 is read. Batch N+1 is sent only after the ERP
    /// answered batch N, so the ERP still receives everything in creation
    /// order; a crash before N's results are recorded resends N with the same
    /// ids (the ERP answers `duplicate`). Whatever the ERP answered is recorded
    /// before `drain` returns, also when it returns an error.
    pub async fn drain(&self) -> Result<DrainReport, StoreError> {
        let mut report = DrainReport::default();
        let mut unrecorded: Vec<OperationResult> = Vec::new();
        let outcome = self.drain_batches(&mut report, &mut unrecorded).await;
        if !unrecorded.is_empty() {
            self.outbox
                .record_results(&unrecorded, self.clock.now())
                .await?;
        }
        outcome.map(|()| report)
    }

    async fn record(&self, results: &[OperationResult]) -> Result<(), StoreError> {
        if results.is_empty() {
            return Ok(());
        }
        self.outbox.record_results(results, self.clock.now()).await
    }

    async fn drain_batches(
        &self,
        report: &mut DrainReport,
        unrecorded: &mut Vec<OperationResult>,
    ) -> Result<(), StoreError> {
        let destination = self.destination();
        let mut batch = self.outbox.pending(destination, MAX_BATCH).await?;
        loop {
            if self.gate.is_closed() && matches!(self.transport, Transport::Erp(_)) {
                report.error = Some("device calls stopped: re-onboarding needed".into());
                return Ok(());
            }
            let Some(last) = batch.last() else {
                return Ok(());
            };
            let last_seq = last.seq;
            // A Retry-After the ERP sent holds across restarts. Only the head is
            // checked: what comes after it waits with it, so creation order is kept.
            if let Some(at) = batch[0].next_attempt_at
                && let Ok(wait) = (at - self.clock.now()).to_std()
                && !wait.is_zero()
            {
                report.retry_after = Some(wait);
                report.error = Some(format!(
                    "waiting until {} before sending again, as recorded after: {}",
                    at.format("%H:%M:%S UTC"),
                    batch[0].last_error.as_deref().unwrap_or("a failure")
                ));
                return Ok(());
            }
            report.sent += batch.len() as u64;
            let send = async {
                match &self.transport {
                    Transport::Erp(api) => api.submit(&batch).await,
                    Transport::Bus(publisher) => publish_all(publisher.as_ref(), &batch).await,
                }
            };
            let previous = std::mem::take(unrecorded);
            let (outcome, recorded, next) = tokio::join!(
                send,
                self.record(&previous),
                self.outbox.pending_after(destination, last_seq, MAX_BATCH)
            );
            if let Err(e) = recorded {
                // Keep them for the final attempt in `drain`.
                *unrecorded = previous;
                if let Ok(results) = outcome {
                    unrecorded.extend(results);
                }
                return Err(e);
            }
            match outcome {
                Ok(results) => {
                    let known: std::collections::HashSet<Uuid> =
                        batch.iter().map(|o| o.id).collect();
                    let results: Vec<OperationResult> = results
                        .into_iter()
                        .filter(|r| known.contains(&r.id))
                        .collect();
                    for r in &results {
                        match &r.outcome {
                            OperationOutcome::Accepted | OperationOutcome::Duplicate => {
                                report.done += 1
                            }
                            OperationOutcome::Rejected { error } => {
                                report.parked += 1;
                                warn!(operation = %r.id, %error, "the ERP rejected an operation; parked for the operator");
                            }
                        }
                    }
                    if results.len() < batch.len() {
                        // Ids the ERP did not answer for are unknown: they stay
                        // pending and go first again, so the read-ahead is dropped.
                        let missing = batch.len() - results.len();
                        let progressed = !results.is_empty();
                        self.record(&results).await?;
                        warn!(
                            missing,
                            "the ERP did not answer for every operation of a batch; they stay queued"
                        );
                        if !progressed {
                            report.retry_after = Some(jittered(self.timers.retry));
                            report.error = Some("the ERP answered without results".into());
                            return Ok(());
                        }
                        batch = self.outbox.pending(destination, MAX_BATCH).await?;
                    } else {
                        *unrecorded = results;
                        batch = next?;
                    }
                }
                Err(e) => {
                    self.gate.observe(&e);
                    let wait = e
                        .retry_after()
                        .unwrap_or_else(|| jittered(self.timers.retry));
                    // Only the ERP's own Retry-After outlives a restart: after a
                    // plain failure a restarted till (often the operator's first
                    // remedy) tries again at once.
                    let next_at = e.retry_after().map(|ra| {
                        self.clock.now() + chrono::Duration::from_std(ra).unwrap_or_default()
                    });
                    let ids: Vec<Uuid> = batch.iter().map(|o| o.id).collect();
                    self.outbox
                        .record_failure(&ids, &e.to_string(), next_at)
                        .await?;
                    report.retry_after = Some(wait);
                    report.error = Some(e.to_string());
                    return Ok(());
                }
            }
        }
    }

    /// Drain every `send_frequency` (or when woken), waiting out failures, until
    /// `shutdown`. A drain in progress finishes its current batch first.
    pub async fn run(
        self,
        shutdown: CancellationToken,
        on_drain: impl Fn(&DrainReport) + Send + Sync,
    ) {
        let mut failing = false;
        loop {
            let wait = match self.drain().await {
                Ok(report) => {
                    on_drain(&report);
                    match (&report.error, report.retry_after) {
                        (Some(error), Some(wait)) => {
                            if !failing {
                                warn!(%error, retry_in_s = wait.as_secs(), "sending paused after a failure; operations stay queued");
                            }
                            failing = true;
                            wait
                        }
                        (Some(_), None) => {
                            // The gate is closed: nothing to do until shutdown.
                            shutdown.cancelled().await;
                            return;
                        }
                        _ => {
                            if failing {
                                info!("sending again: the ERP is reachable");
                                failing = false;
                            }
                            if report.sent > 0 {
                                debug!(
                                    sent = report.sent,
                                    done = report.done,
                                    parked = report.parked,
                                    "outbox drained"
                                );
                            }
                            self.timers.every
                        }
                    }
                }
                Err(e) => {
                    warn!(error = %e, "the outbox could not be read or updated; trying again");
                    jittered(self.timers.retry.min(Duration::from_secs(30)))
                }
            };
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
                _ = self.wake.notified(), if !failing => {}
            }
        }
    }
}

/// Publish bus entries one by one with confirms; stop at the first failure so
/// order is kept (what was confirmed is reported done).
async fn publish_all(
    publisher: &dyn EventPublisher,
    batch: &[crate::model::QueuedOperation],
) -> Result<Vec<OperationResult>, RemoteError> {
    let mut done = Vec::new();
    for op in batch {
        let body = match serde_json::to_vec(&op.payload) {
            Ok(b) => b,
            Err(e) => {
                done.push(OperationResult {
                    id: op.id,
                    outcome: OperationOutcome::Rejected {
                        error: e.to_string(),
                    },
                });
                continue;
            }
        };
        let event = OutgoingEvent {
            event_type: op.kind.clone(),
            message_id: op.id,
            body,
        };
        match publisher.publish(&event).await {
            Ok(()) => done.push(OperationResult {
                id: op.id,
                outcome: OperationOutcome::Accepted,
            }),
            Err(e) if done.is_empty() => {
                return Err(RemoteError::Unreachable {
                    host: "event bus".into(),
                    detail: e.to_string(),
                });
            }
            Err(_) => break,
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::{DateTime, TimeZone, Utc};
    use spacepos_core::FixedClock;

    use super::*;
    use crate::model::{NewOperation, OperationState, OutboxStats, QueuedOperation};

    /// A local outbox stub (testkit's fake cannot be used in-file, cargo#6765).
    #[derive(Default)]
    struct StubOutbox {
        ops: Mutex<Vec<QueuedOperation>>,
    }

    impl StubOutbox {
        fn with(n: usize) -> Arc<Self> {
            let stub = StubOutbox::default();
            let at = Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap();
            let mut ops = stub.ops.lock().unwrap();
            for i in 0..n {
                ops.push(QueuedOperation {
                    seq: i as i64 + 1,
                    id: Uuid::from_u128(i as u128 + 1),
                    destination: Destination::ErpOperations,
                    kind: "sale.completed".into(),
                    occurred_at: at,
                    store_staff_id: None,
                    payload: serde_json::json!({"n": i}),
                    state: OperationState::Pending,
                    created_at: at,
                    attempts: 0,
                    next_attempt_at: None,
                    last_error: None,
                    completed_at: None,
                });
            }
            drop(ops);
            Arc::new(stub)
        }

        fn count(&self, state: OperationState) -> usize {
            self.ops
                .lock()
                .unwrap()
                .iter()
                .filter(|o| o.state == state)
                .count()
        }
    }

    #[async_trait]
    impl Outbox for StubOutbox {
        async fn enqueue(&self, _: &[NewOperation]) -> Result<Vec<QueuedOperation>, StoreError> {
            unreachable!("not used by the sender")
        }
        async fn pending(
            &self,
            d: Destination,
            limit: usize,
        ) -> Result<Vec<QueuedOperation>, StoreError> {
            let ops = self.ops.lock().unwrap();
            Ok(ops
                .iter()
                .filter(|o| o.destination == d && o.state == OperationState::Pending)
                .take(limit)
                .cloned()
                .collect())
        }
        async fn pending_after(
            &self,
            d: Destination,
            after_seq: i64,
            limit: usize,
        ) -> Result<Vec<QueuedOperation>, StoreError> {
            let ops = self.ops.lock().unwrap();
            Ok(ops
                .iter()
                .filter(|o| {
                    o.destination == d && o.state == OperationState::Pending && o.seq > after_seq
                })
                .take(limit)
                .cloned()
                .collect())
        }
        async fn record_results(
            &self,
            results: &[OperationResult],
            at: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            let mut ops = self.ops.lock().unwrap();
            for r in results {
                if let Some(o) = ops
                    .iter_mut()
                    .find(|o| o.id == r.id && o.state == OperationState::Pending)
                {
                    match &r.outcome {
                        OperationOutcome::Rejected { error } => {
                            o.state = OperationState::Parked;
                            o.last_error = Some(error.clone());
                        }
                        _ => {
                            o.state = OperationState::Done;
                            o.completed_at = Some(at);
                        }
                    }
                }
            }
            Ok(())
        }
        async fn record_failure(
            &self,
            ids: &[Uuid],
            error: &str,
            next: Option<DateTime<Utc>>,
        ) -> Result<(), StoreError> {
            let mut ops = self.ops.lock().unwrap();
            for o in ops.iter_mut().filter(|o| ids.contains(&o.id)) {
                o.attempts += 1;
                o.last_error = Some(error.to_owned());
                o.next_attempt_at = next;
            }
            Ok(())
        }
        async fn retry(&self, _: Uuid) -> Result<QueuedOperation, StoreError> {
            unreachable!()
        }
        async fn get(&self, id: Uuid) -> Result<Option<QueuedOperation>, StoreError> {
            Ok(self
                .ops
                .lock()
                .unwrap()
                .iter()
                .find(|o| o.id == id)
                .cloned())
        }
        async fn list(
            &self,
            _: Option<OperationState>,
            _: usize,
        ) -> Result<Vec<QueuedOperation>, StoreError> {
            unreachable!()
        }
        async fn stats(&self) -> Result<OutboxStats, StoreError> {
            unreachable!()
        }
    }

    /// What the scripted ERP answers to the next submit.
    enum Answer {
        AcceptAll,
        Reject(Uuid),
        Fail(RemoteError),
        Nothing,
    }

    #[derive(Default)]
    struct ScriptedErp {
        answers: Mutex<VecDeque<Answer>>,
        batches: Mutex<Vec<Vec<Uuid>>>,
        calls_at: Mutex<Vec<tokio::time::Instant>>,
    }

    impl ScriptedErp {
        fn new(answers: Vec<Answer>) -> Arc<Self> {
            Arc::new(ScriptedErp {
                answers: Mutex::new(answers.into()),
                ..Default::default()
            })
        }
    }

    #[async_trait]
    impl OperationsApi for ScriptedErp {
        async fn submit(
            &self,
            batch: &[QueuedOperation],
        ) -> Result<Vec<OperationResult>, RemoteError> {
            self.batches
                .lock()
                .unwrap()
                .push(batch.iter().map(|o| o.id).collect());
            self.calls_at
                .lock()
                .unwrap()
                .push(tokio::time::Instant::now());
            let answer = self
                .answers
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Answer::AcceptAll);
            let accept = |id| OperationResult {
                id,
                outcome: OperationOutcome::Accepted,
            };
            match answer {
                Answer::AcceptAll => Ok(batch.iter().map(|o| accept(o.id)).collect()),
                Answer::Reject(bad) => Ok(batch
                    .iter()
                    .map(|o| {
                        if o.id == bad {
                            OperationResult {
                                id: o.id,
                                outcome: OperationOutcome::Rejected {
                                    error: "unknown_grade".into(),
                                },
                            }
                        } else {
                            accept(o.id)
                        }
                    })
                    .collect()),
                Answer::Fail(e) => Err(e),
                Answer::Nothing => Ok(Vec::new()),
            }
        }
    }

    const TIMERS: SendTimers = SendTimers {
        every: Duration::from_secs(5),
        retry: Duration::from_secs(60),
    };

    fn sender(outbox: Arc<StubOutbox>, erp: Arc<ScriptedErp>, gate: DeviceGate) -> Sender {
        sender_with(outbox, erp, gate, Arc::new(FixedClock::new(t9())))
    }

    fn sender_with(
        outbox: Arc<StubOutbox>,
        erp: Arc<ScriptedErp>,
        gate: DeviceGate,
        clock: Arc<dyn Clock>,
    ) -> Sender {
        Sender::to_erp(outbox, erp, gate, clock, TIMERS)
    }

    fn t9() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap()
    }

    /// Wall-clock time that follows tokio's paused clock.
    #[derive(Debug)]
    struct TokioClock(tokio::time::Instant);

    impl Clock for TokioClock {
        fn now(&self) -> DateTime<Utc> {
            t9() + chrono::Duration::from_std(self.0.elapsed()).unwrap()
        }
    }

    fn server_error() -> RemoteError {
        RemoteError::Server {
            host: "erp".into(),
            status: 503,
            code: None,
        }
    }

    #[tokio::test]
    async fn drains_everything_in_creation_order_in_batches_of_at_most_500() {
        let outbox = StubOutbox::with(1234);
        let erp = ScriptedErp::new(vec![]);
        let report = sender(outbox.clone(), erp.clone(), DeviceGate::new())
            .drain()
            .await
            .unwrap();
        assert_eq!((report.sent, report.done, report.parked), (1234, 1234, 0));
        let batches = erp.batches.lock().unwrap();
        assert_eq!(
            batches.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![500, 500, 234]
        );
        let order: Vec<u128> = batches.iter().flatten().map(|id| id.as_u128()).collect();
        assert_eq!(order, (1..=1234).collect::<Vec<u128>>(), "creation order");
        assert_eq!(outbox.count(OperationState::Done), 1234);
    }

    #[tokio::test]
    async fn a_failure_after_a_good_batch_records_the_good_one_and_keeps_the_order() {
        // Batch 1 is answered, batch 2 fails: batch 1's results (recorded while
        // batch 2 was in flight) are stored; batch 2 and 3 stay pending, and
        // the next drain resends from batch 2 in creation order.
        let outbox = StubOutbox::with(1200);
        let erp = ScriptedErp::new(vec![Answer::AcceptAll, Answer::Fail(server_error())]);
        let s = sender(outbox.clone(), erp.clone(), DeviceGate::new());
        let report = s.drain().await.unwrap();
        assert_eq!((report.sent, report.done), (1000, 500));
        assert!(report.error.is_some());
        assert_eq!(outbox.count(OperationState::Done), 500);
        assert_eq!(outbox.count(OperationState::Pending), 700);
        let failed = outbox.get(Uuid::from_u128(501)).await.unwrap().unwrap();
        assert_eq!(failed.attempts, 1, "the failed batch counts an attempt");
        let untouched = outbox.get(Uuid::from_u128(1001)).await.unwrap().unwrap();
        assert_eq!(untouched.attempts, 0, "the batch read ahead was not sent");
        let report = s.drain().await.unwrap();
        assert_eq!(report.done, 700);
        let batches = erp.batches.lock().unwrap();
        assert_eq!(batches.len(), 4);
        assert_eq!(
            batches[1], batches[2],
            "the failed batch is resent with the same ids"
        );
        let delivered: Vec<u128> = [&batches[0], &batches[2], &batches[3]]
            .iter()
            .flat_map(|b| b.iter().map(|id| id.as_u128()))
            .collect();
        assert_eq!(
            delivered,
            (1..=1200).collect::<Vec<u128>>(),
            "creation order"
        );
    }

    #[tokio::test]
    async fn a_rejected_operation_is_parked_and_the_ones_behind_it_still_go() {
        let outbox = StubOutbox::with(501);
        let erp = ScriptedErp::new(vec![Answer::Reject(Uuid::from_u128(1))]);
        let report = sender(outbox.clone(), erp.clone(), DeviceGate::new())
            .drain()
            .await
            .unwrap();
        assert_eq!((report.done, report.parked), (500, 1));
        assert_eq!(outbox.count(OperationState::Parked), 1);
        assert_eq!(outbox.count(OperationState::Done), 500);
        let parked = outbox.get(Uuid::from_u128(1)).await.unwrap().unwrap();
        assert_eq!(parked.last_error.as_deref(), Some("unknown_grade"));
    }

    #[tokio::test]
    async fn a_failed_batch_stays_pending_with_the_same_ids_and_waits_the_jittered_retry() {
        let outbox = StubOutbox::with(10);
        let erp = ScriptedErp::new(vec![Answer::Fail(server_error())]);
        let clock = Arc::new(FixedClock::new(t9()));
        let s = sender_with(
            outbox.clone(),
            erp.clone(),
            DeviceGate::new(),
            clock.clone(),
        );
        let report = s.drain().await.unwrap();
        let wait = report.retry_after.unwrap();
        assert!(
            wait >= Duration::from_secs(48) && wait <= Duration::from_secs(72),
            "{wait:?}"
        );
        // The jittered wait is the loop's (in memory): a plain failure leaves no
        // persisted wait, so a restarted till tries again at once.
        let head = outbox.get(Uuid::from_u128(1)).await.unwrap().unwrap();
        assert_eq!(head.next_attempt_at, None);
        clock.advance(chrono::Duration::from_std(wait).unwrap());
        assert_eq!(outbox.count(OperationState::Pending), 10);
        assert_eq!(
            outbox
                .get(Uuid::from_u128(3))
                .await
                .unwrap()
                .unwrap()
                .attempts,
            1
        );
        let report = s.drain().await.unwrap();
        assert_eq!(report.done, 10);
        let batches = erp.batches.lock().unwrap();
        assert_eq!(batches[0], batches[1], "the retry carries the same ids");
    }

    #[tokio::test]
    async fn retry_after_from_the_erp_wins_over_the_retry_interval() {
        let outbox = StubOutbox::with(3);
        let erp = ScriptedErp::new(vec![Answer::Fail(RemoteError::RetryAfter {
            host: "erp".into(),
            status: 429,
            retry_after: Duration::from_secs(42),
        })]);
        let report = sender(outbox, erp, DeviceGate::new())
            .drain()
            .await
            .unwrap();
        assert_eq!(report.retry_after, Some(Duration::from_secs(42)));
    }

    #[tokio::test]
    async fn a_401_closes_the_gate_and_stops_device_calls() {
        let outbox = StubOutbox::with(3);
        let erp = ScriptedErp::new(vec![Answer::Fail(RemoteError::Unauthorized {
            host: "erp".into(),
        })]);
        let gate = DeviceGate::new();
        let s = sender(outbox.clone(), erp.clone(), gate.clone());
        s.drain().await.unwrap();
        assert!(gate.is_closed());
        let report = s.drain().await.unwrap();
        assert_eq!(report.sent, 0);
        assert!(report.error.unwrap().contains("re-onboarding"));
        assert_eq!(
            erp.batches.lock().unwrap().len(),
            1,
            "no device call after the 401"
        );
        assert_eq!(outbox.count(OperationState::Pending), 3, "nothing lost");
    }

    #[tokio::test]
    async fn ids_the_erp_did_not_answer_for_stay_pending() {
        let outbox = StubOutbox::with(4);
        let erp = ScriptedErp::new(vec![Answer::Nothing]);
        let report = sender(outbox.clone(), erp, DeviceGate::new())
            .drain()
            .await
            .unwrap();
        assert!(report.retry_after.is_some());
        assert_eq!(outbox.count(OperationState::Pending), 4);
    }

    #[tokio::test]
    async fn a_wait_recorded_before_a_restart_is_honoured_and_keeps_the_order() {
        let outbox = StubOutbox::with(3);
        let erp = ScriptedErp::new(vec![Answer::Fail(RemoteError::RetryAfter {
            host: "erp".into(),
            status: 429,
            retry_after: Duration::from_secs(10),
        })]);
        let first = sender(outbox.clone(), erp.clone(), DeviceGate::new());
        first.drain().await.unwrap();
        // A new sender over the same outbox, as after a restart, at the same moment.
        let restarted = sender(outbox.clone(), erp.clone(), DeviceGate::new());
        let report = restarted.drain().await.unwrap();
        assert_eq!(report.sent, 0, "nothing sent before the recorded time");
        assert_eq!(report.retry_after, Some(Duration::from_secs(10)));
        assert!(report.error.unwrap().contains("429"));
        assert_eq!(erp.batches.lock().unwrap().len(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_loop_sends_every_send_frequency_and_waits_the_retry_interval_after_a_failure() {
        let outbox = StubOutbox::with(2);
        let erp = ScriptedErp::new(vec![Answer::Fail(server_error()), Answer::AcceptAll]);
        let clock = Arc::new(TokioClock(tokio::time::Instant::now()));
        let s = sender_with(outbox.clone(), erp.clone(), DeviceGate::new(), clock);
        let shutdown = CancellationToken::new();
        let start = tokio::time::Instant::now();
        let task = tokio::spawn(s.run(shutdown.clone(), |_| {}));
        tokio::time::sleep(Duration::from_secs(200)).await;
        shutdown.cancel();
        task.await.unwrap();
        let calls = erp.calls_at.lock().unwrap().clone();
        assert_eq!(
            calls.len(),
            2,
            "one failure, one success, then nothing left to send"
        );
        let gap = calls[1] - calls[0];
        assert!(
            gap >= Duration::from_secs(48) && gap <= Duration::from_secs(72),
            "retried after {gap:?}"
        );
        assert_eq!(calls[0] - start, Duration::ZERO);
        assert_eq!(outbox.count(OperationState::Done), 2);
    }
}
