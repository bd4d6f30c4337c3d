//! What the loops last did, kept in `config_state` for other processes.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use spacepos_config::{ConfigStateStore, keys};
use tracing::debug;

/// The outcome of one loop iteration, as `status` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct LoopReport {
    pub at: DateTime<Utc>,
    pub ok: bool,
    pub error: Option<String>,
    pub detail: Value,
}

impl LoopReport {
    pub fn to_json(&self) -> Value {
        json!({"at": self.at.to_rfc3339(), "ok": self.ok, "error": self.error, "detail": self.detail})
    }
}

/// Writes loop outcomes to `config_state`. Failing to write one is logged at
/// debug level and otherwise ignored: health is informative, never blocking.
#[derive(Clone)]
pub struct Health {
    store: Arc<dyn ConfigStateStore>,
}

impl std::fmt::Debug for Health {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Health")
    }
}

impl Health {
    pub fn new(store: Arc<dyn ConfigStateStore>) -> Self {
        Health { store }
    }

    pub async fn record(&self, key: &str, report: &LoopReport) {
        self.put(key, &report.to_json()).await;
    }

    pub async fn put(&self, key: &str, value: &Value) {
        if let Err(e) = self.store.put(key, value).await {
            debug!(key, error = %e, "could not record health");
        }
    }

    pub async fn reonboarding_needed(&self, needed: bool) {
        self.put(keys::REONBOARDING_NEEDED, &Value::Bool(needed))
            .await;
    }
}
