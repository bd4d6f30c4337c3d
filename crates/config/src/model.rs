//! The validated configuration the rest of the system reads.
//!
//! Produced by [`crate::ConfigLoader`] from the layers built-in defaults < TOML
//! file < `SPACEPOS_*` environment < [`crate::TerminalRecord`] (values the ERP
//! set). Every value here has passed validation; units are in the types.

use std::time::Duration;

use spacepos_core::{DeviceCredentials, RedactedUrl, TerminalIdentity};
use url::Url;

use crate::CompanyInformation;

/// Built-in defaults, documented in `docs/configuration.md`.
pub mod defaults {
    /// Exchange of the ERP's event bus (contract section 7).
    pub const EXCHANGE: &str = "erp_event_bus";
    /// Pull changes every 5 minutes: live events carry the day's changes; the
    /// pull is the safety net when the broker is unreachable or an event was missed.
    pub const INGEST_FREQUENCY_SECONDS: u64 = 300;
    /// Push queued operations every 5 seconds: a sale reaches the ERP within
    /// seconds when online, in batches of up to 500 when catching up.
    pub const SEND_FREQUENCY_SECONDS: u64 = 5;
    /// After a failed push or pull, wait 1 minute (plus jitter) before retrying,
    /// unless the ERP asked for longer with `Retry-After`.
    pub const DATA_SYNC_RETRY_INTERVAL_MINUTES: u64 = 1;
    /// Presence heartbeat every 300 s (the seed's default).
    pub const PRESENCE_INTERVAL_SECONDS: u32 = 300;
    /// Allowed presence intervals (contract section 7 clamps ERP values to this).
    pub const PRESENCE_INTERVAL_RANGE: std::ops::RangeInclusive<u32> = 30..=86_400;
    pub const REPORT_PRESENCE: bool = true;
    /// Look for pending releases every hour (and at once on a release event).
    pub const UPDATE_CHECK_INTERVAL_SECONDS: u64 = 3_600;
    /// A snooze postpones an update by 5 minutes ...
    pub const SNOOZE_MINUTES: u64 = 5;
    /// ... at most 3 times per component and version.
    pub const MAX_SNOOZES: u32 = 3;
    /// A new SpaceFuel version has 60 s to report healthy before it is rolled back.
    pub const SPACEFUEL_HEALTH_GRACE_SECONDS: u64 = 60;
    /// The forecourt simulator: 4 pumps at 500 ml/s (30 l/min), no automatic customers.
    pub const SIMULATOR_PUMPS: u8 = 4;
    pub const SIMULATOR_FLOW_ML_PER_SECOND: u64 = 500;
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub node: NodeConfig,
    pub terminal: TerminalConfig,
    pub sync: SyncConfig,
    pub updates: UpdatesConfig,
    pub spacefuel: SpaceFuelConfig,
}

/// The SpaceFuel service (`[spacefuel]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpaceFuelConfig {
    /// `health_grace_seconds`: how long a newly switched-in version has to
    /// report healthy before it is rolled back.
    pub health_grace: Duration,
    /// `auto_authorise`: SpaceFuel authorises a calling pump itself (an
    /// outdoor payment terminal, a SpaceFuel-only site); otherwise a till does.
    pub auto_authorise: bool,
    /// `auto_settle`: SpaceFuel clears a finished sale from the controller
    /// once it is stored (no till takes the payment). Defaults to `true` when
    /// `node.features.till` is `false`.
    pub auto_settle: bool,
    /// `[spacefuel.simulator]`: the forecourt simulator, the controller used
    /// until a real controller adapter exists.
    pub simulator: SimulatorConfig,
}

/// The forecourt simulator (`[spacefuel.simulator]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulatorConfig {
    pub pumps: u8,
    pub flow_ml_per_second: u64,
    /// Automatic customers per pump (0: none; every delivery is started by hand).
    pub customers_per_pump: u64,
    /// The gap before each automatic customer arrives, in ms.
    pub arrival_gap_ms: u64,
}

/// App-wide settings of this machine (the seed's "node config").
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// Base URL of the ERP REST API. `None` until configured or onboarded.
    pub api_endpoint: Option<Url>,
    /// The broker; may carry a password, hence [`RedactedUrl`].
    pub amqp_url: Option<RedactedUrl>,
    /// The ERP's event-bus exchange.
    pub exchange: String,
    pub features: Features,
}

/// What runs on this machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Features {
    /// The SpacePOS till runs here. `false` on a SpaceFuel-only forecourt PC.
    pub till: bool,
    /// The SpaceFuel extension is installed here.
    pub spacefuel: bool,
}

/// This terminal's identity and ERP-facing settings (the seed's "terminal config").
#[derive(Debug, Clone, PartialEq)]
pub struct TerminalConfig {
    /// Code to onboard with when none is given on the command line.
    pub onboarding_code: Option<String>,
    /// Client credentials; `None` until onboarded.
    pub credentials: Option<DeviceCredentials>,
    pub store_number: Option<u32>,
    pub terminal_number: Option<u32>,
    pub company_information: Option<CompanyInformation>,
    pub report_presence: bool,
    pub presence_interval_seconds: u32,
}

impl TerminalConfig {
    /// The identity, once client id, store and terminal number are all known.
    pub fn identity(&self) -> Option<TerminalIdentity> {
        Some(TerminalIdentity {
            client_id: self.credentials.as_ref()?.client_id.clone(),
            store_number: self.store_number?,
            terminal_number: self.terminal_number?,
        })
    }
}

/// The sync toggles and timers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncConfig {
    /// Pull datasets (seeding, catch-up, events).
    pub ingest_enabled: bool,
    /// Push queued operations.
    pub send_enabled: bool,
    /// `ingest_frequency`: how often inbound data is pulled.
    pub ingest_frequency: Duration,
    /// `send_frequency`: how often outbound operations are pushed.
    pub send_frequency: Duration,
    /// `data_sync_retry_interval_minutes`: retry cadence after failures.
    pub retry_interval: Duration,
}

/// Component updates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdatesConfig {
    pub check_interval: Duration,
    pub snooze: Duration,
    pub max_snoozes: u32,
    /// minisign public keys (base64, as in a `.pub` file's second line) whose
    /// signatures are trusted. Several may be listed for key rotation.
    pub trusted_keys: Vec<String>,
}

impl Default for Config {
    fn default() -> Self {
        use defaults::*;
        Config {
            node: NodeConfig {
                api_endpoint: None,
                amqp_url: None,
                exchange: EXCHANGE.to_owned(),
                features: Features {
                    till: true,
                    spacefuel: false,
                },
            },
            terminal: TerminalConfig {
                onboarding_code: None,
                credentials: None,
                store_number: None,
                terminal_number: None,
                company_information: None,
                report_presence: REPORT_PRESENCE,
                presence_interval_seconds: PRESENCE_INTERVAL_SECONDS,
            },
            sync: SyncConfig {
                ingest_enabled: true,
                send_enabled: true,
                ingest_frequency: Duration::from_secs(INGEST_FREQUENCY_SECONDS),
                send_frequency: Duration::from_secs(SEND_FREQUENCY_SECONDS),
                retry_interval: Duration::from_secs(DATA_SYNC_RETRY_INTERVAL_MINUTES * 60),
            },
            updates: UpdatesConfig {
                check_interval: Duration::from_secs(UPDATE_CHECK_INTERVAL_SECONDS),
                snooze: Duration::from_secs(SNOOZE_MINUTES * 60),
                max_snoozes: MAX_SNOOZES,
                trusted_keys: Vec::new(),
            },
            spacefuel: SpaceFuelConfig {
                health_grace: Duration::from_secs(SPACEFUEL_HEALTH_GRACE_SECONDS),
                auto_authorise: false,
                auto_settle: false,
                simulator: SimulatorConfig {
                    pumps: SIMULATOR_PUMPS,
                    flow_ml_per_second: SIMULATOR_FLOW_ML_PER_SECOND,
                    customers_per_pump: 0,
                    arrival_gap_ms: 1_000,
                },
            },
        }
    }
}
