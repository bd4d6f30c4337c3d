//! The data directory shared with SpacePOS, the configuration, the stores
//! over it, logging.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use spacepos_config::{Config, ConfigLoader, StateStore, TerminalConfigStore, TerminalRecord};
use spacepos_core::{ClientInfo, Product};
use spacepos_fs::{FileStateStore, FileTerminalStore};
use spacepos_node::logging::LogGuard;
use tracing_subscriber::filter::LevelFilter;

use crate::{EXIT_CONFIG, EXIT_STORAGE, Failure};

/// The optional config file inside the data directory (shared with SpacePOS).
pub(crate) const CONFIG_FILE: &str = "spacepos.toml";
/// The shared local store (the outbox the fuel sales go to).
pub(crate) const DB_FILE: &str = "spacepos.db";

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub(crate) data_dir: PathBuf,
    config_file: Option<PathBuf>,
    pub(crate) state: Arc<FileStateStore>,
    pub(crate) terminal: Arc<FileTerminalStore>,
}

impl Node {
    pub(crate) fn new(data_dir: Option<PathBuf>, config_file: Option<PathBuf>) -> Node {
        let data_dir = data_dir.unwrap_or_else(spacepos_core::paths::default_data_dir);
        Node {
            state: Arc::new(FileStateStore::new(&data_dir)),
            terminal: Arc::new(FileTerminalStore::new(&data_dir)),
            data_dir,
            config_file,
        }
    }

    /// `<data-dir>/extensions/spacefuel`: the slots, the pid file, health.json.
    pub(crate) fn extensions_dir(&self) -> PathBuf {
        self.data_dir.join("extensions").join("spacefuel")
    }

    pub(crate) fn db_path(&self) -> PathBuf {
        self.data_dir.join(DB_FILE)
    }

    pub(crate) fn config_file(&self) -> Option<PathBuf> {
        self.config_file.clone().or_else(|| {
            let f = self.data_dir.join(CONFIG_FILE);
            f.exists().then_some(f)
        })
    }

    pub(crate) async fn record(&self) -> Result<Option<TerminalRecord>, Failure> {
        self.terminal
            .load()
            .await
            .map_err(|e| Failure::new(EXIT_STORAGE, e.to_string()))
    }

    /// The effective configuration: defaults < file < environment < the ERP's record.
    pub(crate) fn config(&self, record: Option<&TerminalRecord>) -> Result<Config, Failure> {
        let loader = ConfigLoader::new();
        let loader = match &self.config_file {
            Some(f) => loader.file(f),
            None => loader.optional_file(self.data_dir.join(CONFIG_FILE)),
        };
        loader
            .env(std::env::vars())
            .terminal_record(record)
            .load()
            .map_err(|e| Failure::new(EXIT_CONFIG, e.to_string()))
    }

    pub(crate) async fn store(&self) -> Result<spacepos_sqlite::SqliteStore, Failure> {
        spacepos_sqlite::SqliteStore::open(self.db_path())
            .await
            .map_err(|e| Failure::new(EXIT_STORAGE, e.to_string()))
    }

    pub(crate) async fn load_state(&self) -> Result<spacepos_config::State, Failure> {
        let loaded = self
            .state
            .load()
            .await
            .map_err(|e| Failure::new(EXIT_STORAGE, e.to_string()))?;
        if let spacepos_config::StateOrigin::ResetAfterCorruption { location, .. } = &loaded.origin
        {
            tracing::error!(
                "{location} and its backup were unreadable and have been set aside; \
                 SpaceFuel rediscovers its active slot from the slots on disk"
            );
        }
        Ok(loaded.state)
    }

    pub(crate) fn client_info(&self) -> ClientInfo {
        spacepos_node::platform::client_info(Product::SpaceFuel)
    }
}

/// Logging to stderr and, for the host, to a daily file
/// `<data-dir>/logs/<name>.<date>.log` (14 kept): a Windows service has no
/// stderr. `info` unless `RUST_LOG`/`SPACEPOS_LOG` say otherwise; the AMQP
/// crates stay at `warn` (`spacepos_node::logging`). The worker logs to
/// stderr only: its supervisor appends that to `logs/spacefuel-worker.log`.
pub(crate) fn init_logging(node: &Node, name: &str, to_file: bool) -> LogGuard {
    let dir = node.data_dir.join("logs");
    spacepos_node::logging::init(LevelFilter::INFO, to_file.then_some(dir.as_path()), name)
}

/// Make sure `dir` exists.
pub(crate) fn ensure_dir(dir: &Path) -> Result<(), Failure> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Failure::new(
            EXIT_STORAGE,
            format!("cannot create {}: {e}", dir.display()),
        )
    })
}
