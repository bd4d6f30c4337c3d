//! A file with a last-good backup, a lock, and recovery from damage.
//!
//! [`DurableFile`] keeps `X` and `X.bak` (same bytes, both written with
//! [`write_atomic`]) and a lock file `X.lock`. Loading reads `X`; if it is
//! damaged it warns once and restores `X` from `X.bak`; if both are damaged it
//! says so and lets the owner decide (quarantine with
//! [`DurableFile::quarantine`], or refuse). A missing `X` with no backup is
//! simply "nothing stored yet".

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use chrono::Utc;

use crate::atomic::{FileMode, parent_dir, remove_stale_temp_files, sync_dir, write_atomic};
use crate::error::FsError;

/// How a decoder turns down bytes.
#[derive(Debug)]
pub enum Rejection<E> {
    /// The bytes are damaged (empty, truncated, garbage, wrong shape): the
    /// backup is tried. The text says what is wrong; it must not quote secrets.
    Corrupt(String),
    /// The bytes are readable but not ours to touch (e.g. written by a newer
    /// schema): loading stops and the files are left as they are.
    Refused(E),
}

/// What [`DurableFile::load`] found.
#[derive(Debug)]
pub enum LoadOutcome<T> {
    /// Neither `X` nor `X.bak` exists.
    Missing,
    /// `X` decoded.
    Loaded(T),
    /// `X` was missing or damaged and has been restored from `X.bak`
    /// (one warning was logged). `problem` says what was wrong with `X`.
    Restored { value: T, problem: String },
    /// Nothing usable: `X` is damaged or missing and `X.bak` is damaged or
    /// missing (and not both missing). Nothing was logged or changed yet.
    BothUnreadable { problem: String },
}

/// Failure of a [`DurableFile`] operation.
#[derive(Debug)]
pub enum DurableError<E> {
    Io(FsError),
    /// The decoder refused the file at `path`; nothing was changed.
    Refused {
        path: PathBuf,
        reason: E,
    },
}

impl<E> From<FsError> for DurableError<E> {
    fn from(e: FsError) -> Self {
        DurableError::Io(e)
    }
}

/// A file with a last-good backup and a cross-process lock.
#[derive(Debug, Clone)]
pub struct DurableFile {
    path: PathBuf,
    backup: PathBuf,
    lock: PathBuf,
    mode: FileMode,
}

/// An exclusive lock on a [`DurableFile`], held until dropped.
#[derive(Debug)]
pub struct FileLock {
    _file: File,
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

impl DurableFile {
    /// `path` is `X`; the backup is `X.bak`, the lock `X.lock`. Both `X` and
    /// `X.bak` are written with `mode`.
    pub fn new(path: impl Into<PathBuf>, mode: FileMode) -> Self {
        let path = path.into();
        DurableFile {
            backup: with_suffix(&path, ".bak"),
            lock: with_suffix(&path, ".lock"),
            path,
            mode,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn backup_path(&self) -> &Path {
        &self.backup
    }

    pub fn mode(&self) -> FileMode {
        self.mode
    }

    /// Take the exclusive lock (blocking), creating the directory and the lock
    /// file if needed. Every read-modify-write of `X` happens under it, in
    /// this process and in others.
    pub fn lock(&self) -> Result<FileLock, FsError> {
        let dir = parent_dir(&self.path);
        fs::create_dir_all(dir).map_err(|e| FsError::io("create the directory", dir, e))?;
        let file = open_lock_file(&self.lock, self.mode)
            .map_err(|e| FsError::io("open the lock file", &self.lock, e))?;
        file.lock()
            .map_err(|e| FsError::io("lock", &self.lock, e))?;
        Ok(FileLock { _file: file })
    }

    /// Delete temporary files of crashed writes of `X` and `X.bak`. Call it
    /// while holding the lock.
    pub fn remove_stale_temp_files(&self, _lock: &FileLock) -> Result<Vec<PathBuf>, FsError> {
        let mut removed = remove_stale_temp_files(&self.path)
            .map_err(|e| FsError::io("clean up next to", &self.path, e))?;
        removed.extend(
            remove_stale_temp_files(&self.backup)
                .map_err(|e| FsError::io("clean up next to", &self.backup, e))?,
        );
        if !removed.is_empty() {
            tracing::info!(
                "removed {} temporary file(s) left by an interrupted write of {}",
                removed.len(),
                self.path.display()
            );
        }
        Ok(removed)
    }

    /// Write `X`, then `X.bak`, with the same bytes. Call it while holding the lock.
    pub fn save(&self, _lock: &FileLock, bytes: &[u8]) -> Result<(), FsError> {
        write_atomic(&self.path, bytes, self.mode)
            .map_err(|e| FsError::io("write", &self.path, e))?;
        write_atomic(&self.backup, bytes, self.mode)
            .map_err(|e| FsError::io("write", &self.backup, e))
    }

    /// The raw bytes of `X`, `None` if it does not exist.
    pub fn read(&self) -> Result<Option<Vec<u8>>, FsError> {
        read_optional(&self.path)
    }

    /// Read and decode `X`, falling back to `X.bak` (see [`LoadOutcome`]).
    /// Call it while holding the lock: a restore writes `X`.
    pub fn load<T, E>(
        &self,
        _lock: &FileLock,
        decode: impl Fn(&[u8]) -> Result<T, Rejection<E>>,
    ) -> Result<LoadOutcome<T>, DurableError<E>> {
        let main_problem = match read_optional(&self.path)? {
            None => None,
            Some(bytes) => match decode(&bytes) {
                Ok(value) => return Ok(LoadOutcome::Loaded(value)),
                Err(Rejection::Refused(reason)) => {
                    return Err(DurableError::Refused {
                        path: self.path.clone(),
                        reason,
                    });
                }
                Err(Rejection::Corrupt(problem)) => Some(problem),
            },
        };
        let Some(backup) = read_optional(&self.backup)? else {
            return Ok(match main_problem {
                None => LoadOutcome::Missing,
                Some(problem) => LoadOutcome::BothUnreadable {
                    problem: format!(
                        "{} is unreadable ({problem}) and there is no backup",
                        self.path.display()
                    ),
                },
            });
        };
        let main_problem = main_problem.unwrap_or_else(|| "the file is missing".to_owned());
        match decode(&backup) {
            Ok(value) => {
                write_atomic(&self.path, &backup, self.mode)
                    .map_err(|e| FsError::io("restore", &self.path, e))?;
                tracing::warn!(
                    "{} is unreadable ({main_problem}); restored it from the last-good backup {}",
                    self.path.display(),
                    self.backup.display()
                );
                Ok(LoadOutcome::Restored {
                    value,
                    problem: main_problem,
                })
            }
            Err(Rejection::Refused(reason)) => Err(DurableError::Refused {
                path: self.backup.clone(),
                reason,
            }),
            Err(Rejection::Corrupt(backup_problem)) => Ok(LoadOutcome::BothUnreadable {
                problem: format!(
                    "{} is unreadable ({main_problem}) and so is its backup {} ({backup_problem})",
                    self.path.display(),
                    self.backup.display()
                ),
            }),
        }
    }

    /// Delete `X` and `X.bak` (a missing file is not an error).
    pub fn remove(&self, _lock: &FileLock) -> Result<(), FsError> {
        for path in [&self.path, &self.backup] {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(FsError::io("delete", path, e)),
            }
        }
        sync_dir(parent_dir(&self.path)).map_err(|e| FsError::io("sync", parent_dir(&self.path), e))
    }

    /// Move `X` and `X.bak` aside as `X.corrupt-<UTC time>` and
    /// `X.bak.corrupt-<UTC time>` so that nobody reads them again but a person
    /// can still inspect them. Returns the new paths.
    pub fn quarantine(&self, _lock: &FileLock) -> Result<Vec<PathBuf>, FsError> {
        let stamp = Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
        let mut moved = Vec::new();
        for path in [&self.path, &self.backup] {
            if !path.exists() {
                continue;
            }
            let mut target = with_suffix(path, &format!(".corrupt-{stamp}"));
            let mut n = 1;
            while target.exists() {
                target = with_suffix(path, &format!(".corrupt-{stamp}-{n}"));
                n += 1;
            }
            fs::rename(path, &target).map_err(|e| FsError::io("move aside", path, e))?;
            moved.push(target);
        }
        sync_dir(parent_dir(&self.path))
            .map_err(|e| FsError::io("flush the directory of", &self.path, e))?;
        Ok(moved)
    }
}

fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, FsError> {
    match fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(FsError::io("read", path, e)),
    }
}

#[cfg(unix)]
fn open_lock_file(path: &Path, mode: FileMode) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(mode.bits())
        .open(path)
}

#[cfg(not(unix))]
fn open_lock_file(path: &Path, _mode: FileMode) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

impl<E: fmt::Display> fmt::Display for DurableError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DurableError::Io(e) => e.fmt(f),
            DurableError::Refused { path, reason } => write!(f, "{}: {reason}", path.display()),
        }
    }
}
