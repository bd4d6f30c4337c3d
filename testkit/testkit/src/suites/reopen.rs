//! [`Reopen`]: a second instance of a store over the same storage, for the
//! suite cases about durability and about two processes sharing one store.

use async_trait::async_trait;

use super::Guarded;

/// Opens another instance of a store over the same storage (the same database
/// file), as a restarted process or a second process would: it must see
/// everything the first instance committed, and its writes must be seen by
/// the first.
///
/// In-memory fakes hand out a clone (clones share their data). For a store
/// in a temporary directory, the [`Guarded`] store's guard implements it and
/// the `Guarded` delegates to it, for example in a test crate:
///
/// ```no_run
/// use async_trait::async_trait;
/// use spacepos_sync::Outbox;
/// use spacepos_testkit::suites::Reopen;
///
/// struct SqliteFile { dir: tempfile::TempDir }
///
/// #[async_trait]
/// impl Reopen<dyn Outbox> for SqliteFile {
///     async fn reopen(&self) -> Box<dyn Outbox> {
///         let path = self.dir.path().join("store.db");
///         Box::new(spacepos_sqlite::SqliteStore::open(path).await.expect("reopen"))
///     }
/// }
/// ```
#[async_trait]
pub trait Reopen<P: ?Sized + Send + Sync>: Send + Sync {
    async fn reopen(&self) -> Box<P>;
}

#[async_trait]
impl<P, S, G> Reopen<P> for Guarded<S, G>
where
    P: ?Sized + Send + Sync + 'static,
    S: Send + Sync,
    G: Reopen<P>,
{
    async fn reopen(&self) -> Box<P> {
        self.guard.reopen().await
    }
}
