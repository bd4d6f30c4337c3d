//! Helpers of the presence and update-tracking acceptance tests
//! (`tests/presence_updates_e2e.rs`): a capture queue that records what
//! terminals publish on the test's exchange (with arrival times, following
//! broker restarts), the broker's own view of queues and bindings, a guard
//! that restarts a stopped broker even when a test fails, the contract's
//! examples, and an in-process node (`spacepos_runtime::Runtime` with the real
//! adapters and the updates service in `Full` mode).
//!
//! The nodes run as `spacepos run` processes come from `event_support`.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // test code

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use lapin::options::QueueDeleteOptions;
use lapin::{Connection, ConnectionProperties};
use serde_json::Value;
use spacepos_amqp::{
    AmqpConfig, AmqpPublisher, AmqpSubscriber, ErpBusClient, QueuedMessage, WireDecoder,
    WireTrackingEncoder,
};
use spacepos_config::{ComponentUpdateState, StateStore};
use spacepos_core::{
    ClientInfo, ComponentId, DeviceCredentials, Product, SystemClock, TerminalIdentity,
};
use spacepos_erp_http::{ErpHttpClient, ErpHttpConfig};
use spacepos_fake_erp::FakeErp;
use spacepos_fs::{FileArtifactStore, FileStateStore};
use spacepos_runtime::{BusPorts, Runtime, RuntimeError, RuntimeSettings, SyncPorts, UpdatesMode};
use spacepos_sqlite::SqliteStore;
use spacepos_sync::{Destination, Outbox, QueuedOperation};
use spacepos_testkit::fakes::{MemoryInstaller, MemoryManifestServer, MemorySafePoint};
use spacepos_testkit::rabbitmq::{self, BrokerGuard};
use spacepos_updates::{UpdatePorts, UpdateSettings, Updates};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, timeout};
use tokio_util::sync::CancellationToken;

use crate::event_support::BIN;

// ---- the contract --------------------------------------------------------------

/// The contract's example of an event (`docs/contract/examples/<name>.json`,
/// the repository's copy of the ERP team's contract).
pub fn example(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/contract/examples")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read the contract example {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// Assert `actual` (an object) has exactly the keys of `example`, recursively
/// for nested objects and for every item of arrays of objects (compared with
/// the example's first item). `path` names where, in failure messages.
pub fn assert_same_keys(actual: &Value, example: &Value, path: &str) {
    assert!(actual.is_object(), "{path} is not an object: {actual}");
    let (got, want) = (keys(actual), keys(example));
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{path}: keys missing {missing:?}, keys not in the contract's example {extra:?}: {actual}"
    );
    for key in want {
        let (a, e) = (&actual[&key], &example[&key]);
        match e {
            Value::Object(_) => assert_same_keys(a, e, &format!("{path}.{key}")),
            Value::Array(items) if items.first().is_some_and(Value::is_object) => {
                let list = a
                    .as_array()
                    .unwrap_or_else(|| panic!("{path}.{key} is not an array: {a}"));
                assert!(!list.is_empty(), "{path}.{key} is empty");
                for (i, item) in list.iter().enumerate() {
                    assert_same_keys(item, &items[0], &format!("{path}.{key}[{i}]"));
                }
            }
            _ => {}
        }
    }
}

/// An RFC 3339 date of an event body.
pub fn date(v: &Value, path: &str) -> DateTime<Utc> {
    let text = v
        .as_str()
        .unwrap_or_else(|| panic!("{path} is not a string: {v}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{path} = {text:?} is not RFC 3339: {e}"))
        .with_timezone(&Utc)
}

// ---- a capture queue -----------------------------------------------------------

/// One message taken from a capture queue.
#[derive(Debug, Clone)]
pub struct Captured {
    /// When the test took it from the queue (polled every 20 ms).
    pub at: Instant,
    pub wall: DateTime<Utc>,
    pub message: QueuedMessage,
    /// The body as JSON (`Null` if it is not JSON).
    pub json: Value,
}

/// A durable queue of the test's own, bound to the exchange for some event
/// types, read continuously in the background. It survives a broker restart
/// (durable queue and binding; the reader reconnects), and is deleted when
/// dropped.
#[derive(Debug)]
pub struct Capture {
    pub queue: String,
    seen: Arc<Mutex<Vec<Captured>>>,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

async fn capture_client(
    exchange: &str,
    queue: &str,
    event_types: &[String],
) -> Result<ErpBusClient, spacepos_sync::BusError> {
    let client = ErpBusClient::connect(&rabbitmq::url(), exchange).await?;
    let types: Vec<&str> = event_types.iter().map(String::as_str).collect();
    client.bind_capture_queue(queue, &types).await?;
    Ok(client)
}

impl Capture {
    /// Declare and bind the queue (done when this returns), then read it.
    pub async fn start(exchange: &str, event_types: &[&str]) -> Capture {
        let queue = rabbitmq::unique("spacepos-test-capture.");
        let types: Vec<String> = event_types.iter().map(|t| (*t).to_owned()).collect();
        let client = capture_client(exchange, &queue, &types)
            .await
            .unwrap_or_else(|e| panic!("cannot bind the capture queue: {e}"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let task = tokio::spawn(read_capture(
            Some(client),
            exchange.to_owned(),
            queue.clone(),
            types,
            seen.clone(),
            stop.clone(),
        ));
        Capture {
            queue,
            seen,
            stop,
            task: Some(task),
        }
    }

    /// Everything taken so far, in arrival order.
    pub fn all(&self) -> Vec<Captured> {
        self.seen.lock().unwrap().clone()
    }

    /// Wait until at least `n` messages were taken; all of them, or a panic
    /// naming `what` after `within`.
    pub async fn wait_for(&self, n: usize, within: Duration, what: &str) -> Vec<Captured> {
        let deadline = Instant::now() + within;
        loop {
            let all = self.all();
            if all.len() >= n {
                return all;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: {} message(s) captured within {within:?}, {n} expected: {:?}",
                all.len(),
                all.iter()
                    .map(|c| &c.message.event_type)
                    .collect::<Vec<_>>()
            );
            sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn read_capture(
    mut client: Option<ErpBusClient>,
    exchange: String,
    queue: String,
    types: Vec<String>,
    seen: Arc<Mutex<Vec<Captured>>>,
    stop: CancellationToken,
) {
    while !stop.is_cancelled() {
        let Some(c) = &client else {
            // The broker went away: connect again and re-declare (idempotent).
            if let Ok(Ok(c)) = timeout(
                Duration::from_secs(5),
                capture_client(&exchange, &queue, &types),
            )
            .await
            {
                client = Some(c);
            } else {
                sleep(Duration::from_millis(200)).await;
            }
            continue;
        };
        match c.get(&queue).await {
            Ok(Some(message)) => {
                let json = serde_json::from_slice(&message.body).unwrap_or(Value::Null);
                seen.lock().unwrap().push(Captured {
                    at: Instant::now(),
                    wall: Utc::now(),
                    message,
                    json,
                });
            }
            Ok(None) => {
                tokio::select! {
                    _ = stop.cancelled() => {}
                    _ = sleep(Duration::from_millis(20)) => {}
                }
            }
            Err(_) => {
                client = None;
                sleep(Duration::from_millis(200)).await;
            }
        }
    }
    if let Some(c) = client {
        c.close().await;
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            task.abort();
        }
        let queue = self.queue.clone();
        // A runtime of its own: this may run while the test's runtime unwinds.
        // Raw lapin, so that the test's exchange is not declared again.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let delete = async {
                    let conn = Connection::connect(
                        rabbitmq::URL,
                        ConnectionProperties::default()
                            .with_connection_name("presence_updates_e2e cleanup".into()),
                    )
                    .await?;
                    let channel = conn.create_channel().await?;
                    channel
                        .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                        .await?;
                    conn.close(200, "done".into()).await
                };
                if !matches!(timeout(Duration::from_secs(20), delete).await, Ok(Ok(()))) {
                    eprintln!("cleanup: could not delete the capture queue {queue}");
                }
            });
        })
        .join();
    }
}

// ---- the broker's view -----------------------------------------------------------

/// Whether the broker has `queue` bound to `exchange` with `routing_key`.
pub async fn is_bound(exchange: &str, queue: &str, routing_key: &str) -> bool {
    let listed = rabbitmq::rabbitmqctl(&[
        "list_bindings",
        "-q",
        "--no-table-headers",
        "source_name",
        "destination_name",
        "routing_key",
    ])
    .await;
    listed
        .lines()
        .any(|l| l.split('\t').collect::<Vec<_>>() == [exchange, queue, routing_key])
}

/// Wait until the broker has the binding (a node declares its queue, then binds it).
pub async fn wait_bound(exchange: &str, queue: &str, routing_key: &str, within: Duration) {
    let deadline = Instant::now() + within;
    while !is_bound(exchange, queue, routing_key).await {
        assert!(
            Instant::now() < deadline,
            "{queue} was not bound to {exchange} for {routing_key} within {within:?}"
        );
        sleep(Duration::from_millis(200)).await;
    }
}

/// `(ready, unacknowledged)` messages of `queue` as the broker counts them;
/// `None` if it does not exist.
pub async fn queue_depth(queue: &str) -> Option<(u64, u64)> {
    let listed = rabbitmq::rabbitmqctl(&[
        "list_queues",
        "-q",
        "--no-table-headers",
        "name",
        "messages_ready",
        "messages_unacknowledged",
    ])
    .await;
    listed.lines().find_map(|l| {
        let f: Vec<&str> = l.split('\t').map(str::trim).collect();
        match f[..] {
            [name, ready, unacked] if name == queue => {
                Some((ready.parse().ok()?, unacked.parse().ok()?))
            }
            _ => None,
        }
    })
}

/// Wait until `queue` holds no message, ready or delivered-but-unacknowledged:
/// its consumer has handled everything it was given.
pub async fn wait_settled(queue: &str, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        let depth = queue_depth(queue).await;
        if depth == Some((0, 0)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{queue} still holds (ready, unacked) = {depth:?} after {within:?}"
        );
        sleep(Duration::from_millis(200)).await;
    }
}

/// The broker stopped (`rabbitmqctl stop_app`) under the exclusive guard.
/// [`BrokerStopped::start`] starts it again; if the test fails first, the
/// drop starts it, so that no other test finds the broker down.
#[derive(Debug)]
pub struct BrokerStopped<'a> {
    guard: &'a BrokerGuard,
    running: bool,
}

impl<'a> BrokerStopped<'a> {
    pub async fn stop(guard: &'a BrokerGuard) -> BrokerStopped<'a> {
        rabbitmq::stop_app(guard).await;
        BrokerStopped {
            guard,
            running: false,
        }
    }

    /// `rabbitmqctl start_app` and wait for the port; how long it took.
    pub async fn start(mut self) -> Duration {
        self.running = true;
        rabbitmq::start_app(self.guard).await
    }
}

impl Drop for BrokerStopped<'_> {
    fn drop(&mut self) {
        if self.running {
            return;
        }
        eprintln!("the test ended with the broker stopped: rabbitmqctl start_app");
        let _ = Command::new("rabbitmqctl").arg("start_app").status();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(rabbitmq::ADDR).is_err()
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

// ---- `spacepos` commands with input -----------------------------------------------

/// Run `spacepos --data-dir <dir> <args>` with `stdin` as its input and the
/// node's environment; `(exit code, stdout, stderr)`.
pub async fn run_with_stdin(
    dir: &Path,
    env: &[(String, String)],
    args: &[&str],
    stdin: &str,
) -> (i32, String, String) {
    use std::io::Write as _;
    let mut cmd = Command::new(BIN);
    cmd.arg("--data-dir").arg(dir).args(args).env_clear();
    for key in ["PATH", "HOME", "TMPDIR"] {
        if let Ok(v) = std::env::var(key) {
            cmd.env(key, v);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let input = stdin.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A file of the data directory, as JSON.
pub fn read_json(dir: &Path, name: &str) -> Value {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

// ---- an in-process node with component updates ------------------------------------

/// The SpacePOS version "installed" on the in-process node at first.
pub const INSTALLED: &str = "0.1.0";

/// A terminal registered at the fake ERP, its data directory and its exchange:
/// what every runtime built for it shares (a restart is a new runtime on the
/// same files).
#[derive(Debug)]
pub struct UpdateNode {
    pub dir: tempfile::TempDir,
    pub credentials: DeviceCredentials,
    pub identity: TerminalIdentity,
    pub exchange: String,
    pub api: url::Url,
    pub trusted_key: String,
}

/// A runtime started by [`UpdateNode::start`].
pub struct RunningNode {
    shutdown: CancellationToken,
    task: Option<JoinHandle<Result<(), RuntimeError>>>,
    subscriber: Arc<AmqpSubscriber>,
    publisher: Arc<AmqpPublisher>,
    pub installer: MemoryInstaller,
    pub store: SqliteStore,
}

impl std::fmt::Debug for RunningNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningNode").finish_non_exhaustive()
    }
}

impl UpdateNode {
    /// Register terminal `terminal` of store 12 at `erp`, trusting the ERP's
    /// primary update key.
    pub fn new(erp: &FakeErp, terminal: u32, exchange: &str) -> UpdateNode {
        let credentials = erp.register_terminal(12, terminal);
        UpdateNode {
            dir: tempfile::tempdir().unwrap(),
            identity: TerminalIdentity {
                client_id: credentials.client_id.clone(),
                store_number: 12,
                terminal_number: terminal,
            },
            credentials,
            exchange: exchange.to_owned(),
            api: url::Url::parse(erp.base_url()).unwrap(),
            trusted_key: erp.update_keys().primary.key_line,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn db_path(&self) -> PathBuf {
        self.path().join("spacepos.db")
    }

    /// The update records of SpacePOS in `state.json`.
    pub async fn spacepos_updates(&self) -> ComponentUpdateState {
        FileStateStore::new(self.path())
            .load()
            .await
            .unwrap()
            .state
            .updates
            .component(ComponentId::SpacePos)
            .clone()
    }

    /// Build and start a runtime as a till app would (the real SQLite store,
    /// ERP client, RabbitMQ subscriber and publisher, file state and staging
    /// area; the updates service in `Full` mode with `installer` and a safe
    /// point that is always safe), with SpacePOS `installed` running.
    pub async fn start(&self, installed: &str, installer: MemoryInstaller) -> RunningNode {
        let info = ClientInfo {
            product: Product::SpacePos,
            version: installed.to_owned(),
            os_name: "Linux".into(),
            os_version: "test".into(),
            arch: "x86_64".into(),
            hostname: "presence-updates-e2e".into(),
        };
        let http = ErpHttpConfig::new(self.api.clone(), info)
            .with_device(self.credentials.clone(), self.identity.clone());
        let client = Arc::new(ErpHttpClient::new(http).unwrap());
        let store = SqliteStore::open(self.db_path()).await.unwrap();

        let mut amqp = AmqpConfig::new(rabbitmq::url(), self.identity.client_id.clone());
        amqp.exchange = self.exchange.clone();
        // Short timers so the test does not wait out the production backoff
        // (30 s) after the broker comes back.
        amqp.reconnect_max = Duration::from_secs(2);
        amqp.publish_timeout = Duration::from_secs(2);
        let subscriber = Arc::new(AmqpSubscriber::start(amqp.clone()).unwrap());
        let publisher = Arc::new(AmqpPublisher::start(amqp).unwrap());

        let mut versions = BTreeMap::new();
        versions.insert(ComponentId::SpacePos, installed.to_owned());
        let mut settings = UpdateSettings::new(
            self.identity.clone(),
            vec![self.trusted_key.clone()],
            versions,
        );
        settings.safe_point_poll = Duration::from_millis(200);
        let ports = UpdatePorts {
            releases: client.clone(),
            artifacts: Arc::new(FileArtifactStore::new(self.path())),
            safe_point: Arc::new(MemorySafePoint::new()),
            installer: Arc::new(installer.clone()),
            encoder: Arc::new(WireTrackingEncoder),
            manifest: Arc::new(MemoryManifestServer::new()),
            state: Arc::new(FileStateStore::new(self.path())),
            outbox: Arc::new(store.clone()),
            clock: Arc::new(SystemClock),
        };
        let updates = Updates::new(ports, settings).unwrap();

        let store_arc = Arc::new(store.clone());
        let sync = SyncPorts {
            datasets: client.clone(),
            operations: client,
            store: store_arc.clone(),
            outbox: store_arc.clone(),
            config_state: store_arc,
            onboarding: None,
            clock: Arc::new(SystemClock),
            bus: Some(BusPorts {
                subscriber: subscriber.clone(),
                publisher: publisher.clone(),
                decoder: Arc::new(WireDecoder),
            }),
            presence: None,
            updates: Some(UpdatesMode::Full(updates)),
        };
        let settings = RuntimeSettings {
            ingest_enabled: true,
            send_enabled: false,
            ingest_every: Duration::from_secs(600),
            send_every: Duration::from_secs(1),
            retry: Duration::from_secs(2),
        };
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(Runtime::new(sync, settings).run(shutdown.clone()));
        RunningNode {
            shutdown,
            task: Some(task),
            subscriber,
            publisher,
            installer,
            store,
        }
    }
}

impl RunningNode {
    /// Stop every loop (as Ctrl-C does), close the bus connections, and drop
    /// the runtime; panics if it does not stop within 30 s or failed.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        let task = self.task.take().unwrap();
        let result = timeout(Duration::from_secs(30), task)
            .await
            .expect("the runtime stops within 30 s of shutdown")
            .unwrap();
        result.unwrap();
        let _ = timeout(Duration::from_secs(10), self.subscriber.close()).await;
        let _ = timeout(Duration::from_secs(10), self.publisher.close()).await;
    }

    /// The node's event-bus entries of the outbox, in creation order.
    pub async fn bus_entries(&self) -> Vec<QueuedOperation> {
        self.store
            .list(None, 1000)
            .await
            .unwrap()
            .into_iter()
            .filter(|o| o.destination == Destination::EventBus)
            .collect()
    }

    /// Whether the runtime ended by itself (a loop failed).
    pub fn has_ended(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Drop for RunningNode {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}
