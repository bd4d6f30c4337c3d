//! Helpers of the SpaceFuel acceptance tests (issue 5): a fake ERP started in
//! the test that publishes signed SpaceFuel releases, release artifacts built
//! here (zips holding `slot.json` and a copy of the built `spacefuel-service`,
//! or a broken program), and a *site*: a data directory with an onboarded
//! terminal record, `spacepos.toml` and SpaceFuel 2.1.0 installed in slot
//! blue, on which `spacefuel-service run` is started as a real process
//! (killed, with its workers, when the site is dropped).
//!
//! What the tests read is what the processes wrote: `state.json` (through
//! `FileStateStore`), `extensions/spacefuel/{health.json,service.pid,
//! <slot>.complete, forecourt-sim.json}`, the shared `spacepos.db` (through
//! `SqliteStore`), the processes in `/proc`, and the logs.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used, clippy::print_stdout)] // test code

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use spacepos_config::{Slot, SlotRecord, State, StateStore, SwitchRecord, TERMINAL_RECORD_VERSION};
use spacepos_config::{TerminalConfigStore, TerminalRecord};
use spacepos_core::{ComponentId, Secret};
use spacepos_fake_erp::{FakeErp, FakeErpConfig, ReleaseSpec};
use spacepos_fs::{FileStateStore, FileTerminalStore, FsSlots};
use spacepos_spacefuel::{HealthReport, SlotFs};
use spacepos_sqlite::SqliteStore;
use spacepos_sync::{Outbox, QueuedOperation};
use tokio::time::{Instant, sleep};
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

/// The program under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_spacefuel-service");
/// The version blue runs at the start of every test.
pub const OLD: &str = "2.1.0";
/// The version the ERP publishes.
pub const NEW: &str = "2.2.0";
/// The entry program of an artifact, relative to its slot.
pub const ENTRY: &str = "spacefuel-service";

pub const READY: &str = "POSComponentReadyEvent";
pub const APPLIED: &str = "POSComponentAppliedEvent";
pub const FUEL_SALE: &str = "fuel.sale.completed";
pub const PRESENCE: &str = "POSPresenceEvent";

/// Print a timing line (shown with `--nocapture`, and kept in the output of a
/// failed test).
#[macro_export]
macro_rules! note {
    ($started:expr, $($arg:tt)*) => {
        println!("[{:>7.2} s] {}", $started.elapsed().as_secs_f64(), format!($($arg)*))
    };
}

// ---- artifacts -------------------------------------------------------------------

/// What the entry program of an artifact is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Build {
    /// A copy of the built `spacefuel-service`: it runs, reports healthy.
    Good,
    /// A shell script that exits with status 3 at once.
    Exits,
    /// A shell script that runs but never writes `health.json`.
    Silent,
}

fn zip_of(entries: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut zip = ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes, mode) in entries {
        // Stored: a 50 MB debug binary deflated would cost seconds per test.
        let options = SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored)
            .unix_permissions(*mode);
        zip.start_file(*name, options).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap().into_inner()
}

/// The zip of SpaceFuel `version` built as `build` (built once per test
/// binary and version).
pub fn artifact(version: &str, build: Build) -> Vec<u8> {
    type Cache = Mutex<HashMap<(String, Build), Vec<u8>>>;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(HashMap::new()));
    let key = (version.to_owned(), build);
    if let Some(bytes) = cache.lock().unwrap().get(&key) {
        return bytes.clone();
    }
    let manifest = format!(r#"{{"version":"{version}","entry":"{ENTRY}"}}"#);
    let program: Vec<u8> = match build {
        Build::Good => std::fs::read(BIN).unwrap(),
        Build::Exits => b"#!/bin/sh\necho 'broken SpaceFuel build: exiting' >&2\nexit 3\n".to_vec(),
        Build::Silent => {
            b"#!/bin/sh\necho 'broken SpaceFuel build: never healthy' >&2\nsleep 600\n".to_vec()
        }
    };
    let bytes = zip_of(&[
        ("slot.json", manifest.as_bytes(), 0o644),
        (ENTRY, &program, 0o755),
    ]);
    cache.lock().unwrap().insert(key, bytes.clone());
    bytes
}

// ---- the fake ERP ------------------------------------------------------------------

/// A fake ERP without datasets (the SpaceFuel tests do not seed); with the
/// local broker handed out and a 30 s presence interval when `bus` is set.
pub async fn start_erp(bus: bool) -> FakeErp {
    let config = FakeErpConfig {
        seed: 5,
        datasets: Vec::new(),
        amqp_url: bus.then(|| spacepos_testkit::rabbitmq::URL.to_owned()),
        report_presence: true,
        presence_interval_seconds: 30,
        max_recorded_requests: 100_000,
        ..FakeErpConfig::default()
    };
    FakeErp::start(config).await.unwrap()
}

/// Publish SpaceFuel `version` with `bytes` as its artifact, signed by the
/// ERP's primary key (the one every site trusts).
pub fn publish(erp: &FakeErp, version: &str, bytes: Vec<u8>) {
    erp.publish_release(ReleaseSpec::new(ComponentId::SpaceFuel, version).with_bytes(bytes))
        .unwrap();
}

// ---- a site ------------------------------------------------------------------------

/// What goes into a site's `spacepos.toml`.
#[derive(Debug, Clone)]
pub struct Settings {
    pub till: bool,
    pub grace_seconds: u64,
    pub pumps: u32,
    pub flow_ml_per_second: u64,
    pub customers_per_pump: u64,
    pub arrival_gap_ms: u64,
    pub auto_authorise: bool,
    pub auto_settle: Option<bool>,
    /// `(amqp url, exchange)`.
    pub bus: Option<(String, String)>,
    pub presence_interval_seconds: Option<u32>,
    pub send_frequency: Option<u64>,
}

impl Default for Settings {
    /// A till site, a 5 s health grace, 2 quiet pumps (no customers).
    fn default() -> Self {
        Settings {
            till: true,
            grace_seconds: 5,
            pumps: 2,
            flow_ml_per_second: 500,
            customers_per_pump: 0,
            arrival_gap_ms: 1000,
            auto_authorise: false,
            auto_settle: None,
            bus: None,
            presence_interval_seconds: None,
            send_frequency: None,
        }
    }
}

/// A data directory (`<temp>/data`) and the `spacefuel-service run` process
/// on it. Dropping it kills the host and every worker of the directory.
pub struct Site {
    root: tempfile::TempDir,
    pub data: PathBuf,
    pub client_id: String,
    pub store_number: u32,
    pub terminal_number: u32,
    host: Option<Child>,
    starts: usize,
    store: Option<SqliteStore>,
    pub started: Instant,
}

impl Site {
    /// Terminal `terminal` of store 12 registered at `erp` (its record written
    /// as onboarding does), `spacepos.toml` from `settings`, and SpaceFuel
    /// 2.1.0 extracted into slot blue and recorded active and verified.
    pub async fn new(erp: &FakeErp, terminal: u32, settings: &Settings) -> Site {
        let started = Instant::now();
        let root = tempfile::tempdir().unwrap();
        let data = root.path().join("data");
        std::fs::create_dir_all(&data).unwrap();
        let credentials = erp.register_terminal(12, terminal);
        let now = Utc::now();
        let record = TerminalRecord {
            schema_version: TERMINAL_RECORD_VERSION,
            client_id: credentials.client_id.clone(),
            client_secret: Secret::new(credentials.client_secret.expose()),
            store_number: 12,
            terminal_number: terminal,
            api_endpoint: None,
            amqp_url: None,
            company_information: None,
            report_presence: None,
            presence_interval_seconds: None,
            onboarded_at: now,
            updated_at: now,
        };
        FileTerminalStore::new(&data).save(&record).await.unwrap();
        write_config(&data, erp, settings);

        // SpaceFuel 2.1.0 in blue, as an earlier installation left it.
        let zip = root.path().join(format!("spacefuel-{OLD}.zip"));
        std::fs::write(&zip, artifact(OLD, Build::Good)).unwrap();
        let ext = data.join("extensions").join("spacefuel");
        let manifest = FsSlots::new(&ext).extract(Slot::Blue, zip).await.unwrap();
        assert_eq!(manifest.version, OLD);
        FileStateStore::new(&data)
            .update(Box::new(move |s: &mut State| {
                s.spacefuel.active_slot = Some(Slot::Blue);
                s.spacefuel.blue = Some(SlotRecord {
                    version: OLD.to_owned(),
                    verified: true,
                    installed_at: now,
                });
            }))
            .await
            .unwrap();
        Site {
            root,
            data,
            client_id: credentials.client_id,
            store_number: 12,
            terminal_number: terminal,
            host: None,
            starts: 0,
            store: None,
            started,
        }
    }

    /// `<data>/extensions/spacefuel`.
    pub fn ext(&self) -> PathBuf {
        self.data.join("extensions").join("spacefuel")
    }

    fn output(&self, name: &str) -> File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.root.path().join(name))
            .unwrap()
    }

    /// Start `spacefuel-service --data-dir <data> run --console`, with
    /// `SPACEFUEL_PAUSE_AT=<pause>` if given; output appended to
    /// `<temp>/host.out` and `host.err`.
    pub fn start(&mut self, pause: Option<&str>) {
        assert!(self.host.is_none(), "a host of this site is running");
        let mut cmd = Command::new(BIN);
        cmd.arg("--data-dir")
            .arg(&self.data)
            .args(["run", "--console"])
            .env_clear();
        for key in ["PATH", "HOME", "TMPDIR"] {
            if let Ok(v) = std::env::var(key) {
                cmd.env(key, v);
            }
        }
        cmd.env("RUST_LOG", "info");
        if let Some(point) = pause {
            cmd.env("SPACEFUEL_PAUSE_AT", point);
        }
        cmd.stdin(Stdio::null())
            .stdout(self.output("host.out"))
            .stderr(self.output("host.err"));
        self.host = Some(cmd.spawn().unwrap());
        self.starts += 1;
    }

    /// The pid of the running host.
    pub fn host_pid(&self) -> Option<u32> {
        self.host.as_ref().map(Child::id)
    }

    /// Whether the host started last still runs.
    pub fn host_running(&mut self) -> bool {
        match &mut self.host {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }

    /// `kill -9` the host (not its worker: that runs in a process group of
    /// its own and survives, as after a crash) and reap it.
    pub fn kill9_host(&mut self) {
        if let Some(mut c) = self.host.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM the host and wait for its exit code (panics after `within`).
    pub async fn stop(&mut self, within: Duration) -> i32 {
        let Some(mut c) = self.host.take() else {
            return 0;
        };
        kill("-TERM", &c.id().to_string());
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = c.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                panic!("the host did not stop within {within:?} of SIGTERM");
            }
            sleep(Duration::from_millis(50)).await;
        }
    }

    // ---- what the processes wrote ----------------------------------------------

    pub async fn state(&self) -> State {
        FileStateStore::new(&self.data).load().await.unwrap().state
    }

    /// `health.json`, if there is a readable one.
    pub fn health(&self) -> Option<HealthReport> {
        let bytes = std::fs::read(self.ext().join("health.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// `service.pid`: `(pid, slot)`.
    pub fn pid_file(&self) -> Option<(u32, Slot)> {
        let bytes = std::fs::read(self.ext().join("service.pid")).ok()?;
        let v: Value = serde_json::from_slice(&bytes).ok()?;
        let pid = u32::try_from(v["pid"].as_u64()?).ok()?;
        let slot = serde_json::from_value(v["slot"].clone()).ok()?;
        Some((pid, slot))
    }

    /// Whether `<ext>/<slot>.complete` exists.
    pub fn complete(&self, slot: Slot) -> bool {
        self.ext().join(format!("{slot}.complete")).exists()
    }

    /// The simulator's state file (counters and sale buffer).
    pub fn sim_state(&self) -> Option<Value> {
        let bytes = std::fs::read(self.ext().join("forecourt-sim.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Live (not zombie) worker processes of this data directory.
    pub fn workers(&self) -> Vec<u32> {
        processes_with_arg(&self.data.display().to_string())
            .into_iter()
            .filter(|(_, args)| args.iter().any(|a| a == "worker"))
            .map(|(pid, _)| pid)
            .collect()
    }

    /// Wait for `<ext>/paused-<point>`; the pid written in it.
    pub async fn wait_paused(&mut self, point: &str, within: Duration) -> u32 {
        let marker = self.ext().join(format!("paused-{point}"));
        let deadline = Instant::now() + within;
        loop {
            if let Ok(text) = std::fs::read_to_string(&marker)
                && let Ok(pid) = text.trim().parse()
            {
                return pid;
            }
            if Instant::now() > deadline {
                panic!(
                    "not paused at {point} within {within:?} (host running: {});\nhost log:\n{}\nworker log:\n{}",
                    self.host_running(),
                    tail(&self.host_log(), 40),
                    tail(&self.worker_log(), 20)
                );
            }
            sleep(Duration::from_millis(25)).await;
        }
    }

    /// The shared store, opened by this test process.
    pub async fn store(&mut self) -> SqliteStore {
        if self.store.is_none() {
            self.store = Some(
                SqliteStore::open(self.data.join("spacepos.db"))
                    .await
                    .unwrap(),
            );
        }
        self.store.clone().unwrap()
    }

    /// Every outbox entry, in creation order.
    pub async fn outbox(&mut self) -> Vec<QueuedOperation> {
        self.store().await.list(None, 10_000_000).await.unwrap()
    }

    /// Outbox entries of `kind`, in creation order.
    pub async fn outbox_of(&mut self, kind: &str) -> Vec<QueuedOperation> {
        self.outbox()
            .await
            .into_iter()
            .filter(|o| o.kind == kind)
            .collect()
    }

    /// The host's stderr (its log).
    pub fn host_log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("host.err")).unwrap_or_default()
    }

    /// Every worker's output (`logs/spacefuel-worker.log`).
    pub fn worker_log(&self) -> String {
        std::fs::read_to_string(self.data.join("logs").join("spacefuel-worker.log"))
            .unwrap_or_default()
    }

    /// Both logs, for a failure message.
    pub fn logs(&self) -> String {
        format!(
            "---- host log (last 60 lines):\n{}\n---- worker log (last 30 lines):\n{}",
            tail(&self.host_log(), 60),
            tail(&self.worker_log(), 30)
        )
    }

    /// Lines logged at ERROR, or panics, by the host or the workers.
    pub fn error_lines(&self) -> Vec<String> {
        let mut all = self.host_log();
        all.push_str(&self.worker_log());
        all.lines()
            .filter(|l| {
                l.split_whitespace().nth(1) == Some("ERROR")
                    || l.contains("panicked at")
                    || l.starts_with("error:")
            })
            .map(str::to_owned)
            .collect()
    }

    /// Wait until the switch is over and settled: no switch journaled and no
    /// update applying in `state.json`, `slot` active, its worker running
    /// alone and reporting `version` ready in `health.json` under the pid the
    /// pid file names. Panics with everything known after `within`.
    pub async fn wait_settled(&mut self, slot: Slot, version: &str, within: Duration) -> u32 {
        let deadline = Instant::now() + within;
        loop {
            let state = self.state().await;
            let health = self.health();
            let pid = self.pid_file();
            let workers = self.workers();
            let settled = state.spacefuel.switch.is_none()
                && state.updates.spacefuel.applying.is_none()
                && state.spacefuel.active_slot == Some(slot)
                && health.as_ref().is_some_and(|h| {
                    h.slot == slot
                        && h.version == version
                        && h.ready
                        && Some((h.pid, slot)) == pid
                        && (Utc::now() - h.at).num_seconds() < 5
                })
                && pid.is_some_and(|(p, _)| workers == vec![p]);
            if settled {
                return pid.unwrap().0;
            }
            if Instant::now() > deadline {
                panic!(
                    "not settled on {slot} {version} within {within:?}:\n spacefuel = {:?}\n applying = {:?}\n health = {:?}\n pid file = {pid:?}\n workers = {workers:?}\n{}",
                    state.spacefuel,
                    state.updates.spacefuel.applying,
                    health.map(|h| (h.slot, h.version, h.pid, h.ready, h.at)),
                    self.logs()
                );
            }
            sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait for the Applied event of the update, watching `state.json`
    /// meanwhile; the event and the first switch journal seen (`None` if the
    /// switch was over before it could be seen).
    pub async fn wait_applied(
        &mut self,
        within: Duration,
    ) -> (QueuedOperation, Option<SwitchRecord>) {
        let deadline = Instant::now() + within;
        let mut journal = None;
        loop {
            if journal.is_none() {
                journal = self.state().await.spacefuel.switch;
            }
            if let Some(applied) = self.outbox_of(APPLIED).await.into_iter().next() {
                return (applied, journal);
            }
            if Instant::now() > deadline {
                panic!(
                    "no {APPLIED} in the outbox within {within:?}\n{}",
                    self.logs()
                );
            }
            sleep(Duration::from_millis(25)).await;
        }
    }

    /// The pids the workers logged at their start from `slot` running
    /// `version` (`SpaceFuel <version> running from slot <slot> ... pid=N`).
    pub fn worker_pids(&self, slot: Slot, version: &str) -> Vec<u32> {
        let needle = format!("SpaceFuel {version} running from slot {slot}");
        self.worker_log()
            .lines()
            .filter(|l| l.contains(&needle))
            .filter_map(|l| {
                let at = l.find(" pid=")? + 5;
                let digits: String = l[at..].chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .collect()
    }

    /// Wait until the outbox holds an entry of `kind`; all entries of it.
    pub async fn wait_outbox(&mut self, kind: &str, within: Duration) -> Vec<QueuedOperation> {
        let deadline = Instant::now() + within;
        loop {
            let found = self.outbox_of(kind).await;
            if !found.is_empty() {
                return found;
            }
            if Instant::now() > deadline {
                panic!("no {kind} in the outbox within {within:?}\n{}", self.logs());
            }
            sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.kill9_host();
        // Workers run in process groups of their own: kill each group.
        for pid in self.workers() {
            kill("-KILL", &format!("-{pid}"));
            kill("-KILL", &pid.to_string());
        }
    }
}

fn write_config(data: &Path, erp: &FakeErp, s: &Settings) {
    let keys = erp.update_keys();
    let mut toml = format!(
        "[node]\napi_endpoint = \"{}\"\n",
        erp.base_url().trim_end_matches('/')
    );
    if let Some((url, exchange)) = &s.bus {
        toml.push_str(&format!(
            "amqp_url = \"{url}\"\nexchange = \"{exchange}\"\n"
        ));
    }
    toml.push_str(&format!(
        "\n[node.features]\ntill = {}\nspacefuel = true\n",
        s.till
    ));
    if let Some(i) = s.presence_interval_seconds {
        toml.push_str(&format!(
            "\n[terminal]\nreport_presence = true\npresence_interval_seconds = {i}\n"
        ));
    }
    if let Some(f) = s.send_frequency {
        toml.push_str(&format!("\n[sync]\nsend_frequency = {f}\n"));
    }
    toml.push_str(&format!(
        "\n[updates]\ntrusted_keys = [\"{}\"]\n",
        keys.primary.key_line
    ));
    toml.push_str(&format!(
        "\n[spacefuel]\nhealth_grace_seconds = {}\nauto_authorise = {}\n",
        s.grace_seconds, s.auto_authorise
    ));
    if let Some(a) = s.auto_settle {
        toml.push_str(&format!("auto_settle = {a}\n"));
    }
    toml.push_str(&format!(
        "\n[spacefuel.simulator]\npumps = {}\nflow_ml_per_second = {}\ncustomers_per_pump = {}\narrival_gap_ms = {}\n",
        s.pumps, s.flow_ml_per_second, s.customers_per_pump, s.arrival_gap_ms
    ));
    let path = data.join("spacepos.toml");
    let mut f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode_owner_only()
        .open(&path)
        .unwrap();
    f.write_all(toml.as_bytes()).unwrap();
}

/// `0600` on Unix (the file may hold the broker's password).
trait OwnerOnly {
    fn mode_owner_only(&mut self) -> &mut Self;
}

impl OwnerOnly for OpenOptions {
    fn mode_owner_only(&mut self) -> &mut Self {
        use std::os::unix::fs::OpenOptionsExt as _;
        self.mode(0o600)
    }
}

/// `kill <signal> <target>` (target: a pid, or `-<pgid>`).
pub fn kill(signal: &str, target: &str) {
    let _ = Command::new("kill")
        .args([signal, "--", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Whether `pid` is a live (not zombie) process.
pub fn alive(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    stat.rfind(')')
        .and_then(|at| stat[at + 1..].trim_start().chars().next())
        .is_some_and(|state| !matches!(state, 'Z' | 'X' | 'x'))
}

/// Live processes having `arg` as one of their arguments: `(pid, args)`.
pub fn processes_with_arg(arg: &str) -> Vec<(u32, Vec<String>)> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for e in entries.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        if args.iter().any(|a| a == arg) && alive(pid) {
            found.push((pid, args));
        }
    }
    found.sort();
    found
}

pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The RFC 3339 date at `pointer` of an event payload.
pub fn date_at(payload: &Value, pointer: &str) -> DateTime<Utc> {
    let text = payload
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} is not a string in {payload}"));
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{pointer} = {text:?}: {e}"))
        .with_timezone(&Utc)
}

/// A value of a type deserialised from a string (a `Uuid` without naming
/// the crate): `id_of(n)` is the UUID `00000000-0000-4000-8000-<n>`.
pub fn id_of<T: serde::de::DeserializeOwned>(prefix: u32, n: u64) -> T {
    serde_json::from_value(Value::String(format!(
        "{prefix:08x}-0000-4000-8000-{n:012x}"
    )))
    .unwrap()
}

/// Count by key.
pub fn counts<K: Ord>(items: impl IntoIterator<Item = K>) -> BTreeMap<K, usize> {
    let mut out = BTreeMap::new();
    for k in items {
        *out.entry(k).or_insert(0) += 1;
    }
    out
}

// ---- the bus (RabbitMQ on 127.0.0.1:5672) ---------------------------------------

/// A site's bus settings on a fresh exchange: `(amqp url, exchange)`.
pub fn fresh_bus() -> (String, String) {
    (
        spacepos_testkit::rabbitmq::URL.to_owned(),
        spacepos_testkit::rabbitmq::unique("erp_event_bus.test."),
    )
}

/// Publish SpaceFuel `version` (as [`publish`]) and announce it on the bus
/// as the ERP does (`POSReleasePublishedIntegrationEvent` on `exchange`).
pub async fn publish_and_announce(erp: &FakeErp, exchange: &str, version: &str, bytes: Vec<u8>) {
    let release = erp
        .publish_release(ReleaseSpec::new(ComponentId::SpaceFuel, version).with_bytes(bytes))
        .unwrap();
    let event = erp.release_published_event(&release).unwrap();
    let body = serde_json::to_vec(&event).unwrap();
    let client = spacepos_amqp::ErpBusClient::connect(&spacepos_testkit::rabbitmq::url(), exchange)
        .await
        .unwrap();
    client
        .publish(
            "POSReleasePublishedIntegrationEvent",
            &event.id.to_string(),
            &body,
        )
        .await
        .unwrap();
    client.close().await;
}

/// Wait until the terminal's queue exists on the broker (the host declared
/// its topology, bindings included).
pub async fn wait_terminal_queue(exchange: &str, client_id: &str, within: Duration) {
    let client = spacepos_amqp::ErpBusClient::connect(&spacepos_testkit::rabbitmq::url(), exchange)
        .await
        .unwrap();
    let queue = spacepos_amqp::queue_name(client_id);
    let deadline = Instant::now() + within;
    while client.message_count(&queue).await.unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "the host did not declare {queue} within {within:?}"
        );
        sleep(Duration::from_millis(100)).await;
    }
    client.close().await;
}

/// Deletes the terminal's queues and the test's exchange when dropped (drop
/// it after the site).
pub struct BusCleanup {
    pub exchange: String,
    pub client_id: String,
}

impl Drop for BusCleanup {
    fn drop(&mut self) {
        let (exchange, client_id) = (self.exchange.clone(), self.client_id.clone());
        // A runtime of its own: this may run while a test's runtime unwinds.
        let cleanup = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let url = spacepos_testkit::rabbitmq::url();
                let connect = spacepos_amqp::ErpBusClient::connect(&url, &exchange);
                let Ok(Ok(client)) = tokio::time::timeout(Duration::from_secs(20), connect).await
                else {
                    eprintln!("cleanup: cannot reach the broker; {exchange} is left behind");
                    return;
                };
                let _ = client.delete_terminal_queues(&client_id).await;
                let _ = client.delete_exchange().await;
                client.close().await;
            });
        });
        let _ = cleanup.join();
    }
}

/// A captured message: when it was taken, and its body.
pub type Captured = (DateTime<Utc>, Value);

/// A queue of the test's own (exclusive, deleted with its connection) bound
/// to the exchange for one routing key, read in the background with raw
/// lapin: what a consumer of the ERP would see.
pub struct Capture {
    seen: std::sync::Arc<Mutex<Vec<Captured>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Capture {
    pub async fn start(exchange: &str, routing_key: &str) -> Capture {
        use lapin::options::{
            BasicGetOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
        };
        use lapin::types::FieldTable;
        use lapin::{Connection, ConnectionProperties, ExchangeKind};
        let connection = Connection::connect(
            spacepos_testkit::rabbitmq::URL,
            ConnectionProperties::default().with_connection_name("spacefuel capture".into()),
        )
        .await
        .unwrap();
        let channel = connection.create_channel().await.unwrap();
        // The same declaration as the terminal's (direct, durable).
        channel
            .exchange_declare(
                exchange.into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let queue = channel
            .queue_declare(
                "".into(),
                QueueDeclareOptions {
                    exclusive: true,
                    auto_delete: true,
                    ..QueueDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await
            .unwrap();
        let name = queue.name().clone();
        channel
            .queue_bind(
                name.clone(),
                exchange.into(),
                routing_key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .unwrap();
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let into = seen.clone();
        let task = tokio::spawn(async move {
            let _connection = connection;
            loop {
                match channel
                    .basic_get(name.clone(), BasicGetOptions { no_ack: true })
                    .await
                {
                    Ok(Some(m)) => {
                        let json = serde_json::from_slice(&m.delivery.data).unwrap_or(Value::Null);
                        into.lock().unwrap().push((Utc::now(), json));
                    }
                    Ok(None) => sleep(Duration::from_millis(50)).await,
                    Err(e) => panic!("the capture queue failed: {e}"),
                }
            }
        });
        Capture { seen, task }
    }

    /// Messages taken so far: `(when, body)`.
    pub fn all(&self) -> Vec<Captured> {
        self.seen.lock().unwrap().clone()
    }

    /// Wait until `n` messages were taken; all of them.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Captured> {
        let deadline = Instant::now() + within;
        loop {
            let all = self.all();
            if all.len() >= n {
                return all;
            }
            assert!(
                Instant::now() < deadline,
                "{} message(s) captured within {within:?}, {n} expected",
                all.len()
            );
            sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.task.abort();
    }
}
