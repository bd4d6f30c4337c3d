//! One contract suite per port.
//!
//! A suite is a module of `pub async fn case_*(store: &dyn Port)` functions,
//! each checking one clause of the port's rustdoc contract (the case's doc
//! quotes it), plus an exported macro that stamps one `#[tokio::test]` per case.
//! The macro takes an expression that evaluates to a future of a fresh store
//! (it is evaluated once per test), for example:
//!
//! ```no_run
//! mod memory {
//!     spacepos_testkit::state_store_suite!(async { spacepos_testkit::fakes::MemoryStateStore::new() });
//! }
//! mod files {
//!     use spacepos_testkit::suites::Guarded;
//!     spacepos_testkit::state_store_suite!(async {
//!         let dir = tempfile::tempdir().expect("temp dir");
//!         Guarded::new(spacepos_fs::FileStateStore::new(dir.path()), dir)
//!     });
//! }
//! ```
//!
//! The calling crate needs `tokio` (with the `macros` and `rt` features) as a
//! (dev-)dependency, because the stamped tests are `#[tokio::test]`s.

use async_trait::async_trait;
use spacepos_auth::{CachedJwks, CredentialStore, CredentialStoreError, StoredSession};
use spacepos_config::{
    LoadedState, State, StateChange, StateError, StateStore, TerminalConfigStore, TerminalRecord,
    TerminalStoreError,
};

pub mod artifact_store;
pub mod config_state;
pub mod credential_store;
pub mod erp;
pub mod erp_sync;
pub mod event_bus;
pub mod forecourt;
pub mod local_store;
pub mod outbox;
pub mod release_api;
pub mod reopen;
#[cfg(unix)]
pub mod service_manager;
pub mod slot_fs;
pub mod state_store;
pub mod terminal_config_store;
pub mod tracking_encoder;

pub use reopen::Reopen;

/// A store plus something that must live as long as it (a temporary
/// directory), so that a suite factory can return both. It implements the
/// store's ports by delegation.
#[derive(Debug)]
pub struct Guarded<S, G> {
    pub store: S,
    pub guard: G,
}

impl<S, G> Guarded<S, G> {
    pub fn new(store: S, guard: G) -> Self {
        Guarded { store, guard }
    }
}

#[async_trait]
impl<S: StateStore, G: Send + Sync + 'static> StateStore for Guarded<S, G> {
    async fn load(&self) -> Result<LoadedState, StateError> {
        self.store.load().await
    }

    async fn save(&self, state: &State) -> Result<(), StateError> {
        self.store.save(state).await
    }

    async fn update(&self, change: StateChange) -> Result<State, StateError> {
        self.store.update(change).await
    }
}

#[async_trait]
impl<S: TerminalConfigStore, G: Send + Sync + 'static> TerminalConfigStore for Guarded<S, G> {
    async fn load(&self) -> Result<Option<TerminalRecord>, TerminalStoreError> {
        self.store.load().await
    }

    async fn save(&self, record: &TerminalRecord) -> Result<(), TerminalStoreError> {
        self.store.save(record).await
    }
}

#[async_trait]
impl<S: CredentialStore, G: Send + Sync + 'static> CredentialStore for Guarded<S, G> {
    async fn load_session(&self) -> Result<Option<StoredSession>, CredentialStoreError> {
        self.store.load_session().await
    }

    async fn save_session(&self, session: &StoredSession) -> Result<(), CredentialStoreError> {
        self.store.save_session(session).await
    }

    async fn clear_session(&self) -> Result<(), CredentialStoreError> {
        self.store.clear_session().await
    }

    async fn load_jwks(&self) -> Result<Option<CachedJwks>, CredentialStoreError> {
        self.store.load_jwks().await
    }

    async fn save_jwks(&self, jwks: &CachedJwks) -> Result<(), CredentialStoreError> {
        self.store.save_jwks(jwks).await
    }
}
