//! Contract suite of [`ReleaseApi`]; stamp it with [`crate::release_api_suite!`].
//!
//! A case needs more than the port: it publishes releases and cuts transfers.
//! [`ReleaseHarness`] gives it those, for the in-memory fake
//! ([`crate::fakes::MemoryReleaseApi`]) and for the HTTP adapter talking to
//! the fake ERP server alike.

use std::sync::Arc;

use async_trait::async_trait;
use sha2::{Digest, Sha256};
use spacepos_core::ComponentId;
use spacepos_updates::{PendingRelease, ReleaseApi, ReleaseApiError, ReleaseComponent};

/// An ERP with releases, under test.
#[async_trait]
pub trait ReleaseHarness: Send + Sync {
    /// The port, as an onboarded terminal calls it.
    fn api(&self) -> Arc<dyn ReleaseApi>;
    /// Publish `bytes` as `version` of `component`, signed by the primary
    /// key; returns the release as `pending` must list it.
    async fn publish(
        &self,
        component: ComponentId,
        version: &str,
        bytes: Vec<u8>,
    ) -> PendingRelease;
    /// Nothing pending any more.
    async fn withdraw_all(&self);
    /// The next artifact transfer stops after `after_bytes` bytes of its body.
    async fn cut_next_transfer(&self, after_bytes: u64);
}

/// Deterministic artifact bytes.
pub fn artifact(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

async fn download_all(api: &dyn ReleaseApi, url: &str, chunk: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        match api.fetch_range(url, out.len() as u64, chunk).await {
            Ok(c) => {
                assert_eq!(c.start, out.len() as u64, "the chunk starts where asked");
                assert!(!c.bytes.is_empty(), "a chunk below the end has bytes");
                out.extend_from_slice(&c.bytes);
                if out.len() as u64 >= c.total {
                    return out;
                }
            }
            Err(e) => panic!("download of {url} failed at {}: {e}", out.len()),
        }
    }
}

/// Clause: "`pending` ... returns an empty list when nothing is pending".
pub async fn case_nothing_pending_is_an_empty_list(erp: &dyn ReleaseHarness) {
    erp.withdraw_all().await;
    assert_eq!(erp.api().pending().await.expect("pending"), Vec::new());
}

/// Clause: "`pending` returns every release listed" with component, version,
/// sha256, signature, size and downgrade flag as published.
pub async fn case_pending_lists_published_releases(erp: &dyn ReleaseHarness) {
    let pos = erp
        .publish(ComponentId::SpacePos, "1.5.0", artifact(1000, 1))
        .await;
    let fuel = erp
        .publish(ComponentId::SpaceFuel, "2.2.0", artifact(2000, 2))
        .await;
    let mut listed = erp.api().pending().await.expect("pending");
    listed.sort_by_key(|r| r.version.clone());
    assert_eq!(listed, vec![pos.clone(), fuel]);
    assert_eq!(
        pos.component,
        ReleaseComponent::Known(ComponentId::SpacePos)
    );
    assert_eq!(pos.size, Some(1000));
    assert_eq!(pos.sha256, hex::encode(Sha256::digest(artifact(1000, 1))));
    assert!(!pos.signature.is_empty());
    assert!(!pos.allow_downgrade);
}

/// Clauses: "`fetch_range(url, start, max_len)` returns bytes of the artifact
/// from `start`: at most `max_len` ... with the artifact's total size", and
/// chunk after chunk the artifact is downloaded whole.
pub async fn case_ranges_return_the_artifact_in_chunks(erp: &dyn ReleaseHarness) {
    let bytes = artifact(100_000, 3);
    let release = erp
        .publish(ComponentId::SpaceFuel, "2.3.0", bytes.clone())
        .await;
    let api = erp.api();
    let first = api
        .fetch_range(&release.url, 0, 10)
        .await
        .expect("first bytes");
    assert_eq!((first.start, first.total), (0, 100_000));
    assert_eq!(first.bytes, bytes[..10]);
    let middle = api
        .fetch_range(&release.url, 40_000, 7)
        .await
        .expect("middle bytes");
    assert_eq!(
        (middle.start, middle.bytes.as_slice()),
        (40_000, &bytes[40_000..40_007])
    );
    let tail = api
        .fetch_range(&release.url, 99_990, 1_000)
        .await
        .expect("tail");
    assert_eq!(tail.bytes, bytes[99_990..], "at most up to the end");
    assert_eq!(
        download_all(api.as_ref(), &release.url, 16 * 1024).await,
        bytes
    );
}

/// Clause: "`start` at or past the end is `RangeNotSatisfiable` with the total".
pub async fn case_a_start_past_the_end_is_range_not_satisfiable(erp: &dyn ReleaseHarness) {
    let release = erp
        .publish(ComponentId::SpacePos, "1.6.0", artifact(500, 4))
        .await;
    let e = erp
        .api()
        .fetch_range(&release.url, 500, 100)
        .await
        .expect_err("past the end");
    assert_eq!(e, ReleaseApiError::RangeNotSatisfiable { total: 500 });
}

/// Clause: "an unknown artifact is `NotFound`".
pub async fn case_an_unknown_artifact_is_not_found(erp: &dyn ReleaseHarness) {
    let release = erp
        .publish(ComponentId::SpacePos, "1.7.0", artifact(10, 5))
        .await;
    let url = release.url.replace("1.7.0", "0.0.1");
    let e = erp
        .api()
        .fetch_range(&url, 0, 10)
        .await
        .expect_err("unknown");
    assert!(matches!(e, ReleaseApiError::NotFound { .. }), "{e:?}");
}

/// Clauses: a cut transfer "returns what arrived, if anything did, else an
/// error", and "asking again from `start + bytes.len()` continues exactly
/// where it stopped, so a cut download resumes".
pub async fn case_a_cut_transfer_resumes_where_it_stopped(erp: &dyn ReleaseHarness) {
    let bytes = artifact(60_000, 6);
    let release = erp
        .publish(ComponentId::SpaceFuel, "2.4.0", bytes.clone())
        .await;
    let api = erp.api();
    erp.cut_next_transfer(25_000).await;
    let mut have = match api.fetch_range(&release.url, 0, 1 << 20).await {
        Ok(c) => {
            assert_eq!(c.start, 0);
            assert!(c.bytes.len() < 60_000, "the transfer was cut");
            assert_eq!(
                c.bytes,
                bytes[..c.bytes.len()],
                "what arrived is the artifact's start"
            );
            c.bytes
        }
        Err(_) => Vec::new(),
    };
    while have.len() < bytes.len() {
        let c = api
            .fetch_range(&release.url, have.len() as u64, 1 << 20)
            .await
            .expect("resume");
        assert_eq!(c.start, have.len() as u64);
        have.extend_from_slice(&c.bytes);
    }
    assert_eq!(have, bytes);
}

/// Stamp one `#[tokio::test]` per [`ReleaseApi`] contract case. The argument
/// is an expression evaluating to a future of a value implementing [`ReleaseHarness`].
#[macro_export]
macro_rules! release_api_suite {
    ($factory:expr) => {
        $crate::release_api_suite!(@cases $factory;
            case_nothing_pending_is_an_empty_list,
            case_pending_lists_published_releases,
            case_ranges_return_the_artifact_in_chunks,
            case_a_start_past_the_end_is_range_not_satisfiable,
            case_an_unknown_artifact_is_not_found,
            case_a_cut_transfer_resumes_where_it_stopped,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let erp = $factory.await;
                $crate::suites::release_api::$case(&erp).await;
            }
        )+
    };
}
