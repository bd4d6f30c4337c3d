//! In-memory fakes of the ports, honouring the same contracts as the real
//! adapters (checked by [`crate::suites`]).

mod credential_store;
mod erp;
mod state_store;
mod terminal_config_store;

pub use credential_store::MemoryCredentialStore;
pub use erp::{MemoryErp, MemoryErpClient};
pub use state_store::MemoryStateStore;
pub use terminal_config_store::MemoryTerminalStore;
