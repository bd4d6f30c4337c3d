//! `spacepos-node`: one SpacePOS node composed from its adapters, shared by
//! the apps that run one (the `spacepos` CLI and the desktop app), so both
//! compose the same runtime and show the same facts. The SpaceFuel service
//! uses its logging and its `User-Agent` parts ([`platform`]).
//!
//! It owns [`Node`] (the data directory, the layered configuration, the file
//! stores, the ERP client), [`runtime::build`] (sync, bus, presence and
//! updates handed to `spacepos-runtime`), the node's answers to presence
//! ([`components`]), the update service as the apps use it ([`updates`]),
//! [`status::collect`] (what `spacepos status` and the desktop's status
//! screen show), onboarding, staff sessions and the outbox views, and
//! [`NodeError`] with its exit-code [`Kind`].
//!
//! Ports: implements `ComponentStatusSource` and `StaffSessionSource`
//! (presence), `SafePoint` and a refusing `ComponentInstaller` (updates) for
//! a headless node; declares none. Printing belongs to the apps.

pub mod components;
pub mod error;
pub mod logging;
pub mod node;
pub mod onboard;
pub mod ops;
pub mod platform;
pub mod runtime;
pub mod staff;
pub mod status;
pub mod updates;

pub use error::{Kind, NodeError};
pub use node::Node;
/// The node's local store, as [`runtime::Composed`] holds it.
pub use spacepos_sqlite::SqliteStore;
