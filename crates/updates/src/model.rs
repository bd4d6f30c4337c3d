//! The data the updates domain moves: releases, artifacts, staged updates,
//! installation outcomes, tracking records and the views the apps show.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use spacepos_config::{Slot, UpdateResult};
use spacepos_core::{ComponentId, TerminalIdentity};
use uuid::Uuid;

/// The component a pending release is for, as the ERP named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseComponent {
    Known(ComponentId),
    /// A component this build does not know: skipped, never an error.
    Unknown(String),
}

impl fmt::Display for ReleaseComponent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReleaseComponent::Known(c) => write!(f, "{c}"),
            ReleaseComponent::Unknown(name) => write!(f, "{name:?}"),
        }
    }
}

/// One release the ERP offers (contract section 5, `releases/pending`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingRelease {
    pub component: ReleaseComponent,
    /// As announced; a semantic version unless the ERP is wrong.
    pub version: String,
    pub notes: Option<String>,
    pub pub_date: Option<DateTime<Utc>>,
    /// Where the artifact is downloaded from.
    pub url: String,
    /// Base64 of the minisign `.sig` text, exactly as Tauri's signer writes it.
    pub signature: String,
    /// Hex SHA-256 digest of the artifact, as announced.
    pub sha256: String,
    /// Size in bytes, as announced.
    pub size: Option<u64>,
    /// Install even if not newer than the installed version.
    pub allow_downgrade: bool,
}

/// Part of an artifact, from a ranged download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeChunk {
    /// Offset of `bytes` in the artifact: the start asked for, or 0 when the
    /// server ignored the range and sent the whole artifact.
    pub start: u64,
    pub bytes: Vec<u8>,
    /// Size of the whole artifact.
    pub total: u64,
}

/// Identifies one artifact in the staging area: component, version and the
/// announced digest (two releases of one version with different bytes are two
/// artifacts).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ArtifactKey {
    pub component: ComponentId,
    pub version: String,
    /// Lower-case hex SHA-256.
    pub sha256: String,
}

impl ArtifactKey {
    /// A key; the digest is normalised to lower case.
    pub fn new(component: ComponentId, version: impl Into<String>, sha256: &str) -> Self {
        ArtifactKey {
            component,
            version: version.into(),
            sha256: sha256.trim().to_ascii_lowercase(),
        }
    }

    /// Whether the key can name files safely: a version of letters, digits,
    /// `.`, `-`, `+`, `_` (not `.` or `..`), at most 64 characters, and a
    /// 64-digit hex digest. Stores refuse other keys.
    pub fn check(&self) -> Result<(), String> {
        let v = &self.version;
        if v.is_empty()
            || v.len() > 64
            || v == "."
            || v == ".."
            || !v
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'_'))
        {
            return Err(format!(
                "version {v:?} cannot name a file: use letters, digits, '.', '-', '+' or '_'"
            ));
        }
        if !is_sha256_hex(&self.sha256) {
            return Err(format!(
                "{:?} is not a hex SHA-256 digest (64 hex digits)",
                self.sha256
            ));
        }
        Ok(())
    }
}

impl fmt::Display for ArtifactKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} (sha256 {})",
            self.component, self.version, self.sha256
        )
    }
}

/// Whether `text` is 64 hex digits.
pub fn is_sha256_hex(text: &str) -> bool {
    text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Where an artifact of the staging area stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArtifactState {
    /// Being downloaded (or downloaded and not yet verified).
    Partial,
    /// Verified and staged at `path`.
    Staged { path: String },
}

/// An artifact of the staging area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredArtifact {
    pub key: ArtifactKey,
    /// Bytes stored.
    pub len: u64,
    pub state: ArtifactState,
}

/// A verified, staged release, as the installer gets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedRelease {
    pub component: ComponentId,
    pub version: String,
    /// The version running now, if known.
    pub previous_version: Option<String>,
    pub sha256: String,
    /// The staged artifact (a file path for the file store).
    pub path: String,
    pub size: u64,
    pub url: String,
    pub signature: String,
    pub notes: Option<String>,
    pub pub_date: Option<DateTime<Utc>>,
    pub staged_at: DateTime<Utc>,
    /// SpaceFuel: the slot to install into.
    pub slot: Option<Slot>,
}

/// What an installer did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstallOutcome {
    /// The new version runs.
    Applied,
    /// The new version failed and the previous one runs again.
    RolledBack { error: String },
    /// The installation continues outside this process (an MSI ends the app);
    /// the result is known at the next start ([`crate::Updates::reconcile_at_start`]).
    RestartPending,
}

/// A `POSComponentReadyEvent` to record: an update was downloaded, verified and staged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadyRecord {
    /// The event's `Id` (and the outbox entry's id).
    pub event_id: Uuid,
    pub terminal: TerminalIdentity,
    pub component: ComponentId,
    pub version: String,
    /// `StagedAt`, also the event's `CreationDate`.
    pub staged_at: DateTime<Utc>,
    pub slot: Option<Slot>,
}

/// A `POSComponentAppliedEvent` to record: an update was applied, rolled back or failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedRecord {
    pub event_id: Uuid,
    pub terminal: TerminalIdentity,
    pub component: ComponentId,
    pub version: String,
    pub previous_version: Option<String>,
    pub result: UpdateResult,
    pub error: Option<String>,
    /// `AppliedAt`, also the event's `CreationDate`.
    pub applied_at: DateTime<Utc>,
}

/// A tracking event as the outbox stores it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackingEvent {
    /// The event type name (routing key), e.g. `POSComponentReadyEvent`.
    pub event_type: String,
    /// The body, PascalCase as contract section 7 spells it.
    pub payload: Value,
}

/// A manifest being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedManifest {
    /// `http://127.0.0.1:<port>/...`: the endpoint to give Tauri's updater.
    pub url: String,
}

/// Progress of one download.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadProgress {
    pub component: ComponentId,
    pub version: String,
    pub downloaded: u64,
    pub total: Option<u64>,
}

/// Settings of [`crate::Updates`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateSettings {
    /// Look for pending releases this often (and at once on a release event).
    pub check_interval: Duration,
    /// How long one snooze postpones an update.
    pub snooze: Duration,
    /// Snoozes per component and version.
    pub max_snoozes: u32,
    /// minisign public keys whose signatures are trusted, each as the key line
    /// of a `.pub` file (`RW...`), the whole `.pub` text, or Tauri's `pubkey`
    /// form (base64 of the `.pub` text). At least one must parse.
    pub trusted_keys: Vec<String>,
    /// The running version of each component installed on this node;
    /// releases of other components are skipped.
    pub installed: BTreeMap<ComponentId, String>,
    /// Who this terminal is, for the tracking events.
    pub terminal: TerminalIdentity,
    /// How often the safe point is asked while an update waits for it.
    pub safe_point_poll: Duration,
    /// Bytes asked for per ranged request.
    pub chunk_size: u64,
    /// The platform key of the Tauri manifest.
    pub manifest_platform: String,
}

/// The platform key of a Windows x64 MSI in Tauri's static manifest.
pub const TAURI_WINDOWS_X64_MSI: &str = "windows-x86_64-msi";

impl UpdateSettings {
    /// The defaults: check hourly, snooze 5 minutes at most 3 times, poll the
    /// safe point every 2 s, download 1 MiB per request, manifest for
    /// `windows-x86_64-msi`.
    pub fn new(
        terminal: TerminalIdentity,
        trusted_keys: Vec<String>,
        installed: BTreeMap<ComponentId, String>,
    ) -> Self {
        UpdateSettings {
            check_interval: Duration::from_secs(3600),
            snooze: Duration::from_secs(5 * 60),
            max_snoozes: 3,
            trusted_keys,
            installed,
            terminal,
            safe_point_poll: Duration::from_secs(2),
            chunk_size: 1024 * 1024,
            manifest_platform: TAURI_WINDOWS_X64_MSI.to_owned(),
        }
    }
}

/// What a check did with one pending release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReleaseOutcome {
    /// Downloaded, verified, staged; Ready is in the outbox.
    Staged {
        component: ComponentId,
        version: String,
    },
    AlreadyStaged {
        component: ComponentId,
        version: String,
    },
    /// The same version is installed.
    UpToDate {
        component: ComponentId,
        version: String,
    },
    /// Older than the installed version and `allowDowngrade` is not set.
    Downgrade {
        component: ComponentId,
        version: String,
        installed: String,
    },
    /// The component is not installed on this node.
    NotInstalled {
        component: ComponentId,
    },
    UnknownComponent {
        name: String,
    },
    /// This artifact was refused before: not downloaded again.
    PreviouslyRejected {
        component: ComponentId,
        version: String,
    },
    /// Refused now (signature, version, sha256, size, ...); nothing staged.
    Rejected {
        component: ComponentId,
        version: String,
        reason: String,
    },
    /// An installation of the component is in progress.
    Busy {
        component: ComponentId,
    },
    /// The download stopped (network, ERP); what arrived is kept and the next
    /// check resumes from there.
    DownloadIncomplete {
        component: ComponentId,
        version: String,
        downloaded: u64,
        error: String,
    },
}

/// What one [`crate::Updates::check`] did, one outcome per pending release.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckReport {
    pub outcomes: Vec<ReleaseOutcome>,
}

impl CheckReport {
    /// The versions staged by this check.
    pub fn staged(&self) -> Vec<(ComponentId, String)> {
        self.outcomes
            .iter()
            .filter_map(|o| match o {
                ReleaseOutcome::Staged { component, version } => {
                    Some((*component, version.clone()))
                }
                _ => None,
            })
            .collect()
    }
}

/// A staged update, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedView {
    pub version: String,
    pub staged_at: DateTime<Utc>,
    pub notes: Option<String>,
    pub size: u64,
}

/// One component's update situation, for status screens and `spacepos updates list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentView {
    pub component: ComponentId,
    /// The running version; `None` if not installed on this node.
    pub installed: Option<String>,
    /// The version the ERP offered at the last check of this process.
    pub offered: Option<String>,
    pub staged: Option<StagedView>,
    pub snoozes_used: u32,
    pub snoozes_left: u32,
    /// The current snooze ends then.
    pub snoozed_until: Option<DateTime<Utc>>,
    /// When the staged update becomes due (now, or the end of the snooze).
    pub due_at: Option<DateTime<Utc>>,
    /// Why the due update is not applied now (the safe point's answer).
    pub waiting_for: Option<String>,
    /// The version being installed (or whose result is awaited after a restart).
    pub applying: Option<String>,
    /// The last artifact refused: version and reason.
    pub last_rejected: Option<(String, String)>,
}

/// Why a snooze was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnoozeRefusal {
    /// Every snooze of this version is used.
    NoneLeft {
        version: String,
        max: u32,
    },
    NothingStaged,
    /// The update is being installed.
    Applying {
        version: String,
    },
}

impl fmt::Display for SnoozeRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnoozeRefusal::NoneLeft { version, max } => write!(
                f,
                "all {max} snoozes of version {version} are used: it is applied at the next safe point"
            ),
            SnoozeRefusal::NothingStaged => f.write_str("no update is staged"),
            SnoozeRefusal::Applying { version } => {
                write!(f, "version {version} is being installed")
            }
        }
    }
}

/// The answer to [`crate::Updates::snooze`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnoozeOutcome {
    Granted {
        version: String,
        until: DateTime<Utc>,
        /// Snoozes of this version still available.
        left: u32,
    },
    Refused(SnoozeRefusal),
}

/// How an application ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApplyOutcome {
    Applied,
    RolledBack {
        error: String,
    },
    Failed {
        error: String,
    },
    /// The installer ended the app; the result is recorded at the next start.
    RestartPending,
}

/// What [`crate::Updates::apply`] (or the start reconciliation) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    pub component: ComponentId,
    pub version: String,
    pub previous_version: Option<String>,
    pub outcome: ApplyOutcome,
}
