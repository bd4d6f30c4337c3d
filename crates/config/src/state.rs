//! `state.json`: the runtime update state (installation id, SpaceFuel blue/green
//! tracking), its versioned schema and migrations, and the [`StateStore`] port.
//!
//! The schema functions here are pure ([`decode_state`], [`encode_state`]); the
//! file handling (atomic write, backup, recovery) is the store adapter's job.

use std::error::Error as StdError;
use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// The schema version this build writes.
pub const STATE_SCHEMA_VERSION: u32 = 1;

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
}

impl State {
    /// A new state for a new installation.
    pub fn new() -> Self {
        State {
            instance_id: Uuid::new_v4(),
            spacefuel: SpaceFuelState::default(),
            reset_after_corruption: None,
        }
    }
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
pub const MIGRATIONS: &[Migration] = &[];

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
