//! `config_state`: small facts of the node's runtime that every process may read
//! (last sync, broker connection, "re-onboarding needed", last presence beat),
//! and the [`ConfigStateStore`] port that keeps them.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::Value;

/// Failure of a [`ConfigStateStore`].
#[derive(Debug, thiserror::Error)]
#[error("config_state failed ({location}): {source}")]
pub struct ConfigStateError {
    pub location: String,
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync>,
}

/// Keys of the facts the runtime keeps, so readers and writers agree.
pub mod keys {
    /// `true` once the ERP refused the credentials (HTTP 401); cleared by onboarding.
    pub const REONBOARDING_NEEDED: &str = "erp.reonboarding_needed";
    /// `{"at": RFC 3339, "ok": bool, "error": string|null}` of the last ERP call of each loop.
    pub const LAST_SEND: &str = "sync.last_send";
    pub const LAST_INGEST: &str = "sync.last_ingest";
    /// `{"at": RFC 3339, "connected": bool, "error": string|null}`.
    pub const BUS: &str = "bus.connection";
    /// RFC 3339 time of the last dataset event applied.
    pub const LAST_EVENT_APPLIED_AT: &str = "sync.last_event_applied_at";
    /// `{"on": bool, "intervalSeconds": n, "lastBeatAt": RFC 3339|null, "nextBeatAt": RFC 3339|null, "error": string|null}`.
    pub const PRESENCE: &str = "presence";
    /// The last `POSReleasePublishedIntegrationEvent` the node consumed
    /// (`{"component", "version", "at"}`): the SpaceFuel service, which has
    /// no bus of its own on a till site, checks for updates when it changes.
    pub const RELEASE_PUBLISHED: &str = "updates.release_published";
}

/// A small key-value table of JSON facts.
///
/// Contract (checked by `spacepos_testkit::suites::config_state`):
/// - `get` of a key never `put` is `None`; `put` then `get` returns the value;
///   a later `put` replaces it; `all` lists every key.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ConfigStateStore: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Value>, ConfigStateError>;
    async fn put(&self, key: &str, value: &Value) -> Result<(), ConfigStateError>;
    async fn all(&self) -> Result<BTreeMap<String, Value>, ConfigStateError>;
}
