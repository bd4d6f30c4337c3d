//! The outbox as operators see it: entries as scripts and the UI read them,
//! and store errors as node errors.

use chrono::{DateTime, Utc};
use serde::Serialize;
use spacepos_sync::{QueuedOperation, StoreError};
use uuid::Uuid;

use crate::error::{Kind, NodeError};

/// A store error as a node error: not found is a usage error, a conflict a refusal.
pub fn store_error(e: StoreError) -> NodeError {
    match e {
        StoreError::NotFound(m) => NodeError::new(Kind::Usage, m),
        StoreError::Conflict(m) => NodeError::new(Kind::Refused, m),
        other => NodeError::new(Kind::Storage, other.to_string()),
    }
}

/// An outbox entry as scripts read it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationView {
    pub seq: i64,
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub destination: &'static str,
    pub state: &'static str,
    pub occurred_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub store_staff_id: Option<String>,
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub completed_at: Option<DateTime<Utc>>,
    pub payload: serde_json::Value,
}

impl From<&QueuedOperation> for OperationView {
    fn from(op: &QueuedOperation) -> Self {
        OperationView {
            seq: op.seq,
            id: op.id,
            kind: op.kind.clone(),
            destination: op.destination.as_str(),
            state: op.state.as_str(),
            occurred_at: op.occurred_at,
            created_at: op.created_at,
            store_staff_id: op.store_staff_id.clone(),
            attempts: op.attempts,
            next_attempt_at: op.next_attempt_at,
            last_error: op.last_error.clone(),
            completed_at: op.completed_at,
            payload: op.payload.clone(),
        }
    }
}
