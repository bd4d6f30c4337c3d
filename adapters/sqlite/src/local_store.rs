//! [`LocalStore`] on the `entities`, `checkpoints` and `inbox` tables.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use spacepos_sync::{
    ChangesPage, Checkpoint, DatasetEvent, Entity, EventOutcome, LocalStore, SnapshotPage,
    SnapshotProgress, SnapshotStep, StoreError,
};
use sqlx::sqlite::SqliteConnection;
use sqlx::{QueryBuilder, Sqlite};

use crate::codec;
use crate::error::Fail;
use crate::store::{SqliteStore, with_retry};

/// Rows per multi-row statement: 7 parameters a row, 3,500 a statement (SQLite
/// allows 32,766). One row per statement costs a thread hand-off in sqlx
/// (about 10k rows/s); 500 rows per statement run at hundreds of thousands.
const ROWS_PER_STATEMENT: usize = 500;

/// The apply rule in one statement: the row's data changes only when the
/// incoming version is greater; the generation is stamped in any case, so an
/// entity written during a snapshot survives the snapshot's final sweep.
const UPSERT_TAIL: &str = " ON CONFLICT(dataset, id) DO UPDATE SET \
    generation = excluded.generation, \
    deleted    = CASE WHEN excluded.version > entities.version THEN excluded.deleted    ELSE entities.deleted    END, \
    data       = CASE WHEN excluded.version > entities.version THEN excluded.data       ELSE entities.data       END, \
    updated_at = CASE WHEN excluded.version > entities.version THEN excluded.updated_at ELSE entities.updated_at END, \
    version    = CASE WHEN excluded.version > entities.version THEN excluded.version    ELSE entities.version    END";

const CHECKPOINT_COLUMNS: &str = "c.dataset, c.last_sequence, c.snapshot_as_of, c.snapshot_cursor, \
    c.snapshot_pages, c.snapshot_items, c.last_applied_at, \
    (SELECT count(*) FROM entities e WHERE e.dataset = c.dataset AND e.deleted = 0) AS live";

/// An entity ready to be written.
struct EntityRow<'a> {
    dataset: &'a str,
    id: &'a str,
    version: i64,
    deleted: bool,
    /// `None` for a tombstone.
    data: Option<String>,
    generation: i64,
}

fn encode<'a>(
    dataset: &'a str,
    entity: &'a Entity,
    generation: i64,
) -> Result<EntityRow<'a>, Fail> {
    Ok(EntityRow {
        dataset,
        id: &entity.id,
        version: codec::int(entity.version, || {
            format!("the version of {dataset}/{}", entity.id)
        })?,
        deleted: entity.deleted,
        data: (!entity.deleted).then(|| codec::json(&entity.data)),
        generation,
    })
}

/// Write entities under the apply rule, 500 rows per statement.
async fn upsert(
    conn: &mut SqliteConnection,
    rows: &[EntityRow<'_>],
    now: &str,
) -> Result<(), Fail> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO entities (dataset, id, version, deleted, data, generation, updated_at) ",
        );
        qb.push_values(chunk, |mut b, row| {
            b.push_bind(row.dataset)
                .push_bind(row.id)
                .push_bind(row.version)
                .push_bind(row.deleted)
                .push_bind(row.data.as_deref())
                .push_bind(row.generation)
                .push_bind(now);
        });
        qb.push(UPSERT_TAIL);
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}

/// A dataset's checkpoint as a write sees it.
#[derive(Debug, Clone)]
struct DatasetState {
    generation: i64,
    last_sequence: Option<i64>,
    /// `(as_of, pages, items)` of a snapshot in progress.
    snapshot: Option<(i64, i64, i64)>,
    /// The cursor of its next page.
    cursor: Option<String>,
}

/// The checkpoint row of `dataset`, created blank if missing.
async fn dataset_state(conn: &mut SqliteConnection, dataset: &str) -> Result<DatasetState, Fail> {
    sqlx::query("INSERT INTO checkpoints (dataset) VALUES (?) ON CONFLICT(dataset) DO NOTHING")
        .bind(dataset)
        .execute(&mut *conn)
        .await?;
    type Row = (
        i64,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<i64>,
        Option<String>,
    );
    let (generation, last_sequence, as_of, pages, items, cursor): Row = sqlx::query_as(
        "SELECT generation, last_sequence, snapshot_as_of, snapshot_pages, snapshot_items, snapshot_cursor \
             FROM checkpoints WHERE dataset = ?",
    )
    .bind(dataset)
    .fetch_one(&mut *conn)
    .await?;
    Ok(DatasetState {
        generation,
        last_sequence,
        snapshot: as_of.map(|a| (a, pages.unwrap_or(0), items.unwrap_or(0))),
        cursor,
    })
}

#[derive(Debug, sqlx::FromRow)]
struct CheckpointRow {
    dataset: String,
    last_sequence: Option<i64>,
    snapshot_as_of: Option<i64>,
    snapshot_cursor: Option<String>,
    snapshot_pages: Option<i64>,
    snapshot_items: Option<i64>,
    last_applied_at: Option<String>,
    live: i64,
}

impl CheckpointRow {
    fn decode(self) -> Result<Checkpoint, Fail> {
        let snapshot = match self.snapshot_as_of {
            Some(as_of) => Some(SnapshotProgress {
                as_of_sequence: codec::uint("checkpoints.snapshot_as_of", as_of)?,
                next_cursor: self.snapshot_cursor,
                pages_done: codec::uint(
                    "checkpoints.snapshot_pages",
                    self.snapshot_pages.unwrap_or(0),
                )?,
                items_done: codec::uint(
                    "checkpoints.snapshot_items",
                    self.snapshot_items.unwrap_or(0),
                )?,
            }),
            None => None,
        };
        Ok(Checkpoint {
            dataset: self.dataset,
            last_sequence: self
                .last_sequence
                .map(|s| codec::uint("checkpoints.last_sequence", s))
                .transpose()?,
            snapshot,
            entities: codec::uint("entity count", self.live)?,
            last_applied_at: codec::parse_opt_time(
                "checkpoints.last_applied_at",
                self.last_applied_at.as_deref(),
            )?,
        })
    }
}

#[derive(Debug, sqlx::FromRow)]
struct EntityRead {
    id: String,
    version: i64,
    deleted: bool,
    data: Option<String>,
}

impl EntityRead {
    fn decode(self) -> Result<Entity, Fail> {
        let data = match (&self.data, self.deleted) {
            (Some(text), false) => codec::parse_json("entities.data", text)?,
            _ => serde_json::Value::Null,
        };
        Ok(Entity {
            version: codec::uint("entities.version", self.version)?,
            id: self.id,
            deleted: self.deleted,
            data,
        })
    }
}

impl SqliteStore {
    async fn try_checkpoints(&self, dataset: Option<&str>) -> Result<Vec<Checkpoint>, Fail> {
        let rows: Vec<CheckpointRow> = match dataset {
            Some(dataset) => {
                sqlx::query_as(&format!(
                    "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints c WHERE c.dataset = ?"
                ))
                .bind(dataset)
                .fetch_all(self.reader())
                .await?
            }
            None => {
                sqlx::query_as(&format!(
                    "SELECT {CHECKPOINT_COLUMNS} FROM checkpoints c ORDER BY c.dataset"
                ))
                .fetch_all(self.reader())
                .await?
            }
        };
        rows.into_iter().map(CheckpointRow::decode).collect()
    }

    async fn try_apply_snapshot_page(
        &self,
        page: &SnapshotPage,
        fetched_with: Option<&str>,
    ) -> Result<SnapshotStep, Fail> {
        let now = codec::time(Utc::now());
        let as_of = codec::int(page.as_of_sequence, || {
            "the asOfSequence of a snapshot".into()
        })?;
        let mut tx = self.begin_relaxed().await?;
        let state = dataset_state(&mut tx, &page.dataset).await?;
        let (generation, pages, items) = match (fetched_with, state.snapshot) {
            // A page continues the snapshot only if it was fetched with the stored cursor.
            (Some(cursor), Some((in_progress, pages, items)))
                if in_progress == as_of && state.cursor.as_deref() == Some(cursor) =>
            {
                (state.generation, pages, items)
            }
            (Some(_), _) => {
                // Another process stored this page already, or started over.
                tx.rollback().await?;
                return Ok(SnapshotStep::Stale);
            }
            (None, in_progress) => {
                if let Some((in_progress, _, _)) = in_progress {
                    tracing::info!(
                        dataset = %page.dataset,
                        in_progress,
                        as_of,
                        "a snapshot starts over while another was in progress"
                    );
                }
                (state.generation + 1, 0, 0)
            }
        };
        let rows = page
            .items
            .iter()
            .map(|e| encode(&page.dataset, e, generation))
            .collect::<Result<Vec<_>, _>>()?;
        upsert(&mut tx, &rows, &now).await?;
        let pages = pages + 1;
        let items = items + i64::try_from(page.items.len()).unwrap_or(i64::MAX);
        let step = match &page.next_cursor {
            Some(cursor) => {
                sqlx::query(
                    "UPDATE checkpoints SET generation = ?, snapshot_as_of = ?, snapshot_cursor = ?, \
                     snapshot_pages = ?, snapshot_items = ?, last_applied_at = ? WHERE dataset = ?",
                )
                .bind(generation)
                .bind(as_of)
                .bind(cursor)
                .bind(pages)
                .bind(items)
                .bind(&now)
                .bind(&page.dataset)
                .execute(&mut *tx)
                .await?;
                SnapshotStep::Continue
            }
            None => {
                let swept =
                    sqlx::query("DELETE FROM entities WHERE dataset = ? AND generation < ?")
                        .bind(&page.dataset)
                        .bind(generation)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                sqlx::query(
                    "UPDATE checkpoints SET generation = ?, last_sequence = ?, snapshot_as_of = NULL, \
                     snapshot_cursor = NULL, snapshot_pages = NULL, snapshot_items = NULL, \
                     last_applied_at = ? WHERE dataset = ?",
                )
                .bind(generation)
                .bind(as_of)
                .bind(&now)
                .bind(&page.dataset)
                .execute(&mut *tx)
                .await?;
                tracing::debug!(
                    dataset = %page.dataset,
                    as_of,
                    pages,
                    items,
                    swept,
                    "snapshot complete"
                );
                SnapshotStep::Complete
            }
        };
        tx.commit().await?;
        Ok(step)
    }

    async fn try_restart_snapshot(&self, dataset: &str) -> Result<(), Fail> {
        let mut tx = self.begin_relaxed().await?;
        sqlx::query(
            "UPDATE checkpoints SET snapshot_as_of = NULL, snapshot_cursor = NULL, snapshot_pages = NULL, \
             snapshot_items = NULL WHERE dataset = ?",
        )
        .bind(dataset)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn try_apply_changes(&self, page: &ChangesPage) -> Result<(), Fail> {
        let now = codec::time(Utc::now());
        let last = codec::int(page.last_sequence, || {
            "the lastSequence of a changes page".into()
        })?;
        let mut tx = self.begin_relaxed().await?;
        let state = dataset_state(&mut tx, &page.dataset).await?;
        let rows = page
            .items
            .iter()
            .map(|c| encode(&page.dataset, &c.entity, state.generation))
            .collect::<Result<Vec<_>, _>>()?;
        upsert(&mut tx, &rows, &now).await?;
        sqlx::query(
            "UPDATE checkpoints SET \
             last_sequence = CASE WHEN last_sequence IS NULL OR last_sequence < ?1 THEN ?1 ELSE last_sequence END, \
             last_applied_at = ?2 WHERE dataset = ?3",
        )
        .bind(last)
        .bind(&now)
        .bind(&page.dataset)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn try_apply_events(&self, events: &[DatasetEvent]) -> Result<Vec<EventOutcome>, Fail> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let now = codec::time(Utc::now());
        let ids: Vec<String> = events.iter().map(|e| e.event_id.to_string()).collect();
        let sequences = events
            .iter()
            .map(|e| {
                codec::int(e.sequence, || {
                    format!("the sequence of event {}", e.event_id)
                })
            })
            .collect::<Result<Vec<_>, _>>()?;

        let mut tx = self.begin_relaxed().await?;

        // Ids seen before this batch.
        let mut known: HashSet<String> = HashSet::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            let mut qb =
                QueryBuilder::<Sqlite>::new("SELECT event_id FROM inbox WHERE event_id IN (");
            let mut list = qb.separated(", ");
            for id in chunk {
                list.push_bind(id.as_str());
            }
            qb.push(")");
            let rows: Vec<(String,)> = qb.build_query_as().fetch_all(&mut *tx).await?;
            known.extend(rows.into_iter().map(|(id,)| id));
        }

        let mut datasets: HashMap<&str, (DatasetState, bool)> = HashMap::new();
        for event in events {
            if !datasets.contains_key(event.dataset.as_str()) {
                let state = dataset_state(&mut tx, &event.dataset).await?;
                datasets.insert(&event.dataset, (state, false));
            }
        }

        let mut outcomes = Vec::with_capacity(events.len());
        let mut writes: Vec<EntityRow<'_>> = Vec::new();
        let mut inbox: Vec<(&str, &str, i64)> = Vec::new();
        for ((event, id), &sequence) in events.iter().zip(&ids).zip(&sequences) {
            if known.contains(id) {
                outcomes.push(EventOutcome::Duplicate);
                continue;
            }
            known.insert(id.clone());
            inbox.push((id.as_str(), event.dataset.as_str(), sequence));
            let Some((state, touched)) = datasets.get_mut(event.dataset.as_str()) else {
                return Err(Fail::Decode(format!(
                    "no checkpoint loaded for {}",
                    event.dataset
                )));
            };
            if state.last_sequence.is_some_and(|last| sequence <= last) {
                outcomes.push(EventOutcome::AlreadyApplied);
                continue;
            }
            for entity in &event.items {
                writes.push(encode(&event.dataset, entity, state.generation)?);
            }
            *touched = true;
            let next = state.last_sequence.map(|last| last + 1);
            if state.snapshot.is_none() && next == Some(sequence) {
                state.last_sequence = Some(sequence);
                outcomes.push(EventOutcome::Applied);
            } else {
                outcomes.push(EventOutcome::Gap);
            }
        }

        upsert(&mut tx, &writes, &now).await?;
        for chunk in inbox.chunks(ROWS_PER_STATEMENT) {
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO inbox (event_id, dataset, sequence, recorded_at) ",
            );
            qb.push_values(chunk, |mut b, (id, dataset, sequence)| {
                b.push_bind(*id)
                    .push_bind(*dataset)
                    .push_bind(*sequence)
                    .push_bind(now.as_str());
            });
            qb.build().execute(&mut *tx).await?;
        }
        for (dataset, (state, touched)) in &datasets {
            if *touched {
                sqlx::query("UPDATE checkpoints SET last_sequence = ?, last_applied_at = ? WHERE dataset = ?")
                    .bind(state.last_sequence)
                    .bind(&now)
                    .bind(*dataset)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn try_entity(&self, dataset: &str, id: &str) -> Result<Option<Entity>, Fail> {
        let row: Option<EntityRead> = sqlx::query_as(
            "SELECT id, version, deleted, data FROM entities WHERE dataset = ? AND id = ?",
        )
        .bind(dataset)
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        row.map(EntityRead::decode).transpose()
    }

    async fn try_entities(
        &self,
        dataset: &str,
        after_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Entity>, Fail> {
        let rows: Vec<EntityRead> = match after_id {
            Some(after) => {
                sqlx::query_as(
                    "SELECT id, version, deleted, data FROM entities WHERE dataset = ? AND id > ? \
                     ORDER BY id LIMIT ?",
                )
                .bind(dataset)
                .bind(after)
                .bind(i64::from(limit))
                .fetch_all(self.reader())
                .await?
            }
            None => {
                sqlx::query_as("SELECT id, version, deleted, data FROM entities WHERE dataset = ? ORDER BY id LIMIT ?")
                    .bind(dataset)
                    .bind(i64::from(limit))
                    .fetch_all(self.reader())
                    .await?
            }
        };
        rows.into_iter().map(EntityRead::decode).collect()
    }

    async fn try_prune_inbox(&self, cutoff: DateTime<Utc>) -> Result<u64, Fail> {
        let mut tx = self.begin_relaxed().await?;
        let pruned = sqlx::query("DELETE FROM inbox WHERE recorded_at < ?")
            .bind(codec::time(cutoff))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(pruned)
    }
}

#[async_trait]
impl LocalStore for SqliteStore {
    async fn checkpoints(&self) -> Result<Vec<Checkpoint>, StoreError> {
        with_retry!(self, "read the checkpoints", self.try_checkpoints(None))
    }

    async fn checkpoint(&self, dataset: &str) -> Result<Checkpoint, StoreError> {
        let found = with_retry!(
            self,
            format!("read the checkpoint of {dataset}"),
            self.try_checkpoints(Some(dataset))
        )?;
        Ok(found.into_iter().next().unwrap_or_else(|| Checkpoint {
            dataset: dataset.to_owned(),
            ..Checkpoint::default()
        }))
    }

    async fn apply_snapshot_page(
        &self,
        page: &SnapshotPage,
        fetched_with: Option<String>,
    ) -> Result<SnapshotStep, StoreError> {
        with_retry!(
            self,
            format!(
                "store a snapshot page of {} ({} entities)",
                page.dataset,
                page.items.len()
            ),
            self.try_apply_snapshot_page(page, fetched_with.as_deref())
        )
    }

    async fn restart_snapshot(&self, dataset: &str) -> Result<(), StoreError> {
        with_retry!(
            self,
            format!("restart the snapshot of {dataset}"),
            self.try_restart_snapshot(dataset)
        )
    }

    async fn apply_changes(&self, page: &ChangesPage) -> Result<(), StoreError> {
        with_retry!(
            self,
            format!("apply {} change(s) of {}", page.items.len(), page.dataset),
            self.try_apply_changes(page)
        )
    }

    async fn apply_events(&self, events: &[DatasetEvent]) -> Result<Vec<EventOutcome>, StoreError> {
        with_retry!(
            self,
            format!("apply {} event(s)", events.len()),
            self.try_apply_events(events)
        )
    }

    async fn entity(&self, dataset: &str, id: &str) -> Result<Option<Entity>, StoreError> {
        with_retry!(
            self,
            format!("read {dataset}/{id}"),
            self.try_entity(dataset, id)
        )
    }

    async fn entities(
        &self,
        dataset: &str,
        after_id: Option<String>,
        limit: u32,
    ) -> Result<Vec<Entity>, StoreError> {
        with_retry!(
            self,
            format!("read entities of {dataset}"),
            self.try_entities(dataset, after_id.as_deref(), limit)
        )
    }

    async fn prune_inbox(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        with_retry!(self, "prune the inbox", self.try_prune_inbox(cutoff))
    }
}
