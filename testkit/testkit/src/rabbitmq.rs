//! Tests against the RabbitMQ broker on 127.0.0.1:5672 (guest/guest).
//!
//! Every test that uses the broker holds a [`BrokerGuard`]: [`shared`] for
//! ordinary tests, [`exclusive`] for a test that restarts the broker or stops
//! it. The guard is a read/write lock on a file in the temp dir, so it works
//! across test binaries (`cargo test` runs them one after the other, but
//! `cargo test -p a -p b` in two terminals does not, and nextest runs them in
//! parallel). A missing broker fails the test with how to start it; nothing
//! is skipped silently.
//!
//! Tests must use unique names (see [`unique`]): an exchange
//! `erp_event_bus.test.<uuid>` and a client id `test-<uuid>` per test, deleted
//! at the end.

use std::fs::{File, OpenOptions};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use spacepos_core::RedactedUrl;
use tokio::net::TcpStream;
use tokio::time::{Instant, sleep, timeout};

/// The broker's address.
pub const ADDR: &str = "127.0.0.1:5672";
/// The broker's URL (default user and virtual host).
pub const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

const HOW_TO_START: &str = "RabbitMQ is not reachable on 127.0.0.1:5672. Start it with \
    `rabbitmq-server -detached` and wait for the port (about 10 s), e.g. \
    `until nc -z 127.0.0.1 5672; do sleep 1; done`; these tests never skip.";

/// [`URL`] as the adapters take it.
pub fn url() -> RedactedUrl {
    RedactedUrl::parse(URL)
        .unwrap_or_else(|e| panic!("the broker URL constant does not parse: {e}"))
}

/// A unique name for this test's exchange, queues or client id:
/// `<prefix><uuid>` (e.g. `unique("test-")`).
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// Held while a test uses the broker; see the module docs.
#[derive(Debug)]
pub struct BrokerGuard {
    _lock: File,
    exclusive: bool,
}

impl BrokerGuard {
    /// Whether this guard lets its holder restart the broker.
    pub fn is_exclusive(&self) -> bool {
        self.exclusive
    }
}

fn lock_path() -> PathBuf {
    std::env::temp_dir().join("spacepos-rabbitmq-tests.lock")
}

async fn lock(exclusive: bool) -> BrokerGuard {
    let path = lock_path();
    let file = tokio::task::spawn_blocking(move || {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("cannot open the broker lock file {}: {e}", path.display()));
        let locked = if exclusive {
            file.lock()
        } else {
            file.lock_shared()
        };
        locked.unwrap_or_else(|e| panic!("cannot lock {}: {e}", path.display()));
        file
    })
    .await
    .unwrap_or_else(|e| panic!("the lock task failed: {e}"));
    BrokerGuard {
        _lock: file,
        exclusive,
    }
}

/// Take the shared guard (waiting while a restart is in progress) and check
/// the broker is up.
pub async fn shared() -> BrokerGuard {
    let guard = lock(false).await;
    require_broker().await;
    guard
}

/// Take the exclusive guard (waiting for every other broker test to finish)
/// and check the broker is up.
pub async fn exclusive() -> BrokerGuard {
    let guard = lock(true).await;
    require_broker().await;
    guard
}

/// Fail (panic) with how to start the broker if it does not accept connections.
pub async fn require_broker() {
    if !port_open(Duration::from_secs(3)).await {
        panic!("{HOW_TO_START}");
    }
}

async fn port_open(within: Duration) -> bool {
    matches!(timeout(within, TcpStream::connect(ADDR)).await, Ok(Ok(_)))
}

/// Wait until the broker accepts TCP connections; `false` after `within`.
pub async fn wait_for_port(within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if port_open(Duration::from_secs(1)).await {
            return true;
        }
        sleep(Duration::from_millis(100)).await;
    }
    false
}

/// Run `rabbitmqctl <args>`; panics with its output when it fails.
pub async fn rabbitmqctl(args: &[&str]) -> String {
    let owned: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let output = Command::new("rabbitmqctl")
            .args(&owned)
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run `rabbitmqctl {}`: {e} (is rabbitmq-server installed?)",
                    owned.join(" ")
                )
            });
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            panic!(
                "`rabbitmqctl {}` failed ({}): {stdout}{}",
                owned.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        stdout
    })
    .await
    .unwrap_or_else(|e| panic!("the rabbitmqctl task failed: {e}"))
}

fn require_exclusive(guard: &BrokerGuard) {
    assert!(
        guard.is_exclusive(),
        "stopping or restarting the broker needs the exclusive guard (rabbitmq::exclusive())"
    );
}

/// Stop the RabbitMQ application (the node stays up; clients are disconnected
/// and the port closes). Returns how long it took.
pub async fn stop_app(guard: &BrokerGuard) -> Duration {
    require_exclusive(guard);
    let started = Instant::now();
    rabbitmqctl(&["stop_app"]).await;
    started.elapsed()
}

/// Start the RabbitMQ application again and wait for the port. Returns how
/// long it took.
pub async fn start_app(guard: &BrokerGuard) -> Duration {
    require_exclusive(guard);
    let started = Instant::now();
    rabbitmqctl(&["start_app"]).await;
    assert!(
        wait_for_port(Duration::from_secs(60)).await,
        "the broker did not listen on {ADDR} within 60 s of start_app"
    );
    started.elapsed()
}

/// Restart the broker (`rabbitmqctl stop_app` + `start_app`, waiting for the
/// port); returns how long it was unreachable.
pub async fn restart_broker(guard: &BrokerGuard) -> Duration {
    let stop = stop_app(guard).await;
    stop + start_app(guard).await
}

/// Close, from the broker's side, every connection whose client properties
/// (its connection name) contain `name` — as a network failure or an
/// operator would. Returns how many were closed.
pub async fn close_connections(name: &str) -> usize {
    // The JSON formatter prints pids in a form close_connection does not take:
    // read the table, one `<pid>\t<client properties>` line per connection.
    let listed = rabbitmqctl(&[
        "list_connections",
        "-q",
        "--no-table-headers",
        "pid",
        "client_properties",
    ])
    .await;
    let mut closed = 0;
    for line in listed.lines() {
        let Some((pid, properties)) = line.split_once('\t') else {
            continue;
        };
        if properties.contains(name) {
            rabbitmqctl(&[
                "close_connection",
                pid.trim(),
                "closed by a test (simulated connection loss)",
            ])
            .await;
            closed += 1;
        }
    }
    closed
}
