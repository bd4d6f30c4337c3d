//! The data directory shared with SpacePOS, the configuration, the stores
//! over it, logging.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use spacepos_config::{Config, ConfigLoader, StateStore, TerminalConfigStore, TerminalRecord};
use spacepos_core::{ClientInfo, Product};
use spacepos_fs::{FileStateStore, FileTerminalStore};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::prelude::*;

use crate::{EXIT_CONFIG, EXIT_STORAGE, Failure};

/// The optional config file inside the data directory (shared with SpacePOS).
pub(crate) const CONFIG_FILE: &str = "spacepos.toml";
/// The shared local store (the outbox the fuel sales go to).
pub(crate) const DB_FILE: &str = "spacepos.db";
/// The build version.
pub(crate) const VERSION: &str = env!("CARGO_PKG_VERSION");

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
        let info = os_info::get();
        let os_name = match std::env::consts::OS {
            "windows" => "Windows",
            "linux" => "Linux",
            "macos" => "macOS",
            other => other,
        };
        let os_version = match info.version() {
            os_info::Version::Unknown => "unknown".to_owned(),
            v => v.to_string(),
        };
        ClientInfo {
            product: Product::SpaceFuel,
            version: VERSION.to_owned(),
            os_name: os_name.to_owned(),
            os_version: os_version.replace(['(', ')', ';'], ""),
            arch: std::env::consts::ARCH.to_owned(),
            hostname: std::env::var("COMPUTERNAME")
                .or_else(|_| std::env::var("HOSTNAME"))
                .unwrap_or_else(|_| "unknown-host".into()),
        }
    }
}

/// Keep alive until the program ends, so the log file is flushed.
#[derive(Debug)]
pub(crate) struct LogGuard {
    _file: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// Logging to stderr and, for the host, to a daily file
/// `<data-dir>/logs/<name>.<date>.log` (14 kept): a Windows service has no
/// stderr. `info` unless `RUST_LOG`/`SPACEPOS_LOG` say otherwise. lapin and
/// its protocol crate stay at `warn`: at `trace` they print message bodies,
/// and presence bodies carry the client secret. The worker logs to stderr
/// only: its supervisor appends that to `logs/spacefuel-worker.log`.
pub(crate) fn init_logging(node: &Node, name: &str, to_file: bool) -> LogGuard {
    let filter = || {
        let spec = std::env::var("RUST_LOG")
            .or_else(|_| std::env::var("SPACEPOS_LOG"))
            .unwrap_or_default();
        let mut f = EnvFilter::builder()
            .with_default_directive(LevelFilter::INFO.into())
            .parse_lossy(spec);
        for quiet in ["lapin=warn", "amq_protocol=warn"] {
            if let Ok(d) = quiet.parse() {
                f = f.add_directive(d);
            }
        }
        f
    };
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_filter(filter());
    let dir = node.data_dir.join("logs");
    let mut problem = None;
    let (file, guard) = if to_file {
        match std::fs::create_dir_all(&dir)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                tracing_appender::rolling::Builder::new()
                    .rotation(tracing_appender::rolling::Rotation::DAILY)
                    .filename_prefix(name)
                    .filename_suffix("log")
                    .max_log_files(14)
                    .build(&dir)
                    .map_err(|e| e.to_string())
            }) {
            Ok(appender) => {
                let (writer, guard) = tracing_appender::non_blocking(appender);
                let layer = tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .with_ansi(false)
                    .with_filter(filter());
                (Some(layer), Some(guard))
            }
            Err(e) => {
                problem = Some(format!("cannot write logs to {}: {e}", dir.display()));
                (None, None)
            }
        }
    } else {
        (None, None)
    };
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file)
        .try_init();
    if let Some(p) = problem {
        tracing::warn!("{p}");
    }
    LogGuard { _file: guard }
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
