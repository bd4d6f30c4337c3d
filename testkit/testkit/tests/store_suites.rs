//! The LocalStore, Outbox and ConfigStateStore suites against the in-memory
//! fakes and against the SQLite store (a file in a temporary directory per case).

use std::path::PathBuf;

use async_trait::async_trait;
use spacepos_config::ConfigStateStore;
use spacepos_sqlite::SqliteStore;
use spacepos_sync::{LocalStore, Outbox};
use spacepos_testkit::suites::{Guarded, Reopen};

/// The database file of one case; keeps its directory alive and opens more
/// instances of the store on it.
struct SqliteFile {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl SqliteFile {
    async fn open(&self) -> SqliteStore {
        SqliteStore::open(&self.path)
            .await
            .expect("open the SQLite store")
    }
}

#[async_trait]
impl Reopen<dyn LocalStore> for SqliteFile {
    async fn reopen(&self) -> Box<dyn LocalStore> {
        Box::new(self.open().await)
    }
}

#[async_trait]
impl Reopen<dyn Outbox> for SqliteFile {
    async fn reopen(&self) -> Box<dyn Outbox> {
        Box::new(self.open().await)
    }
}

#[async_trait]
impl Reopen<dyn ConfigStateStore> for SqliteFile {
    async fn reopen(&self) -> Box<dyn ConfigStateStore> {
        Box::new(self.open().await)
    }
}

async fn sqlite() -> Guarded<SqliteStore, SqliteFile> {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = SqliteFile {
        path: dir.path().join("data").join("spacepos.db"),
        _dir: dir,
    };
    Guarded::new(file.open().await, file)
}

mod memory_local_store {
    spacepos_testkit::local_store_suite!(async {
        spacepos_testkit::fakes::MemoryLocalStore::new()
    });
}

mod sqlite_local_store {
    spacepos_testkit::local_store_suite!(super::sqlite());
}

mod memory_outbox {
    spacepos_testkit::outbox_suite!(async { spacepos_testkit::fakes::MemoryOutbox::new() });
}

mod sqlite_outbox {
    spacepos_testkit::outbox_suite!(super::sqlite());
}

mod memory_config_state {
    spacepos_testkit::config_state_suite!(async {
        spacepos_testkit::fakes::MemoryConfigState::new()
    });
}

mod sqlite_config_state {
    spacepos_testkit::config_state_suite!(super::sqlite());
}

mod memory_fault_switches {
    use spacepos_sync::{Destination, LocalStore, Outbox, StoreError};
    use spacepos_testkit::fakes::{MemoryLocalStore, MemoryOutbox};
    use spacepos_testkit::suites::{local_store, outbox};

    #[tokio::test]
    async fn an_unavailable_memory_local_store_fails_transiently_and_changes_nothing() {
        let store = MemoryLocalStore::new();
        store.set_unavailable(Some("disk full"));
        let err = store
            .apply_events(&[local_store::event(
                "products",
                1,
                vec![local_store::entity("A", 1)],
            )])
            .await
            .expect_err("unavailable");
        assert!(matches!(err, StoreError::Unavailable { .. }) && err.is_transient());
        store.set_unavailable(None);
        assert_eq!(store.entity("products", "A").await.expect("entity"), None);
        assert_eq!(store.inbox_len(), 0);
    }

    #[tokio::test]
    async fn an_unavailable_memory_outbox_fails_transiently_and_changes_nothing() {
        let queue = MemoryOutbox::new();
        queue.set_unavailable(Some("disk full"));
        let err = queue
            .enqueue(&[outbox::sale(1)])
            .await
            .expect_err("unavailable");
        assert!(matches!(err, StoreError::Unavailable { .. }) && err.is_transient());
        queue.set_unavailable(None);
        assert!(queue.entries().is_empty());
        assert!(
            queue
                .pending(Destination::ErpOperations, 10)
                .await
                .expect("pending")
                .is_empty()
        );
    }
}
