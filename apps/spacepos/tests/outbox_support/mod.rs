//! Helpers of the outbox fault acceptance tests (`tests/outbox_faults.rs`): the
//! fake ERP running in-process on a background runtime, a node onboarded against
//! it, `spacepos run` as a real process (killed on drop), queueing operations in
//! the node's `spacepos.db` as another till process would, and diagnostics
//! printed when a test fails.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // test code

use std::collections::HashSet;
use std::fs::OpenOptions;
use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::{Value, json};
use spacepos_fake_erp::{FakeErp, FakeErpConfig, RecordedRequest, Route};
use spacepos_sqlite::SqliteStore;
use spacepos_sync::{
    Destination, NewOperation, OperationState, Outbox, OutboxStats, QueuedOperation,
};
use uuid::Uuid;

use crate::support::{BIN, Node, Run};

/// The node's timers for these tests: push every second, retry a failure after
/// the shortest interval the configuration allows (1 minute, ±20%), no ingest.
pub const FAST_TIMERS: [(&str, &str); 3] = [
    ("SPACEPOS_SYNC__SEND_FREQUENCY", "1"),
    ("SPACEPOS_SYNC__DATA_SYNC_RETRY_INTERVAL_MINUTES", "1"),
    ("SPACEPOS_SYNC__INGEST_ENABLED", "false"),
];

/// A timing line, shown with `--nocapture` and in the output of a failed test.
#[macro_export]
macro_rules! step {
    ($started:expr, $($arg:tt)*) => {
        println!("[{:>7.2} s] {}", $started.elapsed().as_secs_f64(), format!($($arg)*))
    };
}

// ---- a seeded random number generator (SplitMix64) -----------------------------

/// Small, seeded, dependency-free: the same seed replays the same schedule.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// The seed from `OUTBOX_FAULTS_SEED`, or a fresh one; printed either way.
    pub fn from_env_or_time() -> (Rng, u64) {
        let seed = std::env::var("OUTBOX_FAULTS_SEED")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        (Rng(seed), seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

// ---- the fake ERP on its own runtime --------------------------------------------

/// The fake ERP, served by a background runtime so that the test thread may
/// block (on processes, on sleeps) without starving it.
pub struct Harness {
    rt: tokio::runtime::Runtime,
    pub erp: FakeErp,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness")
            .field("erp", &self.erp.base_url())
            .finish()
    }
}

impl Harness {
    pub fn start() -> Harness {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let erp = rt
            .block_on(FakeErp::start(FakeErpConfig {
                max_recorded_requests: 1_000_000,
                ..FakeErpConfig::default()
            }))
            .unwrap();
        Harness { rt, erp }
    }

    pub fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// The recorded `POST /api/pos/operations` requests, oldest first.
    pub fn operation_requests(&self) -> Vec<RecordedRequest> {
        self.erp.requests_to(Route::Operations)
    }
}

/// The operation ids a recorded `POST /api/pos/operations` carried, in order.
/// Panics when the body was not recorded as JSON (bodies over 64 KiB are not).
pub fn op_ids(request: &RecordedRequest) -> Vec<Uuid> {
    let body = request.body_json.as_ref().unwrap_or_else(|| {
        panic!(
            "request #{} ({} bytes) was not recorded as JSON",
            request.seq, request.body_size
        )
    });
    body["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// One line per recorded operations request, for diagnostics.
pub fn describe_requests(requests: &[RecordedRequest]) -> String {
    requests
        .iter()
        .map(|r| {
            let ops = r
                .body_json
                .as_ref()
                .and_then(|b| b["operations"].as_array().map(Vec::len))
                .map(|n| n.to_string())
                .unwrap_or_else(|| "?".into());
            format!(
                "  #{} {} {} ops={} bytes={} status={:?} fault={:?}",
                r.seq,
                r.at.format("%H:%M:%S%.3f"),
                r.path,
                ops,
                r.body_size,
                r.status,
                r.fault
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

// ---- operations -----------------------------------------------------------------

/// A sale as a till would queue it; `n` makes payloads distinct.
pub fn sale(n: u64) -> NewOperation {
    operation("sale.completed", n)
}

pub fn operation(kind: &str, n: u64) -> NewOperation {
    NewOperation {
        id: Uuid::new_v4(),
        destination: Destination::ErpOperations,
        kind: kind.to_owned(),
        occurred_at: Utc::now(),
        store_staff_id: Some("S-0042".into()),
        payload: json!({"receiptNumber": format!("12-1-{n:06}"), "totalMinor": 100 + n}),
    }
}

// ---- a node -----------------------------------------------------------------------

/// A node onboarded against the harness's ERP, with its store opened by the
/// test as another process of the till would. Prints its logs, the output of
/// its runs and the ERP's operations requests if the test panics.
pub struct Till {
    pub node: Node,
    pub store: SqliteStore,
    erp: FakeErp,
    handle: tokio::runtime::Handle,
    runs: u32,
}

impl std::fmt::Debug for Till {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Till")
            .field("dir", &self.node.path())
            .finish_non_exhaustive()
    }
}

impl Till {
    /// Onboard a new terminal of store 12 with `spacepos onboard` (a process).
    pub fn onboard(h: &Harness, terminal: u32) -> Till {
        let code = h.erp.issue_onboarding_code(12, terminal);
        let mut node = Node::new();
        node.env = FAST_TIMERS
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        node.run(&["onboard", "--api", h.erp.base_url(), "--code", &code])
            .ok();
        let store = h
            .block_on(SqliteStore::open(node.file("spacepos.db")))
            .unwrap();
        Till {
            node,
            store,
            erp: h.erp.clone(),
            handle: h.rt.handle().clone(),
            runs: 0,
        }
    }

    fn block_on<F: Future>(&self, f: F) -> F::Output {
        self.handle.block_on(f)
    }

    /// A `spacepos` command (not `run`), as a process, with the node's environment.
    pub fn cli(&self, args: &[&str]) -> Run {
        self.node.run(args)
    }

    /// The same, expecting JSON on stdout.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let run = self.cli(args);
        run.ok();
        serde_json::from_str(&run.stdout)
            .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}):\n{}", run.stdout))
    }

    /// Start `spacepos run --no-bus` with the fast timers; its stdout and stderr
    /// are appended to `run.out` in the data directory. Killed (SIGKILL) on drop.
    pub fn start_run(&mut self) -> Running {
        self.runs += 1;
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.node.file("run.out"))
            .unwrap();
        let err = out.try_clone().unwrap();
        let mut cmd = Command::new(BIN);
        cmd.arg("--data-dir")
            .arg(self.node.path())
            .args(["run", "--no-bus"]);
        cmd.env_clear();
        for key in ["PATH", "HOME", "TMPDIR"] {
            if let Ok(v) = std::env::var(key) {
                cmd.env(key, v);
            }
        }
        for (k, v) in &self.node.env {
            cmd.env(k, v);
        }
        cmd.env("RUST_LOG", "info,spacepos_sync=debug");
        cmd.stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err));
        Running {
            child: Some(cmd.spawn().unwrap()),
            started: Instant::now(),
        }
    }

    /// Queue operations in one transaction, through the node's store.
    pub fn enqueue(&self, ops: &[NewOperation]) -> Vec<QueuedOperation> {
        self.block_on(self.store.enqueue(ops)).unwrap()
    }

    pub fn stats(&self) -> OutboxStats {
        self.block_on(self.store.stats()).unwrap()
    }

    pub fn get(&self, id: Uuid) -> Option<QueuedOperation> {
        self.block_on(self.store.get(id)).unwrap()
    }

    /// Every outbox entry, in creation (`seq`) order.
    pub fn outbox(&self) -> Vec<QueuedOperation> {
        self.block_on(self.store.list(None, 1_000_000)).unwrap()
    }

    pub fn integrity_check(&self) -> String {
        self.block_on(self.store.integrity_check()).unwrap()
    }

    /// Wait until the outbox has nothing pending (and `done` reached `done`),
    /// panicking with the state after `timeout`.
    pub fn wait_until_drained(&self, done: u64, timeout: Duration) -> OutboxStats {
        let start = Instant::now();
        loop {
            let stats = self.stats();
            if stats.pending == 0 && stats.done >= done {
                return stats;
            }
            assert!(
                start.elapsed() < timeout,
                "the outbox did not drain within {timeout:?}: {stats:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn tail(text: &str, lines: usize) -> String {
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    fn dump(&self) {
        eprintln!(
            "==== diagnostics of the node at {}",
            self.node.path().display()
        );
        eprintln!("---- outbox: {:?}", self.block_on(self.store.stats()));
        eprintln!(
            "---- ERP: accepted {} operation(s), answered duplicate {} time(s), rejected {} time(s)",
            self.erp.accepted_count(),
            self.erp.duplicate_answers(),
            self.erp.rejected_answers()
        );
        let requests = self.erp.requests_to(Route::Operations);
        eprintln!(
            "---- the last operations requests of {}:\n{}",
            requests.len(),
            describe_requests(&requests[requests.len().saturating_sub(60)..])
        );
        let out = std::fs::read_to_string(self.node.file("run.out")).unwrap_or_default();
        eprintln!(
            "---- the end of the output of {} `spacepos run`(s) (run.out):\n{}",
            self.runs,
            Self::tail(&out, 80)
        );
        eprintln!(
            "---- the end of the node's log (logs/):\n{}",
            Self::tail(&self.node.logs(), 200)
        );
        eprintln!("==== end of diagnostics");
    }
}

impl Drop for Till {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump();
        }
    }
}

/// A `spacepos run` process; SIGKILLed on drop if still running.
#[derive(Debug)]
pub struct Running {
    child: Option<Child>,
    pub started: Instant,
}

impl Running {
    /// SIGKILL (what `Child::kill` sends on Unix) and reap it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Panics if the process has exited on its own.
    pub fn assert_alive(&mut self) {
        if let Some(child) = self.child.as_mut()
            && let Some(status) = child.try_wait().unwrap()
        {
            panic!("`spacepos run` exited on its own: {status}");
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

// ---- checks -----------------------------------------------------------------------

/// Poll `cond` every 50 ms until it holds; panic naming `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The ERP accepted exactly `expected`, each once, in this order, with the
/// content queued.
pub fn assert_accepted_exactly_once_in_order(erp: &FakeErp, expected: &[QueuedOperation]) {
    let accepted = erp.accepted_operations();
    let ids: Vec<Uuid> = accepted.iter().map(|a| a.operation.id).collect();
    let distinct: HashSet<Uuid> = ids.iter().copied().collect();
    let doubled = ids.len() - distinct.len();
    assert_eq!(
        doubled, 0,
        "{doubled} operation(s) took effect twice at the ERP"
    );
    let want: Vec<Uuid> = expected.iter().map(|o| o.id).collect();
    let want_set: HashSet<Uuid> = want.iter().copied().collect();
    let lost = want_set.difference(&distinct).count();
    let foreign = distinct.difference(&want_set).count();
    assert_eq!(
        (lost, foreign),
        (0, 0),
        "{lost} operation(s) never reached the ERP; {foreign} were accepted under ids never queued \
         (an operation resent under a new id takes effect twice)"
    );
    assert_eq!(ids.len(), want.len(), "accepted vs queued");
    if let Some(i) = ids.iter().zip(&want).position(|(a, b)| a != b) {
        panic!(
            "the ERP accepted operations out of creation order: position {i} is {} but seq {} ({}) was expected there",
            ids[i], expected[i].seq, want[i]
        );
    }
    for (a, q) in accepted.iter().zip(expected) {
        assert_eq!(
            (
                &a.operation.kind,
                &a.operation.payload,
                a.operation.occurred_at
            ),
            (&q.kind, &q.payload, q.occurred_at),
            "operation {} reached the ERP with other content than queued",
            q.id
        );
        assert_eq!(a.operation.store_staff_id, q.store_staff_id);
    }
}

/// Every entry of `ops` is done in the outbox.
pub fn assert_all_done(ops: &[QueuedOperation]) {
    let not_done: Vec<_> = ops
        .iter()
        .filter(|o| o.state != OperationState::Done)
        .map(|o| (o.seq, o.id, o.state))
        .collect();
    assert!(
        not_done.is_empty(),
        "{} outbox entries are not done, first: {:?}",
        not_done.len(),
        not_done.first()
    );
}
