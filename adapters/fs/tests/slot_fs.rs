//! `FsSlots` against the `SlotFs` contract suite (port and disk cases), and
//! what only the file adapter has: the completion marker outside the slot,
//! refused names beyond the suite's, links planted in a slot, checks made
//! before anything is touched.

use std::fs;
use std::path::{Path, PathBuf};

use spacepos_config::Slot;
use spacepos_fs::FsSlots;
use spacepos_spacefuel::{SlotError, SlotFs, SlotManifest};
use spacepos_testkit::suites::slot_fs::{
    ENTRY, ENTRY_BYTES, TestArtifact, ZipEntry, ZipHarness, manifest, tree, write_zip,
};

type Harness = ZipHarness<FsSlots, tempfile::TempDir>;

async fn harness() -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let ext = dir.path().join("data").join("extensions").join("spacefuel");
    ZipHarness::new(FsSlots::new(&ext), &ext, dir.path().join("artifacts"), dir)
}

mod contract {
    spacepos_testkit::slot_fs_suite!(super::harness());
}

mod disk {
    spacepos_testkit::slot_fs_disk_suite!(super::harness());
}

/// Slots in a temp dir, with a place for artifacts.
struct Fixture {
    _dir: tempfile::TempDir,
    data: PathBuf,
    ext: PathBuf,
    artifacts: PathBuf,
    slots: FsSlots,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let ext = data.join("extensions").join("spacefuel");
    let artifacts = dir.path().join("artifacts");
    fs::create_dir_all(&artifacts).expect("artifacts dir");
    Fixture {
        slots: FsSlots::new(&ext),
        data,
        ext,
        artifacts,
        _dir: dir,
    }
}

impl Fixture {
    fn zip(&self, name: &str, entries: &[ZipEntry]) -> PathBuf {
        let path = self.artifacts.join(name);
        write_zip(&path, entries);
        path
    }

    fn good(&self, name: &str, version: &str) -> PathBuf {
        self.zip(name, &TestArtifact::good(version).zip_entries())
    }

    /// A good artifact of 1.0.0 plus `extra`.
    fn good_plus(&self, name: &str, extra: Vec<ZipEntry>) -> PathBuf {
        let mut entries = TestArtifact::good("1.0.0").zip_entries();
        entries.extend(extra);
        self.zip(name, &entries)
    }
}

fn slot_json(version: &str, entry: &str) -> ZipEntry {
    let json = serde_json::to_vec(&SlotManifest {
        version: version.into(),
        entry: entry.into(),
    })
    .expect("json");
    ZipEntry::file("slot.json", &json, 0o644)
}

fn program() -> ZipEntry {
    ZipEntry::file(ENTRY, ENTRY_BYTES, 0o755)
}

fn unsafe_entry(e: SlotError) -> (String, String) {
    match e {
        SlotError::Unsafe { entry, problem, .. } => (entry, problem),
        other => panic!("expected Unsafe, got {other:?}"),
    }
}

fn invalid_problem(e: SlotError) -> String {
    match e {
        SlotError::Invalid { problem, .. } => problem,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[tokio::test]
async fn the_marker_is_outside_the_slot_and_holds_the_manifest() {
    let f = fixture();
    let artifact = f.good("a.zip", "2.2.0");
    f.slots
        .extract(Slot::Blue, artifact)
        .await
        .expect("extract");
    let marker = f.ext.join("blue.complete");
    assert_eq!(f.slots.marker_path(Slot::Blue), marker);
    assert!(!marker.starts_with(f.slots.dir(Slot::Blue)));
    let marked: SlotManifest =
        serde_json::from_slice(&fs::read(&marker).expect("marker")).expect("marker json");
    assert_eq!(marked, manifest("2.2.0"));
    assert!(!f.ext.join("green.complete").exists());
    // No temporary file of the marker's atomic write is left.
    let names: Vec<String> = fs::read_dir(&f.ext)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    let mut names = names;
    names.sort();
    assert_eq!(names, vec!["blue", "blue.complete"]);
}

#[tokio::test]
async fn a_marker_inside_the_slot_counts_for_nothing() {
    let f = fixture();
    let artifact = f.zip(
        "forged.zip",
        &[
            slot_json("2.2.0", ENTRY),
            program(),
            ZipEntry::file(
                "blue.complete",
                br#"{"version":"2.2.0","entry":"bin/spacefuel"}"#,
                0o644,
            ),
        ],
    );
    // Extracted fine (a file like any other) ...
    f.slots
        .extract(Slot::Blue, artifact)
        .await
        .expect("extract");
    // ... but an interrupted slot holding such a file is still incomplete.
    fs::remove_file(f.ext.join("blue.complete")).expect("remove the real marker");
    assert!(f.slots.dir(Slot::Blue).join("blue.complete").exists());
    assert_eq!(
        f.slots.manifest(Slot::Blue).await,
        Err(SlotError::Incomplete { slot: Slot::Blue })
    );
}

#[tokio::test]
async fn a_slot_changed_after_extraction_is_incomplete() {
    let f = fixture();
    f.slots
        .extract(Slot::Green, f.good("a.zip", "2.2.0"))
        .await
        .expect("extract");
    let dir = f.slots.dir(Slot::Green);
    fs::write(
        dir.join("slot.json"),
        br#"{"version":"9.9.9","entry":"bin/spacefuel"}"#,
    )
    .expect("tamper");
    assert_eq!(
        f.slots.manifest(Slot::Green).await,
        Err(SlotError::Incomplete { slot: Slot::Green })
    );

    f.slots
        .extract(Slot::Green, f.good("b.zip", "2.2.0"))
        .await
        .expect("extract again");
    fs::remove_file(dir.join(ENTRY)).expect("remove the program");
    assert_eq!(
        f.slots.manifest(Slot::Green).await,
        Err(SlotError::Incomplete { slot: Slot::Green })
    );
}

#[tokio::test]
async fn refused_artifacts_leave_the_previous_installation_alone() {
    let f = fixture();
    f.slots
        .extract(Slot::Blue, f.good("v1.zip", "2.1.0"))
        .await
        .expect("extract");
    let before = tree(&f.data);

    let missing_program = f.zip("missing.zip", &[slot_json("2.2.0", "bin/nothing")]);
    let climbing_entry = f.zip("climb.zip", &[slot_json("2.2.0", "../x"), program()]);
    let dir_entry = f.zip(
        "dir.zip",
        &[slot_json("2.2.0", "bin"), ZipEntry::dir("bin/"), program()],
    );
    let no_version = f.zip("noversion.zip", &[slot_json("", ENTRY), program()]);
    let not_json = f.zip(
        "notjson.zip",
        &[ZipEntry::file("slot.json", b"version=2", 0o644), program()],
    );
    let not_a_zip = f.artifacts.join("not-a.zip");
    fs::write(&not_a_zip, b"PK but not really").expect("write");
    for (artifact, expected) in [
        (missing_program, "not a file of the artifact"),
        (climbing_entry, "`..`"),
        (dir_entry, "is a directory"),
        (no_version, "not a version"),
        (not_json, "not a slot manifest"),
        (not_a_zip, "not a usable zip"),
    ] {
        let e = f
            .slots
            .extract(Slot::Blue, artifact.clone())
            .await
            .expect_err("invalid");
        let problem = invalid_problem(e);
        assert!(
            problem.contains(expected),
            "{}: {problem}",
            artifact.display()
        );
    }

    let unsafe_artifact = f.good_plus("unsafe.zip", vec![ZipEntry::file("../evil", b"x", 0o644)]);
    let e = f
        .slots
        .extract(Slot::Blue, unsafe_artifact)
        .await
        .expect_err("unsafe");
    assert_eq!(unsafe_entry(e).0, "../evil");

    assert_eq!(tree(&f.data), before, "nothing was touched");
    assert_eq!(
        f.slots.manifest(Slot::Blue).await.expect("still installed"),
        manifest("2.1.0")
    );
}

#[tokio::test]
async fn a_missing_artifact_is_an_io_error_naming_it() {
    let f = fixture();
    let path = f.artifacts.join("nowhere.zip");
    match f.slots.extract(Slot::Green, path.clone()).await {
        Err(SlotError::Io { slot, detail }) => {
            assert_eq!(slot, Slot::Green);
            assert!(detail.contains(&path.display().to_string()), "{detail}");
        }
        other => panic!("expected Io, got {other:?}"),
    }
}

#[tokio::test]
async fn more_unsafe_names_are_refused_with_the_entry_named() {
    let f = fixture();
    let cases: Vec<(&str, Vec<ZipEntry>, &str)> = vec![
        (
            "backslash",
            vec![ZipEntry::file("..\\evil", b"x", 0o644)],
            "`..`",
        ),
        (
            "deep",
            vec![ZipEntry::file("bin/../../evil", b"x", 0o644)],
            "`..`",
        ),
        (
            "stream",
            vec![ZipEntry::file("bin/spacefuel:ads", b"x", 0o644)],
            "':'",
        ),
        (
            "device",
            vec![ZipEntry::file("logs/COM1", b"x", 0o644)],
            "device",
        ),
        (
            "dot-dup",
            vec![ZipEntry::file("./bin//spacefuel", b"x", 0o755)],
            "same file",
        ),
        (
            "file-as-dir",
            vec![ZipEntry::file("README.txt/inside", b"x", 0o644)],
            "which is a file",
        ),
        (
            "link-in",
            vec![ZipEntry::symlink("bin/alias", "spacefuel")],
            "links are refused",
        ),
    ];
    for (name, extra, expected) in cases {
        let offending = match &extra[0] {
            ZipEntry::File { name, .. }
            | ZipEntry::Dir { name }
            | ZipEntry::Symlink { name, .. } => name.clone(),
        };
        let artifact = f.good_plus(&format!("{name}.zip"), extra);
        let e = f
            .slots
            .extract(Slot::Green, artifact)
            .await
            .expect_err(name);
        let (entry, problem) = unsafe_entry(e);
        assert_eq!(entry, offending, "{name}");
        assert!(problem.contains(expected), "{name}: {problem}");
    }
    assert!(!f.ext.join("green").exists(), "the slot was never created");
}

#[tokio::test]
async fn exact_duplicate_names_are_refused() {
    let f = fixture();
    // The zip writer refuses duplicates: write a twin under another name of
    // the same length, then rename it in the headers.
    let path = f.good_plus(
        "dup.zip",
        vec![ZipEntry::file("bin/spacefueX", b"evil", 0o755)],
    );
    let bytes = fs::read(&path).expect("read");
    let (from, to) = (b"bin/spacefueX".as_slice(), b"bin/spacefuel".as_slice());
    let mut patched = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(from) {
            patched.extend_from_slice(to);
            i += from.len();
        } else {
            patched.push(bytes[i]);
            i += 1;
        }
    }
    assert_ne!(patched, bytes);
    fs::write(&path, &patched).expect("write");
    let e = f
        .slots
        .extract(Slot::Blue, path)
        .await
        .expect_err("duplicate");
    let (_, problem) = unsafe_entry(e);
    assert!(problem.contains("more than once"), "{problem}");
}

#[cfg(unix)]
#[tokio::test]
async fn special_files_are_refused() {
    let f = fixture();
    let path = f.artifacts.join("fifo.zip");
    {
        use std::io::Write as _;
        let file = fs::File::create(&path).expect("create");
        let mut zip = zip::ZipWriter::new(file);
        for e in TestArtifact::good("1.0.0").zip_entries() {
            if let ZipEntry::File { name, bytes, mode } = e {
                let o = zip::write::SimpleFileOptions::default().unix_permissions(mode);
                zip.start_file(name.as_str(), o).expect("start");
                zip.write_all(&bytes).expect("write");
            }
        }
        let fifo = zip::write::SimpleFileOptions::default()
            .system(zip::System::Unix)
            .external_attributes((0o010_644) << 16);
        zip.start_file("pipe", fifo).expect("start");
        zip.finish().expect("finish");
    }
    let e = f.slots.extract(Slot::Blue, path).await.expect_err("fifo");
    let (entry, problem) = unsafe_entry(e);
    assert_eq!(entry, "pipe");
    assert!(problem.contains("special file"), "{problem}");
}

#[cfg(unix)]
#[tokio::test]
async fn links_planted_in_a_slot_are_never_followed() {
    use std::os::unix::fs::symlink;
    let f = fixture();
    let outside = f.data.join("outside");
    fs::create_dir_all(&outside).expect("outside");
    fs::write(outside.join("precious.txt"), b"keep me").expect("precious");
    let outside_before = tree(&outside);

    // The slot itself is a link out.
    fs::create_dir_all(&f.ext).expect("ext");
    symlink(&outside, f.slots.dir(Slot::Blue)).expect("link slot");
    f.slots
        .extract(Slot::Blue, f.good("a.zip", "2.2.0"))
        .await
        .expect("extract");
    let meta = fs::symlink_metadata(f.slots.dir(Slot::Blue)).expect("meta");
    assert!(meta.is_dir() && !meta.file_type().is_symlink());
    assert_eq!(tree(&outside), outside_before);

    // A link inside the slot, where the artifact has a directory.
    fs::remove_file(f.ext.join("blue.complete")).expect("unmark");
    fs::remove_dir_all(f.slots.dir(Slot::Blue).join("bin")).expect("rm bin");
    symlink(&outside, f.slots.dir(Slot::Blue).join("bin")).expect("link bin");
    f.slots
        .extract(Slot::Blue, f.good("b.zip", "2.2.1"))
        .await
        .expect("extract");
    assert_eq!(tree(&outside), outside_before);
    assert_eq!(
        f.slots.manifest(Slot::Blue).await.expect("manifest"),
        manifest("2.2.1")
    );

    // Clearing removes the link, never what it points to.
    symlink(&outside, f.slots.dir(Slot::Blue).join("out")).expect("link out");
    f.slots.clear(Slot::Blue).await.expect("clear");
    assert_eq!(tree(&outside), outside_before);
    assert!(!f.slots.dir(Slot::Blue).exists());
}

#[tokio::test]
async fn clearing_removes_the_marker_and_the_files() {
    let f = fixture();
    f.slots
        .extract(Slot::Green, f.good("a.zip", "2.2.0"))
        .await
        .expect("extract");
    f.slots.clear(Slot::Green).await.expect("clear");
    assert!(!f.ext.join("green.complete").exists());
    assert!(!f.slots.dir(Slot::Green).exists());
    assert!(Path::new(&f.ext).exists(), "the extensions directory stays");
}
