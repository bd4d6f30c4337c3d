//! [`MemorySlotFs`]: SpaceFuel's blue/green slots, in memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use spacepos_config::Slot;
use spacepos_spacefuel::{SlotError, SlotFs, SlotManifest};

/// What extracting a registered artifact does in a [`MemorySlotFs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemoryArtifact {
    /// The artifact is good: the slot becomes complete with this manifest.
    Installs(SlotManifest),
    /// The artifact holds an entry that would land outside the slot (or a
    /// link): [`SlotError::Unsafe`] naming `entry`, and nothing changes.
    Unsafe { entry: String, problem: String },
    /// The artifact cannot be installed (not a zip, no `slot.json`):
    /// [`SlotError::Invalid`], and nothing changes.
    Invalid(String),
}

/// What a slot holds.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Content {
    Empty,
    /// Files without the completion mark (an interrupted extraction).
    Partial,
    Complete(SlotManifest),
}

#[derive(Debug)]
struct Inner {
    root: PathBuf,
    artifacts: BTreeMap<PathBuf, MemoryArtifact>,
    slots: BTreeMap<Slot, Content>,
    extractions: Vec<(Slot, PathBuf)>,
    interrupt_next: Option<String>,
}

/// An in-memory [`SlotFs`] with the same outcomes as the file adapter
/// (checked by [`crate::suites::slot_fs`]).
///
/// There are no zips: a test [`register`](Self::register)s what extracting a
/// path does (installs a manifest, is unsafe, is invalid); an unregistered
/// path is an I/O error, like a missing file. An unsafe or invalid artifact
/// changes nothing, as in the file adapter, which checks the whole artifact
/// before it empties the slot. Clones share the same slots. Slot directories
/// are `<root>/blue` and `<root>/green`, `root` being
/// `memory/extensions/spacefuel` unless given to [`with_root`](Self::with_root).
#[derive(Debug, Clone)]
pub struct MemorySlotFs {
    inner: Arc<Mutex<Inner>>,
}

impl Default for MemorySlotFs {
    fn default() -> Self {
        Self::new()
    }
}

impl MemorySlotFs {
    pub fn new() -> Self {
        Self::with_root("memory/extensions/spacefuel")
    }

    /// Slots whose [`dir`](SlotFs::dir)s are under `root` (nothing is written there).
    pub fn with_root(root: impl Into<PathBuf>) -> Self {
        MemorySlotFs {
            inner: Arc::new(Mutex::new(Inner {
                root: root.into(),
                artifacts: BTreeMap::new(),
                slots: BTreeMap::new(),
                extractions: Vec::new(),
                interrupt_next: None,
            })),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Extracting `artifact` will do `what`.
    pub fn register(&self, artifact: impl Into<PathBuf>, what: MemoryArtifact) {
        self.lock().artifacts.insert(artifact.into(), what);
    }

    /// Register `artifact` as a good artifact of `manifest`.
    pub fn register_good(&self, artifact: impl Into<PathBuf>, manifest: SlotManifest) {
        self.register(artifact, MemoryArtifact::Installs(manifest));
    }

    /// Make `slot` complete with `manifest`, as if extracted earlier.
    pub fn install(&self, slot: Slot, manifest: SlotManifest) {
        self.lock().slots.insert(slot, Content::Complete(manifest));
    }

    /// Leave `slot` as an interrupted extraction leaves it: files, no mark.
    pub fn interrupt(&self, slot: Slot) {
        self.lock().slots.insert(slot, Content::Partial);
    }

    /// The next `extract` of a good artifact empties the slot, then fails with
    /// [`SlotError::Io`] carrying `detail` (a full disk, a crash), leaving the
    /// slot incomplete.
    pub fn interrupt_next_extract(&self, detail: &str) {
        self.lock().interrupt_next = Some(detail.to_owned());
    }

    /// Every `extract` call so far, in order (refused ones included).
    pub fn extractions(&self) -> Vec<(Slot, PathBuf)> {
        self.lock().extractions.clone()
    }

    /// Whether `slot` holds any files (complete or not).
    pub fn has_files(&self, slot: Slot) -> bool {
        !matches!(self.content(slot), Content::Empty)
    }

    /// The manifest of `slot` if it is complete.
    pub fn installed(&self, slot: Slot) -> Option<SlotManifest> {
        match self.content(slot) {
            Content::Complete(m) => Some(m),
            _ => None,
        }
    }

    fn content(&self, slot: Slot) -> Content {
        self.lock()
            .slots
            .get(&slot)
            .cloned()
            .unwrap_or(Content::Empty)
    }

    fn dir_of(root: &Path, slot: Slot) -> PathBuf {
        root.join(slot.as_str())
    }
}

#[async_trait]
impl SlotFs for MemorySlotFs {
    async fn extract(&self, slot: Slot, artifact: PathBuf) -> Result<SlotManifest, SlotError> {
        let mut inner = self.lock();
        inner.extractions.push((slot, artifact.clone()));
        let name = artifact.display().to_string();
        match inner.artifacts.get(&artifact).cloned() {
            None => Err(SlotError::Io {
                slot,
                detail: format!("cannot open {name}: no such artifact"),
            }),
            Some(MemoryArtifact::Unsafe { entry, problem }) => Err(SlotError::Unsafe {
                artifact: name,
                entry,
                problem,
            }),
            Some(MemoryArtifact::Invalid(problem)) => Err(SlotError::Invalid {
                artifact: name,
                problem,
            }),
            Some(MemoryArtifact::Installs(manifest)) => {
                if let Some(detail) = inner.interrupt_next.take() {
                    inner.slots.insert(slot, Content::Partial);
                    return Err(SlotError::Io { slot, detail });
                }
                inner
                    .slots
                    .insert(slot, Content::Complete(manifest.clone()));
                Ok(manifest)
            }
        }
    }

    async fn manifest(&self, slot: Slot) -> Result<SlotManifest, SlotError> {
        self.installed(slot).ok_or(SlotError::Incomplete { slot })
    }

    async fn clear(&self, slot: Slot) -> Result<(), SlotError> {
        self.lock().slots.insert(slot, Content::Empty);
        Ok(())
    }

    fn dir(&self, slot: Slot) -> PathBuf {
        Self::dir_of(&self.lock().root, slot)
    }
}
