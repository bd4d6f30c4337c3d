//! Where a node keeps its files when nothing says otherwise.

use std::path::PathBuf;

/// The data directory shared by SpacePOS and SpaceFuel on this machine:
/// `%ProgramData%\SpacePOS` on Windows; `$XDG_DATA_HOME/spacepos` (or
/// `~/.local/share/spacepos`) elsewhere; `/var/lib/spacepos` for a user
/// without a home.
pub fn default_data_dir() -> PathBuf {
    if cfg!(windows) {
        let base = std::env::var_os("ProgramData")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(r"C:\ProgramData"));
        return base.join("SpacePOS");
    }
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("spacepos");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(home).join(".local/share/spacepos");
    }
    PathBuf::from("/var/lib/spacepos")
}
