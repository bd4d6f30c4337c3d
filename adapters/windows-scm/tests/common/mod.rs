//! A test-only [`SlotFs`] (a directory per slot, completion recorded in a
//! `<slot>.complete` file next to it, so that other processes see it too) and
//! the [`ServiceFixture`] of the contract suite over a [`ProcessSupervisor`].

#![allow(dead_code)] // each test file uses its own part of this module

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use spacepos_config::Slot;
use spacepos_spacefuel::{ServiceManager, SlotError, SlotFs, SlotManifest};
use spacepos_testkit::suites::service_manager::ServiceFixture;
use spacepos_windows_scm::{PID_FILE, ProcessSupervisor, SupervisorOptions};

/// The stop grace of the tests: short, one case waits for it.
pub(crate) const GRACE: Duration = Duration::from_millis(800);

/// `<root>/blue`, `<root>/green`; a slot is complete when `<root>/<slot>.complete`
/// holds its manifest.
#[derive(Debug, Clone)]
pub(crate) struct TestSlots {
    root: PathBuf,
}

impl TestSlots {
    pub(crate) fn new(root: &Path) -> Self {
        TestSlots {
            root: root.to_path_buf(),
        }
    }

    fn mark(&self, slot: Slot) -> PathBuf {
        self.root.join(format!("{slot}.complete"))
    }

    pub(crate) fn complete(&self, slot: Slot, manifest: &SlotManifest) {
        std::fs::create_dir_all(&self.root).expect("slots root");
        let json = serde_json::to_vec(manifest).expect("manifest json");
        std::fs::write(self.mark(slot), json).expect("mark complete");
    }
}

#[async_trait]
impl SlotFs for TestSlots {
    async fn extract(&self, slot: Slot, _artifact: PathBuf) -> Result<SlotManifest, SlotError> {
        Err(SlotError::Io {
            slot,
            detail: "the test slots do not extract".into(),
        })
    }

    async fn manifest(&self, slot: Slot) -> Result<SlotManifest, SlotError> {
        let Ok(bytes) = std::fs::read(self.mark(slot)) else {
            return Err(SlotError::Incomplete { slot });
        };
        serde_json::from_slice(&bytes).map_err(|e| SlotError::Io {
            slot,
            detail: e.to_string(),
        })
    }

    async fn clear(&self, slot: Slot) -> Result<(), SlotError> {
        let _ = std::fs::remove_file(self.mark(slot));
        let _ = std::fs::remove_dir_all(self.dir(slot));
        Ok(())
    }

    fn dir(&self, slot: Slot) -> PathBuf {
        self.root.join(slot.as_str())
    }
}

/// A supervisor over [`TestSlots`] in a temporary directory. Dropping it
/// kills whatever the pid file still names (a failed case's leftovers).
pub(crate) struct Fixture {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) slots: Arc<TestSlots>,
    pub(crate) supervisor: Arc<ProcessSupervisor>,
}

impl Fixture {
    pub(crate) fn new(options: SupervisorOptions) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let slots = Arc::new(TestSlots::new(&slots_root(dir.path())));
        let supervisor = Arc::new(ProcessSupervisor::new(
            slots.clone(),
            SupervisorOptions {
                stop_grace: GRACE,
                ..options
            },
        ));
        Fixture {
            dir,
            slots,
            supervisor,
        }
    }

    pub(crate) fn pid_file(&self) -> PathBuf {
        slots_root(self.dir.path()).join(PID_FILE)
    }
}

/// Where the slots live in a test's temporary directory.
pub(crate) fn slots_root(dir: &Path) -> PathBuf {
    dir.join("extensions").join("spacefuel")
}

impl Drop for Fixture {
    fn drop(&mut self) {
        let Ok(bytes) = std::fs::read(self.pid_file()) else {
            return;
        };
        let record: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if let Some(pid) = record.get("pid").and_then(serde_json::Value::as_u64) {
            let _ = std::process::Command::new("kill")
                .args(["-KILL", "--", &format!("-{pid}")])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

#[async_trait]
impl ServiceFixture for Fixture {
    fn manager(&self) -> Arc<dyn ServiceManager> {
        self.supervisor.clone()
    }

    fn slots(&self) -> Arc<dyn SlotFs> {
        self.slots.clone()
    }

    async fn complete(&self, slot: Slot, manifest: SlotManifest) {
        self.slots.complete(slot, &manifest);
    }
}
