//! The state file: transaction counters and the sale buffer, so that a
//! restarted simulator never repeats a transaction number and loses no sale.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use spacepos_spacefuel::{FuelSaleTrx, PumpId};

use crate::SimError;

/// What the state file holds (JSON).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Saved {
    pub(crate) version: u32,
    /// The last transaction counter used, per pump.
    pub(crate) counters: BTreeMap<PumpId, u64>,
    /// The sale buffer (payable and locked sales), oldest first.
    pub(crate) sales: Vec<FuelSaleTrx>,
}

pub(crate) const VERSION: u32 = 1;

/// The saved state, or `None` when there is no file yet.
pub(crate) fn load(path: &Path) -> Result<Option<Saved>, SimError> {
    let fail = |reason: String| SimError::StateFile {
        path: path.to_owned(),
        reason,
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(fail(format!("cannot read it: {e}"))),
    };
    let saved: Saved = serde_json::from_slice(&bytes).map_err(|e| {
        fail(format!(
            "not a simulator state file ({e}); move it away to start over"
        ))
    })?;
    if saved.version != VERSION {
        return Err(fail(format!(
            "version {} is not supported (expected {VERSION})",
            saved.version
        )));
    }
    Ok(Some(saved))
}

/// Replace the file atomically (temp file, fsync, rename).
pub(crate) fn save(path: &Path, saved: &Saved) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(saved).map_err(std::io::Error::other)?;
    let mut tmp = PathBuf::from(path);
    tmp.as_mut_os_string().push(".tmp");
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}
