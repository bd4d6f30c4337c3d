//! Contract suite of [`SlotFs`]: stamp [`crate::slot_fs_suite!`] for every
//! implementation, and [`crate::slot_fs_disk_suite!`] too for one on disk.
//!
//! A case needs artifacts besides the port. [`SlotFsHarness`] makes them from
//! a [`TestArtifact`]: [`ZipHarness`] writes real zips (with [`write_zip`]) for
//! an adapter on disk, and [`MemorySlotFs`] registers what each extracts to.
//! The disk cases also look at the files (modes, leftovers, nothing written
//! outside the slot) and need [`SlotFsHarness::extensions_dir`].

use std::collections::BTreeSet;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use spacepos_config::Slot;
use spacepos_spacefuel::{SLOT_MANIFEST_FILE, SlotError, SlotFs, SlotManifest};
use zip::ZipWriter;
use zip::write::SimpleFileOptions;

use crate::fakes::{MemoryArtifact, MemorySlotFs};

/// The entry program of every good test artifact.
pub const ENTRY: &str = "bin/spacefuel";
/// The bytes of [`ENTRY`].
pub const ENTRY_BYTES: &[u8] = b"#!/bin/sh\necho SpaceFuel\n";
/// A plain file of every good test artifact.
pub const README: &str = "README.txt";

/// One entry of a zip written by [`write_zip`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZipEntry {
    /// A file with Unix permission bits `mode`.
    File {
        name: String,
        bytes: Vec<u8>,
        mode: u32,
    },
    Dir {
        name: String,
    },
    /// A symbolic link (Unix mode `S_IFLNK`) to `target`.
    Symlink {
        name: String,
        target: String,
    },
}

impl ZipEntry {
    pub fn file(name: &str, bytes: &[u8], mode: u32) -> Self {
        ZipEntry::File {
            name: name.to_owned(),
            bytes: bytes.to_vec(),
            mode,
        }
    }

    pub fn dir(name: &str) -> Self {
        ZipEntry::Dir {
            name: name.to_owned(),
        }
    }

    pub fn symlink(name: &str, target: &str) -> Self {
        ZipEntry::Symlink {
            name: name.to_owned(),
            target: target.to_owned(),
        }
    }
}

/// Write a zip of `entries`, in order and with their names exactly as given
/// (`../evil` and `/abs/path` included), files deflated.
pub fn write_zip(path: &Path, entries: &[ZipEntry]) {
    let file =
        fs::File::create(path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
    let mut zip = ZipWriter::new(file);
    for entry in entries {
        match entry {
            ZipEntry::File { name, bytes, mode } => {
                let options = SimpleFileOptions::default()
                    .compression_method(zip::CompressionMethod::Deflated)
                    .unix_permissions(*mode);
                zip.start_file(name.as_str(), options)
                    .unwrap_or_else(|e| panic!("zip entry {name}: {e}"));
                zip.write_all(bytes)
                    .unwrap_or_else(|e| panic!("zip entry {name}: {e}"));
            }
            ZipEntry::Dir { name } => zip
                .add_directory(name.as_str(), SimpleFileOptions::default())
                .unwrap_or_else(|e| panic!("zip directory {name}: {e}")),
            ZipEntry::Symlink { name, target } => zip
                .add_symlink(name.as_str(), target.as_str(), SimpleFileOptions::default())
                .unwrap_or_else(|e| panic!("zip link {name}: {e}")),
        }
    }
    zip.finish()
        .unwrap_or_else(|e| panic!("cannot finish {}: {e}", path.display()));
}

/// An entry that must make the artifact [`SlotError::Unsafe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsafeEntry {
    /// `../evil`: climbs out of the slot.
    ParentDir,
    /// `/abs/path`: an absolute path.
    Absolute,
    /// `escape`, a link to `../../outside`, followed by `escape/evil.txt`.
    SymlinkOut,
    /// `C:/evil.exe`: a drive letter.
    DriveLetter,
    /// `BIN/SpaceFuel`: the entry program again, in other case (one file on Windows).
    CaseDuplicate,
}

impl UnsafeEntry {
    pub const ALL: [UnsafeEntry; 5] = [
        UnsafeEntry::ParentDir,
        UnsafeEntry::Absolute,
        UnsafeEntry::SymlinkOut,
        UnsafeEntry::DriveLetter,
        UnsafeEntry::CaseDuplicate,
    ];

    /// The entry a refusal must name.
    pub fn entry(self) -> &'static str {
        match self {
            UnsafeEntry::ParentDir => "../evil",
            UnsafeEntry::Absolute => "/abs/path",
            UnsafeEntry::SymlinkOut => "escape",
            UnsafeEntry::DriveLetter => "C:/evil.exe",
            UnsafeEntry::CaseDuplicate => "BIN/SpaceFuel",
        }
    }

    fn label(self) -> &'static str {
        match self {
            UnsafeEntry::ParentDir => "parent-dir",
            UnsafeEntry::Absolute => "absolute",
            UnsafeEntry::SymlinkOut => "symlink-out",
            UnsafeEntry::DriveLetter => "drive-letter",
            UnsafeEntry::CaseDuplicate => "case-duplicate",
        }
    }

    /// The unsafe entries, placed after the good ones (an adapter that wrote
    /// while checking would have written those).
    fn zip_entries(self) -> Vec<ZipEntry> {
        let evil = b"evil".as_slice();
        match self {
            UnsafeEntry::SymlinkOut => vec![
                ZipEntry::symlink("escape", "../../outside"),
                ZipEntry::file("escape/evil.txt", evil, 0o644),
            ],
            UnsafeEntry::CaseDuplicate => vec![ZipEntry::file("BIN/SpaceFuel", evil, 0o755)],
            other => vec![ZipEntry::file(other.entry(), evil, 0o644)],
        }
    }
}

/// An artifact a case extracts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TestArtifact {
    /// `slot.json` (`version`, entry [`ENTRY`]), [`ENTRY`] (`0755`),
    /// [`README`] (`0644`) and the files `extra` (`0644`, their name as content).
    Good { version: String, extra: Vec<String> },
    /// A good artifact of version `6.6.6` plus one unsafe entry.
    Unsafe(UnsafeEntry),
    /// [`ENTRY`] and [`README`] but no `slot.json`.
    WithoutManifest,
}

impl TestArtifact {
    pub fn good(version: &str) -> Self {
        TestArtifact::Good {
            version: version.to_owned(),
            extra: Vec::new(),
        }
    }

    /// A good artifact with the files `extra` too.
    pub fn good_with(version: &str, extra: &[&str]) -> Self {
        TestArtifact::Good {
            version: version.to_owned(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    /// A short name, for file names.
    pub fn label(&self) -> String {
        match self {
            TestArtifact::Good { version, .. } => format!("good-{version}"),
            TestArtifact::Unsafe(kind) => format!("unsafe-{}", kind.label()),
            TestArtifact::WithoutManifest => "without-manifest".into(),
        }
    }

    /// The manifest extracting it yields, if it is good.
    pub fn manifest(&self) -> Option<SlotManifest> {
        match self {
            TestArtifact::Good { version, .. } => Some(manifest(version)),
            _ => None,
        }
    }

    /// The entries of its zip.
    pub fn zip_entries(&self) -> Vec<ZipEntry> {
        let program = |entries: &mut Vec<ZipEntry>| {
            entries.push(ZipEntry::dir("bin/"));
            entries.push(ZipEntry::file(ENTRY, ENTRY_BYTES, 0o755));
            entries.push(ZipEntry::file(README, b"SpaceFuel\n", 0o644));
        };
        let slot_json = |version: &str| {
            let json = serde_json::to_vec(&manifest(version)).expect("manifest json");
            ZipEntry::file(SLOT_MANIFEST_FILE, &json, 0o644)
        };
        let mut entries = Vec::new();
        match self {
            TestArtifact::Good { version, extra } => {
                entries.push(slot_json(version));
                program(&mut entries);
                for name in extra {
                    entries.push(ZipEntry::file(name, name.as_bytes(), 0o644));
                }
            }
            TestArtifact::Unsafe(kind) => {
                entries.push(slot_json("6.6.6"));
                program(&mut entries);
                entries.extend(kind.zip_entries());
            }
            TestArtifact::WithoutManifest => program(&mut entries),
        }
        entries
    }
}

/// The manifest of a good test artifact of `version`.
pub fn manifest(version: &str) -> SlotManifest {
    SlotManifest {
        version: version.to_owned(),
        entry: ENTRY.to_owned(),
    }
}

/// Slots under test, and the artifacts the cases extract.
#[async_trait]
pub trait SlotFsHarness: Send + Sync {
    fn slots(&self) -> &dyn SlotFs;
    /// Make `artifact` extractable; returns the path to pass to `extract`.
    /// Every call returns a new path.
    async fn artifact(&self, artifact: &TestArtifact) -> PathBuf;
    /// The directory the slots are in on disk (`extensions/spacefuel`), for
    /// the disk cases; `None` for an in-memory fake. Nothing else may be
    /// written below its parent (artifacts live elsewhere).
    fn extensions_dir(&self) -> Option<&Path>;
}

/// A [`SlotFsHarness`] of slots on disk: artifacts are zips written to
/// `artifacts_dir` (which must not be below the extensions directory's
/// parent); `guard` lives as long as the harness (a temporary directory).
#[derive(Debug)]
pub struct ZipHarness<S, G> {
    pub slots: S,
    extensions_dir: PathBuf,
    artifacts_dir: PathBuf,
    made: AtomicUsize,
    _guard: G,
}

impl<S, G> ZipHarness<S, G> {
    pub fn new(
        slots: S,
        extensions_dir: impl Into<PathBuf>,
        artifacts_dir: impl Into<PathBuf>,
        guard: G,
    ) -> Self {
        ZipHarness {
            slots,
            extensions_dir: extensions_dir.into(),
            artifacts_dir: artifacts_dir.into(),
            made: AtomicUsize::new(0),
            _guard: guard,
        }
    }
}

#[async_trait]
impl<S: SlotFs, G: Send + Sync> SlotFsHarness for ZipHarness<S, G> {
    fn slots(&self) -> &dyn SlotFs {
        &self.slots
    }

    async fn artifact(&self, artifact: &TestArtifact) -> PathBuf {
        fs::create_dir_all(&self.artifacts_dir).expect("artifacts dir");
        let n = self.made.fetch_add(1, Ordering::Relaxed);
        let path = self
            .artifacts_dir
            .join(format!("{n}-{}.zip", artifact.label()));
        write_zip(&path, &artifact.zip_entries());
        path
    }

    fn extensions_dir(&self) -> Option<&Path> {
        Some(&self.extensions_dir)
    }
}

#[async_trait]
impl SlotFsHarness for MemorySlotFs {
    fn slots(&self) -> &dyn SlotFs {
        self
    }

    async fn artifact(&self, artifact: &TestArtifact) -> PathBuf {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let n = MADE.fetch_add(1, Ordering::Relaxed);
        let path = PathBuf::from(format!("memory/artifacts/{n}-{}.zip", artifact.label()));
        let what = match artifact {
            TestArtifact::Good { version, .. } => MemoryArtifact::Installs(manifest(version)),
            TestArtifact::Unsafe(kind) => MemoryArtifact::Unsafe {
                entry: kind.entry().to_owned(),
                problem: "would be written outside the slot".into(),
            },
            TestArtifact::WithoutManifest => {
                MemoryArtifact::Invalid(format!("it has no {SLOT_MANIFEST_FILE} at its root"))
            }
        };
        self.register(&path, what);
        path
    }

    fn extensions_dir(&self) -> Option<&Path> {
        None
    }
}

async fn assert_incomplete(slots: &dyn SlotFs, slot: Slot) {
    match slots.manifest(slot).await {
        Err(SlotError::Incomplete { slot: s }) => assert_eq!(s, slot),
        other => panic!("slot {slot} should be incomplete, got {other:?}"),
    }
}

async fn extract_good(h: &dyn SlotFsHarness, slot: Slot, artifact: TestArtifact) -> SlotManifest {
    let path = h.artifact(&artifact).await;
    let got = h
        .slots()
        .extract(slot, path.clone())
        .await
        .unwrap_or_else(|e| panic!("extract {} into {slot}: {e}", path.display()));
    assert_eq!(Some(got.clone()), artifact.manifest());
    got
}

/// Clause: "`manifest` of a slot that is not complete is
/// [`SlotError::Incomplete`]": nothing is installed at first; each slot has
/// its own directory; clearing an empty slot is fine.
pub async fn case_nothing_is_installed_at_first(h: &dyn SlotFsHarness) {
    let slots = h.slots();
    for slot in [Slot::Blue, Slot::Green] {
        assert_incomplete(slots, slot).await;
        assert!(slots.dir(slot).ends_with(slot.as_str()), "{slot}");
    }
    assert_ne!(slots.dir(Slot::Blue), slots.dir(Slot::Green));
    slots.clear(Slot::Blue).await.expect("clear an empty slot");
    assert_incomplete(slots, Slot::Blue).await;
}

/// Clause: "`extract` first empties the slot, then writes every entry of the
/// zip inside it, and only then marks it complete": the manifest is returned
/// and `manifest` answers it; the other slot is untouched.
pub async fn case_a_good_artifact_is_extracted_with_its_manifest(h: &dyn SlotFsHarness) {
    let got = extract_good(h, Slot::Green, TestArtifact::good("2.2.0")).await;
    assert_eq!(got, manifest("2.2.0"));
    assert_eq!(
        h.slots().manifest(Slot::Green).await.expect("manifest"),
        manifest("2.2.0")
    );
    assert_incomplete(h.slots(), Slot::Blue).await;
}

/// Clause: "an entry that would land outside the slot (`..`, absolute, a
/// symlink out) fails the whole extraction before anything is written, and
/// leaves the slot incomplete": [`SlotError::Unsafe`] naming the artifact and
/// the entry, for each kind of [`UnsafeEntry`].
pub async fn case_unsafe_entries_are_refused(h: &dyn SlotFsHarness) {
    for kind in UnsafeEntry::ALL {
        let path = h.artifact(&TestArtifact::Unsafe(kind)).await;
        match h.slots().extract(Slot::Blue, path.clone()).await {
            Err(SlotError::Unsafe {
                artifact, entry, ..
            }) => {
                assert_eq!(entry, kind.entry(), "{kind:?}");
                assert_eq!(artifact, path.display().to_string(), "{kind:?}");
            }
            other => panic!("{kind:?}: expected Unsafe, got {other:?}"),
        }
        assert_incomplete(h.slots(), Slot::Blue).await;
    }
}

/// Clause of [`SlotError::Invalid`]: an artifact that "lacks `slot.json`"
/// cannot be installed, and the slot stays incomplete.
pub async fn case_an_artifact_without_slot_json_is_invalid(h: &dyn SlotFsHarness) {
    let path = h.artifact(&TestArtifact::WithoutManifest).await;
    match h.slots().extract(Slot::Green, path.clone()).await {
        Err(SlotError::Invalid { artifact, problem }) => {
            assert_eq!(artifact, path.display().to_string());
            assert!(problem.contains(SLOT_MANIFEST_FILE), "{problem}");
        }
        other => panic!("expected Invalid, got {other:?}"),
    }
    assert_incomplete(h.slots(), Slot::Green).await;
}

/// Clause: "`extract` first empties the slot": extracting over an installed
/// version replaces it.
pub async fn case_re_extracting_replaces_the_old_version(h: &dyn SlotFsHarness) {
    extract_good(
        h,
        Slot::Blue,
        TestArtifact::good_with("2.1.0", &["old.txt"]),
    )
    .await;
    extract_good(h, Slot::Blue, TestArtifact::good("2.2.0")).await;
    assert_eq!(
        h.slots().manifest(Slot::Blue).await.expect("manifest"),
        manifest("2.2.0")
    );
}

/// Clause: "`clear` removes the slot's content and its completion mark": the
/// slot is incomplete after, clearing twice is fine, and it can be extracted
/// into again.
pub async fn case_clear_removes_the_installation(h: &dyn SlotFsHarness) {
    extract_good(h, Slot::Green, TestArtifact::good("2.2.0")).await;
    h.slots().clear(Slot::Green).await.expect("clear");
    assert_incomplete(h.slots(), Slot::Green).await;
    h.slots().clear(Slot::Green).await.expect("clear again");
    extract_good(h, Slot::Green, TestArtifact::good("2.3.0")).await;
    assert_eq!(
        h.slots().manifest(Slot::Green).await.expect("manifest"),
        manifest("2.3.0")
    );
}

/// The two slots are independent: extracting into or clearing one leaves the
/// other as it is.
pub async fn case_the_slots_are_independent(h: &dyn SlotFsHarness) {
    extract_good(h, Slot::Blue, TestArtifact::good("2.1.0")).await;
    extract_good(h, Slot::Green, TestArtifact::good("2.2.0")).await;
    h.slots().clear(Slot::Blue).await.expect("clear blue");
    assert_incomplete(h.slots(), Slot::Blue).await;
    assert_eq!(
        h.slots().manifest(Slot::Green).await.expect("green"),
        manifest("2.2.0")
    );
}

// ---------------------------------------------------------------------------
// Disk cases

fn on_disk(h: &dyn SlotFsHarness) -> &Path {
    h.extensions_dir()
        .expect("a disk case needs slots on disk (SlotFsHarness::extensions_dir)")
}

/// Everything below `root`, recursively, with what each path is (links are
/// listed, never followed).
pub fn tree(root: &Path) -> BTreeSet<String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeSet<String>) {
        let Ok(entries) = fs::read_dir(dir) else {
            return;
        };
        for entry in entries {
            let entry = entry.expect("dir entry");
            let path = entry.path();
            let rel = path
                .strip_prefix(root)
                .expect("below root")
                .display()
                .to_string();
            let meta = fs::symlink_metadata(&path).expect("metadata");
            if meta.file_type().is_symlink() {
                out.insert(format!("{rel} (link)"));
            } else if meta.is_dir() {
                out.insert(format!("{rel}/"));
                walk(root, &path, out);
            } else {
                out.insert(format!("{rel} ({} bytes)", meta.len()));
            }
        }
    }
    let mut out = BTreeSet::new();
    walk(root, root, &mut out);
    out
}

/// The relative paths of the files below `dir`.
fn files_below(dir: &Path) -> BTreeSet<String> {
    tree(dir)
        .into_iter()
        .filter(|p| !p.ends_with('/'))
        .map(|p| p.split(" (").next().unwrap_or_default().replace('\\', "/"))
        .collect()
}

/// Clause: "`extract` ... writes every entry of the zip inside it": the files
/// are in [`SlotFs::dir`], below the extensions directory, with their
/// content, and the entry program keeps its executable bit.
pub async fn case_extracted_files_are_on_disk_with_their_modes(h: &dyn SlotFsHarness) {
    let ext = on_disk(h);
    extract_good(h, Slot::Blue, TestArtifact::good("2.2.0")).await;
    let dir = h.slots().dir(Slot::Blue);
    assert!(
        dir.starts_with(ext),
        "{} below {}",
        dir.display(),
        ext.display()
    );
    let json = fs::read(dir.join(SLOT_MANIFEST_FILE)).expect("slot.json");
    let on_disk: SlotManifest = serde_json::from_slice(&json).expect("manifest");
    assert_eq!(on_disk, manifest("2.2.0"));
    assert_eq!(fs::read(dir.join(ENTRY)).expect("entry"), ENTRY_BYTES);
    assert_eq!(fs::read(dir.join(README)).expect("readme"), b"SpaceFuel\n");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = |p: &str| {
            fs::metadata(dir.join(p))
                .expect("metadata")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(ENTRY), 0o755, "the entry program stays executable");
        assert_eq!(mode(README), 0o644);
    }
}

/// Clause: "... fails the whole extraction before anything is written": no
/// file or directory appears or changes anywhere below the extensions
/// directory's parent (the slot included), and `/abs/path` does not exist.
pub async fn case_unsafe_artifacts_write_nothing_anywhere(h: &dyn SlotFsHarness) {
    let ext = on_disk(h);
    let watched = ext.parent().unwrap_or(ext).to_path_buf();
    for kind in UnsafeEntry::ALL {
        let path = h.artifact(&TestArtifact::Unsafe(kind)).await;
        let before = tree(&watched);
        let e = h
            .slots()
            .extract(Slot::Green, path)
            .await
            .expect_err("unsafe");
        assert!(matches!(e, SlotError::Unsafe { .. }), "{kind:?}: {e:?}");
        assert_eq!(tree(&watched), before, "{kind:?} changed files");
        assert!(!Path::new("/abs/path").exists(), "{kind:?} wrote /abs/path");
        assert_incomplete(h.slots(), Slot::Green).await;
    }
}

/// Clause: "a half-extracted slot is never taken for an installation": a slot
/// holding a complete set of files, `slot.json` included, but not marked
/// complete (the extraction was interrupted) is [`SlotError::Incomplete`].
pub async fn case_an_interrupted_extraction_is_incomplete(h: &dyn SlotFsHarness) {
    on_disk(h);
    let dir = h.slots().dir(Slot::Green);
    fs::create_dir_all(dir.join("bin")).expect("mkdir");
    fs::write(
        dir.join(SLOT_MANIFEST_FILE),
        serde_json::to_vec(&manifest("2.2.0")).expect("json"),
    )
    .expect("slot.json");
    fs::write(dir.join(ENTRY), ENTRY_BYTES).expect("entry");
    assert_incomplete(h.slots(), Slot::Green).await;
    // An extraction over it completes it.
    extract_good(h, Slot::Green, TestArtifact::good("2.2.1")).await;
    assert_eq!(
        h.slots().manifest(Slot::Green).await.expect("manifest"),
        manifest("2.2.1")
    );
}

/// Clause: "`extract` first empties the slot": no file of the old version is
/// left beside the new one.
pub async fn case_re_extracting_leaves_no_old_files(h: &dyn SlotFsHarness) {
    on_disk(h);
    extract_good(
        h,
        Slot::Blue,
        TestArtifact::good_with("2.1.0", &["old-only.txt", "data/old.db"]),
    )
    .await;
    let dir = h.slots().dir(Slot::Blue);
    fs::write(dir.join("written-by-the-service.log"), b"log").expect("log");
    extract_good(
        h,
        Slot::Blue,
        TestArtifact::good_with("2.2.0", &["new-only.txt"]),
    )
    .await;
    let expected: BTreeSet<String> = [SLOT_MANIFEST_FILE, ENTRY, README, "new-only.txt"]
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(files_below(&dir), expected);
}

/// Clause: "`clear` removes the slot's content": no file is left in the slot.
pub async fn case_a_cleared_slot_holds_no_files(h: &dyn SlotFsHarness) {
    on_disk(h);
    extract_good(h, Slot::Blue, TestArtifact::good("2.2.0")).await;
    h.slots().clear(Slot::Blue).await.expect("clear");
    assert!(files_below(&h.slots().dir(Slot::Blue)).is_empty());
}

/// Stamp one `#[tokio::test]` per [`SlotFs`] contract case. The argument is
/// an expression evaluating to a future of a fresh [`SlotFsHarness`].
#[macro_export]
macro_rules! slot_fs_suite {
    ($factory:expr) => {
        $crate::slot_fs_suite!(@cases $factory;
            case_nothing_is_installed_at_first,
            case_a_good_artifact_is_extracted_with_its_manifest,
            case_unsafe_entries_are_refused,
            case_an_artifact_without_slot_json_is_invalid,
            case_re_extracting_replaces_the_old_version,
            case_clear_removes_the_installation,
            case_the_slots_are_independent,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let harness = $factory.await;
                $crate::suites::slot_fs::$case(&harness).await;
            }
        )+
    };
}

/// Stamp one `#[tokio::test]` per disk case of the [`SlotFs`] contract, for
/// an implementation on disk (its harness has an
/// [`extensions_dir`](SlotFsHarness::extensions_dir)).
#[macro_export]
macro_rules! slot_fs_disk_suite {
    ($factory:expr) => {
        $crate::slot_fs_suite!(@cases $factory;
            case_extracted_files_are_on_disk_with_their_modes,
            case_unsafe_artifacts_write_nothing_anywhere,
            case_an_interrupted_extraction_is_incomplete,
            case_re_extracting_leaves_no_old_files,
            case_a_cleared_slot_holds_no_files,
        );
    };
}
