//! `drain`: sending queued operations to the fake ERP vs bare reqwest POSTs of
//! the same batches.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use clap::Args;
use serde_json::json;
use spacepos_core::SystemClock;
use spacepos_erp_wire::rest;
use spacepos_fake_erp::FakeErpConfig;
use spacepos_sqlite::SqliteStore;
use spacepos_sync::{Destination, DeviceGate, MAX_BATCH, NewOperation, Outbox, SendTimers, Sender};
use sqlx::sqlite::SqliteConnection;
use sqlx::{Connection, QueryBuilder, Sqlite};
use uuid::Uuid;

use crate::fixture::{Erp, step};
use crate::report::{Comparison, Figure, thousands};
use crate::timed::{Clocks, Timed};
use crate::{Common, Result};

#[derive(Debug, Clone, Args)]
pub(crate) struct DrainArgs {
    /// `drain`: operations to queue and send.
    #[arg(long, default_value_t = 100_000, value_name = "N")]
    pub(crate) operations: u64,
}

/// A plausible `sale.completed`: a few lines, a payment, about 400 bytes of JSON.
pub(crate) fn sale(i: u64) -> NewOperation {
    let base = Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).single();
    let occurred_at = base.unwrap_or_else(Utc::now) + chrono::Duration::milliseconds(i as i64);
    let lines: Vec<serde_json::Value> = (0..1 + i % 3)
        .map(|l| {
            json!({
                "productId": format!("P-{:07}", 1 + (i * 7 + l) % 1_000_000),
                "quantity": 1 + l,
                "unitPriceMinor": 100 + (i + l) % 4900,
                "taxRateId": "T-0000001",
            })
        })
        .collect();
    NewOperation {
        id: Uuid::new_v4(),
        destination: Destination::ErpOperations,
        kind: "sale.completed".into(),
        occurred_at,
        store_staff_id: Some("S-0042".into()),
        payload: json!({
            "receiptNumber": format!("12-3-{i:08}"),
            "storeNumber": 12,
            "terminalNumber": 3,
            "lines": lines,
            "totalMinor": 100 + i % 10_000,
            "payments": [{"method": "PM-0000002", "amountMinor": 100 + i % 10_000}],
        }),
    }
}

pub(crate) async fn run(args: &DrainArgs, _common: &Common, dir: &Path) -> Result<Comparison> {
    let n = args.operations;
    eprintln!("drain: {} operations", thousands(n));
    let ops: Vec<NewOperation> = (0..n).map(sale).collect();
    let bodies: Vec<Vec<u8>> = ops
        .chunks(MAX_BATCH)
        .map(|chunk| {
            serde_json::to_vec(&rest::OperationsRequest {
                operations: chunk
                    .iter()
                    .map(|op| rest::Operation {
                        id: op.id,
                        kind: op.kind.clone(),
                        occurred_at: op.occurred_at,
                        store_staff_id: op.store_staff_id.clone(),
                        payload: op.payload.clone(),
                    })
                    .collect(),
            })
        })
        .collect::<Result<_, _>>()?;
    let body_bytes: usize = bodies.iter().map(Vec::len).sum();

    // The raw limit: bare POSTs of the same batches to a fake ERP of its own.
    let raw_erp = Erp::start(FakeErpConfig::default()).await?;
    let raw = step("raw: bare reqwest POSTs of the same batches", async {
        let client = raw_erp.raw_client()?;
        let url = format!("{}/api/pos/operations", raw_erp.erp.base_url());
        let start = Instant::now();
        for body in &bodies {
            let response = client
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone())
                .send()
                .await?;
            let status = response.status();
            let answer = response.bytes().await?;
            if !status.is_success() || answer.is_empty() {
                return Err(format!("POST operations: HTTP {status}").into());
            }
        }
        Ok(start.elapsed())
    })
    .await?;
    let accepted = raw_erp.erp.accepted_count();
    raw_erp.shutdown().await;
    if accepted as u64 != n {
        return Err(format!("the fake ERP accepted {accepted} of {n} raw operations").into());
    }

    // The product: the outbox filled beforehand, then Sender::drain.
    let erp = Erp::start(FakeErpConfig::default()).await?;
    let store = SqliteStore::open(dir.join("drain-product.db")).await?;
    step("queue the operations (not timed)", async {
        for chunk in ops.chunks(MAX_BATCH) {
            store.enqueue(chunk).await?;
        }
        Ok(())
    })
    .await?;
    let clocks = Clocks::default();
    let sender = Sender::to_erp(
        Timed::new(Arc::new(store.clone()), &clocks),
        Timed::new(Arc::new(erp.product_client()?), &clocks),
        DeviceGate::new(),
        Arc::new(SystemClock),
        SendTimers {
            every: Duration::from_secs(5),
            retry: Duration::from_secs(60),
        },
    );
    let (product, report) = step("product: Sender::drain", async {
        let start = Instant::now();
        let report = sender.drain().await?;
        Ok((start.elapsed(), report))
    })
    .await?;
    let stats = store.stats().await?;
    store.close().await;
    let accepted = erp.erp.accepted_count();
    erp.shutdown().await;
    if report.done != n || accepted as u64 != n || stats.pending != 0 {
        return Err(format!(
            "the product drained {report:?}; the fake ERP accepted {accepted}; {} still pending",
            stats.pending
        )
        .into());
    }

    // Diagnostic: the outbox's own SQL per batch through a bare sqlx
    // connection (no decoding, no HTTP), on a store filled the same way.
    let floor_db = dir.join("drain-sql-floor.db");
    let floor_store = SqliteStore::open(&floor_db).await?;
    for chunk in ops.chunks(MAX_BATCH) {
        floor_store.enqueue(chunk).await?;
    }
    floor_store.close().await;
    let (floor_read, floor_write, floor_batches) = step(
        "diagnostic: the outbox's SQL through bare sqlx",
        sql_floor(&floor_db),
    )
    .await?;

    let breakdown = clocks.breakdown(&[
        (
            "outbox.pending",
            "Outbox::pending (SQLite: read 500 rows, JSON payloads parsed)",
        ),
        (
            "api.submit",
            "OperationsApi::submit (serialize, HTTP POST, parse the results)",
        ),
        (
            "outbox.record_results",
            "Outbox::record_results (SQLite: 500 rows marked done, one commit)",
        ),
    ]);
    Ok(Comparison {
        title: format!("Drain {} queued operations", thousands(n)),
        product_label: format!(
            "`Sender::drain` of a `SqliteStore` outbox holding {} `sale.completed` operations, \
             through `ErpHttpClient` to the in-process fake ERP, batches of {MAX_BATCH}: read, \
             POST, record the results (one commit per batch)",
            thousands(n)
        ),
        raw_label: format!(
            "bare reqwest POSTs of the same {} batches (the same operations, bodies serialized \
             beforehand, {} bytes each on average) to `POST /api/pos/operations` of a fake ERP \
             started the same way, answers read whole",
            bodies.len(),
            body_bytes / bodies.len().max(1)
        ),
        product: Figure::rate(n, "ops", product),
        raw: Figure::rate(n, "ops", raw),
        goal: Some(0.5),
        breakdown,
        notes: vec![
            format!(
                "diagnostic, same run: the outbox's own SQL for the same {floor_batches} batches \
                 through a bare sqlx connection, nothing decoded and no HTTP (the SELECT of \
                 `pending`, then `BEGIN IMMEDIATE`, the UPDATE of `record_results`, `COMMIT`): \
                 {:.2} s reading + {:.2} s updating and committing = {:.2} ms a batch, \
                 {} ops/s for SQLite alone",
                floor_read.as_secs_f64(),
                floor_write.as_secs_f64(),
                (floor_read + floor_write).as_secs_f64() * 1000.0 / floor_batches.max(1) as f64,
                thousands((n as f64 / (floor_read + floor_write).as_secs_f64().max(1e-9)) as u64)
            ),
            "each side gets a fresh fake ERP, so both are answered `accepted` (an ERP that has \
             seen the ids answers `duplicate`, a cheaper path)"
                .into(),
        ],
    })
}

/// The row `Outbox::pending` reads, as raw columns.
type RawRow = (
    i64,
    String,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    i64,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Drain the outbox at `path` with the store's own statements on a bare sqlx
/// connection: (time reading, time updating and committing, batches).
async fn sql_floor(path: &Path) -> Result<(Duration, Duration, u64)> {
    let mut conn = SqliteConnection::connect_with(&crate::enqueue::options(path)).await?;
    let (mut read, mut write, mut batches) = (Duration::ZERO, Duration::ZERO, 0);
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    loop {
        let start = Instant::now();
        let rows: Vec<RawRow> = sqlx::query_as(
            "SELECT seq, id, destination, kind, occurred_at, store_staff_id, payload, state, \
             created_at, attempts, next_attempt_at, last_error, completed_at FROM outbox \
             WHERE state = 'pending' AND destination = 'erp' ORDER BY seq LIMIT 500",
        )
        .fetch_all(&mut conn)
        .await?;
        read += start.elapsed();
        if rows.is_empty() {
            break;
        }
        let start = Instant::now();
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let mut qb = QueryBuilder::<Sqlite>::new(
            "UPDATE outbox SET state = r.column2, \
             last_error = CASE WHEN r.column2 = 'parked' THEN r.column3 ELSE outbox.last_error END, \
             attempts = outbox.attempts + 1, completed_at = ",
        );
        qb.push_bind(now.as_str());
        qb.push(" FROM (");
        qb.push_values(&rows, |mut b, row| {
            b.push_bind(row.1.as_str())
                .push_bind("done")
                .push_bind(None::<&str>);
        });
        qb.push(") AS r WHERE outbox.id = r.column1 AND outbox.state = 'pending'");
        qb.build().execute(&mut *tx).await?;
        tx.commit().await?;
        write += start.elapsed();
        batches += 1;
    }
    conn.close().await?;
    Ok((read, write, batches))
}
