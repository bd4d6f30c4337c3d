//! The `SlotFs` contract suite against the in-memory fake (the port cases;
//! the disk cases run against `spacepos-fs` in `adapters/fs/tests/slot_fs.rs`),
//! and the fake's own switches.

use std::path::PathBuf;

use spacepos_config::Slot;
use spacepos_spacefuel::{SlotError, SlotFs};
use spacepos_testkit::fakes::{MemoryArtifact, MemorySlotFs};
use spacepos_testkit::suites::slot_fs::manifest;

mod memory_slot_fs {
    spacepos_testkit::slot_fs_suite!(async { spacepos_testkit::fakes::MemorySlotFs::new() });
}

#[tokio::test]
async fn an_interrupted_extraction_leaves_the_slot_incomplete() {
    let slots = MemorySlotFs::new();
    slots.install(Slot::Blue, manifest("2.1.0"));
    slots.register_good("a.zip", manifest("2.2.0"));
    slots.interrupt_next_extract("disk full");
    assert_eq!(
        slots.extract(Slot::Blue, PathBuf::from("a.zip")).await,
        Err(SlotError::Io {
            slot: Slot::Blue,
            detail: "disk full".into()
        })
    );
    assert!(slots.has_files(Slot::Blue));
    assert_eq!(
        slots.manifest(Slot::Blue).await,
        Err(SlotError::Incomplete { slot: Slot::Blue })
    );
    // The switch is one-shot.
    assert_eq!(
        slots.extract(Slot::Blue, PathBuf::from("a.zip")).await,
        Ok(manifest("2.2.0"))
    );
    assert_eq!(slots.installed(Slot::Blue), Some(manifest("2.2.0")));
}

#[tokio::test]
async fn refusals_change_nothing_and_every_extraction_is_recorded() {
    let slots = MemorySlotFs::new();
    slots.install(Slot::Green, manifest("2.1.0"));
    slots.register(
        "evil.zip",
        MemoryArtifact::Unsafe {
            entry: "../evil".into(),
            problem: "climbs out".into(),
        },
    );
    slots.register("bad.zip", MemoryArtifact::Invalid("no slot.json".into()));
    for artifact in ["evil.zip", "bad.zip", "unknown.zip"] {
        assert!(
            slots
                .extract(Slot::Green, PathBuf::from(artifact))
                .await
                .is_err()
        );
    }
    assert_eq!(slots.installed(Slot::Green), Some(manifest("2.1.0")));
    assert_eq!(
        slots.extractions(),
        vec![
            (Slot::Green, PathBuf::from("evil.zip")),
            (Slot::Green, PathBuf::from("bad.zip")),
            (Slot::Green, PathBuf::from("unknown.zip")),
        ]
    );
    slots.interrupt(Slot::Blue);
    assert!(slots.has_files(Slot::Blue));
    assert_eq!(
        slots.manifest(Slot::Blue).await,
        Err(SlotError::Incomplete { slot: Slot::Blue })
    );
    assert_eq!(
        slots.dir(Slot::Blue),
        PathBuf::from("memory/extensions/spacefuel/blue")
    );
}
