//! `enqueue`: the latency of one durable `Outbox::enqueue` vs one raw SQLite
//! commit of the same row with the same pragmas, samples interleaved.

use std::path::Path;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use clap::Args;
use spacepos_sqlite::SqliteStore;
use spacepos_sync::Outbox;
use sqlx::Connection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};

use crate::drain::sale;
use crate::fixture::step;
use crate::report::{Comparison, Figure, thousands};
use crate::{Common, Result};

/// Unmeasured commits on each side first (files created, caches warm).
const WARM_UP: u64 = 20;

#[derive(Debug, Clone, Args)]
pub(crate) struct EnqueueArgs {
    /// `enqueue`: enqueues measured (and as many raw commits, interleaved).
    #[arg(long, default_value_t = 2_000, value_name = "N")]
    pub(crate) samples: u64,
}

pub(crate) async fn run(args: &EnqueueArgs, _common: &Common, dir: &Path) -> Result<Comparison> {
    let n = args.samples.max(1);
    eprintln!("enqueue: {} single-operation enqueues", thousands(n));
    let product_db = dir.join("enqueue-product.db");
    let store = SqliteStore::open(&product_db).await?;

    // The raw side: one connection with the store's pragmas, the store's own
    // `outbox` DDL, in a file of its own next to the product's.
    let ddl: Vec<(String,)> = sqlx::query_as(
        "SELECT sql FROM sqlite_master WHERE tbl_name = 'outbox' AND sql IS NOT NULL \
         ORDER BY type DESC",
    )
    .fetch_all(&mut SqliteConnection::connect_with(&options(&product_db)).await?)
    .await?;
    let mut raw = SqliteConnection::connect_with(&options(&dir.join("enqueue-raw.db"))).await?;
    for (statement,) in &ddl {
        sqlx::raw_sql(statement).execute(&mut raw).await?;
    }

    let (product, raw_samples) = step(
        "product Outbox::enqueue and raw commit, alternately",
        async {
            let mut product = Vec::with_capacity(n as usize);
            let mut raw_samples = Vec::with_capacity(n as usize);
            for i in 0..WARM_UP + n {
                let op = sale(i);
                let start = Instant::now();
                store.enqueue(std::slice::from_ref(&op)).await?;
                let took = start.elapsed();
                let raw_took = raw_commit(&mut raw, &sale(i)).await?;
                if i >= WARM_UP {
                    product.push(took);
                    raw_samples.push(raw_took);
                }
            }
            Ok((product, raw_samples))
        },
    )
    .await?;
    raw.close().await?;
    store.close().await;

    Ok(Comparison {
        title: "Durable enqueue latency".into(),
        product_label: "`Outbox::enqueue` of one `sale.completed` operation on a `SqliteStore` \
                        (WAL, synchronous=FULL): `BEGIN IMMEDIATE`, `INSERT ... ON CONFLICT DO \
                        NOTHING RETURNING`, `COMMIT`, through the store's write pool"
            .into(),
        raw_label: "one autocommit `INSERT` of the same row into a table with the store's own \
                    `outbox` DDL, through a bare sqlx `SqliteConnection` with the same pragmas \
                    (WAL, synchronous=FULL), in a file in the same directory"
            .into(),
        product: Figure::latency(product),
        raw: Figure::latency(raw_samples),
        goal: None,
        breakdown: Vec::new(),
        notes: vec![format!(
            "{WARM_UP} warm-up commits on each side first; product and raw samples alternate, \
             so both see the same disk and load; a commit is an fsync of the WAL"
        )],
    })
}

pub(crate) fn options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .foreign_keys(true)
        .busy_timeout(Duration::from_millis(50))
}

async fn raw_commit(
    conn: &mut SqliteConnection,
    op: &spacepos_sync::NewOperation,
) -> Result<Duration> {
    let start = Instant::now();
    let time = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Nanos, true);
    let id = op.id.to_string();
    let occurred = time(op.occurred_at);
    let payload = serde_json::to_string(&op.payload)?;
    sqlx::query(
        "INSERT INTO outbox (id, destination, kind, occurred_at, store_staff_id, payload, state, created_at) \
         VALUES (?, ?, ?, ?, ?, ?, 'pending', ?)",
    )
    .bind(&id)
    .bind(op.destination.as_str())
    .bind(&op.kind)
    .bind(&occurred)
    .bind(op.store_staff_id.as_deref())
    .bind(&payload)
    .bind(time(Utc::now()))
    .execute(&mut *conn)
    .await?;
    Ok(start.elapsed())
}
