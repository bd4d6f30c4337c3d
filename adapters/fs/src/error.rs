//! The adapter's own error, converted to the ports' errors at the boundary.

use std::io;
use std::path::{Path, PathBuf};

/// A file-system operation failed.
#[derive(Debug, thiserror::Error)]
pub enum FsError {
    /// `action` is what was attempted ("write", "lock", ...), `path` where.
    #[error("cannot {action} {}: {source}{}", path.display(), hint(source))]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl FsError {
    pub(crate) fn io(action: &'static str, path: &Path, source: io::Error) -> Self {
        FsError::Io {
            action,
            path: path.to_owned(),
            source,
        }
    }

    /// The path the failure concerns.
    pub fn path(&self) -> &Path {
        match self {
            FsError::Io { path, .. } => path,
        }
    }
}

/// What a person can do about the common causes.
fn hint(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::PermissionDenied => {
            "; check that the data directory belongs to the user SpacePOS runs as"
        }
        io::ErrorKind::StorageFull => "; free disk space",
        io::ErrorKind::ReadOnlyFilesystem => "; the data directory must be writable",
        _ => "",
    }
}
