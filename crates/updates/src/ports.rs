//! The ports of the updates domain. Each trait's doc is its contract; the
//! suites in `spacepos_testkit::suites` check the clauses against the fakes
//! and the adapters.

use std::error::Error as StdError;

use async_trait::async_trait;
use spacepos_core::RemoteError;

use crate::model::{
    AppliedRecord, ArtifactKey, InstallOutcome, PendingRelease, RangeChunk, ReadyRecord,
    ServedManifest, StagedRelease, StoredArtifact, TrackingEvent,
};

// ---- the ERP's releases ----------------------------------------------------------

/// Why a release call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReleaseApiError {
    /// The artifact URL names nothing (404).
    #[error("the ERP has no artifact at {url}")]
    NotFound { url: String },
    /// `start` is at or past the end of the artifact (416); `total` is its size.
    #[error("the ERP cannot serve the artifact from that offset: it has {total} bytes")]
    RangeNotSatisfiable { total: u64 },
    /// The artifact URL is not one this terminal may download from.
    #[error("refusing to download {url}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

/// The ERP's releases (contract section 5).
///
/// Contract (checked by `spacepos_testkit::suites::release_api`):
/// - `pending` is `GET /api/pos/releases/pending` with the device headers and
///   the terminal's user agent; it returns every release listed, a component
///   this build does not know as [`crate::ReleaseComponent::Unknown`] (never
///   an error), and an empty list when nothing is pending.
/// - `fetch_range(url, start, max_len)` returns bytes of the artifact from
///   `start`: at most `max_len`, at least one unless the transfer was cut
///   (then it returns what arrived, if anything did, else an error), with the
///   artifact's total size. Asking again from `start + bytes.len()` continues
///   exactly where it stopped, so a cut download resumes.
/// - A server that ignores the range and sends the whole artifact yields a
///   chunk with `start = 0` (the caller starts over).
/// - `start` at or past the end is [`ReleaseApiError::RangeNotSatisfiable`]
///   with the total; an unknown artifact is [`ReleaseApiError::NotFound`].
/// - Downloads carry the device headers to the ERP's own origin only.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ReleaseApi: Send + Sync + 'static {
    async fn pending(&self) -> Result<Vec<PendingRelease>, ReleaseApiError>;
    async fn fetch_range(
        &self,
        url: &str,
        start: u64,
        max_len: u64,
    ) -> Result<RangeChunk, ReleaseApiError>;
}

// ---- the staging area ------------------------------------------------------------

/// Why the staging area failed.
#[derive(Debug, thiserror::Error)]
pub enum ArtifactStoreError {
    /// The key cannot name a file ([`ArtifactKey::check`]); nothing was written.
    #[error("invalid artifact key {key}: {detail}")]
    InvalidKey { key: String, detail: String },
    /// An append at an offset other than the stored length, or a change to a
    /// staged artifact.
    #[error("artifact {key}: {detail}")]
    Conflict { key: String, detail: String },
    /// Nothing is stored under the key (or nothing to stage).
    #[error("artifact {key}: {detail}")]
    NotFound { key: String, detail: String },
    #[error("the staging area failed at {location}: {source}")]
    Backend {
        location: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

/// The staging area: partial downloads and verified artifacts, keyed by
/// component, version and sha256.
///
/// Contract (checked by `spacepos_testkit::suites::artifact_store`):
/// - A key that fails [`ArtifactKey::check`] is
///   [`ArtifactStoreError::InvalidKey`] for every method, and nothing is written.
/// - `len` is the number of bytes stored under the key (partial or staged), 0
///   when nothing is.
/// - `append(key, offset, bytes)` adds `bytes` to the partial artifact when
///   `offset` equals its length, durably when it returns (a restarted process
///   resumes the download at `len`); any other offset, or a staged key, is
///   [`ArtifactStoreError::Conflict`] and changes nothing. It returns the new length.
/// - `read(key, offset, max_len)` returns up to `max_len` bytes from `offset`
///   of the stored artifact (partial or staged); empty at or past the end.
/// - `stage(key, file_name)` turns the partial artifact into a staged one
///   atomically and durably (named `file_name` where the store has names) and
///   returns where it is; staging an empty or absent key is
///   [`ArtifactStoreError::NotFound`]; staging a staged key returns its path.
/// - `staged_path` is `Some` only for a staged key.
/// - `discard` removes the partial and staged artifact of the key;
///   discarding nothing is fine. Keys are independent of each other.
/// - `list` returns every stored artifact, partial and staged.
/// - Everything stored is seen by another instance over the same storage.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ArtifactStore: Send + Sync + 'static {
    async fn len(&self, key: &ArtifactKey) -> Result<u64, ArtifactStoreError>;
    async fn append(
        &self,
        key: &ArtifactKey,
        offset: u64,
        bytes: &[u8],
    ) -> Result<u64, ArtifactStoreError>;
    async fn read(
        &self,
        key: &ArtifactKey,
        offset: u64,
        max_len: u64,
    ) -> Result<Vec<u8>, ArtifactStoreError>;
    async fn stage(&self, key: &ArtifactKey, file_name: &str)
    -> Result<String, ArtifactStoreError>;
    async fn staged_path(&self, key: &ArtifactKey) -> Result<Option<String>, ArtifactStoreError>;
    async fn discard(&self, key: &ArtifactKey) -> Result<(), ArtifactStoreError>;
    async fn list(&self) -> Result<Vec<StoredArtifact>, ArtifactStoreError>;
}

// ---- the apps ------------------------------------------------------------------

/// Whether this node may be updated now, answered by the apps.
///
/// Contract: `busy` returns `None` when an update may start now (no open sale,
/// no pump authorised or fuelling) and `Some(reason)` otherwise, the reason
/// being a short phrase for an operator ("a sale is open"). It answers
/// promptly (the updates service asks every ~2 s while an update waits) and
/// never blocks on the network.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait SafePoint: Send + Sync + 'static {
    async fn busy(&self) -> Option<String>;
}

/// Why an installation failed without a rollback report.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The installation did not happen or did not finish; the previous version
    /// still runs. The text says what failed.
    #[error("{0}")]
    Failed(String),
    #[error("the installer failed: {0}")]
    Backend(#[source] Box<dyn StdError + Send + Sync>),
}

/// Installs a staged release (the desktop app for SpacePOS through Tauri's
/// updater, the SpaceFuel service into its inactive slot).
///
/// Contract:
/// - It is called only at a safe point, after the service recorded the
///   installation as "applying" in `state.json`.
/// - `Applied`: the new version runs. `RolledBack { error }`: it failed and
///   the previous version runs again. `RestartPending`: the installation
///   continues outside this process (an MSI ends the app) and the result is
///   judged at the next start from the running version. `Err`: nothing was
///   installed and the previous version runs.
/// - It never changes the staged artifact.
/// - `prepare` runs once a verified artifact is staged, before Ready is
///   written (SpaceFuel extracts it into the inactive slot there). An
///   [`InstallError::Failed`] refuses the artifact (it is never offered
///   again); an [`InstallError::Backend`] error is retried at the next check.
///   Preparing again what was prepared is harmless. The default does nothing.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ComponentInstaller: Send + Sync + 'static {
    async fn prepare(&self, staged: &StagedRelease) -> Result<(), InstallError> {
        let _ = staged;
        Ok(())
    }
    async fn install(&self, staged: &StagedRelease) -> Result<InstallOutcome, InstallError>;
}

// ---- tracking events -------------------------------------------------------------

/// A tracking record could not be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode the tracking event: {0}")]
pub struct TrackingError(pub String);

/// Turns the domain's Ready/Applied records into outbox entries (the wire
/// format lives in an adapter).
///
/// Contract (checked by `spacepos_testkit::suites::tracking_encoder`):
/// - `ready` gives `POSComponentReadyEvent` with the record's fields in the
///   contract's PascalCase form (`Id` = `event_id`, `CreationDate` =
///   `StagedAt` = `staged_at`, `Component` = `SpacePOS`/`SpaceFuel`, `Slot`).
/// - `applied` gives `POSComponentAppliedEvent` (`Result` = `Applied`,
///   `RolledBack` or `Failed`, `PreviousVersion`, `Error`, `AppliedAt` =
///   `CreationDate`).
/// - The same record always gives the same payload (the outbox dedupes by id
///   and content).
///
/// It does no I/O, so unlike the other ports it is not async.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait TrackingEncoder: Send + Sync + 'static {
    fn ready(&self, record: &ReadyRecord) -> Result<TrackingEvent, TrackingError>;
    fn applied(&self, record: &AppliedRecord) -> Result<TrackingEvent, TrackingError>;
}

// ---- the Tauri updater's manifest ------------------------------------------------

/// The manifest could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot serve the update manifest: {0}")]
    Backend(#[source] Box<dyn StdError + Send + Sync>),
}

/// Serves a manifest for Tauri's updater, once, on loopback.
///
/// Contract:
/// - `serve_once(json)` returns at once with a `http://127.0.0.1:<port>/...`
///   URL; the first `GET` of that URL is answered `200` with `json`
///   (`Content-Type: application/json`); every later request gets `404`.
/// - Nothing but loopback clients can reach it.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ManifestServer: Send + Sync + 'static {
    async fn serve_once(&self, json: Vec<u8>) -> Result<ServedManifest, ManifestError>;
}
