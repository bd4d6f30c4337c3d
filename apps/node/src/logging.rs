//! Logging: human lines on stderr, and a daily log file under `<data-dir>/logs/`.
//!
//! The filter comes from `RUST_LOG` (or `SPACEPOS_LOG`), defaulting to `warn` on
//! stderr for one-shot commands and `info` for long-running ones, `info` in the
//! file. Secrets never reach a log: they are `Secret`s
//! that print `***`, and secret HTTP headers are marked sensitive.

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::prelude::*;

/// Keep this alive until the program ends, so the log file is flushed.
#[derive(Debug)]
pub struct LogGuard {
    _file: Option<WorkerGuard>,
}

fn filter(default: LevelFilter) -> EnvFilter {
    let spec = std::env::var("RUST_LOG")
        .or_else(|_| std::env::var("SPACEPOS_LOG"))
        .unwrap_or_default();
    EnvFilter::builder()
        .with_default_directive(default.into())
        .parse_lossy(spec)
}

/// Start logging. `log_dir` is created if needed; if it cannot be, the file log
/// is skipped with a warning instead of failing the command.
pub fn init(stderr_default: LevelFilter, log_dir: Option<&Path>) -> LogGuard {
    let stderr_layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not for files and pipes.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .with_filter(filter(stderr_default));

    let mut problem = None;
    let (file_layer, guard) = match log_dir {
        Some(dir) => match std::fs::create_dir_all(dir)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                tracing_appender::rolling::Builder::new()
                    .rotation(tracing_appender::rolling::Rotation::DAILY)
                    .filename_prefix("spacepos")
                    .filename_suffix("log")
                    .max_log_files(14)
                    .build(dir)
                    .map_err(|e| e.to_string())
            }) {
            Ok(appender) => {
                let (writer, guard) = tracing_appender::non_blocking(appender);
                let layer = tracing_subscriber::fmt::layer()
                    .with_writer(writer)
                    .with_ansi(false)
                    .with_filter(filter(LevelFilter::INFO));
                (Some(layer), Some(guard))
            }
            Err(e) => {
                problem = Some(format!("cannot write logs to {}: {e}", dir.display()));
                (None, None)
            }
        },
        None => (None, None),
    };
    tracing_subscriber::registry()
        .with(stderr_layer)
        .with(file_layer)
        .init();
    if let Some(p) = problem {
        tracing::warn!("{p}");
    }
    LogGuard { _file: guard }
}
