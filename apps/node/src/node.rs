//! A node's data directory, configuration and adapters: what every command builds on.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use spacepos_config::{
    Config, ConfigLoader, ConfigSource, StateOrigin, StateStore, TerminalConfigStore,
    TerminalRecord,
};
use spacepos_core::{ClientInfo, Product};
use spacepos_erp_http::{ErpHttpClient, ErpHttpConfig};
use spacepos_fs::{FileCredentialStore, FileStateStore, FileTerminalStore};
use url::Url;

use crate::error::{Kind, NodeError};
use crate::platform;

/// Name of the optional config file inside the data directory.
pub const CONFIG_FILE: &str = "spacepos.toml";
/// Name of the shared local store (datasets, outbox) inside the data directory.
pub const DB_FILE: &str = "spacepos.db";

/// Where configuration comes from besides the built-in defaults.
#[derive(Debug, Clone)]
enum Sources {
    /// The operator's: `--config`/`SPACEPOS_CONFIG` (required) or
    /// `<data-dir>/spacepos.toml` (when it exists), and the process environment.
    Operator { file: Option<PathBuf> },
    /// Nothing but the defaults and the ERP-set record (the demo).
    Isolated,
}

/// One node: its data directory and the adapters over it.
#[derive(Debug, Clone)]
pub struct Node {
    pub data_dir: PathBuf,
    sources: Sources,
    pub terminal: Arc<FileTerminalStore>,
    pub state: Arc<FileStateStore>,
    pub credentials: Arc<FileCredentialStore>,
    pub client: ClientInfo,
}

impl Node {
    /// The node the command line points at.
    pub fn from_cli(data_dir: Option<PathBuf>, config: Option<PathBuf>) -> Node {
        let data_dir = data_dir.unwrap_or_else(spacepos_core::paths::default_data_dir);
        Node::new(data_dir, Sources::Operator { file: config })
    }

    /// A node that reads no config file and no environment (the demo's).
    pub fn isolated(data_dir: &Path) -> Node {
        Node::new(data_dir.to_path_buf(), Sources::Isolated)
    }

    fn new(data_dir: PathBuf, sources: Sources) -> Node {
        Node {
            terminal: Arc::new(FileTerminalStore::new(&data_dir)),
            state: Arc::new(FileStateStore::new(&data_dir)),
            credentials: Arc::new(FileCredentialStore::new(&data_dir)),
            client: platform::client_info(Product::SpacePos),
            data_dir,
            sources,
        }
    }

    pub fn store_path(&self) -> PathBuf {
        self.data_dir.join(DB_FILE)
    }

    /// The shared local store, opened (and migrated) on first use.
    pub async fn store(&self) -> Result<spacepos_sqlite::SqliteStore, NodeError> {
        spacepos_sqlite::SqliteStore::open(self.data_dir.join(DB_FILE))
            .await
            .map_err(|e| NodeError::new(Kind::Storage, e.to_string()))
    }

    /// The record of an onboarded terminal, or the error that says how to onboard.
    pub async fn require_record(&self) -> Result<TerminalRecord, NodeError> {
        self.record().await?.ok_or_else(|| {
            NodeError::new(
                Kind::NotOnboarded,
                "this terminal is not onboarded yet: run `spacepos onboard --code <CODE> --api <URL>`",
            )
        })
    }

    pub fn log_dir(&self) -> PathBuf {
        self.data_dir.join("logs")
    }

    /// The config file in use, if any.
    pub fn config_file(&self) -> Option<PathBuf> {
        match &self.sources {
            Sources::Operator { file: Some(f) } => Some(f.clone()),
            Sources::Operator { file: None } => {
                let f = self.data_dir.join(CONFIG_FILE);
                f.exists().then_some(f)
            }
            Sources::Isolated => None,
        }
    }

    fn loader(&self, record: Option<&TerminalRecord>) -> ConfigLoader {
        let loader = ConfigLoader::new();
        let loader = match &self.sources {
            Sources::Operator { file: Some(f) } => loader.file(f).env(std::env::vars()),
            Sources::Operator { file: None } => loader
                .optional_file(self.data_dir.join(CONFIG_FILE))
                .env(std::env::vars()),
            Sources::Isolated => loader,
        };
        loader.terminal_record(record)
    }

    /// The ERP-assigned record, if onboarded.
    pub async fn record(&self) -> Result<Option<TerminalRecord>, NodeError> {
        Ok(self.terminal.load().await?)
    }

    /// The effective configuration (with the record as the top layer).
    pub fn config(&self, record: Option<&TerminalRecord>) -> Result<Config, NodeError> {
        Ok(self.loader(record).load()?)
    }

    pub fn config_with_sources(
        &self,
        record: Option<&TerminalRecord>,
    ) -> Result<(Config, std::collections::BTreeMap<String, ConfigSource>), NodeError> {
        Ok(self.loader(record).load_with_sources()?)
    }

    /// Load `state.json` (creating it on a new node) and say so once if it had to be recovered.
    pub async fn load_state(&self) -> Result<spacepos_config::LoadedState, NodeError> {
        let loaded = self.state.load().await?;
        if let StateOrigin::ResetAfterCorruption { location, .. } = &loaded.origin {
            tracing::error!(
                "{location} and its backup were unreadable and have been set aside; the node started \
                 with a new state (SpaceFuel will rediscover its active slot)"
            );
        }
        Ok(loaded)
    }

    /// An ERP client without device credentials (onboarding).
    pub fn anonymous_client(&self, api: &Url) -> Result<ErpHttpClient, NodeError> {
        ErpHttpClient::new(ErpHttpConfig::new(api.clone(), self.client.clone()))
            .map_err(|e| NodeError::new(Kind::Config, e.to_string()))
    }

    /// An ERP client for device calls of an onboarded terminal.
    pub fn device_client(
        &self,
        config: &Config,
        record: &TerminalRecord,
        timeouts: Option<(Duration, Duration)>,
    ) -> Result<ErpHttpClient, NodeError> {
        let api = config.node.api_endpoint.clone().ok_or_else(|| {
            NodeError::new(
                Kind::Config,
                "no ERP address: node.api_endpoint is not set and the onboarding record has none; \
                 onboard again with --api <URL>",
            )
        })?;
        let mut http = ErpHttpConfig::new(api, self.client.clone())
            .with_device(record.credentials(), record.identity());
        if let Some((connect, request)) = timeouts {
            http.connect_timeout = connect;
            http.request_timeout = request;
        }
        ErpHttpClient::new(http).map_err(|e| NodeError::new(Kind::Config, e.to_string()))
    }
}
