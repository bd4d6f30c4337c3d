//! `state.json`: the runtime update state (installation id, SpaceFuel blue/green
//! tracking, component updates in flight), its versioned schema and migrations,
//! and the [`StateStore`] port.
//!
//! The schema functions here are pure ([`decode_state`], [`encode_state`]); the
//! file handling (atomic write, backup, recovery) is the store adapter's job.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::fmt;

use spacepos_core::ComponentId;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The schema version this build writes.
pub const STATE_SCHEMA_VERSION: u32 = 3;

/// One of SpaceFuel's two installation slots, `extensions/spacefuel/{blue,green}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    Blue,
    Green,
}

impl Slot {
    pub fn other(self) -> Slot {
        match self {
            Slot::Blue => Slot::Green,
            Slot::Green => Slot::Blue,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Blue => "blue",
            Slot::Green => "green",
        }
    }
}

impl std::str::FromStr for Slot {
    type Err = String;

    fn from_str(s: &str) -> Result<Slot, String> {
        match s {
            "blue" => Ok(Slot::Blue),
            "green" => Ok(Slot::Green),
            other => Err(format!(
                "`{other}` is not a SpaceFuel slot: use blue or green"
            )),
        }
    }
}

impl fmt::Display for Slot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is installed in one SpaceFuel slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotRecord {
    pub version: String,
    /// The artifact's signature and sha256 were verified before it was extracted here.
    pub verified: bool,
    pub installed_at: DateTime<Utc>,
}

/// SpaceFuel's blue/green tracking.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SpaceFuelState {
    /// The slot the service runs from. `None` means "not installed" on a fresh
    /// installation, or "unknown, discover it from the slots" after
    /// [`State::reset_after_corruption`] is set; it is never silently `blue`.
    pub active_slot: Option<Slot>,
    pub blue: Option<SlotRecord>,
    pub green: Option<SlotRecord>,
    /// The switch in progress (schema v3), journaled before each step so a
    /// restart after a crash finishes it or rolls it back. Owned by
    /// `spacepos-spacefuel`.
    #[serde(default)]
    pub switch: Option<SwitchRecord>,
}

impl SpaceFuelState {
    pub fn slot(&self, slot: Slot) -> Option<&SlotRecord> {
        match slot {
            Slot::Blue => self.blue.as_ref(),
            Slot::Green => self.green.as_ref(),
        }
    }

    pub fn slot_mut(&mut self, slot: Slot) -> &mut Option<SlotRecord> {
        match slot {
            Slot::Blue => &mut self.blue,
            Slot::Green => &mut self.green,
        }
    }

    /// The version of the active slot, if known.
    pub fn active_version(&self) -> Option<&str> {
        self.active_slot
            .and_then(|s| self.slot(s))
            .map(|r| r.version.as_str())
    }
}

/// Where a blue/green switch stands. The steps in order: `Stopping` (the old
/// slot is still active; its service is being stopped), `Starting` (the new
/// slot is active; its service is being started), `Checking` (the new service
/// runs; its health is checked within the grace), `RollingBack` (the health
/// check failed: the old slot is active again and being restarted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchStep {
    Stopping,
    Starting,
    Checking,
    RollingBack,
}

/// A SpaceFuel slot switch in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchRecord {
    /// The slot active before the switch (`None` on a first installation).
    pub from: Option<Slot>,
    pub from_version: Option<String>,
    pub to: Slot,
    pub to_version: String,
    pub step: SwitchStep,
    pub started_at: DateTime<Utc>,
    /// Why the switch is being rolled back.
    #[serde(default)]
    pub error: Option<String>,
}

/// The content of `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    /// Created once per installation; presence reports it as `InstanceId`.
    pub instance_id: Uuid,
    #[serde(default)]
    pub spacefuel: SpaceFuelState,
    /// Set when `state.json` and its backup were both unreadable and the state
    /// started over: whoever owns a piece of it (SpaceFuel's active slot) must
    /// rediscover it rather than assume a default.
    #[serde(default)]
    pub reset_after_corruption: Option<DateTime<Utc>>,
    /// Component updates in flight (schema v2): what is staged, being applied,
    /// snoozed or refused, per component. Owned by `spacepos-updates`.
    #[serde(default)]
    pub updates: UpdatesState,
}

impl State {
    /// A new state for a new installation.
    pub fn new() -> Self {
        State {
            instance_id: Uuid::new_v4(),
            spacefuel: SpaceFuelState::default(),
            reset_after_corruption: None,
            updates: UpdatesState::default(),
        }
    }
}

/// The update records of every component (`state.json` schema v2, key `updates`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct UpdatesState {
    #[serde(default)]
    pub spacepos: ComponentUpdateState,
    #[serde(default)]
    pub spacefuel: ComponentUpdateState,
}

impl UpdatesState {
    pub fn component(&self, component: ComponentId) -> &ComponentUpdateState {
        match component {
            ComponentId::SpacePos => &self.spacepos,
            ComponentId::SpaceFuel => &self.spacefuel,
        }
    }

    pub fn component_mut(&mut self, component: ComponentId) -> &mut ComponentUpdateState {
        match component {
            ComponentId::SpacePos => &mut self.spacepos,
            ComponentId::SpaceFuel => &mut self.spacefuel,
        }
    }
}

/// The update records of one component.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ComponentUpdateState {
    /// The release downloaded, verified and staged, waiting to be applied.
    #[serde(default)]
    pub staged: Option<StagedRecord>,
    /// An installation started (recorded before the installer is called) and
    /// not yet reported.
    #[serde(default)]
    pub applying: Option<ApplyingRecord>,
    /// Snoozes granted, per version: the count never resets for a version.
    #[serde(default)]
    pub snoozes: BTreeMap<String, SnoozeRecord>,
    /// Artifacts refused (bad signature, sha256, version, or an installation
    /// that failed): never downloaded or applied again.
    #[serde(default)]
    pub rejected: Vec<RejectedArtifact>,
}

impl ComponentUpdateState {
    /// Whether the artifact `(version, sha256)` was refused before.
    pub fn is_rejected(&self, version: &str, sha256: &str) -> bool {
        self.rejected
            .iter()
            .any(|r| r.version == version && r.sha256.eq_ignore_ascii_case(sha256))
    }
}

/// A verified, staged release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagedRecord {
    pub version: String,
    /// Lower-case hex digest of the artifact.
    pub sha256: String,
    /// Where the staged artifact is (as the artifact store reported it).
    pub path: String,
    pub size: u64,
    /// The release as the ERP announced it, for the updater's manifest.
    pub url: String,
    /// Base64 of the minisign `.sig` text, as the ERP sent it.
    pub signature: String,
    #[serde(default)]
    pub notes: Option<String>,
    #[serde(default)]
    pub pub_date: Option<DateTime<Utc>>,
    pub staged_at: DateTime<Utc>,
    /// SpaceFuel: the slot it will be installed into (the inactive one when it
    /// was staged), as the Ready event reports it; `None` for SpacePOS.
    #[serde(default)]
    pub slot: Option<Slot>,
    /// The `Id` of its `POSComponentReadyEvent`, chosen when it was staged, so
    /// that writing the event to the outbox again never makes a second one.
    pub ready_event_id: Uuid,
    /// The Ready event is in the outbox.
    #[serde(default)]
    pub ready_queued: bool,
}

/// An installation in progress (or whose result is not reported yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyingRecord {
    /// The version being installed.
    pub version: String,
    pub sha256: String,
    /// The version running before; `None` if it was unknown.
    #[serde(default)]
    pub previous_version: Option<String>,
    pub started_at: DateTime<Utc>,
    /// The `Id` of its `POSComponentAppliedEvent`, chosen before installing.
    pub applied_event_id: Uuid,
    /// Set once the result is known; the record is cleared once the event is
    /// in the outbox.
    #[serde(default)]
    pub outcome: Option<UpdateOutcomeRecord>,
}

/// The result of an installation, as `POSComponentAppliedEvent` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum UpdateResult {
    Applied,
    RolledBack,
    Failed,
}

impl UpdateResult {
    pub fn as_str(self) -> &'static str {
        match self {
            UpdateResult::Applied => "Applied",
            UpdateResult::RolledBack => "RolledBack",
            UpdateResult::Failed => "Failed",
        }
    }
}

/// A known installation result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpdateOutcomeRecord {
    pub result: UpdateResult,
    #[serde(default)]
    pub error: Option<String>,
    pub at: DateTime<Utc>,
}

/// Snoozes of one version of a component.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SnoozeRecord {
    pub count: u32,
    /// The last snooze ends then.
    #[serde(default)]
    pub until: Option<DateTime<Utc>>,
}

/// An artifact that was refused and must not be fetched or applied again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectedArtifact {
    pub version: String,
    pub sha256: String,
    pub reason: String,
    pub at: DateTime<Utc>,
}

impl Default for State {
    fn default() -> Self {
        State::new()
    }
}

/// Why a `state.json` text is not a usable state.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("the file is empty")]
    Empty,
    #[error("the file is not valid JSON ({0})")]
    NotJson(String),
    #[error("the file has no valid `schema_version`")]
    NoVersion,
    #[error(
        "the file was written by a newer SpacePOS (schema_version {found}, this build reads up to {supported}); \
         upgrade SpacePOS or restore an older state.json"
    )]
    Newer { found: u32, supported: u32 },
    #[error("migrating schema_version {from} to {to} failed: {problem}")]
    Migration { from: u32, to: u32, problem: String },
    #[error("the file does not match schema_version {version}: {problem}")]
    Invalid { version: u32, problem: String },
}

impl SchemaError {
    /// Whether the content is damaged (so a backup should be tried), as opposed
    /// to readable but not ours to touch (a newer schema).
    pub fn is_corruption(&self) -> bool {
        !matches!(self, SchemaError::Newer { .. })
    }
}

/// One migration step: turns the JSON of schema `from` into schema `from + 1`.
#[derive(Clone, Copy)]
pub struct Migration {
    pub from: u32,
    pub migrate: fn(Value) -> Result<Value, String>,
}

impl fmt::Debug for Migration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Migration({} -> {})", self.from, self.from + 1)
    }
}

/// The migrations of this build, in order. Each schema change adds one step.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        from: 1,
        migrate: v1_to_v2,
    },
    Migration {
        from: 2,
        migrate: v2_to_v3,
    },
];

/// v2 -> v3: adds SpaceFuel's (empty) switch journal. A v2 build reading a v3
/// file refuses it rather than ignore a switch in progress.
fn v2_to_v3(mut value: Value) -> Result<Value, String> {
    let obj = value
        .as_object_mut()
        .ok_or("the top level is not a JSON object")?;
    let spacefuel = obj
        .entry("spacefuel")
        .or_insert_with(|| Value::Object(Default::default()));
    let sf = spacefuel
        .as_object_mut()
        .ok_or("`spacefuel` is not a JSON object")?;
    sf.entry("switch").or_insert(Value::Null);
    Ok(value)
}

/// v1 -> v2: adds the (empty) `updates` section.
fn v1_to_v2(mut value: Value) -> Result<Value, String> {
    let obj = value
        .as_object_mut()
        .ok_or("the top level is not a JSON object")?;
    if !obj.contains_key("updates") {
        obj.insert(
            "updates".into(),
            serde_json::to_value(UpdatesState::default()).map_err(|e| e.to_string())?,
        );
    }
    Ok(value)
}

/// A decoded state and the schema version it was stored with.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub state: State,
    /// The version found in the file; less than [`STATE_SCHEMA_VERSION`] when migrated.
    pub stored_version: u32,
}

/// Parse `state.json` bytes, migrating older schemas to the current one.
pub fn decode_state(bytes: &[u8]) -> Result<Decoded, SchemaError> {
    decode_with(bytes, STATE_SCHEMA_VERSION, MIGRATIONS)
}

/// [`decode_state`] with an explicit target version and migration chain (tests
/// use it to exercise the mechanism with their own steps).
pub fn decode_with(
    bytes: &[u8],
    current: u32,
    migrations: &[Migration],
) -> Result<Decoded, SchemaError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(SchemaError::Empty);
    }
    let mut value: Value =
        serde_json::from_slice(bytes).map_err(|e| SchemaError::NotJson(e.to_string()))?;
    let stored_version = value
        .get("schema_version")
        .and_then(Value::as_u64)
        .and_then(|v| u32::try_from(v).ok())
        .ok_or(SchemaError::NoVersion)?;
    if stored_version > current {
        return Err(SchemaError::Newer {
            found: stored_version,
            supported: current,
        });
    }
    let mut version = stored_version;
    while version < current {
        let step = migrations
            .iter()
            .find(|m| m.from == version)
            .ok_or_else(|| SchemaError::Migration {
                from: version,
                to: version + 1,
                problem: "this build has no migration for it".into(),
            })?;
        value = (step.migrate)(value).map_err(|problem| SchemaError::Migration {
            from: version,
            to: version + 1,
            problem,
        })?;
        version += 1;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("schema_version".into(), Value::from(version));
        }
    }
    let state: State = serde_json::from_value(value).map_err(|e| SchemaError::Invalid {
        version,
        problem: e.to_string(),
    })?;
    Ok(Decoded {
        state,
        stored_version,
    })
}

/// Serialize a state as `state.json` bytes (pretty JSON with `schema_version`).
pub fn encode_state(state: &State) -> Vec<u8> {
    #[derive(Serialize)]
    struct Versioned<'a> {
        schema_version: u32,
        #[serde(flatten)]
        state: &'a State,
    }
    let mut out = serde_json::to_vec_pretty(&Versioned {
        schema_version: STATE_SCHEMA_VERSION,
        state,
    })
    .unwrap_or_else(|e| unreachable!("State always serializes: {e}"));
    out.push(b'\n');
    out
}

/// How [`StateStore::load`] came by the state it returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateOrigin {
    /// Read as stored.
    Loaded,
    /// No state existed: a new one was created and saved.
    Created,
    /// Stored with an older schema, migrated and saved.
    Migrated { from: u32 },
    /// The main file was unreadable; the last-good backup was restored.
    /// `problem` says what was wrong, `location` where.
    RestoredFromBackup { location: String, problem: String },
    /// Both the file and its backup were unreadable: they were moved aside
    /// (`quarantined`) and a new state started, with
    /// [`State::reset_after_corruption`] set.
    ResetAfterCorruption {
        location: String,
        problem: String,
        quarantined: Vec<String>,
    },
}

/// A state and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedState {
    pub state: State,
    pub origin: StateOrigin,
}

/// Failure of a [`StateStore`].
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The state is readable but must not be touched by this build.
    #[error("{location}: {source}")]
    Schema {
        location: String,
        #[source]
        source: SchemaError,
    },
    #[error("state store failed at {location}: {source}")]
    Backend {
        location: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

/// A change applied to the state under the store's lock.
pub type StateChange = Box<dyn FnOnce(&mut State) + Send>;

/// Keeps [`State`].
///
/// Contract (checked by `spacepos_testkit::suites::state_store`):
/// - `load` never fails because the stored state is damaged: it restores the
///   last-good backup, or starts over with `reset_after_corruption` set, and
///   says which in [`LoadedState::origin`]. It fails only for I/O errors and
///   for a state written by a newer schema (which it leaves untouched).
/// - `load` on an empty store creates a state, saves it and returns
///   [`StateOrigin::Created`]; a second `load` returns the same `instance_id`.
/// - `save` is atomic and durable: after a crash at any moment, `load` returns
///   the old or the new state.
/// - `update` applies the change to the latest saved state and saves it while
///   holding an exclusive lock, so concurrent updates (even from two processes)
///   are not lost; it returns the saved state.
#[async_trait]
pub trait StateStore: Send + Sync + 'static {
    async fn load(&self) -> Result<LoadedState, StateError>;
    async fn save(&self, state: &State) -> Result<(), StateError>;
    async fn update(&self, change: StateChange) -> Result<State, StateError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_round_trip() {
        let mut s = State::new();
        s.spacefuel.active_slot = Some(Slot::Green);
        let bytes = encode_state(&s);
        let d = decode_state(&bytes).unwrap();
        assert_eq!(d.state, s);
        assert_eq!(d.stored_version, STATE_SCHEMA_VERSION);
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["schema_version"], STATE_SCHEMA_VERSION);
    }

    #[test]
    fn damaged_inputs_are_classified() {
        assert_eq!(decode_state(b"").unwrap_err(), SchemaError::Empty);
        assert_eq!(decode_state(b"  \n").unwrap_err(), SchemaError::Empty);
        assert!(matches!(
            decode_state(b"{\"schema_version\": 1, \"inst").unwrap_err(),
            SchemaError::NotJson(_)
        ));
        assert!(matches!(
            decode_state(b"\x00\x01garbage").unwrap_err(),
            SchemaError::NotJson(_)
        ));
        assert_eq!(
            decode_state(b"{\"instance_id\": 1}").unwrap_err(),
            SchemaError::NoVersion
        );
        assert!(matches!(
            decode_state(b"{\"schema_version\": 1, \"instance_id\": 5}").unwrap_err(),
            SchemaError::Invalid { .. }
        ));
        let newer = decode_state(b"{\"schema_version\": 99}").unwrap_err();
        assert!(!newer.is_corruption());
        assert!(newer.to_string().contains("upgrade SpacePOS"));
    }

    #[test]
    fn a_v1_file_is_migrated_to_v2_and_keeps_everything() {
        let id = Uuid::new_v4();
        let v1 = format!(
            r#"{{"schema_version": 1, "instance_id": "{id}",
                "spacefuel": {{"active_slot": "green", "blue": null,
                    "green": {{"version": "2.1.0", "verified": true, "installed_at": "2025-04-02T22:15:07Z"}}}},
                "reset_after_corruption": "2025-05-06T07:08:09Z"}}"#
        );
        let d = decode_state(v1.as_bytes()).unwrap();
        assert_eq!(d.stored_version, 1);
        assert_eq!(d.state.instance_id, id);
        assert_eq!(d.state.spacefuel.active_slot, Some(Slot::Green));
        assert_eq!(d.state.spacefuel.green.as_ref().unwrap().version, "2.1.0");
        assert!(d.state.reset_after_corruption.is_some());
        assert_eq!(d.state.updates, UpdatesState::default());
        let now: Value = serde_json::from_slice(&encode_state(&d.state)).unwrap();
        assert_eq!(now["schema_version"], STATE_SCHEMA_VERSION);
        assert!(now["updates"]["spacepos"].is_object(), "{now}");
        assert_eq!(
            decode_state(&encode_state(&d.state))
                .unwrap()
                .stored_version,
            STATE_SCHEMA_VERSION
        );
    }

    #[test]
    fn a_v2_file_gains_an_empty_switch_journal_and_keeps_its_updates() {
        let id = Uuid::new_v4();
        let v2 = format!(
            r#"{{"schema_version": 2, "instance_id": "{id}",
                "spacefuel": {{"active_slot": "blue",
                    "blue": {{"version": "2.1.0", "verified": true, "installed_at": "2025-04-02T22:15:07Z"}},
                    "green": null}},
                "updates": {{"spacepos": {{}}, "spacefuel": {{"snoozes": {{"2.2.0": {{"count": 2, "until": null}}}}}}}}}}"#
        );
        let d = decode_state(v2.as_bytes()).unwrap();
        assert_eq!(d.stored_version, 2);
        assert_eq!(d.state.spacefuel.active_slot, Some(Slot::Blue));
        assert_eq!(d.state.spacefuel.switch, None);
        assert_eq!(d.state.spacefuel.active_version(), Some("2.1.0"));
        let stored: Value = serde_json::from_slice(&encode_state(&d.state)).unwrap();
        assert_eq!(stored["schema_version"], 3);
        assert!(stored["spacefuel"]["switch"].is_null(), "{stored}");
        assert_eq!(
            stored["updates"]["spacefuel"]["snoozes"]["2.2.0"]["count"], 2,
            "{stored}"
        );
    }

    #[test]
    fn a_switch_in_progress_round_trips() {
        let mut s = State::new();
        s.spacefuel.switch = Some(SwitchRecord {
            from: Some(Slot::Blue),
            from_version: Some("2.1.0".into()),
            to: Slot::Green,
            to_version: "2.2.0".into(),
            step: SwitchStep::Checking,
            started_at: Utc::now(),
            error: None,
        });
        let d = decode_state(&encode_state(&s)).unwrap();
        assert_eq!(d.state, s);
        let v: Value = serde_json::from_slice(&encode_state(&s)).unwrap();
        assert_eq!(v["spacefuel"]["switch"]["step"], "checking");
    }

    #[test]
    fn update_records_round_trip() {
        let at = DateTime::parse_from_rfc3339("2026-11-24T08:31:12Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut s = State::new();
        let c = s.updates.component_mut(ComponentId::SpaceFuel);
        c.staged = Some(StagedRecord {
            version: "2.2.0".into(),
            sha256: "ab".repeat(32),
            path: "/data/updates/spacefuel/x.zip".into(),
            size: 7,
            url: "https://erp/x.zip".into(),
            signature: "c2ln".into(),
            notes: None,
            pub_date: Some(at),
            staged_at: at,
            slot: Some(Slot::Green),
            ready_event_id: Uuid::new_v4(),
            ready_queued: true,
        });
        c.applying = Some(ApplyingRecord {
            version: "2.2.0".into(),
            sha256: "ab".repeat(32),
            previous_version: Some("2.1.0".into()),
            started_at: at,
            applied_event_id: Uuid::new_v4(),
            outcome: Some(UpdateOutcomeRecord {
                result: UpdateResult::RolledBack,
                error: Some("health check failed".into()),
                at,
            }),
        });
        c.snoozes.insert(
            "2.2.0".into(),
            SnoozeRecord {
                count: 2,
                until: Some(at),
            },
        );
        c.rejected.push(RejectedArtifact {
            version: "9.9.9".into(),
            sha256: "cd".repeat(32),
            reason: "bad signature".into(),
            at,
        });
        let d = decode_state(&encode_state(&s)).unwrap();
        assert_eq!(d.state, s);
        assert!(
            d.state
                .updates
                .spacefuel
                .is_rejected("9.9.9", &"CD".repeat(32))
        );
    }

    fn v1_to_v2(mut v: Value) -> Result<Value, String> {
        let obj = v.as_object_mut().ok_or("not an object")?;
        let id = obj.remove("installation").ok_or("no `installation`")?;
        obj.insert("instance_id".into(), id);
        Ok(v)
    }

    #[test]
    fn migrations_run_in_order_and_report_the_stored_version() {
        let id = Uuid::new_v4();
        let old = format!("{{\"schema_version\": 1, \"installation\": \"{id}\"}}");
        let steps = [Migration {
            from: 1,
            migrate: v1_to_v2,
        }];
        let d = decode_with(old.as_bytes(), 2, &steps).unwrap();
        assert_eq!(d.stored_version, 1);
        assert_eq!(d.state.instance_id, id);
        let missing = decode_with(old.as_bytes(), 3, &steps).unwrap_err();
        assert!(
            matches!(missing, SchemaError::Migration { from: 2, to: 3, .. }),
            "{missing:?}"
        );
        let broken = decode_with(b"{\"schema_version\": 1}", 2, &steps).unwrap_err();
        assert!(matches!(broken, SchemaError::Migration { from: 1, .. }));
    }
}
