//! In-memory fakes of the ports, honouring the same contracts as the real
//! adapters (checked by [`crate::suites`]).

mod artifact_store;
mod config_state;
mod credential_store;
mod erp;
mod erp_sync;
mod event_bus;
mod local_store;
mod outbox;
mod release_api;
mod slot_fs;
mod state_store;
mod terminal_config_store;
mod updates_apps;

pub use artifact_store::MemoryArtifactStore;
pub use config_state::MemoryConfigState;
pub use credential_store::MemoryCredentialStore;
pub use erp::{MemoryErp, MemoryErpClient};
pub use erp_sync::{MemoryDatasets, MemoryOperations, OperationsFault};
pub use event_bus::MemoryBus;
pub use local_store::MemoryLocalStore;
pub use outbox::MemoryOutbox;
pub use release_api::{Fetch, MemoryRelease, MemoryReleaseApi, ReleaseKey, ReleaseSigner};
pub use slot_fs::{MemoryArtifact, MemorySlotFs};
pub use state_store::MemoryStateStore;
pub use terminal_config_store::MemoryTerminalStore;
pub use updates_apps::{
    MemoryInstaller, MemoryManifestServer, MemorySafePoint, ScriptedInstall, TokioClock,
};
