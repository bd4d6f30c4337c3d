//! What the tests of spacepos-updates share: a node built from the testkit
//! fakes, and log capture.
#![allow(dead_code, unreachable_pub, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};

use chrono::{TimeZone as _, Utc};
use spacepos_core::{Clock, ComponentId, TerminalIdentity};
use spacepos_sync::{Destination, QueuedOperation};
use spacepos_testkit::fakes::{
    MemoryArtifactStore, MemoryInstaller, MemoryManifestServer, MemoryOutbox, MemoryReleaseApi,
    MemorySafePoint, MemoryStateStore, ReleaseKey, TokioClock,
};
use spacepos_updates::{UpdatePorts, UpdateSettings, Updates};

pub const POS_INSTALLED: &str = "1.4.2";
pub const FUEL_INSTALLED: &str = "2.1.0";

pub fn terminal() -> TerminalIdentity {
    TerminalIdentity {
        client_id: "trm_5f1c2a9e0b7d4e31".into(),
        store_number: 12,
        terminal_number: 3,
    }
}

/// Every fake of a node, shared by the `Updates` instances built on it (a
/// restart is a new `Updates` over the same fakes).
#[derive(Clone)]
pub struct Node {
    pub erp: MemoryReleaseApi,
    pub artifacts: MemoryArtifactStore,
    pub safe_point: MemorySafePoint,
    pub installer: MemoryInstaller,
    pub manifests: MemoryManifestServer,
    pub state: MemoryStateStore,
    pub outbox: MemoryOutbox,
    pub clock: Arc<dyn Clock>,
    pub trusted: Vec<ReleaseKey>,
}

impl Node {
    /// A node trusting the primary and the rotated key, with SpacePOS
    /// 1.4.2 and SpaceFuel 2.1.0 installed.
    pub fn new() -> Self {
        Node {
            erp: MemoryReleaseApi::new(),
            artifacts: MemoryArtifactStore::new(),
            safe_point: MemorySafePoint::new(),
            installer: MemoryInstaller::new(),
            manifests: MemoryManifestServer::new(),
            state: MemoryStateStore::new(),
            outbox: MemoryOutbox::new(),
            clock: Arc::new(TokioClock::starting_at(
                Utc.with_ymd_and_hms(2026, 11, 24, 8, 0, 0)
                    .single()
                    .unwrap(),
            )),
            trusted: vec![ReleaseKey::Primary, ReleaseKey::Rotated],
        }
    }

    pub fn settings(&self, pos: &str, fuel: &str) -> UpdateSettings {
        let mut installed = BTreeMap::new();
        installed.insert(ComponentId::SpacePos, pos.to_owned());
        installed.insert(ComponentId::SpaceFuel, fuel.to_owned());
        let keys = self
            .trusted
            .iter()
            .map(|k| self.erp.public_key(*k))
            .collect();
        UpdateSettings::new(terminal(), keys, installed)
    }

    pub fn ports(&self) -> UpdatePorts {
        UpdatePorts {
            releases: Arc::new(self.erp.clone()),
            artifacts: Arc::new(self.artifacts.clone()),
            safe_point: Arc::new(self.safe_point.clone()),
            installer: Arc::new(self.installer.clone()),
            encoder: Arc::new(spacepos_amqp::WireTrackingEncoder),
            manifest: Arc::new(self.manifests.clone()),
            state: Arc::new(self.state.clone()),
            outbox: Arc::new(self.outbox.clone()),
            clock: self.clock.clone(),
        }
    }

    /// The updates service with the default installed versions.
    pub fn updates(&self) -> Updates {
        self.updates_running(POS_INSTALLED, FUEL_INSTALLED)
    }

    /// The updates service of a process running these versions.
    pub fn updates_running(&self, pos: &str, fuel: &str) -> Updates {
        Updates::new(self.ports(), self.settings(pos, fuel)).unwrap()
    }

    /// The bus entries of the outbox of one event type.
    pub fn events(&self, event_type: &str) -> Vec<QueuedOperation> {
        self.outbox
            .entries()
            .into_iter()
            .filter(|e| e.destination == Destination::EventBus && e.kind == event_type)
            .collect()
    }
}

/// Log lines written while a [`Logs`] guard lives (this thread only).
pub struct Logs {
    buffer: Arc<Mutex<Vec<u8>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

#[derive(Clone)]
struct Writer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Writer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub fn capture_logs() -> Logs {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let writer = Writer(buffer.clone());
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    Logs {
        buffer,
        _guard: tracing::subscriber::set_default(subscriber),
    }
}

impl Logs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }

    pub fn lines_at(&self, level: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.contains(level))
            .map(str::to_owned)
            .collect()
    }
}
