//! Helpers of the event-fault acceptance tests (`tests/event_faults.rs`): a
//! fake ERP started in the test, `spacepos` nodes as real processes (killed on
//! drop), the ERP's side of the bus, and reading a node's store.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // test code

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Confirmation, Connection, ConnectionProperties};
use serde_json::Value;
use spacepos_amqp::{ErpBusClient, dead_letter_queue_name, queue_name};
use spacepos_fake_erp::{DatasetSpec, FakeErp, FakeErpConfig, RecordedRequest, Route};
use spacepos_sqlite::SqliteStore;
use spacepos_sync::{Checkpoint, LocalStore};
use spacepos_testkit::rabbitmq;
use tokio::time::{Instant, sleep};

pub const BIN: &str = env!("CARGO_BIN_EXE_spacepos");
pub const EVENT: &str = "DatasetChangedIntegrationEvent";

/// Print a timing line (shown with `--nocapture`, and kept in the output of a
/// failed test).
#[macro_export]
macro_rules! note {
    ($started:expr, $($arg:tt)*) => {
        println!("[{:>7.2} s] {}", $started.elapsed().as_secs_f64(), format!($($arg)*))
    };
}

// ---- the fake ERP --------------------------------------------------------------

/// A fake ERP with only `datasets`, handing out the local broker at onboarding
/// when `bus` is set.
pub async fn start_erp(seed: u64, datasets: Vec<DatasetSpec>, bus: bool) -> FakeErp {
    let config = FakeErpConfig {
        seed,
        datasets,
        amqp_url: bus.then(|| rabbitmq::URL.to_owned()),
        max_recorded_requests: 1_000_000,
        ..FakeErpConfig::default()
    };
    FakeErp::start(config).await.unwrap()
}

/// `(message id, body)` of the ERP's event of change `sequence`.
pub fn event_of(erp: &FakeErp, dataset: &str, sequence: u64) -> (String, Vec<u8>) {
    let e = erp.dataset_changed_event(dataset, sequence).unwrap();
    (e.id.to_string(), serde_json::to_vec(&e).unwrap())
}

/// The same as JSON, to forge variants.
pub fn event_json(erp: &FakeErp, dataset: &str, sequence: u64) -> Value {
    serde_json::to_value(erp.dataset_changed_event(dataset, sequence).unwrap()).unwrap()
}

/// Recorded requests of `route` after request number `after_seq`.
pub fn requests_since(erp: &FakeErp, route: Route, after_seq: u64) -> Vec<RecordedRequest> {
    erp.requests_to(route)
        .into_iter()
        .filter(|r| r.seq > after_seq)
        .collect()
}

/// The number of the last request recorded so far (0 if none).
pub fn last_request_seq(erp: &FakeErp) -> u64 {
    erp.requests().last().map_or(0, |r| r.seq)
}

pub fn query_has(r: &RecordedRequest, key: &str) -> bool {
    r.query
        .as_deref()
        .unwrap_or("")
        .split('&')
        .any(|kv| kv.split('=').next() == Some(key))
}

pub fn query_value(r: &RecordedRequest, key: &str) -> Option<String> {
    r.query.as_deref().unwrap_or("").split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.to_owned())
    })
}

// ---- a node --------------------------------------------------------------------

/// An entity as compared between the ERP and a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub version: u64,
    pub deleted: bool,
    pub data: Value,
}

pub fn erp_rows(erp: &FakeErp, dataset: &str) -> BTreeMap<String, Row> {
    erp.dataset_final_state(dataset)
        .unwrap()
        .into_iter()
        .map(|(id, s)| {
            (
                id,
                Row {
                    version: s.version,
                    deleted: s.deleted,
                    data: s.data,
                },
            )
        })
        .collect()
}

/// A data directory and the `spacepos` processes run on it; the running
/// process is killed when this is dropped.
pub struct TestNode {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
    pub client_id: String,
    child: Option<Child>,
    starts: usize,
    store: Option<SqliteStore>,
}

impl TestNode {
    /// A node whose `run` uses `exchange` and the given sync timers.
    pub fn new(exchange: &str) -> TestNode {
        let env = vec![
            ("SPACEPOS_NODE__EXCHANGE".to_owned(), exchange.to_owned()),
            ("SPACEPOS_SYNC__SEND_ENABLED".to_owned(), "false".to_owned()),
            // The catch-up timer must not be what saves a test.
            (
                "SPACEPOS_SYNC__INGEST_FREQUENCY".to_owned(),
                "600".to_owned(),
            ),
            ("RUST_LOG".to_owned(), "info,lapin=warn".to_owned()),
        ];
        TestNode {
            dir: tempfile::tempdir().unwrap(),
            env,
            client_id: String::new(),
            child: None,
            starts: 0,
            store: None,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.arg("--data-dir").arg(self.path()).args(args);
        cmd.env_clear();
        for key in ["PATH", "HOME", "TMPDIR"] {
            if let Ok(v) = std::env::var(key) {
                cmd.env(key, v);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null());
        cmd
    }

    /// Run a command to its end; `(exit code, stdout, stderr)`.
    pub async fn run_to_end(&self, args: &[&str]) -> (i32, String, String) {
        let mut cmd = self.command(args);
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
            .await
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// `spacepos onboard` with a fresh code of `erp`.
    pub async fn onboard(&mut self, erp: &FakeErp, terminal: u32) {
        let code = erp.issue_onboarding_code(12, terminal);
        let (code_, out, err) = self
            .run_to_end(&["onboard", "--api", erp.base_url(), "--code", &code])
            .await;
        assert_eq!(code_, 0, "onboard failed\n{out}\n{err}");
        let text = std::fs::read_to_string(self.path().join("terminal.json")).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        self.client_id = v["client_id"].as_str().unwrap().to_owned();
    }

    fn output_file(&self, name: &str) -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.path().join(name))
            .unwrap()
    }

    /// Start a long-running command (`run`, `seed`) in the background, its
    /// output appended to `<data-dir>/process.out` / `process.err`.
    pub fn spawn(&mut self, args: &[&str]) {
        assert!(self.child.is_none(), "a process of this node is running");
        let mut cmd = self.command(args);
        cmd.stdout(self.output_file("process.out"))
            .stderr(self.output_file("process.err"));
        self.child = Some(cmd.spawn().unwrap());
        self.starts += 1;
    }

    /// `spacepos run`.
    pub fn start(&mut self) {
        self.spawn(&["run"]);
    }

    /// How many processes were started.
    pub fn starts(&self) -> usize {
        self.starts
    }

    /// Whether the process started last is still running.
    pub fn is_running(&mut self) -> bool {
        match &mut self.child {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// The exit code of the process started last, if it ended.
    pub fn exit_code(&mut self) -> Option<i32> {
        let c = self.child.as_mut()?;
        c.try_wait().unwrap().map(|s| s.code().unwrap_or(-1))
    }

    /// `kill -9` the running process and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait up to `within`; returns the exit code (kills it if
    /// it did not stop in time and panics).
    pub async fn terminate(&mut self, within: Duration) -> i32 {
        let Some(mut c) = self.child.take() else {
            return 0;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!("the node did not stop within {within:?} of SIGTERM");
            }
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait for the background process to end by itself; its exit code.
    pub async fn wait_exit(&mut self, within: Duration) -> i32 {
        let deadline = Instant::now() + within;
        loop {
            if let Some(code) = self.exit_code() {
                self.child = None;
                return code;
            }
            assert!(
                Instant::now() < deadline,
                "the process did not end within {within:?}"
            );
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// The node's local store, opened by this test process (WAL: reads never
    /// block the node).
    pub async fn store(&mut self) -> SqliteStore {
        if self.store.is_none() {
            self.store = Some(
                SqliteStore::open(self.path().join("spacepos.db"))
                    .await
                    .unwrap(),
            );
        }
        self.store.clone().unwrap()
    }

    pub async fn checkpoint(&mut self, dataset: &str) -> Checkpoint {
        self.store().await.checkpoint(dataset).await.unwrap()
    }

    /// The dataset as the node holds it, tombstones included.
    pub async fn rows(&mut self, dataset: &str) -> BTreeMap<String, Row> {
        let store = self.store().await;
        let mut all = BTreeMap::new();
        let mut after = None;
        loop {
            let page = store.entities(dataset, after.clone(), 5000).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.id.clone());
            for e in page {
                all.insert(
                    e.id,
                    Row {
                        version: e.version,
                        deleted: e.deleted,
                        data: e.data,
                    },
                );
            }
        }
        all
    }

    /// Wait until the node's sequence of `dataset` is `sequence`; panics with
    /// where it stands after `within`.
    pub async fn wait_sequence(&mut self, dataset: &str, sequence: u64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let c = self.checkpoint(dataset).await;
            if c.last_sequence == Some(sequence) && c.snapshot.is_none() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "the node did not reach sequence {sequence} of {dataset} within {within:?}: {c:?}\n\
                     (process running: {}); its stderr:\n{}",
                    self.is_running(),
                    tail(&self.process_err(), 40)
                );
            }
            sleep(Duration::from_millis(50)).await;
        }
    }

    /// Wait until the node's sequence of `dataset` is at least `sequence`.
    pub async fn wait_sequence_at_least(&mut self, dataset: &str, sequence: u64, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let c = self.checkpoint(dataset).await;
            if c.last_sequence.is_some_and(|s| s >= sequence) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "the node did not reach sequence {sequence} of {dataset} within {within:?}: {c:?}\n\
                     (process running: {}); its stderr:\n{}",
                    self.is_running(),
                    tail(&self.process_err(), 40)
                );
            }
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// Everything under `logs/`.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        if let Ok(entries) = std::fs::read_dir(self.path().join("logs")) {
            let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
            files.sort();
            for f in files {
                all.push_str(&std::fs::read_to_string(f).unwrap_or_default());
            }
        }
        all
    }

    pub fn process_err(&self) -> String {
        std::fs::read_to_string(self.path().join("process.err")).unwrap_or_default()
    }

    /// Event ids in the node's inbox, with the sequence recorded for each.
    pub async fn inbox(&mut self) -> Vec<(String, String, i64)> {
        use spacepos_sqlite::sqlx::{self, ConnectOptions, Connection};
        // A plain read-only connection: the store's pools are private.
        let mut conn = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(self.path().join("spacepos.db"))
            .read_only(true)
            .connect()
            .await
            .unwrap();
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as("SELECT event_id, dataset, sequence FROM inbox ORDER BY sequence")
                .fetch_all(&mut conn)
                .await
                .unwrap();
        let _ = conn.close().await;
        rows
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Where the node's dataset differs from the ERP's: `""` when equal, else a
/// summary with the first differences.
pub fn differences(node: &BTreeMap<String, Row>, erp: &BTreeMap<String, Row>) -> String {
    let mut out = Vec::new();
    let mut count = 0;
    for (id, want) in erp {
        let got = node.get(id);
        if got != Some(want) {
            count += 1;
            if out.len() < 5 {
                out.push(format!("  {id}: node {got:?}\n        erp  {want:?}"));
            }
        }
    }
    for (id, got) in node {
        if !erp.contains_key(id) {
            count += 1;
            if out.len() < 10 {
                out.push(format!("  {id}: only at the node: {got:?}"));
            }
        }
    }
    if count == 0 {
        String::new()
    } else {
        format!(
            "{count} entities differ (node {} rows, ERP {} rows), e.g.:\n{}",
            node.len(),
            erp.len(),
            out.join("\n")
        )
    }
}

// ---- the bus, as the ERP -------------------------------------------------------

/// The ERP's side of the bus on the test's exchange: reconnects and publishes
/// again after a broker restart (as an ERP's own outbox would: duplicates are
/// possible, losses are not).
pub struct ErpBus {
    pub exchange: String,
    client: Option<ErpBusClient>,
    /// How many publishes had to be repeated after a lost connection.
    pub republished: usize,
}

impl ErpBus {
    pub async fn connect(exchange: &str) -> ErpBus {
        let mut bus = ErpBus {
            exchange: exchange.to_owned(),
            client: None,
            republished: 0,
        };
        bus.client().await;
        bus
    }

    async fn client(&mut self) -> &ErpBusClient {
        if self.client.is_none() {
            let deadline = Instant::now() + Duration::from_secs(90);
            loop {
                match ErpBusClient::connect(&rabbitmq::url(), &self.exchange).await {
                    Ok(c) => {
                        self.client = Some(c);
                        break;
                    }
                    Err(e) if Instant::now() < deadline => {
                        let _ = e;
                        sleep(Duration::from_millis(250)).await;
                    }
                    Err(e) => panic!("cannot connect to the broker as the ERP: {e}"),
                }
            }
        }
        self.client.as_ref().unwrap()
    }

    /// Publish `events` (message id, body) as `DatasetChangedIntegrationEvent`s,
    /// all confirmed; after a failure, reconnect and publish them all again.
    pub async fn publish(&mut self, events: &[(String, Vec<u8>)]) {
        let batch: Vec<(&str, &str, &[u8])> = events
            .iter()
            .map(|(id, body)| (EVENT, id.as_str(), body.as_slice()))
            .collect();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let result = self.client().await.publish_all(&batch).await;
            match result {
                Ok(()) => return,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "could not publish as the ERP: {e}"
                    );
                    self.republished += 1;
                    if let Some(c) = self.client.take() {
                        c.close().await;
                    }
                    sleep(Duration::from_millis(250)).await;
                }
            }
        }
    }

    /// Ready messages in a queue (`None` if it does not exist).
    pub async fn count(&mut self, queue: &str) -> Option<u32> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let result = self.client().await.message_count(queue).await;
            match result {
                Ok(n) => return n,
                Err(e) => {
                    assert!(Instant::now() < deadline, "cannot inspect {queue}: {e}");
                    if let Some(c) = self.client.take() {
                        c.close().await;
                    }
                    sleep(Duration::from_millis(250)).await;
                }
            }
        }
    }

    /// Wait until the terminal's queue exists (its node declared its topology).
    pub async fn wait_terminal_queue(&mut self, client_id: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while self.count(&queue_name(client_id)).await.is_none() {
            assert!(
                Instant::now() < deadline,
                "the node did not declare its queue within {within:?}"
            );
            sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until the terminal's queue holds no ready message.
    pub async fn wait_drained(&mut self, client_id: &str, within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let n = self.count(&queue_name(client_id)).await;
            if n == Some(0) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the terminal's queue still holds {n:?} messages after {within:?}"
            );
            sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn dead_letters(&mut self, client_id: &str) -> u32 {
        self.count(&dead_letter_queue_name(client_id))
            .await
            .unwrap_or(0)
    }

    /// Take every message of the terminal's dead-letter queue.
    pub async fn drain_dead_letters(
        &mut self,
        client_id: &str,
    ) -> Vec<spacepos_amqp::QueuedMessage> {
        let queue = dead_letter_queue_name(client_id);
        let mut all = Vec::new();
        while let Some(m) = self.client().await.get(&queue).await.unwrap() {
            all.push(m);
        }
        all
    }

    pub fn close_now(&mut self) -> Option<ErpBusClient> {
        self.client.take()
    }
}

/// A raw publisher on the test's exchange, for what `ErpBusClient` cannot
/// send: a routing key with another `type` property, no message id, ...
pub struct RawPublisher {
    connection: Connection,
    channel: lapin::Channel,
    exchange: String,
}

/// One raw message.
#[derive(Debug, Clone)]
pub struct RawMessage {
    pub routing_key: String,
    pub event_type: Option<String>,
    pub message_id: Option<String>,
    pub body: Vec<u8>,
}

impl RawPublisher {
    pub async fn connect(exchange: &str) -> RawPublisher {
        let connection = Connection::connect(
            rabbitmq::URL,
            ConnectionProperties::default().with_connection_name("event_faults raw".into()),
        )
        .await
        .unwrap();
        let channel = connection.create_channel().await.unwrap();
        channel
            .confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        RawPublisher {
            connection,
            channel,
            exchange: exchange.to_owned(),
        }
    }

    /// Publish in order, pipelined, then wait for every confirm.
    pub async fn publish(&self, messages: &[RawMessage]) {
        let mut confirms = Vec::with_capacity(messages.len());
        for m in messages {
            let mut props = BasicProperties::default()
                .with_content_type("application/json".into())
                .with_delivery_mode(2);
            if let Some(t) = &m.event_type {
                props = props.with_type(t.as_str().into());
            }
            if let Some(id) = &m.message_id {
                props = props.with_message_id(id.as_str().into());
            }
            let confirm = self
                .channel
                .basic_publish(
                    self.exchange.as_str().into(),
                    m.routing_key.as_str().into(),
                    BasicPublishOptions::default(),
                    &m.body,
                    props,
                )
                .await
                .unwrap();
            confirms.push(confirm);
        }
        for c in confirms {
            assert!(
                matches!(c.await.unwrap(), Confirmation::Ack(_)),
                "the broker did not confirm"
            );
        }
    }

    pub async fn close(self) {
        let _ = self.connection.close(200, "done".into()).await;
    }
}

/// Deletes the terminal's queues and the test's exchange when dropped (also
/// when the test fails); drop it after the node is killed.
pub struct BusCleanup {
    pub exchange: String,
    pub client_id: Option<String>,
}

impl Drop for BusCleanup {
    fn drop(&mut self) {
        let exchange = self.exchange.clone();
        let client_id = self.client_id.clone();
        // A runtime of its own: this may run while a test's runtime unwinds.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let url = rabbitmq::url();
                let connect = ErpBusClient::connect(&url, &exchange);
                let Ok(Ok(client)) = tokio::time::timeout(Duration::from_secs(20), connect).await
                else {
                    eprintln!("cleanup: cannot reach the broker; {exchange} is left behind");
                    return;
                };
                if let Some(id) = &client_id {
                    let _ = client.delete_terminal_queues(id).await;
                }
                let _ = client.delete_exchange().await;
                client.close().await;
            });
        });
        let _ = cleanup.join();
    }
}

/// A small deterministic generator for test choices (positions, delays).
#[derive(Debug, Clone)]
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}
