//! The pid file: which process the supervisor started from which slot, so a
//! supervisor restarted after a crash finds the service it left running.
//!
//! Format: one JSON object, `{"pid":4242,"slot":"blue"}`, replaced atomically
//! (temporary file, fsync, rename) and removed once the service is known to
//! have ended.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use spacepos_config::Slot;

/// The pid file's name; by default it sits next to the slot directories
/// (`extensions/spacefuel/service.pid`).
pub const PID_FILE: &str = "service.pid";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PidRecord {
    pub(crate) pid: u32,
    pub(crate) slot: Slot,
}

/// The record in `path`; `None` when there is no file.
pub(crate) fn read(path: &Path) -> Result<Option<PidRecord>, String> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{} is not a pid file: {e}", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Replaces `path` with `record`, durably.
pub(crate) fn write(path: &Path, record: PidRecord) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    fs::create_dir_all(&dir)?;
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    let temp = dir.join(name);
    let bytes = serde_json::to_vec(&record).map_err(io::Error::other)?;
    {
        let mut file = fs::File::create(&temp)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
    }
    fs::rename(&temp, path)?;
    // Make the rename itself durable (not possible on Windows; harmless there).
    #[cfg(unix)]
    fs::File::open(&dir)?.sync_all()?;
    Ok(())
}

/// Removes `path`; no file is fine.
pub(crate) fn remove(path: &Path) {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), "cannot remove the pid file: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_round_trips_in_its_documented_format() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("spacefuel").join(PID_FILE);
        assert_eq!(read(&path), Ok(None));
        let record = PidRecord {
            pid: 4242,
            slot: Slot::Blue,
        };
        write(&path, record).expect("write");
        assert_eq!(
            fs::read_to_string(&path).expect("read"),
            r#"{"pid":4242,"slot":"blue"}"#
        );
        assert_eq!(read(&path), Ok(Some(record)));
        remove(&path);
        remove(&path);
        assert_eq!(read(&path), Ok(None));
    }

    #[test]
    fn a_damaged_pid_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(PID_FILE);
        fs::write(&path, b"42").expect("write");
        let e = read(&path).expect_err("damaged");
        assert!(e.contains(PID_FILE), "{e}");
    }
}
