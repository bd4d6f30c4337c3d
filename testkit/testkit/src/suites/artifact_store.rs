//! Contract suite of [`ArtifactStore`]; stamp it with [`crate::artifact_store_suite!`].
//!
//! The store under test must also implement [`Reopen<dyn ArtifactStore>`]
//! (another instance over the same storage).

use spacepos_core::ComponentId;
use spacepos_updates::{ArtifactKey, ArtifactState, ArtifactStore, ArtifactStoreError};

use crate::suites::Reopen;

/// A valid key.
pub fn key(component: ComponentId, version: &str, digit: char) -> ArtifactKey {
    ArtifactKey::new(component, version, &digit.to_string().repeat(64))
}

fn pos(version: &str) -> ArtifactKey {
    key(ComponentId::SpacePos, version, 'a')
}

/// Clause: "`len` is ... 0 when nothing is"; nothing is listed or staged.
pub async fn case_an_empty_store_has_nothing(store: &dyn ArtifactStore) {
    assert_eq!(store.len(&pos("1.5.0")).await.expect("len"), 0);
    assert_eq!(
        store.staged_path(&pos("1.5.0")).await.expect("staged"),
        None
    );
    assert!(store.list().await.expect("list").is_empty());
}

/// Clauses: "`append(key, offset, bytes)` adds `bytes` ... when `offset`
/// equals its length ... returns the new length" and "`read(key, offset,
/// max_len)` returns up to `max_len` bytes from `offset` ... empty at or past the end".
pub async fn case_appends_grow_the_artifact_and_reads_return_it(store: &dyn ArtifactStore) {
    let k = pos("1.5.0");
    assert_eq!(store.append(&k, 0, b"hello ").await.expect("append"), 6);
    assert_eq!(store.append(&k, 6, b"world").await.expect("append"), 11);
    assert_eq!(store.len(&k).await.expect("len"), 11);
    assert_eq!(store.read(&k, 0, 100).await.expect("read"), b"hello world");
    assert_eq!(store.read(&k, 6, 3).await.expect("read"), b"wor");
    assert!(
        store
            .read(&k, 11, 10)
            .await
            .expect("read at end")
            .is_empty()
    );
}

/// Clause: "any other offset ... is `Conflict` and changes nothing".
pub async fn case_an_append_at_the_wrong_offset_is_a_conflict(store: &dyn ArtifactStore) {
    let k = pos("1.5.0");
    store.append(&k, 0, b"abc").await.expect("append");
    for offset in [0, 2, 4] {
        let e = store
            .append(&k, offset, b"x")
            .await
            .expect_err("wrong offset");
        assert!(matches!(e, ArtifactStoreError::Conflict { .. }), "{e:?}");
    }
    assert_eq!(store.read(&k, 0, 10).await.expect("read"), b"abc");
}

/// Clauses: "`stage` turns the partial artifact into a staged one ... and
/// returns where it is", "staging a staged key returns its path", reads still
/// work, and a staged artifact never changes.
pub async fn case_staging_keeps_the_bytes_and_freezes_them(store: &dyn ArtifactStore) {
    let k = pos("1.5.0");
    store.append(&k, 0, b"MSI bytes").await.expect("append");
    let path = store
        .stage(&k, "SpacePOS_1.5.0_x64_en-US.msi")
        .await
        .expect("stage");
    assert!(path.ends_with("SpacePOS_1.5.0_x64_en-US.msi"), "{path}");
    assert_eq!(
        store.staged_path(&k).await.expect("staged"),
        Some(path.clone())
    );
    assert_eq!(
        store
            .stage(&k, "SpacePOS_1.5.0_x64_en-US.msi")
            .await
            .expect("again"),
        path
    );
    assert_eq!(store.len(&k).await.expect("len"), 9);
    assert_eq!(store.read(&k, 4, 100).await.expect("read"), b"bytes");
    let e = store
        .append(&k, 9, b"more")
        .await
        .expect_err("staged is frozen");
    assert!(matches!(e, ArtifactStoreError::Conflict { .. }), "{e:?}");
    let listed = store.list().await.expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].state, ArtifactState::Staged { path });
    assert_eq!(listed[0].len, 9);
}

/// Clause: "staging an empty or absent key is `NotFound`".
pub async fn case_staging_nothing_is_not_found(store: &dyn ArtifactStore) {
    let e = store
        .stage(&pos("9.9.9"), "x.msi")
        .await
        .expect_err("nothing");
    assert!(matches!(e, ArtifactStoreError::NotFound { .. }), "{e:?}");
}

/// Clauses: "`discard` removes the partial and staged artifact of the key;
/// discarding nothing is fine. Keys are independent of each other."
pub async fn case_discard_removes_one_key_only(store: &dyn ArtifactStore) {
    let a = key(ComponentId::SpaceFuel, "2.2.0", 'a');
    let b = key(ComponentId::SpaceFuel, "2.2.0", 'b');
    let c = key(ComponentId::SpacePos, "1.5.0", 'c');
    store.append(&a, 0, b"aaa").await.expect("append a");
    store.append(&b, 0, b"bb").await.expect("append b");
    store.append(&c, 0, b"c").await.expect("append c");
    store.stage(&c, "c.msi").await.expect("stage c");
    assert_eq!(
        store.read(&b, 0, 10).await.expect("read b"),
        b"bb",
        "same version, other digest"
    );
    store.discard(&a).await.expect("discard partial");
    store.discard(&c).await.expect("discard staged");
    store.discard(&a).await.expect("discard nothing");
    assert_eq!(store.len(&a).await.expect("len a"), 0);
    assert_eq!(store.len(&c).await.expect("len c"), 0);
    assert_eq!(store.staged_path(&c).await.expect("staged c"), None);
    let listed: Vec<ArtifactKey> = store
        .list()
        .await
        .expect("list")
        .into_iter()
        .map(|s| s.key)
        .collect();
    assert_eq!(listed, vec![b.clone()]);
    // A discarded key starts over at 0.
    store.append(&a, 0, b"new").await.expect("append again");
}

/// Clause: "A key that fails `ArtifactKey::check` is `InvalidKey` for every
/// method, and nothing is written."
pub async fn case_unsafe_keys_are_refused(store: &dyn ArtifactStore) {
    let bad = [
        ArtifactKey::new(ComponentId::SpacePos, "../../etc", &"a".repeat(64)),
        ArtifactKey::new(ComponentId::SpacePos, "1.5.0/x", &"a".repeat(64)),
        ArtifactKey::new(ComponentId::SpacePos, "1.5.0", "not-a-digest"),
    ];
    for k in &bad {
        let e = store.append(k, 0, b"x").await.expect_err("invalid");
        assert!(matches!(e, ArtifactStoreError::InvalidKey { .. }), "{e:?}");
        assert!(matches!(
            store.len(k).await,
            Err(ArtifactStoreError::InvalidKey { .. })
        ));
        assert!(matches!(
            store.discard(k).await,
            Err(ArtifactStoreError::InvalidKey { .. })
        ));
    }
    assert!(store.list().await.expect("list").is_empty());
}

/// Clauses: "`append` ... durably when it returns (a restarted process
/// resumes the download at `len`)" and "Everything stored is seen by another
/// instance over the same storage".
pub async fn case_another_instance_sees_partial_and_staged<S>(store: &S)
where
    S: ArtifactStore + Reopen<dyn ArtifactStore>,
{
    let partial = key(ComponentId::SpaceFuel, "2.2.0-rc.1", 'd');
    let staged = pos("1.5.0");
    store
        .append(&partial, 0, b"first half")
        .await
        .expect("append");
    store.append(&staged, 0, b"whole").await.expect("append");
    let path = store.stage(&staged, "a.msi").await.expect("stage");
    let other = store.reopen().await;
    assert_eq!(other.len(&partial).await.expect("len"), 10);
    assert_eq!(
        other
            .append(&partial, 10, b", second")
            .await
            .expect("resume"),
        18
    );
    assert_eq!(
        other.staged_path(&staged).await.expect("staged"),
        Some(path)
    );
    assert_eq!(
        store.read(&partial, 0, 100).await.expect("read"),
        b"first half, second"
    );
    let listed = other.list().await.expect("list");
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(
        listed
            .iter()
            .any(|a| a.key == partial && a.state == ArtifactState::Partial && a.len == 18)
    );
}

/// Stamp one `#[tokio::test]` per [`ArtifactStore`] contract case. The
/// argument is an expression evaluating to a future of a fresh store that
/// implements `ArtifactStore` and `Reopen<dyn ArtifactStore>`.
#[macro_export]
macro_rules! artifact_store_suite {
    ($factory:expr) => {
        $crate::artifact_store_suite!(@cases $factory;
            case_an_empty_store_has_nothing,
            case_appends_grow_the_artifact_and_reads_return_it,
            case_an_append_at_the_wrong_offset_is_a_conflict,
            case_staging_keeps_the_bytes_and_freezes_them,
            case_staging_nothing_is_not_found,
            case_discard_removes_one_key_only,
            case_unsafe_keys_are_refused,
            case_another_instance_sees_partial_and_staged,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let store = $factory.await;
                $crate::suites::artifact_store::$case(&store).await;
            }
        )+
    };
}

#[async_trait::async_trait]
impl<S: ArtifactStore, G: Send + Sync + 'static> ArtifactStore for crate::suites::Guarded<S, G> {
    async fn len(&self, key: &ArtifactKey) -> Result<u64, ArtifactStoreError> {
        self.store.len(key).await
    }

    async fn append(
        &self,
        key: &ArtifactKey,
        offset: u64,
        bytes: &[u8],
    ) -> Result<u64, ArtifactStoreError> {
        self.store.append(key, offset, bytes).await
    }

    async fn read(
        &self,
        key: &ArtifactKey,
        offset: u64,
        max_len: u64,
    ) -> Result<Vec<u8>, ArtifactStoreError> {
        self.store.read(key, offset, max_len).await
    }

    async fn stage(
        &self,
        key: &ArtifactKey,
        file_name: &str,
    ) -> Result<String, ArtifactStoreError> {
        self.store.stage(key, file_name).await
    }

    async fn staged_path(&self, key: &ArtifactKey) -> Result<Option<String>, ArtifactStoreError> {
        self.store.staged_path(key).await
    }

    async fn discard(&self, key: &ArtifactKey) -> Result<(), ArtifactStoreError> {
        self.store.discard(key).await
    }

    async fn list(&self) -> Result<Vec<spacepos_updates::StoredArtifact>, ArtifactStoreError> {
        self.store.list().await
    }
}
