//! [`Outbox`] on the `outbox` table.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use spacepos_sync::{
    Destination, NewOperation, OperationOutcome, OperationResult, OperationState, Outbox,
    OutboxStats, QueuedOperation, StoreError,
};
use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Sqlite};
use uuid::Uuid;

use crate::codec;
use crate::error::Fail;
use crate::store::{SqliteStore, with_retry};

/// Rows per multi-row statement (8 parameters a row, far below SQLite's limit).
const ROWS_PER_STATEMENT: usize = 500;

const COLUMNS: &str = "seq, id, destination, kind, occurred_at, store_staff_id, payload, state, created_at, \
                       attempts, next_attempt_at, last_error, completed_at";

#[derive(Debug, sqlx::FromRow)]
struct Row {
    seq: i64,
    id: String,
    destination: String,
    kind: String,
    occurred_at: String,
    store_staff_id: Option<String>,
    payload: String,
    state: String,
    created_at: String,
    attempts: i64,
    next_attempt_at: Option<String>,
    last_error: Option<String>,
    completed_at: Option<String>,
}

impl Row {
    fn decode(self) -> Result<QueuedOperation, Fail> {
        let id = Uuid::parse_str(&self.id)
            .map_err(|e| Fail::Decode(format!("outbox id {:?} is not a UUID: {e}", self.id)))?;
        let destination = match self.destination.as_str() {
            "erp" => Destination::ErpOperations,
            "bus" => Destination::EventBus,
            other => {
                return Err(Fail::Decode(format!(
                    "outbox {id}: unknown destination {other:?}"
                )));
            }
        };
        let state = self
            .state
            .parse::<OperationState>()
            .map_err(|e| Fail::Decode(format!("outbox {id}: {e}")))?;
        Ok(QueuedOperation {
            seq: self.seq,
            id,
            destination,
            kind: self.kind,
            occurred_at: codec::parse_time("outbox.occurred_at", &self.occurred_at)?,
            store_staff_id: self.store_staff_id,
            payload: codec::parse_json("outbox.payload", &self.payload)?,
            state,
            created_at: codec::parse_time("outbox.created_at", &self.created_at)?,
            attempts: u32::try_from(self.attempts).unwrap_or(u32::MAX),
            next_attempt_at: codec::parse_opt_time(
                "outbox.next_attempt_at",
                self.next_attempt_at.as_deref(),
            )?,
            last_error: self.last_error,
            completed_at: codec::parse_opt_time(
                "outbox.completed_at",
                self.completed_at.as_deref(),
            )?,
        })
    }
}

fn decode_all(rows: Vec<Row>) -> Result<Vec<QueuedOperation>, Fail> {
    rows.into_iter().map(Row::decode).collect()
}

/// Why a queued entry is not the operation offered under its id, if it is not.
fn difference(queued: &QueuedOperation, op: &NewOperation) -> Option<&'static str> {
    if queued.destination != op.destination {
        Some("destination")
    } else if queued.kind != op.kind {
        Some("kind")
    } else if queued.occurred_at != op.occurred_at {
        Some("occurred_at")
    } else if queued.store_staff_id != op.store_staff_id {
        Some("store_staff_id")
    } else if queued.payload != op.payload {
        Some("payload")
    } else {
        None
    }
}

/// Queue `ops` on `conn`, which must be inside a write transaction that the
/// caller rolls back on `Err` (a conflict leaves rows of this call behind).
pub(crate) async fn enqueue_in(
    conn: &mut SqliteConnection,
    ops: &[NewOperation],
    now: DateTime<Utc>,
) -> Result<Vec<QueuedOperation>, Fail> {
    if ops.is_empty() {
        return Ok(Vec::new());
    }
    let created_at = codec::time(now);
    let encoded: Vec<(String, String, String)> = ops
        .iter()
        .map(|op| {
            (
                op.id.to_string(),
                codec::time(op.occurred_at),
                codec::json(&op.payload),
            )
        })
        .collect();

    // Insert what is new; ids already queued (before, or earlier in this call) are left alone.
    let mut inserted: HashMap<String, i64> = HashMap::with_capacity(ops.len());
    for (ops_chunk, enc_chunk) in ops
        .chunks(ROWS_PER_STATEMENT)
        .zip(encoded.chunks(ROWS_PER_STATEMENT))
    {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO outbox (id, destination, kind, occurred_at, store_staff_id, payload, state, created_at) ",
        );
        qb.push_values(
            ops_chunk.iter().zip(enc_chunk),
            |mut b, (op, (id, occurred, payload))| {
                b.push_bind(id.as_str())
                    .push_bind(op.destination.as_str())
                    .push_bind(op.kind.as_str())
                    .push_bind(occurred.as_str())
                    .push_bind(op.store_staff_id.as_deref())
                    .push_bind(payload.as_str())
                    .push_bind(OperationState::Pending.as_str())
                    .push_bind(created_at.as_str());
            },
        );
        qb.push(" ON CONFLICT(id) DO NOTHING RETURNING id, seq");
        let rows: Vec<(String, i64)> = qb.build_query_as().fetch_all(&mut *conn).await?;
        inserted.extend(rows);
    }

    // Entries this call did not create: compare them with what was offered.
    let mut first_in_call: HashSet<&str> = HashSet::with_capacity(ops.len());
    let mut existing_ids: Vec<&str> = Vec::new();
    for (id, _, _) in &encoded {
        let fresh = inserted.contains_key(id.as_str()) && first_in_call.insert(id.as_str());
        if !fresh {
            existing_ids.push(id.as_str());
        }
    }
    let mut existing: HashMap<Uuid, QueuedOperation> = HashMap::new();
    for chunk in existing_ids.chunks(ROWS_PER_STATEMENT) {
        let mut qb =
            QueryBuilder::<Sqlite>::new(format!("SELECT {COLUMNS} FROM outbox WHERE id IN ("));
        let mut list = qb.separated(", ");
        for id in chunk {
            list.push_bind(*id);
        }
        qb.push(")");
        let rows: Vec<Row> = qb.build_query_as().fetch_all(&mut *conn).await?;
        for op in decode_all(rows)? {
            existing.insert(op.id, op);
        }
    }

    let mut first_in_call: HashSet<&str> = HashSet::with_capacity(ops.len());
    let mut queued = Vec::with_capacity(ops.len());
    for (op, (id, _, _)) in ops.iter().zip(&encoded) {
        let fresh = first_in_call.insert(id.as_str());
        match (fresh, inserted.get(id.as_str())) {
            (true, Some(&seq)) => queued.push(QueuedOperation {
                seq,
                id: op.id,
                destination: op.destination,
                kind: op.kind.clone(),
                occurred_at: op.occurred_at,
                store_staff_id: op.store_staff_id.clone(),
                payload: op.payload.clone(),
                state: OperationState::Pending,
                created_at: now,
                attempts: 0,
                next_attempt_at: None,
                last_error: None,
                completed_at: None,
            }),
            _ => {
                let entry = existing.get(&op.id).ok_or_else(|| {
                    Fail::Decode(format!("operation {} was neither queued nor found", op.id))
                })?;
                if let Some(field) = difference(entry, op) {
                    return Err(Fail::Conflict(format!(
                        "operation {} is already queued with a different {field} (queued {} {:?}, seq {}); \
                         an id is the operation's idempotency key and cannot be reused for another \
                         operation: nothing of this call was queued",
                        op.id, entry.kind, entry.state, entry.seq
                    )));
                }
                queued.push(entry.clone());
            }
        }
    }
    Ok(queued)
}

impl SqliteStore {
    async fn try_enqueue(&self, ops: &[NewOperation]) -> Result<Vec<QueuedOperation>, Fail> {
        let mut tx = self.begin_immediate().await?;
        let queued = enqueue_in(&mut tx, ops, Utc::now()).await?;
        tx.commit().await?;
        Ok(queued)
    }

    async fn try_pending(
        &self,
        destination: Destination,
        limit: usize,
    ) -> Result<Vec<QueuedOperation>, Fail> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM outbox WHERE state = 'pending' AND destination = ? ORDER BY seq LIMIT ?"
        ))
        .bind(destination.as_str())
        .bind(codec::limit(limit))
        .fetch_all(self.reader())
        .await?;
        decode_all(rows)
    }

    async fn try_pending_after(
        &self,
        destination: Destination,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<QueuedOperation>, Fail> {
        let rows: Vec<Row> = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM outbox WHERE state = 'pending' AND destination = ? AND seq > ? ORDER BY seq LIMIT ?"
        ))
        .bind(destination.as_str())
        .bind(after_seq)
        .bind(codec::limit(limit))
        .fetch_all(self.reader())
        .await?;
        decode_all(rows)
    }

    async fn try_record_results(
        &self,
        results: &[OperationResult],
        at: DateTime<Utc>,
    ) -> Result<(), Fail> {
        // The first verdict of an id counts: after it the entry is no longer pending.
        let mut seen = HashSet::with_capacity(results.len());
        let rows: Vec<(String, &'static str, Option<&str>)> = results
            .iter()
            .filter(|r| seen.insert(r.id))
            .map(|r| match &r.outcome {
                OperationOutcome::Accepted | OperationOutcome::Duplicate => {
                    (r.id.to_string(), OperationState::Done.as_str(), None)
                }
                OperationOutcome::Rejected { error } => (
                    r.id.to_string(),
                    OperationState::Parked.as_str(),
                    Some(error.as_str()),
                ),
            })
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        let at = codec::time(at);
        let mut tx = self.begin_relaxed().await?;
        for chunk in rows.chunks(ROWS_PER_STATEMENT) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "UPDATE outbox SET state = r.column2, \
                 last_error = CASE WHEN r.column2 = 'parked' THEN r.column3 ELSE outbox.last_error END, \
                 attempts = outbox.attempts + 1, completed_at = ",
            );
            qb.push_bind(at.as_str());
            qb.push(" FROM (");
            qb.push_values(chunk, |mut b, (id, state, error)| {
                b.push_bind(id.as_str()).push_bind(*state).push_bind(*error);
            });
            qb.push(") AS r WHERE outbox.id = r.column1 AND outbox.state = 'pending'");
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn try_record_failure(
        &self,
        ids: &[Uuid],
        error: &str,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> Result<(), Fail> {
        if ids.is_empty() {
            return Ok(());
        }
        let next = next_attempt_at.map(codec::time);
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let mut tx = self.begin_relaxed().await?;
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "UPDATE outbox SET attempts = attempts + 1, last_error = ",
            );
            qb.push_bind(error);
            qb.push(", next_attempt_at = ");
            qb.push_bind(next.as_deref());
            qb.push(" WHERE state = 'pending' AND id IN (");
            let mut list = qb.separated(", ");
            for id in chunk {
                list.push_bind(id.as_str());
            }
            qb.push(")");
            qb.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn try_retry(&self, id: Uuid) -> Result<QueuedOperation, Fail> {
        let mut tx = self.begin_immediate().await?;
        let row: Option<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM outbox WHERE id = ?"))
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        let Some(mut op) = row.map(Row::decode).transpose()? else {
            return Err(Fail::NotFound(format!(
                "no operation {id} in the outbox of {}",
                self.path().display()
            )));
        };
        match op.state {
            OperationState::Parked => {}
            OperationState::Pending => {
                return Err(Fail::Conflict(format!(
                    "operation {id} is pending already: it is sent with the next batch"
                )));
            }
            OperationState::Done => {
                return Err(Fail::Conflict(format!(
                    "operation {id} is done (the ERP accepted it): there is nothing to retry"
                )));
            }
        }
        sqlx::query(
            "UPDATE outbox SET state = 'pending', next_attempt_at = NULL, completed_at = NULL \
             WHERE id = ? AND state = 'parked'",
        )
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        op.state = OperationState::Pending;
        op.next_attempt_at = None;
        op.completed_at = None;
        Ok(op)
    }

    async fn try_get(&self, id: Uuid) -> Result<Option<QueuedOperation>, Fail> {
        let row: Option<Row> =
            sqlx::query_as(&format!("SELECT {COLUMNS} FROM outbox WHERE id = ?"))
                .bind(id.to_string())
                .fetch_optional(self.reader())
                .await?;
        row.map(Row::decode).transpose()
    }

    async fn try_list(
        &self,
        state: Option<OperationState>,
        limit: usize,
    ) -> Result<Vec<QueuedOperation>, Fail> {
        // The newest `limit` entries, returned oldest first.
        let rows: Vec<Row> = match state {
            Some(state) => {
                sqlx::query_as(&format!(
                    "SELECT * FROM (SELECT {COLUMNS} FROM outbox WHERE state = ? ORDER BY seq DESC LIMIT ?) \
                     ORDER BY seq"
                ))
                .bind(state.as_str())
                .bind(codec::limit(limit))
                .fetch_all(self.reader())
                .await?
            }
            None => {
                sqlx::query_as(&format!(
                    "SELECT * FROM (SELECT {COLUMNS} FROM outbox ORDER BY seq DESC LIMIT ?) ORDER BY seq"
                ))
                .bind(codec::limit(limit))
                .fetch_all(self.reader())
                .await?
            }
        };
        decode_all(rows)
    }

    async fn try_stats(&self) -> Result<OutboxStats, Fail> {
        // One read transaction: the counts and the oldest time agree.
        let mut tx = self.reader().begin().await?;
        let counts: Vec<(String, i64)> =
            sqlx::query_as("SELECT state, count(*) FROM outbox GROUP BY state")
                .fetch_all(&mut *tx)
                .await?;
        let (oldest,): (Option<String>,) =
            sqlx::query_as("SELECT min(created_at) FROM outbox WHERE state = 'pending'")
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        let mut stats = OutboxStats {
            oldest_pending_created_at: codec::parse_opt_time(
                "outbox.created_at",
                oldest.as_deref(),
            )?,
            ..OutboxStats::default()
        };
        for (state, count) in counts {
            let count = codec::uint("count", count)?;
            match state.parse::<OperationState>() {
                Ok(OperationState::Pending) => stats.pending = count,
                Ok(OperationState::Parked) => stats.parked = count,
                Ok(OperationState::Done) => stats.done = count,
                Err(e) => return Err(Fail::Decode(format!("outbox.state: {e}"))),
            }
        }
        Ok(stats)
    }
}

#[async_trait]
impl Outbox for SqliteStore {
    async fn enqueue(
        &self,
        operations: &[NewOperation],
    ) -> Result<Vec<QueuedOperation>, StoreError> {
        with_retry!(
            self,
            format!("queue {} operation(s)", operations.len()),
            self.try_enqueue(operations)
        )
    }

    async fn pending(
        &self,
        destination: Destination,
        limit: usize,
    ) -> Result<Vec<QueuedOperation>, StoreError> {
        with_retry!(
            self,
            format!("read pending operations for {}", destination.as_str()),
            self.try_pending(destination, limit)
        )
    }

    async fn pending_after(
        &self,
        destination: Destination,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<QueuedOperation>, StoreError> {
        with_retry!(
            self,
            format!("read pending operations for {}", destination.as_str()),
            self.try_pending_after(destination, after_seq, limit)
        )
    }

    async fn record_results(
        &self,
        results: &[OperationResult],
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        with_retry!(
            self,
            format!("record {} operation result(s)", results.len()),
            self.try_record_results(results, at)
        )
    }

    async fn record_failure(
        &self,
        ids: &[Uuid],
        error: &str,
        next_attempt_at: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        with_retry!(
            self,
            format!("record a failed attempt of {} operation(s)", ids.len()),
            self.try_record_failure(ids, error, next_attempt_at)
        )
    }

    async fn retry(&self, id: Uuid) -> Result<QueuedOperation, StoreError> {
        with_retry!(self, format!("retry operation {id}"), self.try_retry(id))
    }

    async fn get(&self, id: Uuid) -> Result<Option<QueuedOperation>, StoreError> {
        with_retry!(self, format!("read operation {id}"), self.try_get(id))
    }

    async fn list(
        &self,
        state: Option<OperationState>,
        limit: usize,
    ) -> Result<Vec<QueuedOperation>, StoreError> {
        with_retry!(self, "list queued operations", self.try_list(state, limit))
    }

    async fn stats(&self) -> Result<OutboxStats, StoreError> {
        with_retry!(self, "count queued operations", self.try_stats())
    }
}
