//! Two OS processes on one database file, as the till app and the SpaceFuel
//! service share it: contention is waited out (every call `Ok`), creation
//! order holds across processes, and a process killed in the middle of
//! enqueueing loses nothing it acknowledged.
//!
//! The processes are this test binary itself, started again with
//! `SPACEPOS_SQLITE_CHILD` set, running only [`child_process`].
#![allow(clippy::unwrap_used)]

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::json;
use spacepos_sqlite::SqliteStore;
use spacepos_sync::{
    Destination, Entity, LocalStore, NewOperation, OperationState, Outbox, SnapshotPage,
    SnapshotStep,
};
use uuid::Uuid;

const CHILD: &str = "SPACEPOS_SQLITE_CHILD";
const DB: &str = "SPACEPOS_SQLITE_DB";
/// Lines a child prints for the parent start with this.
const REPORT: &str = "REPORT ";

fn operation(tag: &str, i: u64) -> NewOperation {
    NewOperation {
        id: Uuid::new_v4(),
        destination: Destination::ErpOperations,
        kind: "sale.completed".into(),
        occurred_at: Utc::now(),
        store_staff_id: Some("S-0042".into()),
        payload: json!({"process": tag, "i": i, "receiptNumber": format!("12-3-{i:06}"), "totalMinor": 1999}),
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

fn report(line: &str) {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{REPORT}{line}").unwrap();
    out.flush().unwrap();
}

/// Not a test of its own: the body of the child processes started by the
/// tests below. Without `SPACEPOS_SQLITE_CHILD` it returns at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child_process() {
    let Ok(role) = std::env::var(CHILD) else {
        return;
    };
    let path = PathBuf::from(std::env::var(DB).unwrap());
    let store = SqliteStore::open(&path).await.unwrap();
    let mut parts = role.split(':');
    match (parts.next(), parts.next(), parts.next()) {
        // enqueue:<tag>:<count>: one operation per call, as a till does
        (Some("enqueue"), Some(tag), Some(count)) => {
            let count: u64 = count.parse().unwrap();
            let mut latencies = Vec::with_capacity(count as usize);
            let start = Instant::now();
            for i in 0..count {
                let op = operation(tag, i);
                let t = Instant::now();
                if let Err(e) = store.enqueue(std::slice::from_ref(&op)).await {
                    panic!("enqueue {i} of process {tag} failed: {e}");
                }
                latencies.push(t.elapsed());
            }
            let total = start.elapsed();
            latencies.sort();
            report(&format!(
                "enqueue {tag} count={count} total_ms={} p50_us={} p99_us={} max_ms={}",
                total.as_millis(),
                percentile(&latencies, 0.5).as_micros(),
                percentile(&latencies, 0.99).as_micros(),
                latencies.last().copied().unwrap_or_default().as_millis(),
            ));
        }
        // ack:<tag>: enqueue until killed, printing each id once the call returned
        (Some("ack"), Some(tag), None) => {
            for i in 0.. {
                let op = operation(tag, i);
                store.enqueue(std::slice::from_ref(&op)).await.unwrap();
                report(&format!("acked {}", op.id));
            }
        }
        // snapshot:<pages>:<size>: one snapshot of `pages` pages
        (Some("snapshot"), Some(pages), Some(size)) => {
            let pages: u64 = pages.parse().unwrap();
            let size: u64 = size.parse().unwrap();
            let start = Instant::now();
            let mut slowest = Duration::ZERO;
            for p in 0..pages {
                let items = (0..size)
                    .map(|i| Entity {
                        id: format!("P-{:08}", p * size + i),
                        version: 1,
                        deleted: false,
                        data: json!({"name": format!("product {p}/{i}"), "priceMinor": 100 + i, "taxRateId": "T-STD"}),
                    })
                    .collect();
                let page = SnapshotPage {
                    dataset: "products".into(),
                    as_of_sequence: 1000,
                    items,
                    next_cursor: (p + 1 < pages).then(|| format!("after-{p}")),
                };
                let t = Instant::now();
                let fetched_with = p.checked_sub(1).map(|q| format!("after-{q}"));
                let step = store.apply_snapshot_page(&page, fetched_with).await;
                slowest = slowest.max(t.elapsed());
                match step {
                    Ok(SnapshotStep::Continue) if p + 1 < pages => {}
                    Ok(SnapshotStep::Complete) if p + 1 == pages => {}
                    other => panic!("page {p}: {other:?}"),
                }
            }
            let total = start.elapsed();
            report(&format!(
                "snapshot rows={} total_ms={} rows_per_s={:.0} slowest_page_ms={}",
                pages * size,
                total.as_millis(),
                (pages * size) as f64 / total.as_secs_f64(),
                slowest.as_millis()
            ));
        }
        other => panic!("unknown child role {other:?}"),
    }
    store.close().await;
}

/// The report in a line of a child's output (libtest may print before it on the same line).
fn report_of(line: &str) -> Option<&str> {
    line.find(REPORT).map(|at| &line[at + REPORT.len()..])
}

fn spawn(role: &str, db: &Path) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "child_process",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, role)
        .env(DB, db)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Wait for a child; its report lines; panics if it failed.
fn finish(child: Child, what: &str) -> Vec<String> {
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed ({}):\n{stdout}",
        output.status
    );
    let reports: Vec<String> = stdout
        .lines()
        .filter_map(report_of)
        .map(str::to_owned)
        .collect();
    assert!(!reports.is_empty(), "{what} reported nothing:\n{stdout}");
    for line in &reports {
        println!("{what}: {line}");
    }
    reports
}

/// Temporary directory on the target's disk (not a tmpfs), so that fsync costs what it costs.
fn workdir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap()
}

#[tokio::test]
async fn two_processes_enqueue_10000_each_into_a_new_file() {
    let dir = workdir();
    let db = dir.path().join("node").join("spacepos.db");
    let start = Instant::now();
    // Both open a file that does not exist yet: creation and migration race too.
    let a = spawn("enqueue:A:10000", &db);
    let b = spawn("enqueue:B:10000", &db);
    finish(a, "process A");
    finish(b, "process B");
    println!(
        "two processes, 20000 single-operation enqueues: {:.1} s",
        start.elapsed().as_secs_f64()
    );

    let store = SqliteStore::open(&db).await.unwrap();
    let all = store.list(None, 100_000).await.unwrap();
    assert_eq!(all.len(), 20_000, "exactly the operations acknowledged");
    let ids: HashSet<Uuid> = all.iter().map(|o| o.id).collect();
    assert_eq!(ids.len(), 20_000, "all ids distinct");
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(all.iter().all(|o| o.state == OperationState::Pending));
    // each process's own order is its creation order
    let mut last_i: HashMap<String, i64> = HashMap::new();
    for op in &all {
        let tag = op.payload["process"].as_str().unwrap().to_owned();
        let i = op.payload["i"].as_i64().unwrap();
        let previous = last_i.insert(tag.clone(), i);
        assert_eq!(
            previous.map_or(0, |p| p + 1),
            i,
            "process {tag}: operations in their order"
        );
    }
    let pending = store
        .pending(Destination::ErpOperations, 500)
        .await
        .unwrap();
    assert_eq!(pending.len(), 500);
    assert_eq!(pending[0].seq, all[0].seq);
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}

#[tokio::test]
async fn a_process_enqueues_while_another_stores_a_500k_snapshot() {
    let dir = workdir();
    let db = dir.path().join("spacepos.db");
    SqliteStore::open(&db).await.unwrap().close().await;
    let start = Instant::now();
    let snapshot = spawn("snapshot:100:5000", &db);
    let till = spawn("enqueue:T:2000", &db);
    finish(till, "till");
    finish(snapshot, "SpaceFuel (snapshot)");
    println!("both done in {:.1} s", start.elapsed().as_secs_f64());

    let store = SqliteStore::open(&db).await.unwrap();
    let checkpoint = store.checkpoint("products").await.unwrap();
    assert_eq!(checkpoint.entities, 500_000);
    assert_eq!(checkpoint.last_sequence, Some(1000));
    assert_eq!(checkpoint.snapshot, None);
    assert_eq!(store.stats().await.unwrap().pending, 2000);
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
}

#[tokio::test]
async fn a_process_killed_while_enqueueing_loses_nothing_it_acknowledged() {
    let dir = workdir();
    let db = dir.path().join("spacepos.db");
    SqliteStore::open(&db).await.unwrap().close().await;
    let mut child = spawn("ack:K", &db);
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(id) = line
            .strip_prefix(REPORT)
            .and_then(|l| l.strip_prefix("acked "))
        {
            acked.push(Uuid::parse_str(id).unwrap());
            if acked.len() == 400 {
                child.kill().unwrap(); // SIGKILL, in the middle of the next enqueue
                break;
            }
        }
    }
    child.wait().unwrap();

    let store = SqliteStore::open(&db).await.unwrap();
    assert_eq!(store.integrity_check().await.unwrap(), "ok");
    for id in &acked {
        let op = store.get(*id).await.unwrap();
        assert!(op.is_some(), "acknowledged operation {id} was lost");
    }
    let stored = store.list(None, 10_000).await.unwrap().len();
    assert!(
        stored >= acked.len() && stored <= acked.len() + 1,
        "{stored} stored, {} acked",
        acked.len()
    );
    println!(
        "killed after {} acknowledged enqueues; {stored} stored",
        acked.len()
    );
}
