//! What the ERP assigned to this terminal (identity, credentials, endpoints,
//! run-time settings), persisted as the top configuration layer, and the
//! [`TerminalConfigStore`] port that keeps it.

use std::error::Error as StdError;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use spacepos_core::{DeviceCredentials, RedactedUrl, Secret, TerminalIdentity};
use url::Url;

/// The company a terminal belongs to, as the ERP describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompanyInformation {
    pub name: Option<String>,
    pub vat_number: Option<String>,
    pub address: Option<String>,
    pub currency: Option<String>,
    pub time_zone: Option<String>,
}

/// Current schema of `terminal.json`.
pub const TERMINAL_RECORD_VERSION: u32 = 1;

/// Everything the ERP told this terminal: at onboarding (credentials, identity,
/// endpoints, company, presence settings) and later at run time
/// (`terminals/me`, `POSPresenceIntervalUpdatedIntegrationEvent`).
///
/// It is the highest configuration layer: a value here wins over the built-in
/// defaults, the config file and the environment. It holds the client secret, so
/// its store keeps it readable by the owner only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TerminalRecord {
    pub schema_version: u32,
    pub client_id: String,
    pub client_secret: Secret,
    pub store_number: u32,
    pub terminal_number: u32,
    pub api_endpoint: Option<Url>,
    pub amqp_url: Option<RedactedUrl>,
    pub company_information: Option<CompanyInformation>,
    pub report_presence: Option<bool>,
    pub presence_interval_seconds: Option<u32>,
    pub onboarded_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl TerminalRecord {
    pub fn identity(&self) -> TerminalIdentity {
        TerminalIdentity {
            client_id: self.client_id.clone(),
            store_number: self.store_number,
            terminal_number: self.terminal_number,
        }
    }

    pub fn credentials(&self) -> DeviceCredentials {
        DeviceCredentials {
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.clone(),
        }
    }
}

/// Failure of a [`TerminalConfigStore`].
#[derive(Debug, thiserror::Error)]
pub enum TerminalStoreError {
    /// The stored record cannot be read (corrupt, or written by a newer version).
    /// `location` names the file; the message says what to do.
    #[error("{location}: {problem}")]
    Unreadable { location: String, problem: String },
    #[error("terminal record store failed at {location}: {source}")]
    Backend {
        location: String,
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
}

/// Keeps the [`TerminalRecord`].
///
/// Contract (checked by `spacepos_testkit::suites::terminal_config_store`):
/// - `load` on a store that never saw `save` returns `Ok(None)`.
/// - `save` replaces the whole record atomically: after a crash at any moment,
///   `load` returns the old record or the new one, never a mix or nothing.
/// - `save` then `load` returns an equal record, secret included.
/// - A file-backed store keeps the record readable by the owner only (0600 on Unix).
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TerminalConfigStore: Send + Sync + 'static {
    async fn load(&self) -> Result<Option<TerminalRecord>, TerminalStoreError>;
    async fn save(&self, record: &TerminalRecord) -> Result<(), TerminalStoreError>;
}
