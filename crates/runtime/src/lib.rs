//! The application layer of a SpacePOS node: it schedules the domain services.
//!
//! [`Runtime::run`] reads the terminal's settings from the ERP at start, then
//! runs, until the shutdown token fires: the ingest loop (seed or catch up every
//! dataset at `ingest_frequency`, and at once when the consumer reports a
//! sequence gap), the send loops (the outbox to `POST /api/pos/operations`
//! every `send_frequency`; tracking events to the bus), and the consume loop
//! (the terminal's queue through the inbox). Each loop finishes its current
//! transaction on shutdown and acknowledges nothing uncommitted. What happened
//! last (sends, ingests, the bus, "re-onboarding needed") is written to
//! `config_state`, where `spacepos status` reads it from another process.
//!
//! It declares no port; it is composed by the apps from the domain crates' ports.

mod events;
mod health;
mod runtime;

pub use health::{Health, LoopReport};
pub use runtime::{
    BusPorts, PresencePorts, Runtime, RuntimeError, RuntimeSettings, SyncPorts, UpdatesMode,
};
