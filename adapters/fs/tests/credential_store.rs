//! FileCredentialStore specifics: owner-only session file, damage treated as "no session".

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use chrono::{TimeZone, Utc};
use spacepos_auth::{CredentialStore, StoredSession};
use spacepos_core::Secret;
use spacepos_fs::{FileCredentialStore, SESSION_FILE};

fn session() -> StoredSession {
    let at = Utc.with_ymd_and_hms(2026, 11, 25, 8, 0, 0).unwrap();
    StoredSession {
        store_staff_id: "S-0042".into(),
        access_token: Secret::new("access"),
        refresh_token: Secret::new("refresh"),
        expires_at: at,
        logged_in_at: at,
    }
}

#[cfg(unix)]
#[tokio::test]
async fn session_file_and_its_backup_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let store = FileCredentialStore::new(dir.path());
    store.save_session(&session()).await.unwrap();
    for name in [SESSION_FILE.to_owned(), format!("{SESSION_FILE}.bak")] {
        let mode = std::fs::metadata(dir.path().join(&name))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{name}");
    }
}

#[tokio::test]
async fn damaged_session_and_backup_read_as_no_session_and_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileCredentialStore::new(dir.path());
    store.save_session(&session()).await.unwrap();
    std::fs::write(dir.path().join(SESSION_FILE), b"{\"store_staff_id\": ").unwrap();
    std::fs::write(dir.path().join(format!("{SESSION_FILE}.bak")), b"").unwrap();
    assert_eq!(store.load_session().await.unwrap(), None);
    assert!(!dir.path().join(SESSION_FILE).exists());
    // A new login works afterwards.
    store.save_session(&session()).await.unwrap();
    assert_eq!(store.load_session().await.unwrap(), Some(session()));
}

#[tokio::test]
async fn damaged_session_with_a_good_backup_is_restored() {
    let dir = tempfile::tempdir().unwrap();
    let store = FileCredentialStore::new(dir.path());
    store.save_session(&session()).await.unwrap();
    std::fs::write(dir.path().join(SESSION_FILE), b"garbage").unwrap();
    assert_eq!(store.load_session().await.unwrap(), Some(session()));
}
