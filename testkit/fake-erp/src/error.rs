use std::net::SocketAddr;

/// Why a call on the [`crate::FakeErp`] handle failed. Messages name what was
/// asked for and never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum FakeErpError {
    #[error("the fake ERP cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    #[error("the fake ERP has been shut down; start a new one")]
    ShutDown,

    #[error("the fake ERP has no dataset named {0:?}")]
    UnknownDataset(String),

    #[error(
        "dataset {dataset:?} has no change with sequence {sequence} (it holds {first}..={last})"
    )]
    UnknownSequence {
        dataset: String,
        sequence: u64,
        first: u64,
        last: u64,
    },

    #[error("invalid change for dataset {dataset:?}: {reason}")]
    InvalidChange { dataset: String, reason: String },

    #[error("the fake ERP has no terminal with client id {0:?}")]
    UnknownTerminal(String),

    #[error("invalid configuration: {0}")]
    InvalidConfig(String),

    #[error("key material: {0}")]
    Keys(String),
}
