//! [`FsSlots`]: SpaceFuel's two installation slots on disk, the
//! [`SlotFs`] port.
//!
//! Layout, in `<data-dir>/extensions/spacefuel/` (the *extensions directory*):
//!
//! - `blue/`, `green/`: the slots, each the content of one extracted artifact
//!   (a zip with `slot.json` at its root, see [`SlotManifest`]).
//! - `blue.complete`, `green.complete`: the completion markers, holding the
//!   slot's manifest as JSON. A marker is written atomically after every file
//!   of the slot has been written and flushed, and removed before anything in
//!   the slot is touched; a slot without its marker is never taken for an
//!   installation. The markers live *outside* the slots, so an artifact cannot
//!   bring its own.
//!
//! Extraction checks every entry of the zip before it changes anything: an
//! absolute name, a drive letter or `:`, a `..` component, a symbolic link
//! (wherever it points: links are refused altogether), a special file, a
//! Windows device name, or two entries that land on the same file (names
//! differing only in case, `./` or `//` included) make the artifact
//! [`SlotError::Unsafe`]; a missing or unusable `slot.json`, an entry program
//! that is not a file of the artifact, an encrypted entry or an unknown
//! compression make it [`SlotError::Invalid`]. Only then is the slot emptied
//! and the entries written, each below the slot directory, creating every
//! directory itself and never following a link (files are created with
//! `create_new`, so an existing link or file is never written through).
//!
//! Unix permission bits of files are kept (the executable bit in particular),
//! less group and other write; directories are `0755`.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use spacepos_config::Slot;
use spacepos_spacefuel::{SLOT_MANIFEST_FILE, SlotError, SlotFs, SlotManifest};
use zip::ZipArchive;
use zip::result::ZipError;

use crate::atomic::{FileMode, sync_dir, write_atomic};
use crate::blocking;

/// The suffix of a slot's completion marker: `<extensions-dir>/<slot>.complete`.
pub const SLOT_COMPLETE_SUFFIX: &str = ".complete";

/// Most entries an artifact may hold.
const MAX_ENTRIES: usize = 100_000;
/// Most bytes an artifact may extract to (the sum of its entries' sizes).
const MAX_EXTRACTED_BYTES: u64 = 4 * 1024 * 1024 * 1024;
/// Largest `slot.json` read.
const MAX_MANIFEST_BYTES: u64 = 64 * 1024;

/// The slots `blue/` and `green/` of `<data-dir>/extensions/spacefuel`.
///
/// Clones share the same in-process lock per slot (an extraction, a clear and
/// a manifest read of one slot never interleave within the process).
#[derive(Debug, Clone)]
pub struct FsSlots {
    root: PathBuf,
    locks: Arc<[Mutex<()>; 2]>,
}

impl FsSlots {
    /// The slots under `extensions_dir` (`<data-dir>/extensions/spacefuel`);
    /// directories are created when first extracted into.
    pub fn new(extensions_dir: impl Into<PathBuf>) -> Self {
        FsSlots {
            root: extensions_dir.into(),
            locks: Arc::new([Mutex::new(()), Mutex::new(())]),
        }
    }

    /// The extensions directory the slots live in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the completion marker of `slot` is: `<extensions-dir>/<slot>.complete`.
    pub fn marker_path(&self, slot: Slot) -> PathBuf {
        marker_path(&self.root, slot)
    }

    async fn run<T: Send + 'static>(
        &self,
        slot: Slot,
        f: impl FnOnce(&Path) -> Result<T, SlotError> + Send + 'static,
    ) -> Result<T, SlotError> {
        let root = self.root.clone();
        let locks = Arc::clone(&self.locks);
        blocking::run(move || {
            let index = match slot {
                Slot::Blue => 0,
                Slot::Green => 1,
            };
            let _guard = locks[index].lock().unwrap_or_else(PoisonError::into_inner);
            f(&root)
        })
        .await
        .map_err(|e| SlotError::Io {
            slot,
            detail: e.to_string(),
        })?
    }
}

fn marker_path(root: &Path, slot: Slot) -> PathBuf {
    root.join(format!("{}{SLOT_COMPLETE_SUFFIX}", slot.as_str()))
}

fn slot_dir(root: &Path, slot: Slot) -> PathBuf {
    root.join(slot.as_str())
}

#[async_trait]
impl SlotFs for FsSlots {
    async fn extract(&self, slot: Slot, artifact: PathBuf) -> Result<SlotManifest, SlotError> {
        self.run(slot, move |root| extract(root, slot, &artifact))
            .await
    }

    async fn manifest(&self, slot: Slot) -> Result<SlotManifest, SlotError> {
        self.run(slot, move |root| manifest(root, slot)).await
    }

    async fn clear(&self, slot: Slot) -> Result<(), SlotError> {
        self.run(slot, move |root| clear(root, slot)).await
    }

    fn dir(&self, slot: Slot) -> PathBuf {
        slot_dir(&self.root, slot)
    }
}

// ---------------------------------------------------------------------------
// Entry names

/// The checked path of an entry, relative to the slot: its components, none
/// of them empty, `.`, `..`, or holding a separator or `:`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct EntryPath(Vec<String>);

impl EntryPath {
    /// The name two entries collide on (Windows compares names without case).
    fn collision_key(&self) -> String {
        self.0.join("/").to_lowercase()
    }

    /// The collision keys of the directories this path is in.
    fn ancestor_keys(&self) -> impl Iterator<Item = String> + '_ {
        (1..self.0.len()).map(|n| self.0[..n].join("/").to_lowercase())
    }

    /// `base` joined with the components, checked to stay below `base`.
    fn under(&self, base: &Path) -> Option<PathBuf> {
        let mut path = base.to_path_buf();
        for c in &self.0 {
            // Each component must be one plain name on this platform too.
            let mut parts = Path::new(c).components();
            match (parts.next(), parts.next()) {
                (Some(std::path::Component::Normal(_)), None) => path.push(c),
                _ => return None,
            }
        }
        path.starts_with(base).then_some(path)
    }
}

const WINDOWS_DEVICES: [&str; 22] = [
    "con", "prn", "aux", "nul", "com1", "com2", "com3", "com4", "com5", "com6", "com7", "com8",
    "com9", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// Check an entry name (or the manifest's `entry`) and split it into
/// components. `Err` says what is wrong, as a predicate of the name ("is an
/// absolute path").
fn entry_path(name: &str) -> Result<EntryPath, String> {
    if name.is_empty() {
        return Err("has an empty name".into());
    }
    if name.contains('\0') {
        return Err("contains a NUL byte".into());
    }
    if name.starts_with(['/', '\\']) {
        return Err("is an absolute path: entries must stay inside the slot".into());
    }
    let bytes = name.as_bytes();
    if bytes.len() >= 2 && bytes[0].is_ascii_alphabetic() && bytes[1] == b':' {
        return Err("starts with a drive letter: entries must stay inside the slot".into());
    }
    let mut components = Vec::new();
    for c in name.split(['/', '\\']) {
        match c {
            "" | "." => continue,
            ".." => {
                return Err(
                    "has a `..` component: entries may not climb out of their directory".into(),
                );
            }
            _ => {}
        }
        if c.contains(':') {
            return Err("contains ':' (a Windows drive or alternate data stream)".into());
        }
        if c.chars()
            .any(|ch| ch.is_control() || matches!(ch, '<' | '>' | '"' | '|' | '?' | '*'))
        {
            return Err("contains a character Windows does not allow in file names".into());
        }
        if c.ends_with(['.', ' ']) {
            return Err("has a name ending in a dot or a space, which Windows would change".into());
        }
        let stem = c.split('.').next().unwrap_or(c).trim_end().to_lowercase();
        if WINDOWS_DEVICES.contains(&stem.as_str()) {
            return Err(format!(
                "is named like the Windows device {:?}: writing it would reach the device",
                stem.to_uppercase()
            ));
        }
        components.push(c.to_owned());
    }
    if components.is_empty() {
        return Err("names nothing inside the slot".into());
    }
    Ok(EntryPath(components))
}

// ---------------------------------------------------------------------------
// Entry kinds

const S_IFMT: u32 = 0o170_000;
const S_IFREG: u32 = 0o100_000;
const S_IFDIR: u32 = 0o040_000;
const S_IFLNK: u32 = 0o120_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A regular file, with the permission bits it is written with.
    File {
        mode: u32,
    },
    Dir,
}

/// What an entry is, from its name (a trailing `/`) and its Unix mode, if any.
fn kind_of(name: &str, unix_mode: Option<u32>) -> Result<Kind, String> {
    let named_dir = name.ends_with(['/', '\\']);
    let file_type = unix_mode.map_or(0, |m| m & S_IFMT);
    match file_type {
        S_IFLNK => {
            Err("is a symbolic link: links are refused altogether, wherever they point".into())
        }
        S_IFDIR => Ok(Kind::Dir),
        0 | S_IFREG if named_dir => Ok(Kind::Dir),
        0 | S_IFREG => Ok(Kind::File {
            // Keep the permission bits (the executable bit above all), less
            // group/other write; the owner can always read what it installed.
            mode: unix_mode.map_or(0o644, |m| (m & 0o755) | 0o400),
        }),
        _ => Err(
            "is a special file (device, fifo or socket): only files and directories are installed"
                .into(),
        ),
    }
}

// ---------------------------------------------------------------------------
// Checking the artifact

/// One entry to write.
#[derive(Debug)]
struct Planned {
    index: usize,
    name: String,
    path: EntryPath,
    kind: Kind,
    size: u64,
}

/// Everything checked before anything is written.
#[derive(Debug)]
struct Plan {
    entries: Vec<Planned>,
    manifest: SlotManifest,
}

struct Ctx<'a> {
    slot: Slot,
    artifact: &'a Path,
}

impl Ctx<'_> {
    fn artifact(&self) -> String {
        self.artifact.display().to_string()
    }

    fn unsafe_entry(&self, entry: &str, problem: impl Into<String>) -> SlotError {
        SlotError::Unsafe {
            artifact: self.artifact(),
            entry: entry.to_owned(),
            problem: problem.into(),
        }
    }

    fn invalid(&self, problem: impl Into<String>) -> SlotError {
        SlotError::Invalid {
            artifact: self.artifact(),
            problem: problem.into(),
        }
    }

    /// A file-system failure while installing `entry` (or the artifact as a
    /// whole when `None`) at `path`.
    fn io(&self, action: &str, path: &Path, entry: Option<&str>, e: &io::Error) -> SlotError {
        let of = match entry {
            Some(entry) => format!(" (entry {entry:?} of {})", self.artifact.display()),
            None => format!(" (installing {})", self.artifact.display()),
        };
        SlotError::Io {
            slot: self.slot,
            detail: format!("cannot {action} {}{of}: {e}", path.display()),
        }
    }

    /// A zip-level failure reading `entry` (or the archive when `None`).
    fn zip(&self, entry: Option<&str>, e: ZipError) -> SlotError {
        match (e, entry) {
            (ZipError::Io(e), _) => SlotError::Io {
                slot: self.slot,
                detail: format!(
                    "cannot read the artifact {}{}: {e}",
                    self.artifact.display(),
                    entry
                        .map(|n| format!(" at entry {n:?}"))
                        .unwrap_or_default()
                ),
            },
            (e, Some(entry)) => self.invalid(format!("its entry {entry:?} is unreadable: {e}")),
            (e, None) => self.invalid(format!("it is not a usable zip: {e}")),
        }
    }
}

fn open_artifact(ctx: &Ctx<'_>) -> Result<ZipArchive<File>, SlotError> {
    let file = File::open(ctx.artifact).map_err(|e| ctx.io("open", ctx.artifact, None, &e))?;
    ZipArchive::new(file).map_err(|e| ctx.zip(None, e))
}

/// Check every entry and `slot.json`; nothing is written.
fn plan(ctx: &Ctx<'_>, archive: &mut ZipArchive<File>) -> Result<Plan, SlotError> {
    if archive.len() > MAX_ENTRIES {
        return Err(ctx.invalid(format!(
            "it holds {} entries, more than the {MAX_ENTRIES} a slot takes",
            archive.len()
        )));
    }
    if archive.has_duplicate_names() {
        return Err(ctx.unsafe_entry(
            "(a name used twice)",
            "appears more than once in the archive: which copy would be installed is ambiguous",
        ));
    }
    let mut entries = Vec::with_capacity(archive.len());
    // Collision key -> (entry name, is a file).
    let mut seen: BTreeMap<String, (String, bool)> = BTreeMap::new();
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let entry = archive.by_index_data(index).map_err(|e| ctx.zip(None, e))?;
        let name = entry
            .name()
            .map_err(|e| ctx.invalid(format!("entry #{index} has an unreadable name: {e}")))?
            .into_owned();
        let path = entry_path(&name).map_err(|p| ctx.unsafe_entry(&name, p))?;
        let kind = kind_of(&name, entry.unix_mode()).map_err(|p| ctx.unsafe_entry(&name, p))?;
        if entry.encrypted() {
            return Err(ctx.invalid(format!("its entry {name:?} is encrypted")));
        }
        if let Kind::File { .. } = kind {
            match entry.compression() {
                zip::CompressionMethod::Stored | zip::CompressionMethod::Deflated => {}
                other => {
                    return Err(ctx.invalid(format!(
                        "its entry {name:?} is compressed with {other}; only deflate and \
                         stored entries are read"
                    )));
                }
            }
        }
        let size = entry.size();
        total = total.saturating_add(size);
        if total > MAX_EXTRACTED_BYTES {
            return Err(ctx.invalid(format!(
                "it extracts to more than the {MAX_EXTRACTED_BYTES} bytes a slot takes"
            )));
        }
        let is_file = matches!(kind, Kind::File { .. });
        if let Some((other, other_is_file)) = seen.get(&path.collision_key())
            && (is_file || *other_is_file)
        {
            return Err(ctx.unsafe_entry(
                &name,
                format!(
                    "lands on the same file as the entry {other:?} (names are compared \
                     without case, `./` and `//`): duplicate names are refused"
                ),
            ));
        }
        seen.insert(path.collision_key(), (name.clone(), is_file));
        entries.push(Planned {
            index,
            name,
            path,
            kind,
            size,
        });
    }
    // A file may not also be a directory of another entry.
    for planned in &entries {
        for key in planned.path.ancestor_keys() {
            if let Some((file, true)) = seen.get(&key) {
                return Err(ctx.unsafe_entry(
                    &planned.name,
                    format!("is inside {file:?}, which is a file: duplicate names are refused"),
                ));
            }
        }
    }
    let manifest = planned_manifest(ctx, archive, &entries)?;
    Ok(Plan { entries, manifest })
}

/// Read and check `slot.json` from the archive, and that its entry program is
/// a file of the archive.
fn planned_manifest(
    ctx: &Ctx<'_>,
    archive: &mut ZipArchive<File>,
    entries: &[Planned],
) -> Result<SlotManifest, SlotError> {
    let manifest_path = EntryPath(vec![SLOT_MANIFEST_FILE.to_owned()]);
    let Some(planned) = entries.iter().find(|p| p.path == manifest_path) else {
        return Err(ctx.invalid(format!(
            "it has no {SLOT_MANIFEST_FILE} at its root (the slot manifest: version and entry)"
        )));
    };
    if planned.kind == Kind::Dir {
        return Err(ctx.invalid(format!("its {SLOT_MANIFEST_FILE} is a directory")));
    }
    let mut file = archive
        .by_index(planned.index)
        .map_err(|e| ctx.zip(Some(&planned.name), e))?;
    let mut bytes = Vec::new();
    (&mut file)
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ctx.invalid(format!("its {SLOT_MANIFEST_FILE} is unreadable: {e}")))?;
    let manifest = parse_manifest(&bytes).map_err(|p| ctx.invalid(p))?;
    let entry = entry_path(&manifest.entry).map_err(|p| {
        ctx.invalid(format!(
            "{SLOT_MANIFEST_FILE}: its entry {:?} {p}",
            manifest.entry
        ))
    })?;
    match entries.iter().find(|p| p.path == entry) {
        Some(Planned {
            kind: Kind::File { .. },
            ..
        }) => Ok(manifest),
        Some(_) => Err(ctx.invalid(format!(
            "{SLOT_MANIFEST_FILE}: its entry {:?} is a directory, not a program",
            manifest.entry
        ))),
        None => Err(ctx.invalid(format!(
            "{SLOT_MANIFEST_FILE}: its entry {:?} is not a file of the artifact",
            manifest.entry
        ))),
    }
}

/// Decode and check a `slot.json` (or a marker): `Err` says what is wrong.
fn parse_manifest(bytes: &[u8]) -> Result<SlotManifest, String> {
    if bytes.len() as u64 > MAX_MANIFEST_BYTES {
        return Err(format!(
            "its {SLOT_MANIFEST_FILE} is larger than {MAX_MANIFEST_BYTES} bytes"
        ));
    }
    let manifest: SlotManifest = serde_json::from_slice(bytes)
        .map_err(|e| format!("its {SLOT_MANIFEST_FILE} is not a slot manifest: {e}"))?;
    let version = manifest.version.trim();
    if version.is_empty() || version != manifest.version || version.chars().any(char::is_control) {
        return Err(format!(
            "{SLOT_MANIFEST_FILE}: the version {:?} is not a version",
            manifest.version
        ));
    }
    Ok(manifest)
}

// ---------------------------------------------------------------------------
// Writing

fn extract(root: &Path, slot: Slot, artifact: &Path) -> Result<SlotManifest, SlotError> {
    let ctx = Ctx { slot, artifact };
    let mut archive = open_artifact(&ctx)?;
    let plan = plan(&ctx, &mut archive)?;

    let dir = slot_dir(root, slot);
    let marker = marker_path(root, slot);
    reset_slot(&ctx, root, &dir, &marker)?;

    let mut created_dirs = BTreeSet::new();
    let mut buf = vec![0u8; 64 * 1024];
    for planned in &plan.entries {
        match planned.kind {
            Kind::Dir => {
                ensure_dirs(
                    &ctx,
                    &dir,
                    &planned.path.0,
                    &planned.name,
                    &mut created_dirs,
                )?;
            }
            Kind::File { mode } => {
                let parents = &planned.path.0[..planned.path.0.len() - 1];
                ensure_dirs(&ctx, &dir, parents, &planned.name, &mut created_dirs)?;
                write_entry(&ctx, &mut archive, &dir, planned, mode, &mut buf)?;
            }
        }
    }
    // Flush every directory's entries: deepest first, the slot last.
    for d in created_dirs.iter().rev() {
        sync_dir(d).map_err(|e| ctx.io("flush", d, None, &e))?;
    }
    sync_dir(&dir).map_err(|e| ctx.io("flush", &dir, None, &e))?;

    // What is on disk now is what gets marked.
    let manifest = read_slot_manifest(&dir).map_err(|problem| ctx.invalid(problem))?;
    if manifest != plan.manifest {
        return Err(SlotError::Io {
            slot,
            detail: format!(
                "{} changed while {} was extracted",
                dir.join(SLOT_MANIFEST_FILE).display(),
                artifact.display()
            ),
        });
    }
    let mut bytes = serde_json::to_vec_pretty(&manifest).map_err(|e| SlotError::Io {
        slot,
        detail: format!("cannot encode the manifest: {e}"),
    })?;
    bytes.push(b'\n');
    write_atomic(&marker, &bytes, FileMode::Shared)
        .map_err(|e| ctx.io("write", &marker, None, &e))?;
    tracing::info!(
        "extracted {} into {} ({} entries): SpaceFuel {}, entry {}",
        artifact.display(),
        dir.display(),
        plan.entries.len(),
        manifest.version,
        manifest.entry
    );
    Ok(manifest)
}

/// Remove the marker (durably), then the slot, and create it empty.
fn reset_slot(ctx: &Ctx<'_>, root: &Path, dir: &Path, marker: &Path) -> Result<(), SlotError> {
    remove_marker(root, marker).map_err(|e| ctx.io("delete", marker, None, &e))?;
    remove_tree(dir).map_err(|e| ctx.io("empty", dir, None, &e))?;
    fs::create_dir_all(root).map_err(|e| ctx.io("create", root, None, &e))?;
    fs::create_dir(dir).map_err(|e| ctx.io("create", dir, None, &e))?;
    set_dir_mode(dir).map_err(|e| ctx.io("set the mode of", dir, None, &e))?;
    sync_dir(root).map_err(|e| ctx.io("flush", root, None, &e))
}

fn remove_marker(root: &Path, marker: &Path) -> io::Result<()> {
    match fs::remove_file(marker) {
        Ok(()) => sync_dir(root),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// Remove `path` and everything below it without following any link: a link
/// (even the slot itself being one) is removed, never its target.
fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(m) if m.file_type().is_dir() => fs::remove_dir_all(path),
        // A file or a link in the slot's place (a directory link on Windows
        // needs `remove_dir`).
        Ok(_) => fs::remove_file(path).or_else(|e| fs::remove_dir(path).map_err(|_| e)),
    }
}

/// Create the directories `components` below `base`, one by one, refusing
/// anything in the way that is not a directory (a link is never followed).
fn ensure_dirs(
    ctx: &Ctx<'_>,
    base: &Path,
    components: &[String],
    entry: &str,
    created: &mut BTreeSet<PathBuf>,
) -> Result<(), SlotError> {
    let mut path = base.to_path_buf();
    for c in components {
        path.push(c);
        match fs::symlink_metadata(&path) {
            Ok(m) if m.file_type().is_dir() => {}
            Ok(_) => {
                return Err(ctx.unsafe_entry(
                    entry,
                    format!(
                        "would be written through {}, which is not a directory \
                         (links are never followed)",
                        path.display()
                    ),
                ));
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir(&path).map_err(|e| ctx.io("create", &path, Some(entry), &e))?;
                set_dir_mode(&path)
                    .map_err(|e| ctx.io("set the mode of", &path, Some(entry), &e))?;
                created.insert(path.clone());
            }
            Err(e) => return Err(ctx.io("inspect", &path, Some(entry), &e)),
        }
    }
    Ok(())
}

fn write_entry(
    ctx: &Ctx<'_>,
    archive: &mut ZipArchive<File>,
    dir: &Path,
    planned: &Planned,
    mode: u32,
    buf: &mut [u8],
) -> Result<(), SlotError> {
    let name = planned.name.as_str();
    let Some(target) = planned.path.under(dir) else {
        return Err(ctx.unsafe_entry(name, "does not resolve to a path inside the slot"));
    };
    let mut out =
        create_file(&target, mode).map_err(|e| ctx.io("create", &target, Some(name), &e))?;
    let mut file = archive
        .by_index(planned.index)
        .map_err(|e| ctx.zip(Some(name), e))?;
    let mut written: u64 = 0;
    loop {
        let n = match file.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ctx.invalid(format!("its entry {name:?} is damaged: {e}"))),
        };
        written += n as u64;
        if written > planned.size {
            return Err(ctx.invalid(format!(
                "its entry {name:?} holds more than the {} bytes it declares",
                planned.size
            )));
        }
        out.write_all(&buf[..n])
            .map_err(|e| ctx.io("write", &target, Some(name), &e))?;
    }
    if written != planned.size {
        return Err(ctx.invalid(format!(
            "its entry {name:?} holds {written} bytes, not the {} it declares",
            planned.size
        )));
    }
    set_file_mode(&out, mode).map_err(|e| ctx.io("set the mode of", &target, Some(name), &e))?;
    out.sync_all()
        .map_err(|e| ctx.io("flush", &target, Some(name), &e))
}

/// A new file (never an existing one: `create_new` does not follow links).
#[cfg(unix)]
fn create_file(path: &Path, mode: u32) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt as _;
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

#[cfg(not(unix))]
fn create_file(path: &Path, _mode: u32) -> io::Result<File> {
    OpenOptions::new().write(true).create_new(true).open(path)
}

/// The exact mode (the umask narrowed it at creation).
#[cfg(unix)]
fn set_file_mode(file: &File, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    file.set_permissions(fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_file_mode(_file: &File, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(unix)]
fn set_dir_mode(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
}

#[cfg(not(unix))]
fn set_dir_mode(_dir: &Path) -> io::Result<()> {
    Ok(())
}

// ---------------------------------------------------------------------------
// Reading and clearing

/// Read `slot.json` in the slot directory and check it, and that its entry is
/// a regular file of the slot. `Err` says what is wrong.
fn read_slot_manifest(dir: &Path) -> Result<SlotManifest, String> {
    let path = dir.join(SLOT_MANIFEST_FILE);
    let bytes =
        read_regular_file(&path).map_err(|e| format!("{} is unreadable: {e}", path.display()))?;
    let manifest = parse_manifest(&bytes)?;
    let entry = entry_path(&manifest.entry)
        .map_err(|p| format!("{SLOT_MANIFEST_FILE}: its entry {:?} {p}", manifest.entry))?;
    let program = entry
        .under(dir)
        .ok_or_else(|| format!("the entry {:?} is not inside the slot", manifest.entry))?;
    match fs::symlink_metadata(&program) {
        Ok(m) if m.file_type().is_file() => Ok(manifest),
        Ok(_) => Err(format!(
            "the entry {} is not a regular file",
            program.display()
        )),
        Err(e) => Err(format!("the entry {} is missing: {e}", program.display())),
    }
}

/// The bytes of a regular file (not a link), at most `MAX_MANIFEST_BYTES + 1`.
fn read_regular_file(path: &Path) -> io::Result<Vec<u8>> {
    let meta = fs::symlink_metadata(path)?;
    if !meta.file_type().is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    let mut bytes = Vec::new();
    File::open(path)?
        .take(MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn manifest(root: &Path, slot: Slot) -> Result<SlotManifest, SlotError> {
    let marker = marker_path(root, slot);
    let bytes = match read_regular_file(&marker) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(SlotError::Incomplete { slot });
        }
        Err(e) => {
            return Err(SlotError::Io {
                slot,
                detail: format!("cannot read {}: {e}", marker.display()),
            });
        }
    };
    let marked = match parse_manifest(&bytes) {
        Ok(m) => m,
        Err(problem) => {
            tracing::warn!(
                "the completion marker {} is damaged ({problem}); slot {slot} counts as incomplete",
                marker.display()
            );
            return Err(SlotError::Incomplete { slot });
        }
    };
    let dir = slot_dir(root, slot);
    match read_slot_manifest(&dir) {
        Ok(on_disk) if on_disk == marked => Ok(marked),
        Ok(on_disk) => {
            tracing::warn!(
                "slot {slot}: {} says {on_disk:?} but {} says {marked:?}; the slot counts as \
                 incomplete",
                dir.join(SLOT_MANIFEST_FILE).display(),
                marker.display()
            );
            Err(SlotError::Incomplete { slot })
        }
        Err(problem) => {
            tracing::warn!(
                "slot {slot} is marked complete by {} but {problem}; the slot counts as incomplete",
                marker.display()
            );
            Err(SlotError::Incomplete { slot })
        }
    }
}

fn clear(root: &Path, slot: Slot) -> Result<(), SlotError> {
    let marker = marker_path(root, slot);
    let dir = slot_dir(root, slot);
    let io = |action: &str, path: &Path, e: io::Error| SlotError::Io {
        slot,
        detail: format!("cannot {action} {}: {e}", path.display()),
    };
    remove_marker(root, &marker).map_err(|e| io("delete", &marker, e))?;
    remove_tree(&dir).map_err(|e| io("delete", &dir, e))?;
    if root.exists() {
        sync_dir(root).map_err(|e| io("flush", root, e))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_names_are_split_into_components() {
        for (name, parts) in [
            ("slot.json", vec!["slot.json"]),
            ("bin/spacefuel", vec!["bin", "spacefuel"]),
            ("./bin//spacefuel", vec!["bin", "spacefuel"]),
            ("bin\\spacefuel.exe", vec!["bin", "spacefuel.exe"]),
            ("lib/", vec!["lib"]),
            ("a/..b/c", vec!["a", "..b", "c"]),
        ] {
            assert_eq!(
                entry_path(name).map(|p| p.0),
                Ok(parts.into_iter().map(str::to_owned).collect()),
                "{name}"
            );
        }
    }

    #[test]
    fn names_leaving_the_slot_are_refused() {
        for (name, problem) in [
            ("../evil", "`..`"),
            ("bin/../../evil", "`..`"),
            ("bin/..", "`..`"),
            ("..\\evil", "`..`"),
            ("/abs/path", "absolute"),
            ("\\abs\\path", "absolute"),
            ("C:/Windows/evil.exe", "drive letter"),
            ("c:evil", "drive letter"),
            ("bin/x:stream", "':'"),
            ("", "empty"),
            ("./", "nothing"),
            ("a\0b", "NUL"),
            ("bin/NUL", "device"),
            ("COM1.txt", "device"),
            ("bin/lpt9", "device"),
            ("con.d/x", "device"),
            ("evil.", "dot or a space"),
            ("evil ", "dot or a space"),
            ("what?", "character"),
        ] {
            let e = entry_path(name).expect_err(name);
            assert!(e.contains(problem), "{name:?}: {e}");
        }
    }

    #[test]
    fn collisions_ignore_case() {
        let a = entry_path("Bin/SpaceFuel.exe").expect("a");
        let b = entry_path("bin//spacefuel.EXE").expect("b");
        assert_eq!(a.collision_key(), b.collision_key());
        assert_eq!(
            a.ancestor_keys().collect::<Vec<_>>(),
            vec!["bin".to_owned()]
        );
    }

    #[test]
    fn paths_stay_under_their_base() {
        let base = Path::new("/data/extensions/spacefuel/blue");
        let p = entry_path("bin/spacefuel").expect("path");
        assert_eq!(p.under(base), Some(base.join("bin").join("spacefuel")));
        // Built by hand, bypassing entry_path: still refused.
        assert_eq!(EntryPath(vec!["..".into()]).under(base), None);
        assert_eq!(EntryPath(vec!["/etc".into()]).under(base), None);
    }

    #[test]
    fn kinds_follow_the_unix_mode() {
        assert_eq!(kind_of("x", None), Ok(Kind::File { mode: 0o644 }));
        assert_eq!(kind_of("d/", None), Ok(Kind::Dir));
        assert_eq!(
            kind_of("x", Some(S_IFREG | 0o755)),
            Ok(Kind::File { mode: 0o755 })
        );
        assert_eq!(
            kind_of("x", Some(S_IFREG | 0o777)),
            Ok(Kind::File { mode: 0o755 }),
            "no group/other write"
        );
        assert_eq!(kind_of("x", Some(S_IFREG)), Ok(Kind::File { mode: 0o400 }));
        assert_eq!(kind_of("d", Some(S_IFDIR | 0o755)), Ok(Kind::Dir));
        assert!(
            kind_of("l", Some(S_IFLNK | 0o777))
                .expect_err("link")
                .contains("symbolic link")
        );
        for special in [0o010_000, 0o020_000, 0o060_000, 0o140_000] {
            assert!(
                kind_of("s", Some(special | 0o644))
                    .expect_err("special")
                    .contains("special file")
            );
        }
    }

    #[test]
    fn manifests_need_a_version() {
        assert_eq!(
            parse_manifest(br#"{"version":"2.2.0","entry":"bin/spacefuel"}"#),
            Ok(SlotManifest {
                version: "2.2.0".into(),
                entry: "bin/spacefuel".into()
            })
        );
        for bad in [
            &br#"{"version":"","entry":"x"}"#[..],
            br#"{"version":" 2.2.0","entry":"x"}"#,
            br#"{"entry":"x"}"#,
            b"not json",
        ] {
            assert!(parse_manifest(bad).is_err());
        }
    }
}
