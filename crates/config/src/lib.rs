//! Configuration and persisted runtime state of a SpacePOS node.
//!
//! Owns the node config (API URLs, feature flags) and the terminal config
//! (identity, onboarding code, sync toggles, ERP endpoints), layered with
//! figment as built-in defaults < TOML file (`--config` / `SPACEPOS_CONFIG`) <
//! `SPACEPOS_*` environment < values the ERP set at run time ([`TerminalRecord`]),
//! and validated so that every error names the field, where its value came from
//! and what is allowed ([`ConfigLoader`], [`ConfigError`]). Also owns the
//! `state.json` schema and its migrations ([`State`], [`decode_state`]).
//!
//! Ports declared here: [`StateStore`] (load/save `state.json`),
//! [`TerminalConfigStore`] (the ERP-assigned record) and [`ConfigStateStore`]
//! (`config_state`: runtime facts every process of the node may read).
//! `spacepos-fs` implements the first two, `spacepos-sqlite` the third.

mod config_state;
mod load;
mod model;
mod state;
mod terminal;

pub use config_state::{ConfigStateError, ConfigStateStore, keys};
pub use load::{
    ConfigError, ConfigLoader, ConfigSource, NON_CONFIG_ENV_VARS, Problem, redacted_text,
    redacted_view,
};
pub use model::{
    Config, Features, NodeConfig, SimulatorConfig, SpaceFuelConfig, SyncConfig, TerminalConfig,
    UpdatesConfig, defaults,
};
pub use state::{
    ApplyingRecord, ComponentUpdateState, Decoded, LoadedState, MIGRATIONS, Migration,
    RejectedArtifact, STATE_SCHEMA_VERSION, SchemaError, Slot, SlotRecord, SnoozeRecord,
    SpaceFuelState, StagedRecord, State, StateChange, StateError, StateOrigin, StateStore,
    SwitchRecord, SwitchStep, UpdateOutcomeRecord, UpdateResult, UpdatesState, decode_state,
    decode_with, encode_state,
};
pub use terminal::{
    CompanyInformation, TERMINAL_RECORD_VERSION, TerminalConfigStore, TerminalRecord,
    TerminalStoreError,
};

#[cfg(any(test, feature = "mocks"))]
pub use config_state::MockConfigStateStore;
#[cfg(any(test, feature = "mocks"))]
pub use terminal::MockTerminalConfigStore;
