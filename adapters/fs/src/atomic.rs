//! Atomic, durable replacement of a file's content.
//!
//! [`write_atomic`] writes the new bytes to a temporary file in the target's
//! directory (`.<name>.tmp.<pid>.<n>`), flushes it to disk, gives it its final
//! permissions, renames it over the target and flushes the directory, so that
//! after a crash at any moment the target holds either the old bytes or the new
//! ones, never a mix, and never with looser permissions than asked for.
//!
//! A crash between creating the temporary file and the rename leaves that
//! temporary file behind; readers never look at it, and
//! [`remove_stale_temp_files`] deletes such leftovers.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Who may read a file written by [`write_atomic`] (Unix permission bits; on
/// other systems the file inherits the directory's access rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileMode {
    /// `0600`: files holding secrets (credentials).
    OwnerOnly,
    /// `0644`: files anyone on the machine may read.
    Shared,
}

impl FileMode {
    /// The Unix permission bits.
    pub fn bits(self) -> u32 {
        match self {
            FileMode::OwnerOnly => 0o600,
            FileMode::Shared => 0o644,
        }
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The directory a path lives in (`.` for a bare file name).
pub fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

fn file_name(path: &Path) -> io::Result<String> {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} does not name a file", path.display()),
            )
        })
}

fn temp_prefix(target_name: &str) -> String {
    format!(".{target_name}.tmp.")
}

/// Whether `name` is a temporary file [`write_atomic`] creates for a target
/// named `target_name`.
pub fn is_temp_file_of(name: &str, target_name: &str) -> bool {
    name.strip_prefix(&temp_prefix(target_name))
        .is_some_and(|rest| {
            let mut parts = rest.split('.');
            let numeric = |p: Option<&str>| {
                p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            };
            numeric(parts.next()) && numeric(parts.next()) && parts.next().is_none()
        })
}

/// Replace the content of `path` with `bytes`, atomically and durably, with
/// permissions `mode`.
///
/// Concurrent writers of the same target each use their own temporary file;
/// the last rename wins. Callers that read-modify-write must hold a lock.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: FileMode) -> io::Result<()> {
    let dir = parent_dir(path);
    let prefix = temp_prefix(&file_name(path)?);
    let pid = std::process::id();
    // A leftover of a dead process with the same pid may hold a name: try the next.
    let mut attempt = 0;
    let (temp, file) = loop {
        let temp = dir.join(format!(
            "{prefix}{pid}.{}",
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        match create_new(&temp, mode) {
            Ok(file) => break (temp, file),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    };
    let result = finish(file, &temp, path, bytes, mode);
    if result.is_err() {
        // Best effort: the error that matters is the one returned.
        let _ = fs::remove_file(&temp);
    }
    result
}

fn finish(
    mut file: File,
    temp: &Path,
    path: &Path,
    bytes: &[u8],
    mode: FileMode,
) -> io::Result<()> {
    file.write_all(bytes)?;
    set_mode(&file, mode)?;
    file.sync_all()?;
    drop(file);
    fs::rename(temp, path)?;
    sync_dir(parent_dir(path))
}

#[cfg(unix)]
fn create_new(path: &Path, mode: FileMode) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode.bits())
        .open(path)
}

#[cfg(not(unix))]
fn create_new(path: &Path, _mode: FileMode) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// Set the exact mode (the process umask may have narrowed or, for `0644`,
/// narrowed it further than asked when the file was created).
#[cfg(unix)]
fn set_mode(file: &File, mode: FileMode) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    file.set_permissions(fs::Permissions::from_mode(mode.bits()))
}

#[cfg(not(unix))]
fn set_mode(_file: &File, _mode: FileMode) -> io::Result<()> {
    Ok(())
}

/// Flush a directory's entries (a rename, a new file) to disk. A no-op where
/// directories cannot be opened as files (Windows).
#[cfg(unix)]
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Flush a directory's entries (a rename, a new file) to disk. A no-op where
/// directories cannot be opened as files (Windows).
#[cfg(not(unix))]
pub fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

/// Delete the temporary files a crashed [`write_atomic`] of `path` left
/// behind; returns what was deleted.
///
/// Only call it while no other writer of `path` can be running (while holding
/// the lock all writers of `path` take), or it may delete a file another
/// writer is about to rename.
pub fn remove_stale_temp_files(path: &Path) -> io::Result<Vec<PathBuf>> {
    let target = file_name(path)?;
    let dir = parent_dir(path);
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry?;
        if is_temp_file_of(&entry.file_name().to_string_lossy(), &target) {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed.push(entry.path()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognised() {
        assert!(is_temp_file_of(".state.json.tmp.123.0", "state.json"));
        assert!(!is_temp_file_of(".state.json.tmp.123", "state.json"));
        assert!(!is_temp_file_of(".state.json.tmp.x.0", "state.json"));
        assert!(!is_temp_file_of("state.json", "state.json"));
        assert!(!is_temp_file_of(".state.json.bak.tmp.1.2", "state.json"));
        assert!(is_temp_file_of(".state.json.bak.tmp.1.2", "state.json.bak"));
    }

    #[test]
    fn failed_write_leaves_no_temp_file() {
        let dir = tempfile::tempdir().expect("temp dir");
        // The target is a non-empty directory: the rename fails.
        let target = dir.path().join("target");
        fs::create_dir(&target).expect("mkdir");
        fs::write(target.join("x"), b"x").expect("write");
        assert!(write_atomic(&target, b"data", FileMode::Shared).is_err());
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["target".to_owned()]);
    }
}
