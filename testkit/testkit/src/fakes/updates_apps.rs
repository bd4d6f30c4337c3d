//! The app-side ports of the updates domain, in memory: [`MemorySafePoint`],
//! [`MemoryInstaller`], [`MemoryManifestServer`], and [`TokioClock`], a wall
//! clock that follows tokio's (paused) time.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use spacepos_core::Clock;
use spacepos_updates::{
    ComponentInstaller, InstallError, InstallOutcome, ManifestError, ManifestServer, SafePoint,
    ServedManifest, StagedRelease,
};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A [`SafePoint`] whose answer a test sets: `None` = safe now.
#[derive(Debug, Clone, Default)]
pub struct MemorySafePoint {
    inner: Arc<Mutex<(Option<String>, u64)>>,
}

impl MemorySafePoint {
    /// Safe from the start.
    pub fn new() -> Self {
        Self::default()
    }

    /// Busy with `reason` (e.g. "a sale is open"), or safe with `None`.
    pub fn set_busy(&self, reason: Option<&str>) {
        lock(&self.inner).0 = reason.map(str::to_owned);
    }

    /// How many times `busy` was asked.
    pub fn asked(&self) -> u64 {
        lock(&self.inner).1
    }
}

#[async_trait]
impl SafePoint for MemorySafePoint {
    async fn busy(&self) -> Option<String> {
        let mut inner = lock(&self.inner);
        inner.1 += 1;
        inner.0.clone()
    }
}

/// What a [`MemoryInstaller`] answers for one installation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScriptedInstall {
    Outcome(InstallOutcome),
    /// `Err(InstallError::Failed(text))`.
    Fail(String),
}

/// A [`ComponentInstaller`] that answers from a script (then `Applied`) and
/// records every release it was asked to install.
#[derive(Debug, Clone, Default)]
pub struct MemoryInstaller {
    inner: Arc<Mutex<(VecDeque<ScriptedInstall>, Vec<StagedRelease>)>>,
}

impl MemoryInstaller {
    pub fn new() -> Self {
        Self::default()
    }

    /// The answer to the next installation not yet scripted.
    pub fn script(&self, answer: ScriptedInstall) {
        lock(&self.inner).0.push_back(answer);
    }

    /// Every installation asked for, in order.
    pub fn installs(&self) -> Vec<StagedRelease> {
        lock(&self.inner).1.clone()
    }
}

#[async_trait]
impl ComponentInstaller for MemoryInstaller {
    async fn install(&self, staged: &StagedRelease) -> Result<InstallOutcome, InstallError> {
        let mut inner = lock(&self.inner);
        inner.1.push(staged.clone());
        match inner.0.pop_front() {
            None => Ok(InstallOutcome::Applied),
            Some(ScriptedInstall::Outcome(o)) => Ok(o),
            Some(ScriptedInstall::Fail(text)) => Err(InstallError::Failed(text)),
        }
    }
}

#[derive(Debug, Default)]
struct Served {
    json: Vec<u8>,
    fetched: bool,
}

/// A [`ManifestServer`] that keeps what it serves: [`fetch`](Self::fetch)
/// plays the updater's request (the body the first time, `None` = 404 later).
#[derive(Debug, Clone, Default)]
pub struct MemoryManifestServer {
    inner: Arc<Mutex<Vec<Served>>>,
}

impl MemoryManifestServer {
    pub fn new() -> Self {
        Self::default()
    }

    /// GET `url`: the manifest the first time, `None` (404) afterwards.
    pub fn fetch(&self, url: &str) -> Option<Vec<u8>> {
        let index: usize = url.strip_prefix("memory://manifest/")?.parse().ok()?;
        let mut inner = lock(&self.inner);
        let served = inner.get_mut(index)?;
        if served.fetched {
            return None;
        }
        served.fetched = true;
        Some(served.json.clone())
    }

    /// Every manifest offered, in order.
    pub fn offered(&self) -> Vec<Vec<u8>> {
        lock(&self.inner).iter().map(|s| s.json.clone()).collect()
    }
}

#[async_trait]
impl ManifestServer for MemoryManifestServer {
    async fn serve_once(&self, json: Vec<u8>) -> Result<ServedManifest, ManifestError> {
        let mut inner = lock(&self.inner);
        inner.push(Served {
            json,
            fetched: false,
        });
        Ok(ServedManifest {
            url: format!("memory://manifest/{}", inner.len() - 1),
        })
    }
}

/// A wall clock that starts at a fixed date and moves with tokio's clock, so
/// that deadlines stored as dates (snoozes) and tokio timers agree when a
/// test pauses and advances time.
#[derive(Debug, Clone)]
pub struct TokioClock {
    start: DateTime<Utc>,
    at: tokio::time::Instant,
}

impl TokioClock {
    /// `start` now; later readings add the tokio time elapsed since.
    pub fn starting_at(start: DateTime<Utc>) -> Self {
        TokioClock {
            start,
            at: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        self.start + chrono::Duration::from_std(self.at.elapsed()).unwrap_or(chrono::Duration::MAX)
    }
}
