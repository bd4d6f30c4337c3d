//! In-memory fakes of the ports, honouring the same contracts as the real
//! adapters (checked by [`crate::suites`]).

mod config_state;
mod credential_store;
mod erp;
mod erp_sync;
mod event_bus;
mod local_store;
mod outbox;
mod state_store;
mod terminal_config_store;

pub use config_state::MemoryConfigState;
pub use credential_store::MemoryCredentialStore;
pub use erp::{MemoryErp, MemoryErpClient};
pub use erp_sync::{MemoryDatasets, MemoryOperations, OperationsFault};
pub use event_bus::MemoryBus;
pub use local_store::MemoryLocalStore;
pub use outbox::MemoryOutbox;
pub use state_store::MemoryStateStore;
pub use terminal_config_store::MemoryTerminalStore;
