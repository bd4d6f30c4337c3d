//! Logging: human lines on stderr, and a daily log file under `<data-dir>/logs/`.
//!
//! The filter comes from `RUST_LOG` (or `SPACEPOS_LOG`), defaulting to `warn` on
//! stderr for one-shot commands and `info` for long-running ones, `info` in the
//! file. Secrets never reach a log: they are `Secret`s
//! that print `***`, and secret HTTP headers are marked sensitive. lapin and
//! its protocol crate stay at `warn` whatever the filter says: at `trace`
//! they print message bodies, and presence beats carry the client secret.
//! Shared by every app: the CLI, the desktop app and the SpaceFuel service.

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
    filter_from(&spec, default)
}

/// The filter `spec` asks for, with the AMQP crates held at `warn`.
fn filter_from(spec: &str, default: LevelFilter) -> EnvFilter {
    let mut f = EnvFilter::builder()
        .with_default_directive(default.into())
        .parse_lossy(spec);
    for quiet in ["lapin=warn", "amq_protocol=warn"] {
        if let Ok(d) = quiet.parse() {
            f = f.add_directive(d);
        }
    }
    f
}

/// Start logging: stderr, and with `log_dir` a daily file
/// `<log_dir>/<name>.<date>.log` (14 kept). `log_dir` is created if needed;
/// if it cannot be, the file log is skipped with a warning instead of
/// failing the program. A second call (tests) leaves the first in place.
pub fn init(stderr_default: LevelFilter, log_dir: Option<&Path>, name: &str) -> LogGuard {
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
                    .filename_prefix(name)
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
    let _ = tracing_subscriber::registry()
        .with(stderr_layer)
        .with(file_layer)
        .try_init();
    if let Some(p) = problem {
        tracing::warn!("{p}");
    }
    LogGuard { _file: guard }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl Write for Buffer {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn amqp_crates_stay_at_warn_even_when_everything_else_traces() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let layer = tracing_subscriber::fmt::layer()
            .with_writer(move || writer.clone())
            .with_filter(filter_from("trace", LevelFilter::INFO));
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            tracing::trace!(target: "lapin::channel", "body with ClientSecret s3cr3t");
            tracing::debug!(target: "amq_protocol::frame", "frame with s3cr3t");
            tracing::trace!(target: "spacepos_sync", "our own trace line");
            tracing::warn!(target: "lapin::connection", "connection lost");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap_or_else(|p| p.into_inner()).clone())
            .unwrap_or_default();
        assert!(!text.contains("s3cr3t"), "{text}");
        assert!(text.contains("our own trace line"), "{text}");
        assert!(text.contains("connection lost"), "{text}");
    }
}
