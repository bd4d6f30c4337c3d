//! Helpers shared by the integration tests of spacepos-fs.
#![allow(dead_code, unreachable_pub)]

use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use spacepos_config::{Slot, SlotRecord, State};

/// The log lines of this test binary, captured by [`capture_logs`].
#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().expect("log buffer").extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// The log lines that mention one directory (each test has its own temp dir,
/// and every line the stores log names the file concerned).
pub struct Logs {
    marker: String,
}

impl Logs {
    /// The captured lines that mention the directory.
    pub fn text(&self) -> String {
        let sink = SINK.get().expect("capture_logs was called");
        let all = String::from_utf8_lossy(&sink.0.lock().expect("log buffer")).into_owned();
        all.lines()
            .filter(|l| l.contains(&self.marker))
            .map(|l| format!("{l}\n"))
            .collect()
    }

    /// The lines at `level` ("WARN", "ERROR", ...) that mention the directory.
    pub fn lines_at(&self, level: &str) -> Vec<String> {
        self.text()
            .lines()
            .filter(|l| l.trim_start().starts_with(level))
            .map(str::to_owned)
            .collect()
    }
}

/// Capture log lines about files under `dir`.
///
/// The subscriber is process-wide (installed once): a thread-scoped one misses
/// events when tests run in parallel, because tracing caches per-callsite
/// interest across threads.
pub fn capture_logs(dir: &Path) -> Logs {
    SINK.get_or_init(|| {
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .with_max_level(tracing::Level::TRACE)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("no other global subscriber");
        sink
    });
    Logs {
        marker: dir.display().to_string(),
    }
}

/// A state whose SpaceFuel slots are all set, so that a reset is visible.
pub fn installed_state() -> State {
    let mut state = State::new();
    state.spacefuel.active_slot = Some(Slot::Green);
    state.spacefuel.green = Some(SlotRecord {
        version: "2.3.1".into(),
        verified: true,
        installed_at: chrono::Utc::now(),
    });
    state
}

/// The counter the concurrency tests increment: kept in `spacefuel.blue.version`.
pub fn counter(state: &State) -> u64 {
    state
        .spacefuel
        .blue
        .as_ref()
        .and_then(|r| r.version.parse().ok())
        .unwrap_or(0)
}

pub fn bump(state: &mut State) {
    let next = counter(state) + 1;
    state.spacefuel.blue = Some(SlotRecord {
        version: next.to_string(),
        verified: false,
        installed_at: chrono::Utc::now(),
    });
}

#[cfg(unix)]
pub fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}
