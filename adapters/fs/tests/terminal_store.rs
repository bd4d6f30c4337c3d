//! `FileTerminalStore`: owner-only files, recovery, and refusal to discard
//! credentials.

mod common;

use std::fs;

use chrono::Utc;
use spacepos_config::{
    CompanyInformation, TERMINAL_RECORD_VERSION, TerminalConfigStore, TerminalRecord,
    TerminalStoreError,
};
use spacepos_core::{RedactedUrl, Secret};
use spacepos_fs::FileTerminalStore;

use common::{capture_logs, names_in};

const SECRET: &str = "s3cr3t-7f0e1d2c3b4a59687766554433221100";

fn record() -> TerminalRecord {
    TerminalRecord {
        schema_version: TERMINAL_RECORD_VERSION,
        client_id: "trm_5f1c2a9e0b7d4e31".into(),
        client_secret: Secret::new(SECRET),
        store_number: 12,
        terminal_number: 3,
        api_endpoint: Some("https://erp.example.com".parse().expect("url")),
        amqp_url: Some(
            RedactedUrl::parse("amqps://pos-12-3:pw@mq.example.com:5671/pos").expect("url"),
        ),
        company_information: Some(CompanyInformation {
            name: Some("Northwind".into()),
            ..Default::default()
        }),
        report_presence: Some(true),
        presence_interval_seconds: Some(300),
        onboarded_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

#[cfg(unix)]
#[tokio::test]
async fn files_are_owner_only() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FileTerminalStore::new(dir.path());
    store.save(&record()).await.expect("save");
    for name in ["terminal.json", "terminal.json.bak", "terminal.json.lock"] {
        assert_eq!(common::mode(&dir.path().join(name)), 0o600, "{name}");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_looser_file_is_tightened_with_one_warning() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FileTerminalStore::new(dir.path());
    let saved = record();
    store.save(&saved).await.expect("save");
    let path = dir.path().join("terminal.json");
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).expect("chmod");

    let logs = capture_logs(dir.path());
    assert_eq!(store.load().await.expect("load"), Some(saved));
    assert_eq!(common::mode(&path), 0o600);
    let warnings = logs.lines_at("WARN");
    assert_eq!(warnings.len(), 1, "{}", logs.text());
    assert!(warnings[0].contains("mode 644"), "{}", warnings[0]);
    store.load().await.expect("load");
    assert_eq!(
        logs.lines_at("WARN").len(),
        1,
        "no second warning: {}",
        logs.text()
    );
}

#[tokio::test]
async fn round_trip_keeps_the_secret_and_a_new_handle_sees_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let saved = record();
    FileTerminalStore::new(dir.path())
        .save(&saved)
        .await
        .expect("save");
    let loaded = FileTerminalStore::new(dir.path())
        .load()
        .await
        .expect("load");
    assert_eq!(loaded, Some(saved));
    assert_eq!(
        FileTerminalStore::new(tempfile::tempdir().expect("dir").path())
            .load()
            .await
            .expect("load"),
        None
    );
}

#[tokio::test]
async fn damaged_file_is_restored_from_backup_with_one_warning() {
    for damage in [
        &b""[..],
        b"{\"schema_version\": 1, \"client_id\": \"trm",
        b"\x00\xffgarbage",
    ] {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = FileTerminalStore::new(dir.path());
        let saved = record();
        store.save(&saved).await.expect("save");
        let path = dir.path().join("terminal.json");
        fs::write(&path, damage).expect("damage");

        let logs = capture_logs(dir.path());
        assert_eq!(store.load().await.expect("load"), Some(saved.clone()));
        assert_eq!(logs.lines_at("WARN").len(), 1, "{}", logs.text());
        assert!(!logs.text().contains(SECRET));
        #[cfg(unix)]
        assert_eq!(
            common::mode(&path),
            0o600,
            "the restored file is owner-only too"
        );
        let reread: TerminalRecord =
            serde_json::from_slice(&fs::read(&path).expect("read")).expect("valid again");
        assert_eq!(reread, saved);
    }
}

#[tokio::test]
async fn both_damaged_is_unreadable_says_how_to_reonboard_and_keeps_the_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FileTerminalStore::new(dir.path());
    store.save(&record()).await.expect("save");
    // Wrong types, so that serde would quote the (secret) values if allowed to.
    let damaged =
        format!("{{\"schema_version\": 1, \"client_id\": 5, \"client_secret\": [\"{SECRET}\"]}}");
    fs::write(dir.path().join("terminal.json"), &damaged).expect("damage");
    fs::write(dir.path().join("terminal.json.bak"), b"").expect("damage");

    let logs = capture_logs(dir.path());
    let err = store.load().await.expect_err("both damaged");
    let TerminalStoreError::Unreadable { location, problem } = &err else {
        panic!("expected Unreadable, got {err:?}")
    };
    assert_eq!(
        location,
        &dir.path().join("terminal.json").display().to_string()
    );
    assert!(
        problem.contains("spacepos onboard --code <code> --force"),
        "{problem}"
    );
    assert!(problem.contains("terminal.json.bak"), "{problem}");
    assert!(!err.to_string().contains(SECRET), "{err}");
    assert!(!logs.text().contains(SECRET));
    assert_eq!(logs.lines_at("ERROR").len(), 1, "{}", logs.text());

    assert_eq!(
        fs::read_to_string(dir.path().join("terminal.json")).expect("read"),
        damaged,
        "left in place"
    );
    assert_eq!(
        names_in(dir.path()),
        ["terminal.json", "terminal.json.bak", "terminal.json.lock"],
        "no quarantine"
    );
    // Onboarding again (a save) replaces both.
    store.save(&record()).await.expect("save");
    assert!(store.load().await.expect("load").is_some());
}

#[tokio::test]
async fn newer_record_is_unreadable_and_untouched() {
    let dir = tempfile::tempdir().expect("temp dir");
    let newer = b"{\"schema_version\": 9, \"client_id\": \"x\"}";
    fs::write(dir.path().join("terminal.json"), newer).expect("write");
    let err = FileTerminalStore::new(dir.path())
        .load()
        .await
        .expect_err("newer");
    assert!(
        matches!(&err, TerminalStoreError::Unreadable { problem, .. } if problem.contains("upgrade SpacePOS")),
        "{err:?}"
    );
    assert!(err.to_string().contains("terminal.json"), "{err}");
    assert_eq!(
        fs::read(dir.path().join("terminal.json")).expect("read"),
        newer
    );
}
