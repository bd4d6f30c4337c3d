//! [`FileArtifactStore`]: the staging area of component updates, under
//! `<data-dir>/updates/`.
//!
//! Layout, per component (`spacepos`, `spacefuel`):
//!
//! - `updates/<component>/<version>-<sha256>.part`: a download in progress.
//!   Every append is flushed to disk before it returns, so a restarted process
//!   resumes at the file's length.
//! - `updates/<component>/<version>-<sha256>/<file name>`: the verified,
//!   staged artifact (an MSI keeps its `.msi` name). Staging renames the
//!   `.part` file into that directory and flushes both directories, so a crash
//!   leaves either the partial or the staged artifact, never a half of each.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use spacepos_core::ComponentId;
use spacepos_updates::{
    ArtifactKey, ArtifactState, ArtifactStore, ArtifactStoreError, StoredArtifact,
};

use crate::atomic::sync_dir;
use crate::blocking;
use crate::error::FsError;

/// Directory of the staging area in the data directory.
pub const UPDATES_DIR: &str = "updates";

/// Largest read served at once.
const MAX_READ: u64 = 16 * 1024 * 1024;

/// The staging area in `<dir>/updates/`.
#[derive(Debug, Clone)]
pub struct FileArtifactStore {
    root: PathBuf,
}

impl FileArtifactStore {
    /// A store in `<data_dir>/updates/`; created when first written.
    pub fn new(data_dir: impl AsRef<Path>) -> Self {
        FileArtifactStore {
            root: data_dir.as_ref().join(UPDATES_DIR),
        }
    }

    /// `<data-dir>/updates`.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

/// The paths of one key.
struct Paths {
    component_dir: PathBuf,
    partial: PathBuf,
    staged_dir: PathBuf,
}

fn paths(root: &Path, key: &ArtifactKey) -> Result<Paths, ArtifactStoreError> {
    key.check()
        .map_err(|detail| ArtifactStoreError::InvalidKey {
            key: key.to_string(),
            detail,
        })?;
    let component_dir = root.join(key.component.rest_id());
    let stem = format!("{}-{}", key.version, key.sha256);
    Ok(Paths {
        partial: component_dir.join(format!("{stem}.part")),
        staged_dir: component_dir.join(stem),
        component_dir,
    })
}

fn backend(e: FsError) -> ArtifactStoreError {
    ArtifactStoreError::Backend {
        location: e.path().display().to_string(),
        source: Box::new(e),
    }
}

fn io_err<'a>(
    action: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> ArtifactStoreError + 'a {
    move |e| backend(FsError::io(action, path, e))
}

/// The staged file of a staged directory: its one regular file.
fn staged_file(dir: &Path) -> Result<Option<PathBuf>, ArtifactStoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("list", dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(io_err("list", dir))?;
        if entry.file_type().map_err(io_err("inspect", dir))?.is_file() {
            return Ok(Some(entry.path()));
        }
    }
    Ok(None)
}

fn file_len(path: &Path) -> Result<Option<u64>, ArtifactStoreError> {
    match fs::metadata(path) {
        Ok(m) => Ok(Some(m.len())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_err("inspect", path)(e)),
    }
}

/// The stored file of a key (staged first, else partial).
fn stored_file(p: &Paths) -> Result<Option<PathBuf>, ArtifactStoreError> {
    if let Some(f) = staged_file(&p.staged_dir)? {
        return Ok(Some(f));
    }
    Ok(file_len(&p.partial)?.map(|_| p.partial.clone()))
}

fn plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+'))
}

fn remove_file(path: &Path) -> Result<(), ArtifactStoreError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("delete", path)(e)),
    }
}

/// Parse `<version>-<sha256>` (the sha256 has no `-`).
fn key_of(component: ComponentId, stem: &str) -> Option<ArtifactKey> {
    let (version, sha) = stem.rsplit_once('-')?;
    let key = ArtifactKey::new(component, version, sha);
    key.check().is_ok().then_some(key)
}

impl FileArtifactStore {
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Path) -> Result<T, ArtifactStoreError> + Send + 'static,
    ) -> Result<T, ArtifactStoreError> {
        let root = self.root.clone();
        let location = root.display().to_string();
        blocking::run(move || f(&root))
            .await
            .map_err(|e| ArtifactStoreError::Backend {
                location,
                source: Box::new(e),
            })?
    }
}

#[async_trait]
impl ArtifactStore for FileArtifactStore {
    async fn len(&self, key: &ArtifactKey) -> Result<u64, ArtifactStoreError> {
        let key = key.clone();
        self.run(move |root| {
            let p = paths(root, &key)?;
            match stored_file(&p)? {
                Some(f) => Ok(file_len(&f)?.unwrap_or(0)),
                None => Ok(0),
            }
        })
        .await
    }

    async fn append(
        &self,
        key: &ArtifactKey,
        offset: u64,
        bytes: &[u8],
    ) -> Result<u64, ArtifactStoreError> {
        let key = key.clone();
        let bytes = bytes.to_vec();
        self.run(move |root| {
            let p = paths(root, &key)?;
            if staged_file(&p.staged_dir)?.is_some() {
                return Err(ArtifactStoreError::Conflict {
                    key: key.to_string(),
                    detail: "it is staged: a staged artifact never changes".into(),
                });
            }
            let existed = p.partial.exists();
            if !existed {
                fs::create_dir_all(&p.component_dir).map_err(io_err("create", &p.component_dir))?;
            }
            let mut file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&p.partial)
                .map_err(io_err("open", &p.partial))?;
            let len = file
                .metadata()
                .map_err(io_err("inspect", &p.partial))?
                .len();
            if len != offset {
                return Err(ArtifactStoreError::Conflict {
                    key: key.to_string(),
                    detail: format!("append at {offset}, but {len} bytes are stored"),
                });
            }
            file.write_all(&bytes)
                .map_err(io_err("write", &p.partial))?;
            file.sync_data().map_err(io_err("flush", &p.partial))?;
            if !existed {
                sync_dir(&p.component_dir).map_err(io_err("flush", &p.component_dir))?;
            }
            Ok(len + bytes.len() as u64)
        })
        .await
    }

    async fn read(
        &self,
        key: &ArtifactKey,
        offset: u64,
        max_len: u64,
    ) -> Result<Vec<u8>, ArtifactStoreError> {
        let key = key.clone();
        self.run(move |root| {
            let p = paths(root, &key)?;
            let Some(path) = stored_file(&p)? else {
                return Err(ArtifactStoreError::NotFound {
                    key: key.to_string(),
                    detail: "nothing is stored".into(),
                });
            };
            let mut file = File::open(&path).map_err(io_err("open", &path))?;
            file.seek(SeekFrom::Start(offset))
                .map_err(io_err("read", &path))?;
            let mut out = Vec::new();
            file.take(max_len.min(MAX_READ))
                .read_to_end(&mut out)
                .map_err(io_err("read", &path))?;
            Ok(out)
        })
        .await
    }

    async fn stage(
        &self,
        key: &ArtifactKey,
        file_name: &str,
    ) -> Result<String, ArtifactStoreError> {
        let key = key.clone();
        let file_name = file_name.to_owned();
        self.run(move |root| {
            let p = paths(root, &key)?;
            if let Some(f) = staged_file(&p.staged_dir)? {
                return Ok(f.display().to_string());
            }
            if !plain_file_name(&file_name) {
                return Err(ArtifactStoreError::InvalidKey {
                    key: key.to_string(),
                    detail: format!("file name {file_name:?} is not a plain file name"),
                });
            }
            match file_len(&p.partial)? {
                Some(n) if n > 0 => {}
                _ => {
                    return Err(ArtifactStoreError::NotFound {
                        key: key.to_string(),
                        detail: "nothing was downloaded to stage".into(),
                    });
                }
            }
            fs::create_dir_all(&p.staged_dir).map_err(io_err("create", &p.staged_dir))?;
            let target = p.staged_dir.join(&file_name);
            File::open(&p.partial)
                .and_then(|f| f.sync_all())
                .map_err(io_err("flush", &p.partial))?;
            fs::rename(&p.partial, &target).map_err(io_err("stage", &p.partial))?;
            sync_dir(&p.staged_dir).map_err(io_err("flush", &p.staged_dir))?;
            sync_dir(&p.component_dir).map_err(io_err("flush", &p.component_dir))?;
            Ok(target.display().to_string())
        })
        .await
    }

    async fn staged_path(&self, key: &ArtifactKey) -> Result<Option<String>, ArtifactStoreError> {
        let key = key.clone();
        self.run(move |root| {
            let p = paths(root, &key)?;
            Ok(staged_file(&p.staged_dir)?.map(|f| f.display().to_string()))
        })
        .await
    }

    async fn discard(&self, key: &ArtifactKey) -> Result<(), ArtifactStoreError> {
        let key = key.clone();
        self.run(move |root| {
            let p = paths(root, &key)?;
            remove_file(&p.partial)?;
            match fs::remove_dir_all(&p.staged_dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("delete", &p.staged_dir)(e)),
            }
            if p.component_dir.exists() {
                sync_dir(&p.component_dir).map_err(io_err("flush", &p.component_dir))?;
            }
            Ok(())
        })
        .await
    }

    async fn list(&self) -> Result<Vec<StoredArtifact>, ArtifactStoreError> {
        self.run(|root| {
            let mut out = Vec::new();
            for component in ComponentId::ALL {
                let dir = root.join(component.rest_id());
                let entries = match fs::read_dir(&dir) {
                    Ok(e) => e,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io_err("list", &dir)(e)),
                };
                let mut found: Vec<StoredArtifact> = Vec::new();
                for entry in entries {
                    let entry = entry.map_err(io_err("list", &dir))?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    let path = entry.path();
                    if let Some(stem) = name.strip_suffix(".part") {
                        if let (Some(key), Some(len)) = (key_of(component, stem), file_len(&path)?)
                        {
                            found.push(StoredArtifact {
                                key,
                                len,
                                state: ArtifactState::Partial,
                            });
                        }
                    } else if let (Some(key), Some(file)) =
                        (key_of(component, &name), staged_file(&path)?)
                    {
                        found.push(StoredArtifact {
                            key,
                            len: file_len(&file)?.unwrap_or(0),
                            state: ArtifactState::Staged {
                                path: file.display().to_string(),
                            },
                        });
                    }
                }
                // A staged artifact hides a leftover partial of the same key.
                let staged: Vec<ArtifactKey> = found
                    .iter()
                    .filter(|a| matches!(a.state, ArtifactState::Staged { .. }))
                    .map(|a| a.key.clone())
                    .collect();
                found.retain(|a| {
                    matches!(a.state, ArtifactState::Staged { .. }) || !staged.contains(&a.key)
                });
                found.sort_by(|a, b| a.key.cmp(&b.key));
                out.extend(found);
            }
            Ok(out)
        })
        .await
    }
}
