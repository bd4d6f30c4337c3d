//! Seeding (snapshots, resumable) and catch-up (changes by sequence).

use std::sync::Arc;

use tracing::{info, warn};

use crate::model::{Checkpoint, DatasetInfo, SnapshotProgress};
use crate::ports::{DatasetApi, DatasetApiError, LocalStore, SnapshotStep, StoreError};

/// Entities per snapshot page requested (the contract allows 1..=5000).
pub const SNAPSHOT_PAGE: u32 = 5000;
/// Items per changes page requested.
pub const CHANGES_PAGE: u32 = 5000;

/// Why seeding or catching up stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Api(#[from] DatasetApiError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SyncError {
    /// The ERP failure behind it, if any.
    pub fn remote(&self) -> Option<&spacepos_core::RemoteError> {
        match self {
            SyncError::Api(DatasetApiError::Remote(r)) => Some(r),
            _ => None,
        }
    }
}

/// Progress of a seed, for progress bars and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeedProgress {
    /// A snapshot starts (`resumed`: from a stored cursor, after `items_done` items).
    Started {
        dataset: String,
        resumed: bool,
        items_done: u64,
        expected: Option<u64>,
    },
    /// One page is stored.
    Page {
        dataset: String,
        pages_done: u64,
        items_done: u64,
        as_of_sequence: u64,
    },
    /// The snapshot is complete.
    Completed {
        dataset: String,
        entities: u64,
        as_of_sequence: u64,
    },
}

/// What a sync of one dataset did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatasetSync {
    /// Already at the ERP's sequence.
    UpToDate { sequence: u64 },
    /// Changes applied up to `sequence`.
    CaughtUp { from: u64, sequence: u64 },
    /// A snapshot was taken (first seed, resumed seed, or a reseed after 410).
    Seeded { sequence: u64, reseed: bool },
}

/// Seeds and catches up datasets.
#[derive(Clone)]
pub struct Seeder {
    api: Arc<dyn DatasetApi>,
    store: Arc<dyn LocalStore>,
    snapshot_page: u32,
    changes_page: u32,
}

impl std::fmt::Debug for Seeder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seeder")
            .field("snapshot_page", &self.snapshot_page)
            .finish_non_exhaustive()
    }
}

impl Seeder {
    pub fn new(api: Arc<dyn DatasetApi>, store: Arc<dyn LocalStore>) -> Self {
        Seeder {
            api,
            store,
            snapshot_page: SNAPSHOT_PAGE,
            changes_page: CHANGES_PAGE,
        }
    }

    /// Smaller pages (tests, slow links).
    pub fn with_page_sizes(mut self, snapshot: u32, changes: u32) -> Self {
        self.snapshot_page = snapshot.clamp(1, 5000);
        self.changes_page = changes.clamp(1, 5000);
        self
    }

    /// The datasets the ERP offers.
    pub async fn datasets(&self) -> Result<Vec<DatasetInfo>, SyncError> {
        Ok(self.api.datasets().await?)
    }

    /// Take (or resume) a snapshot of `dataset` until it is complete. Each page
    /// is committed with the cursor of the next one, so a crash resumes there.
    pub async fn seed(
        &self,
        dataset: &str,
        expected: Option<u64>,
        progress: &(dyn Fn(SeedProgress) + Send + Sync),
    ) -> Result<u64, SyncError> {
        let mut restarts = 0;
        let checkpoint = self.store.checkpoint(dataset).await?;
        let (resumed, items_done) = match &checkpoint.snapshot {
            Some(s) => (s.next_cursor.is_some(), s.items_done),
            None => (false, 0),
        };
        progress(SeedProgress::Started {
            dataset: dataset.to_owned(),
            resumed,
            items_done,
            expected,
        });
        if resumed {
            info!(
                dataset,
                items_done, "resuming the snapshot where it stopped"
            );
        }
        // Where the snapshot stands, kept here after each page this seeder stores
        // and read again only when that is not known (a restart, a stale page):
        // reading a checkpoint counts the dataset's entities, so once per page
        // made a seed quadratic (13 of 25 s for 1,000,000 entities).
        let mut in_progress = checkpoint.snapshot;
        loop {
            let cursor = in_progress.as_ref().and_then(|s| s.next_cursor.clone());
            let page = match self.api.snapshot(dataset, cursor, self.snapshot_page).await {
                Ok(page) => page,
                Err(DatasetApiError::CursorRejected { .. }) if restarts < 2 => {
                    warn!(
                        dataset,
                        "the ERP refused the stored snapshot cursor; starting the snapshot again"
                    );
                    self.store.restart_snapshot(dataset).await?;
                    in_progress = self.store.checkpoint(dataset).await?.snapshot;
                    restarts += 1;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if let Some(s) = &in_progress
                && s.next_cursor.is_some()
                && s.as_of_sequence != page.as_of_sequence
            {
                // The ERP answered a resumed cursor from another snapshot: start over
                // rather than mix two points in time.
                warn!(
                    dataset,
                    "the ERP changed the snapshot's sequence mid-way; starting the snapshot again"
                );
                self.store.restart_snapshot(dataset).await?;
                in_progress = self.store.checkpoint(dataset).await?.snapshot;
                restarts += 1;
                if restarts > 2 {
                    return Err(SyncError::Api(DatasetApiError::CursorRejected {
                        dataset: dataset.to_owned(),
                    }));
                }
                continue;
            }
            let as_of = page.as_of_sequence;
            let fetched_with = in_progress.as_ref().and_then(|s| s.next_cursor.clone());
            let step = self
                .store
                .apply_snapshot_page(&page, fetched_with.clone())
                .await?;
            match step {
                SnapshotStep::Continue => {
                    // What the store now holds: this page after the stored one
                    // (fetched with its cursor), or the first page of a new snapshot.
                    let items = page.items.len() as u64;
                    let (pages_done, items_done) = match (&fetched_with, &in_progress) {
                        (Some(_), Some(s)) => (s.pages_done + 1, s.items_done + items),
                        _ => (1, items),
                    };
                    in_progress = Some(SnapshotProgress {
                        as_of_sequence: as_of,
                        next_cursor: page.next_cursor.clone(),
                        pages_done,
                        items_done,
                    });
                    progress(SeedProgress::Page {
                        dataset: dataset.to_owned(),
                        pages_done,
                        items_done,
                        as_of_sequence: as_of,
                    });
                }
                SnapshotStep::Stale => {
                    // Another process stored this page (or started over): go on from
                    // what is stored now.
                    in_progress = self.store.checkpoint(dataset).await?.snapshot;
                    continue;
                }
                SnapshotStep::Complete => {
                    let after = self.store.checkpoint(dataset).await?;
                    progress(SeedProgress::Completed {
                        dataset: dataset.to_owned(),
                        entities: after.entities,
                        as_of_sequence: as_of,
                    });
                    info!(
                        dataset,
                        entities = after.entities,
                        sequence = as_of,
                        "snapshot complete"
                    );
                    return Ok(as_of);
                }
            }
        }
    }

    /// Apply the changes after the dataset's sequence until the ERP has no more.
    /// A dataset never seeded (or mid-snapshot) is seeded first; `410` reseeds.
    pub async fn sync_dataset(
        &self,
        dataset: &str,
        known_last: Option<u64>,
        progress: &(dyn Fn(SeedProgress) + Send + Sync),
    ) -> Result<DatasetSync, SyncError> {
        let checkpoint = self.store.checkpoint(dataset).await?;
        let (start, mut seeded, mut reseed) = match usable_sequence(&checkpoint) {
            Some(from) => {
                if known_last.is_some_and(|last| last <= from) {
                    return Ok(DatasetSync::UpToDate { sequence: from });
                }
                (from, false, false)
            }
            // Not seeded yet (or a snapshot was interrupted): seed, then catch up
            // the changes made since the snapshot's sequence.
            None => (self.seed(dataset, None, progress).await?, true, false),
        };
        let mut after = start;
        loop {
            match self.changes_after(dataset, after).await? {
                Some(last) => {
                    after = last;
                    break;
                }
                None if !reseed => {
                    warn!(
                        dataset,
                        after, "the ERP no longer holds changes after our sequence; reseeding"
                    );
                    after = self.seed(dataset, None, progress).await?;
                    seeded = true;
                    reseed = true;
                }
                None => {
                    return Err(SyncError::Api(DatasetApiError::SequenceExpired {
                        dataset: dataset.to_owned(),
                        after,
                    }));
                }
            }
        }
        Ok(if seeded {
            DatasetSync::Seeded {
                sequence: after,
                reseed,
            }
        } else if after == start {
            DatasetSync::UpToDate { sequence: start }
        } else {
            DatasetSync::CaughtUp {
                from: start,
                sequence: after,
            }
        })
    }

    /// Apply the changes after `after` until the ERP has no more; the last
    /// sequence applied, or `None` when the ERP no longer holds them (410).
    async fn changes_after(&self, dataset: &str, mut after: u64) -> Result<Option<u64>, SyncError> {
        loop {
            let page = match self.api.changes(dataset, after, self.changes_page).await {
                Ok(page) => page,
                Err(DatasetApiError::SequenceExpired { .. }) => return Ok(None),
                Err(e) => return Err(e.into()),
            };
            let has_more = page.has_more && !page.items.is_empty();
            self.store.apply_changes(&page).await?;
            after = after.max(page.last_sequence);
            if !has_more {
                return Ok(Some(after));
            }
        }
    }

    /// Bring every dataset the ERP offers up to date, one after another.
    /// Returns each dataset's result; one failing dataset does not stop the others
    /// unless the ERP itself is failing.
    pub async fn sync_all(
        &self,
        only: Option<&str>,
        progress: &(dyn Fn(SeedProgress) + Send + Sync),
    ) -> Result<Vec<(String, Result<DatasetSync, SyncError>)>, SyncError> {
        let datasets = self.api.datasets().await?;
        let mut results = Vec::new();
        for info in datasets
            .into_iter()
            .filter(|d| only.is_none_or(|o| o == d.name))
        {
            let result = self
                .sync_dataset(&info.name, Some(info.last_sequence), progress)
                .await;
            let stop = matches!(&result, Err(e) if e.remote().is_some());
            results.push((info.name, result));
            if stop {
                break;
            }
        }
        Ok(results)
    }
}

/// The sequence to catch up from, if the dataset has a complete snapshot and
/// no snapshot in progress.
fn usable_sequence(c: &Checkpoint) -> Option<u64> {
    if c.snapshot.is_some() {
        None
    } else {
        c.last_sequence
    }
}
