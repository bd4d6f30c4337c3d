//! Component updates: how a till takes a new SpacePOS or SpaceFuel safely.
//!
//! Owns the pending releases (`GET /api/pos/releases/pending` on a timer and
//! at once on `POSReleasePublishedIntegrationEvent`), their ordering by
//! semantic version (no downgrade unless the ERP allows it), the resumable
//! download into a staging area, the verification before anything is staged
//! (a minisign signature by any trusted key, the signed `version:` equal to
//! the announced one, the sha256), the snooze policy (5 minutes, at most 3 per
//! component and version, kept in `state.json`), waiting for a safe point (no
//! open sale, no pump delivering), the installation record that survives the
//! MSI ending the app, the one-shot manifest for Tauri's updater, and the
//! `POSComponentReadyEvent` / `POSComponentAppliedEvent` tracking events,
//! written to the outbox so they survive being offline.
//!
//! Ports declared here: [`ReleaseApi`] (implemented by `spacepos-erp-http`),
//! [`ArtifactStore`] (`spacepos-fs`), [`TrackingEncoder`] (`spacepos-amqp`),
//! [`ManifestServer`] (`spacepos-manifest`), [`SafePoint`] and
//! [`ComponentInstaller`] (the apps). The service is [`Updates`]; its records
//! live in `state.json` ([`spacepos_config::UpdatesState`]).

mod manifest;
mod model;
mod ports;
mod service;
mod verify;

pub use manifest::tauri_manifest;
pub use model::{
    AppliedRecord, ApplyOutcome, ApplyReport, ArtifactKey, ArtifactState, CheckReport,
    ComponentView, DownloadProgress, InstallOutcome, PendingRelease, RangeChunk, ReadyRecord,
    ReleaseComponent, ReleaseOutcome, ServedManifest, SnoozeOutcome, SnoozeRefusal, StagedRelease,
    StagedView, StoredArtifact, TAURI_WINDOWS_X64_MSI, TrackingEvent, UpdateSettings,
    is_sha256_hex,
};
pub use ports::{
    ArtifactStore, ArtifactStoreError, ComponentInstaller, InstallError, ManifestError,
    ManifestServer, ReleaseApi, ReleaseApiError, SafePoint, TrackingEncoder, TrackingError,
};
pub use service::{MAX_ARTIFACT_SIZE, UpdatePorts, Updates, UpdatesError};
pub use spacepos_config::UpdateResult;
pub use verify::{TrustedKeys, decode_signature, parse_public_key, signed_version, verify_bytes};

#[cfg(any(test, feature = "mocks"))]
pub use ports::{
    MockArtifactStore, MockComponentInstaller, MockManifestServer, MockReleaseApi, MockSafePoint,
    MockTrackingEncoder,
};
