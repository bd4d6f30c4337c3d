//! `seed`: seeding entities from the fake ERP vs `sqlite3 .import` of the same rows.

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use spacepos_erp_wire::rest;
use spacepos_fake_erp::{DatasetKind, DatasetSpec, FakeErpConfig};
use spacepos_sqlite::SqliteStore;
use spacepos_sync::{LocalStore, SNAPSHOT_PAGE, SeedProgress, Seeder};

use crate::fixture::{Erp, step};
use crate::report::{Comparison, Figure, thousands};
use crate::timed::{Clocks, Timed};
use crate::{Common, Result};

const DATASET: &str = "products";

#[derive(Debug, Clone, Args)]
pub(crate) struct SeedArgs {
    /// `seed`: entities of the fake ERP's `products` dataset to seed.
    #[arg(long, default_value_t = 1_000_000, value_name = "N")]
    pub(crate) entities: u64,
}

pub(crate) async fn run(args: &SeedArgs, _common: &Common, dir: &Path) -> Result<Comparison> {
    let n = args.entities;
    eprintln!("seed: {} entities", thousands(n));
    let erp = Erp::start(FakeErpConfig {
        datasets: vec![DatasetSpec::of(DatasetKind::Products, n)],
        ..FakeErpConfig::default()
    })
    .await?;
    let product_db = dir.join("seed-product.db");
    let store = SqliteStore::open(&product_db).await?;

    // The product: Seeder + ErpHttpClient + SqliteStore, ports timed.
    let clocks = Clocks::default();
    let api = Timed::new(Arc::new(erp.product_client()?), &clocks);
    let timed_store = Timed::new(Arc::new(store.clone()), &clocks);
    let seeder = Seeder::new(api, timed_store);
    let done = AtomicU64::new(0);
    let progress = |p: SeedProgress| {
        if let SeedProgress::Page { items_done, .. } = p {
            let tenth = n.div_ceil(10).max(1);
            if items_done / tenth > done.swap(items_done, Ordering::Relaxed) / tenth {
                eprint!("{}% ", items_done * 100 / n.max(1));
            }
        }
    };
    let product = step("product: Seeder over HTTP into SqliteStore", async {
        let start = Instant::now();
        seeder.seed(DATASET, Some(n), &progress).await?;
        Ok(start.elapsed())
    })
    .await?;
    let seeded = store.checkpoint(DATASET).await?.entities;
    if seeded != n {
        return Err(format!("the product seeded {seeded} entities, not {n}").into());
    }
    store.close().await;

    // The same rows as CSV, and a table of the same shape (the product's own DDL).
    let csv = dir.join("seed-rows.csv");
    step("export the product's rows as CSV (not timed)", async {
        let file = std::fs::File::create(&csv)?;
        let status = std::process::Command::new("sqlite3")
            .arg("-csv")
            .arg(&product_db)
            .arg(
                "SELECT dataset, id, version, deleted, data, generation, updated_at \
                 FROM entities ORDER BY dataset, id",
            )
            .stdout(Stdio::from(file))
            .status()
            .map_err(|e| format!("cannot run sqlite3 (apt-get install sqlite3): {e}"))?;
        if !status.success() {
            return Err(format!("sqlite3 export failed: {status}").into());
        }
        Ok(())
    })
    .await?;
    let schema = sqlite3(&product_db, &[".schema entities"])?;
    let raw_db = dir.join("seed-raw.db");
    sqlite3(&raw_db, &["PRAGMA journal_mode=WAL;", &schema])?;
    let csv_bytes = std::fs::metadata(&csv)?.len();

    // The raw limit: the sqlite3 CLI's .import, one process, timed whole.
    let import = format!(".import --csv {} entities", csv.display());
    let raw = step("raw: sqlite3 .import of the same CSV", async {
        let start = Instant::now();
        sqlite3(&raw_db, &["PRAGMA synchronous=FULL;", &import])?;
        Ok(start.elapsed())
    })
    .await?;
    let count = sqlite3(&raw_db, &["SELECT count(*) FROM entities;"])?;
    if count.trim() != n.to_string() {
        return Err(format!("sqlite3 imported {} rows, not {n}", count.trim()).into());
    }

    // Diagnostic: the HTTP side alone (the fake ERP serving the same pages to a
    // bare reqwest client, bodies parsed into the wire type).
    let (transfer, parse, pages) = step(
        "diagnostic: bare GET of the same snapshot pages",
        bare_snapshot(&erp),
    )
    .await?;
    erp.shutdown().await;

    let breakdown = clocks.breakdown(&[
        (
            "api.snapshot",
            "DatasetApi::snapshot (HTTP GET of a page + JSON into entities)",
        ),
        (
            "store.apply_snapshot_page",
            "LocalStore::apply_snapshot_page (SQLite: upsert 5,000 rows + checkpoint, one commit)",
        ),
        (
            "store.checkpoint",
            "LocalStore::checkpoint (each read counts the dataset's entities)",
        ),
    ]);
    Ok(Comparison {
        title: format!("Seed {} entities", thousands(n)),
        product_label: format!(
            "`Seeder::seed` of the fake ERP's `{DATASET}` (in-process `FakeErp` over HTTP on \
             loopback, pages of {SNAPSHOT_PAGE}) through `ErpHttpClient` into `SqliteStore` \
             (WAL, synchronous=FULL); the fake ERP generates and serializes the pages on the same 2 cores"
        ),
        raw_label: format!(
            "`sqlite3 raw.db 'PRAGMA synchronous=FULL;' '.import --csv rows.csv entities'` of \
             the same rows ({} MB of CSV exported from the product's database) into a WAL database \
             with the product's own `entities` DDL (primary key and both indexes)",
            csv_bytes / 1_000_000
        ),
        product: Figure::rate(n, "rows", product),
        raw: Figure::rate(n, "rows", raw),
        goal: Some(0.5),
        breakdown,
        notes: vec![format!(
            "diagnostic, same run: a bare reqwest client GETting the same {pages} pages took \
             {:.2} s waiting for the fake ERP (generation, serialization, loopback) and {:.2} s \
             parsing them into the wire type: {} rows/s for the HTTP side alone",
            transfer.as_secs_f64(),
            parse.as_secs_f64(),
            thousands((n as f64 / (transfer + parse).as_secs_f64().max(1e-9)) as u64)
        )],
    })
}

/// Run the sqlite3 CLI on `db` with `commands` (SQL or dot-commands); its stdout.
fn sqlite3(db: &Path, commands: &[&str]) -> Result<String> {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .args(commands)
        .output()
        .map_err(|e| format!("cannot run sqlite3 (apt-get install sqlite3): {e}"))?;
    if !out.status.success() || !out.stderr.is_empty() {
        return Err(format!(
            "sqlite3 {} failed ({}): {}",
            db.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Fetch every snapshot page with a bare client: (waiting for bodies, parsing, pages).
async fn bare_snapshot(erp: &Erp) -> Result<(Duration, Duration, u64)> {
    let client = erp.raw_client()?;
    let url = format!("{}/api/pos/datasets/{DATASET}/snapshot", erp.erp.base_url());
    let (mut transfer, mut parse, mut pages) = (Duration::ZERO, Duration::ZERO, 0);
    let mut cursor: Option<String> = None;
    loop {
        let mut query = vec![("limit", SNAPSHOT_PAGE.to_string())];
        if let Some(c) = cursor.take() {
            query.push(("cursor", c));
        }
        let start = Instant::now();
        let response = client.get(&url).query(&query).send().await?;
        if !response.status().is_success() {
            return Err(format!("snapshot page: HTTP {}", response.status()).into());
        }
        let body = response.bytes().await?;
        let parsed_at = Instant::now();
        transfer += parsed_at - start;
        let page: rest::SnapshotPage = serde_json::from_slice(&body)?;
        parse += parsed_at.elapsed();
        pages += 1;
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => return Ok((transfer, parse, pages)),
        }
    }
}
