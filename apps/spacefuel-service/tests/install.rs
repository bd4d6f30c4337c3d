//! The first installation of SpaceFuel on a site (`spacefuel-service slot
//! install`): only a release signed by a trusted update key, as the version it
//! was signed as, is extracted into blue and made active; anything else is
//! refused with nothing installed, and an installed site takes new versions
//! only as updates.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // test code

#[macro_use]
mod support;

use std::path::Path;
use std::process::Command;

use spacepos_config::{Slot, StateStore};
use spacepos_core::ComponentId;
use spacepos_fake_erp::ReleaseSpec;
use spacepos_fs::{FileStateStore, FsSlots};
use spacepos_spacefuel::SlotFs;
use support::*;

fn install(data: &Path, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_spacefuel-service"))
        .arg("--data-dir")
        .arg(data)
        .args(["slot", "install"])
        .args(args)
        .env_remove("SPACEPOS_CONFIG")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_trusted_signed_release_is_installed_first_and_only_once() {
    let erp = start_erp(false).await;
    let bytes = artifact("2.1.0", Build::Good);
    let release = erp
        .publish_release(
            ReleaseSpec::new(ComponentId::SpaceFuel, "2.1.0").with_bytes(bytes.clone()),
        )
        .unwrap();
    let root = tempfile::tempdir().unwrap();
    let zip = root.path().join("spacefuel-2.1.0.zip");
    std::fs::write(&zip, &bytes).unwrap();
    let sig = root.path().join("spacefuel-2.1.0.zip.sig");
    std::fs::write(&sig, &release.signature).unwrap();
    let tampered = root.path().join("tampered.zip");
    let mut altered = bytes.clone();
    let middle = altered.len() / 2;
    altered[middle] ^= 0x55;
    std::fs::write(&tampered, &altered).unwrap();

    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::write(
        data.join("spacepos.toml"),
        format!(
            "[updates]\ntrusted_keys = [\"{}\"]\n",
            erp.update_keys().primary.key_line
        ),
    )
    .unwrap();
    let (z, s) = (zip.to_str().unwrap(), sig.to_str().unwrap());
    let ext = data.join("extensions").join("spacefuel");

    // Refused: altered bytes, or the signed version relabelled.
    let (code, out) = install(
        &data,
        &[
            tampered.to_str().unwrap(),
            "--version",
            "2.1.0",
            "--signature",
            s,
        ],
    );
    assert_eq!(code, 5, "{out}");
    assert!(
        out.contains("refused") && out.contains("nothing was installed"),
        "{out}"
    );
    let (code, out) = install(&data, &[z, "--version", "2.2.0", "--signature", s]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("signed as version 2.1.0"), "{out}");
    let state = FileStateStore::new(&data).load().await.unwrap().state;
    assert_eq!(state.spacefuel.active_slot, None);
    assert!(
        FsSlots::new(&ext).manifest(Slot::Blue).await.is_err(),
        "nothing extracted"
    );

    // Installed: verified, extracted into blue, active.
    let (code, out) = install(&data, &[z, "--version", "2.1.0", "--signature", s]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("installed in slot blue"), "{out}");
    let state = FileStateStore::new(&data).load().await.unwrap().state;
    assert_eq!(state.spacefuel.active_slot, Some(Slot::Blue));
    assert_eq!(state.spacefuel.active_version(), Some("2.1.0"));
    assert!(state.spacefuel.blue.as_ref().unwrap().verified);
    assert_eq!(
        FsSlots::new(&ext)
            .manifest(Slot::Blue)
            .await
            .unwrap()
            .version,
        "2.1.0"
    );

    // Once installed, new versions come as updates.
    let (code, out) = install(&data, &[z, "--version", "2.1.0", "--signature", s]);
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("come as updates"), "{out}");
}
