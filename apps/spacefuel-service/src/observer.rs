//! Pause points for fault injection: with `SPACEFUEL_PAUSE_AT=POINT` the
//! process writes `extensions/spacefuel/paused-POINT` when it reaches that point
//! and then waits forever, so a test can `kill -9` it exactly there. Points:
//! the switch's (`journaled`, `stopped`, `flipped`, `started`, `healthy`,
//! `committed`, `rollback-flipped`, `rollback-started`, `extracted`, `staged`)
//! and the worker's `sale-recorded` (a sale is in the outbox, not cleared).
//! A point pauses once per data directory: while its marker exists, a process
//! started later with the same environment (a worker the host restarts after
//! the test killed the paused one) goes on.
//! Unset in production: the check is one environment lookup at start.

use std::path::PathBuf;

use async_trait::async_trait;
use spacepos_spacefuel::{SwitchObserver, SwitchPoint};

pub(crate) const PAUSE_ENV: &str = "SPACEFUEL_PAUSE_AT";

#[derive(Debug, Clone)]
pub(crate) struct PauseAt {
    point: Option<String>,
    dir: PathBuf,
}

impl PauseAt {
    pub(crate) fn from_env(dir: PathBuf) -> PauseAt {
        PauseAt {
            point: std::env::var(PAUSE_ENV).ok().filter(|p| !p.is_empty()),
            dir,
        }
    }

    /// Stop here forever if this is the configured point and it has not
    /// paused in this data directory before.
    pub(crate) async fn reached(&self, point: &str) {
        if self.point.as_deref() == Some(point) {
            let marker = self.dir.join(format!("paused-{point}"));
            if marker.exists() {
                return;
            }
            tracing::warn!(point, "{PAUSE_ENV}: paused at {point}");
            if let Err(e) = std::fs::write(&marker, std::process::id().to_string()) {
                tracing::error!(error = %e, "cannot write {}", marker.display());
            }
            std::future::pending::<()>().await;
        }
    }
}

#[async_trait]
impl SwitchObserver for PauseAt {
    async fn reached(&self, point: SwitchPoint) {
        PauseAt::reached(self, point.name()).await;
    }
}
