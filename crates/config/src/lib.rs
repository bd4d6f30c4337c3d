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
//! Ports declared here: [`StateStore`] (load/save `state.json`) and
//! [`TerminalConfigStore`] (the ERP-assigned record). `spacepos-fs` implements both.

mod load;
mod model;
mod state;
mod terminal;

pub use load::{
    ConfigError, ConfigLoader, ConfigSource, NON_CONFIG_ENV_VARS, Problem, redacted_text,
    redacted_view,
};
pub use model::{
    Config, Features, NodeConfig, SyncConfig, TerminalConfig, UpdatesConfig, defaults,
};
pub use state::{
    Decoded, LoadedState, MIGRATIONS, Migration, STATE_SCHEMA_VERSION, SchemaError, Slot,
    SlotRecord, SpaceFuelState, State, StateChange, StateError, StateOrigin, StateStore,
    decode_state, decode_with, encode_state,
};
pub use terminal::{
    CompanyInformation, TERMINAL_RECORD_VERSION, TerminalConfigStore, TerminalRecord,
    TerminalStoreError,
};

#[cfg(any(test, feature = "mocks"))]
pub use terminal::MockTerminalConfigStore;
