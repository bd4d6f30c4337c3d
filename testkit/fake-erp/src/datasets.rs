//! Datasets (contract section 3): a generated base state plus an in-memory change log.
//!
//! The base state of a dataset is `size` entities generated on the fly from
//! (seed, name, index); it is "as of" the dataset's base sequence. Every change
//! made through [`crate::FakeErp::mutate`] takes the next sequence number and is
//! kept twice: in the change log (served by `changes`) and in a per-entity
//! history (so that a snapshot can be served as of any retained sequence).

use std::collections::BTreeMap;
use std::collections::btree_map;
use std::iter::Peekable;
use std::ops::Bound;

use base64::Engine;
use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use spacepos_erp_wire::events::{DatasetChangedIntegrationEvent, DatasetChangedItem};
use spacepos_erp_wire::rest::{ChangeItem, ChangesPage, SnapshotItem};

use crate::config::{DatasetKind, DatasetSpec};
use crate::error::FakeErpError;
use crate::generate;
use crate::util::{Rng, deterministic_uuid, fnv1a};

/// Largest generated dataset (ids stay short, sequences cannot overflow).
pub const MAX_DATASET_SIZE: u64 = 1_000_000_000_000;

/// Most random changes one [`crate::FakeErp::mutate_random`] call makes.
pub const MAX_RANDOM_CHANGES: usize = 1_000_000;

/// One change of a dataset, as a test describes it to [`crate::FakeErp::mutate`].
/// A change may hold several; the ERP gives them one sequence number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", untagged)]
pub enum EntityChange {
    /// Create the entity, or update it (also resurrects a deleted one): version + 1.
    Upsert { id: String, data: Value },
    /// Delete the entity (a tombstone with version + 1 and `data: null`).
    Delete { id: String, delete: DeleteMarker },
}

/// Marker of [`EntityChange::Delete`]: serializes as `"delete": true`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeleteMarker;

impl Serialize for DeleteMarker {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bool(true)
    }
}

impl<'de> Deserialize<'de> for DeleteMarker {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if bool::deserialize(d)? {
            Ok(DeleteMarker)
        } else {
            Err(serde::de::Error::custom("`delete` must be true"))
        }
    }
}

impl EntityChange {
    pub fn upsert(id: impl Into<String>, data: Value) -> Self {
        EntityChange::Upsert {
            id: id.into(),
            data,
        }
    }

    pub fn delete(id: impl Into<String>) -> Self {
        EntityChange::Delete {
            id: id.into(),
            delete: DeleteMarker,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            EntityChange::Upsert { id, .. } | EntityChange::Delete { id, .. } => id,
        }
    }
}

/// The state of one entity as the ERP holds it (tombstones included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EntitySnapshot {
    pub version: u64,
    pub deleted: bool,
    pub data: Value,
}

/// One applied change: its sequence, when, and the entities it touched.
#[derive(Debug, Clone)]
struct ChangeRecord {
    sequence: u64,
    at: DateTime<Utc>,
    items: Vec<(String, EntitySnapshot)>,
}

/// The opaque snapshot cursor: base64url of `{"as": asOfSequence, "after": lastId}`.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    #[serde(rename = "as")]
    as_of: u64,
    after: String,
}

pub(crate) fn encode_cursor(as_of: u64, after: &str) -> String {
    // Written by hand to keep the property order of the contract's example.
    let json = format!(
        r#"{{"as":{as_of},"after":{}}}"#,
        Value::String(after.to_owned())
    );
    URL_SAFE_NO_PAD.encode(json)
}

fn decode_cursor(text: &str) -> Option<Cursor> {
    let trimmed = text.trim();
    let bytes = URL_SAFE_NO_PAD
        .decode(trimmed)
        .or_else(|_| URL_SAFE.decode(trimmed))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Why a page cannot be served; mapped to HTTP answers by the API module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PageError {
    /// 422 `invalid_cursor`.
    InvalidCursor(String),
    /// 410 `sequence_expired`.
    Expired(String),
}

/// A snapshot page before it is wrapped into the wire type.
#[derive(Debug)]
pub(crate) struct RawSnapshotPage {
    pub(crate) as_of_sequence: u64,
    pub(crate) items: Vec<SnapshotItem>,
    pub(crate) next_cursor: Option<String>,
}

#[derive(Debug)]
pub(crate) struct Dataset {
    name: String,
    kind: DatasetKind,
    size: u64,
    width: usize,
    salt: u64,
    store_number: u32,
    base_sequence: u64,
    changes: Vec<ChangeRecord>,
    /// Per-entity history of changes: (sequence, state after it), in sequence order.
    history: BTreeMap<String, Vec<(u64, EntitySnapshot)>>,
    /// Changes with a sequence up to this one are no longer served (`410`).
    expired_through: u64,
    /// Number used for the next entity a random change creates.
    next_new_index: u64,
}

fn digits(n: u64) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

impl Dataset {
    pub(crate) fn new(seed: u64, spec: &DatasetSpec, store_number: u32) -> Self {
        // 7 digits as in the contract's examples; one more than the size needs, so
        // entities created later still sort after the generated ones.
        let width = 7.max(digits(spec.size) + 1);
        let salt =
            seed ^ fnv1a(&spec.name).rotate_left(17) ^ (spec.kind as u64).wrapping_mul(0x9E37);
        // The generated state is as if each entity had taken one sequence number,
        // plus a seed-dependent offset so that sequences of datasets differ.
        let base_sequence = spec.size + 1000 + Rng::new(&[salt, 0xBA5E]).below(1000);
        Self {
            name: spec.name.clone(),
            kind: spec.kind,
            size: spec.size,
            width,
            salt,
            store_number,
            base_sequence,
            changes: Vec::new(),
            history: BTreeMap::new(),
            expired_through: base_sequence,
            next_new_index: spec.size + 1,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn last_sequence(&self) -> u64 {
        self.base_sequence + self.changes.len() as u64
    }

    fn id_of(&self, index: u64) -> String {
        format!("{}-{:0w$}", self.kind.id_prefix(), index, w = self.width)
    }

    /// The index of a generated entity id, if `id` is one.
    fn base_index(&self, id: &str) -> Option<u64> {
        let digits = id.strip_prefix(self.kind.id_prefix())?.strip_prefix('-')?;
        if digits.len() != self.width || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let index: u64 = digits.parse().ok()?;
        (1..=self.size).contains(&index).then_some(index)
    }

    fn generated(&self, index: u64) -> EntitySnapshot {
        let mut rng = Rng::new(&[self.salt, index]);
        let version = generate::base_version(&mut rng);
        let data = generate::entity_data(self.kind, index, self.store_number, &mut rng);
        EntitySnapshot {
            version,
            deleted: false,
            data,
        }
    }

    /// The state of `id` after change `as_of` (None = it did not exist).
    fn state_as_of(&self, id: &str, as_of: u64) -> Option<EntitySnapshot> {
        if let Some((_, s)) = self
            .history
            .get(id)
            .and_then(|h| h.iter().rev().find(|(seq, _)| *seq <= as_of))
        {
            return Some(s.clone());
        }
        self.base_index(id).map(|i| self.generated(i))
    }

    fn current(&self, id: &str) -> Option<EntitySnapshot> {
        self.state_as_of(id, u64::MAX)
    }

    /// Smallest generated index whose id sorts after `after`.
    fn first_index_after(&self, after: &str) -> u64 {
        let (mut lo, mut hi) = (1, self.size + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.id_of(mid).as_str() > after {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        lo
    }

    fn iter_as_of<'a>(&'a self, as_of: u64, after: Option<&str>) -> SnapshotIter<'a> {
        let next_index = after.map_or(1, |a| self.first_index_after(a));
        let lower = match after {
            Some(a) => Bound::Excluded(a.to_owned()),
            None => Bound::Unbounded,
        };
        let touched = self
            .history
            .range::<String, _>((lower, Bound::Unbounded))
            .peekable();
        SnapshotIter {
            ds: self,
            as_of,
            next_index,
            touched,
        }
    }

    /// One page of the snapshot: from the cursor (or the start, as of now).
    pub(crate) fn snapshot_page(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<RawSnapshotPage, PageError> {
        let (as_of, after) = match cursor.filter(|c| !c.trim().is_empty()) {
            None => (self.last_sequence(), None),
            Some(text) => {
                let c = decode_cursor(text).ok_or_else(|| {
                    PageError::InvalidCursor("the cursor is not one this ERP issued".into())
                })?;
                if c.as_of < self.base_sequence || c.as_of > self.last_sequence() {
                    return Err(PageError::InvalidCursor(format!(
                        "the cursor is for sequence {} which dataset {} does not know",
                        c.as_of, self.name
                    )));
                }
                (c.as_of, Some(c.after))
            }
        };
        let mut iter = self.iter_as_of(as_of, after.as_deref()).peekable();
        let mut items = Vec::with_capacity(limit.min(5000));
        for (id, s) in iter.by_ref().take(limit) {
            items.push(SnapshotItem {
                id,
                version: s.version,
                deleted: s.deleted,
                data: s.data,
            });
        }
        let more = iter.peek().is_some();
        let next_cursor = match items.last() {
            Some(last) if more => Some(encode_cursor(as_of, &last.id)),
            _ => None,
        };
        Ok(RawSnapshotPage {
            as_of_sequence: as_of,
            items,
            next_cursor,
        })
    }

    /// Changes after `after`, whole changes only, about `limit` items.
    pub(crate) fn changes_page(&self, after: u64, limit: usize) -> Result<ChangesPage, PageError> {
        let last = self.last_sequence();
        if after < self.expired_through {
            return Err(PageError::Expired(format!(
                "dataset {} no longer holds changes after sequence {after} (it holds changes after {}): \
                 reseed from a snapshot",
                self.name, self.expired_through
            )));
        }
        if after > last {
            return Err(PageError::Expired(format!(
                "sequence {after} is beyond the last sequence {last} of dataset {}: reseed from a snapshot",
                self.name
            )));
        }
        let mut k = (after - self.base_sequence) as usize;
        let mut items = Vec::new();
        let mut last_included = after;
        while let Some(change) = self.changes.get(k) {
            if !items.is_empty() && items.len() + change.items.len() > limit {
                break;
            }
            for (id, s) in &change.items {
                items.push(ChangeItem {
                    sequence: change.sequence,
                    id: id.clone(),
                    version: s.version,
                    deleted: s.deleted,
                    data: s.data.clone(),
                });
            }
            last_included = change.sequence;
            k += 1;
        }
        Ok(ChangesPage {
            dataset: self.name.clone(),
            items,
            last_sequence: last_included,
            has_more: k < self.changes.len(),
        })
    }

    /// Applies one change; returns its sequence.
    pub(crate) fn apply(
        &mut self,
        changes: Vec<EntityChange>,
        at: DateTime<Utc>,
    ) -> Result<u64, FakeErpError> {
        let invalid = |reason: String| FakeErpError::InvalidChange {
            dataset: self.name.clone(),
            reason,
        };
        if changes.is_empty() {
            return Err(invalid("a change must touch at least one entity".into()));
        }
        let mut seen = std::collections::HashSet::new();
        for c in &changes {
            if c.id().is_empty() {
                return Err(invalid("entity ids must not be empty".into()));
            }
            if !seen.insert(c.id()) {
                return Err(invalid(format!(
                    "entity {} appears twice in one change",
                    c.id()
                )));
            }
        }
        let sequence = self.last_sequence() + 1;
        let mut items = Vec::with_capacity(changes.len());
        for c in changes {
            let previous = self.current(c.id()).map_or(0, |s| s.version);
            let (id, state) = match c {
                EntityChange::Upsert { id, data } => (
                    id,
                    EntitySnapshot {
                        version: previous + 1,
                        deleted: false,
                        data,
                    },
                ),
                EntityChange::Delete { id, .. } => (
                    id,
                    EntitySnapshot {
                        version: previous + 1,
                        deleted: true,
                        data: Value::Null,
                    },
                ),
            };
            if let Some(index) = self.base_index_any_width(&id) {
                self.next_new_index = self.next_new_index.max(index + 1);
            }
            self.history
                .entry(id.clone())
                .or_default()
                .push((sequence, state.clone()));
            items.push((id, state));
        }
        self.changes.push(ChangeRecord {
            sequence,
            at,
            items,
        });
        Ok(sequence)
    }

    /// The number of an id of this dataset's form, also beyond `size`.
    fn base_index_any_width(&self, id: &str) -> Option<u64> {
        let digits = id.strip_prefix(self.kind.id_prefix())?.strip_prefix('-')?;
        if digits.len() != self.width {
            return None;
        }
        digits.parse().ok()
    }

    /// A random but deterministic change (1 to 3 entities: updates, creates, deletes).
    pub(crate) fn random_change(&self) -> Vec<EntityChange> {
        let sequence = self.last_sequence() + 1;
        let mut rng = Rng::new(&[self.salt, 0x00C4_A96E, sequence]);
        let count = rng.range(1, 3);
        let mut out: Vec<EntityChange> = Vec::new();
        let mut next_new = self.next_new_index;
        let population = self.next_new_index - 1;
        for _ in 0..count {
            let roll = rng.below(100);
            let existing = (0..4).find_map(|_| {
                if population == 0 {
                    return None;
                }
                let id = self.id_of(rng.range(1, population));
                let alive = self.current(&id).is_some_and(|s| !s.deleted);
                (alive && !out.iter().any(|c| c.id() == id)).then_some(id)
            });
            match (roll, existing) {
                (0..=69, Some(id)) => {
                    let data = self.current(&id).map(|s| s.data).unwrap_or(Value::Null);
                    out.push(EntityChange::upsert(
                        id,
                        generate::tweak(self.kind, &data, &mut rng),
                    ));
                }
                (70..=84, Some(id)) => out.push(EntityChange::delete(id)),
                _ => {
                    let data =
                        generate::entity_data(self.kind, next_new, self.store_number, &mut rng);
                    out.push(EntityChange::upsert(self.id_of(next_new), data));
                    next_new += 1;
                }
            }
        }
        out
    }

    pub(crate) fn expire_through(&mut self, sequence: u64) {
        self.expired_through = self.expired_through.max(sequence.min(self.last_sequence()));
    }

    pub(crate) fn final_state(&self) -> BTreeMap<String, EntitySnapshot> {
        self.iter_as_of(u64::MAX, None).collect()
    }

    pub(crate) fn entity(&self, id: &str) -> Option<EntitySnapshot> {
        self.current(id)
    }

    pub(crate) fn changed_event(
        &self,
        sequence: u64,
    ) -> Result<DatasetChangedIntegrationEvent, FakeErpError> {
        let index = sequence
            .checked_sub(self.base_sequence + 1)
            .map(|k| k as usize);
        let change = index.and_then(|k| self.changes.get(k)).ok_or_else(|| {
            FakeErpError::UnknownSequence {
                dataset: self.name.clone(),
                sequence,
                first: self.base_sequence + 1,
                last: self.last_sequence(),
            }
        })?;
        Ok(DatasetChangedIntegrationEvent {
            id: deterministic_uuid(&[self.salt, 0xE7E7, sequence]),
            creation_date: change.at,
            dataset: self.name.clone(),
            sequence,
            store_number: None,
            items: change
                .items
                .iter()
                .map(|(id, s)| DatasetChangedItem {
                    id: id.clone(),
                    version: s.version,
                    deleted: s.deleted,
                    data: s.data.clone(),
                })
                .collect(),
        })
    }
}

/// Merges generated ids and touched ids in lexical order, resolving each as of a sequence.
struct SnapshotIter<'a> {
    ds: &'a Dataset,
    as_of: u64,
    next_index: u64,
    touched: Peekable<btree_map::Range<'a, String, Vec<(u64, EntitySnapshot)>>>,
}

impl SnapshotIter<'_> {
    fn resolve(&self, hist: &[(u64, EntitySnapshot)]) -> Option<EntitySnapshot> {
        hist.iter()
            .rev()
            .find(|(seq, _)| *seq <= self.as_of)
            .map(|(_, s)| s.clone())
    }
}

impl Iterator for SnapshotIter<'_> {
    type Item = (String, EntitySnapshot);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let generated =
                (self.next_index <= self.ds.size).then(|| self.ds.id_of(self.next_index));
            let touched_key = self.touched.peek().map(|(k, _)| k.as_str());
            let take_generated = match (&generated, touched_key) {
                (None, None) => return None,
                (Some(id), Some(t)) => id.as_str() < t,
                (Some(_), None) => true,
                (None, Some(_)) => false,
            };
            if take_generated {
                let s = self.ds.generated(self.next_index);
                self.next_index += 1;
                return generated.map(|id| (id, s));
            }
            let (key, hist) = self.touched.next()?;
            let resolved = self.resolve(hist);
            if generated.as_deref() == Some(key.as_str()) {
                let index = self.next_index;
                self.next_index += 1;
                return Some((
                    key.clone(),
                    resolved.unwrap_or_else(|| self.ds.generated(index)),
                ));
            }
            if let Some(s) = resolved {
                return Some((key.clone(), s));
            }
            // Created after `as_of`: not part of this snapshot.
        }
    }
}

/// All datasets of the fake, in configuration order.
#[derive(Debug)]
pub(crate) struct Datasets {
    list: Vec<Dataset>,
}

impl Datasets {
    pub(crate) fn new(
        seed: u64,
        specs: &[DatasetSpec],
        store_number: u32,
    ) -> Result<Self, FakeErpError> {
        let mut list: Vec<Dataset> = Vec::with_capacity(specs.len());
        for spec in specs {
            if spec.name.is_empty() || spec.name.contains('/') {
                return Err(FakeErpError::InvalidConfig(format!(
                    "invalid dataset name {:?}",
                    spec.name
                )));
            }
            if spec.size > MAX_DATASET_SIZE {
                return Err(FakeErpError::InvalidConfig(format!(
                    "dataset {:?} has {} entities; at most {MAX_DATASET_SIZE} are supported",
                    spec.name, spec.size
                )));
            }
            if list.iter().any(|d| d.name == spec.name) {
                return Err(FakeErpError::InvalidConfig(format!(
                    "dataset {:?} is configured twice",
                    spec.name
                )));
            }
            list.push(Dataset::new(seed, spec, store_number));
        }
        Ok(Self { list })
    }

    pub(crate) fn all(&self) -> &[Dataset] {
        &self.list
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Dataset> {
        self.list.iter().find(|d| d.name == name)
    }

    pub(crate) fn get_mut(&mut self, name: &str) -> Option<&mut Dataset> {
        self.list.iter_mut().find(|d| d.name == name)
    }

    pub(crate) fn require(&self, name: &str) -> Result<&Dataset, FakeErpError> {
        self.get(name)
            .ok_or_else(|| FakeErpError::UnknownDataset(name.to_owned()))
    }

    pub(crate) fn require_mut(&mut self, name: &str) -> Result<&mut Dataset, FakeErpError> {
        self.get_mut(name)
            .ok_or_else(|| FakeErpError::UnknownDataset(name.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ds(size: u64) -> Dataset {
        Dataset::new(1, &DatasetSpec::of(DatasetKind::Products, size), 12)
    }

    #[test]
    fn ids_sort_numerically_and_parse_back() {
        let d = ds(50);
        assert_eq!(d.id_of(1), "P-0000001");
        assert!(d.id_of(9) < d.id_of(10));
        assert_eq!(d.base_index("P-0000050"), Some(50));
        assert_eq!(d.base_index("P-0000051"), None);
        assert_eq!(d.base_index("P-50"), None);
        assert_eq!(d.first_index_after("P-0000010"), 11);
        assert_eq!(d.first_index_after(""), 1);
        assert_eq!(d.first_index_after("Z"), 51);
        assert_eq!(ds(1_000_000).id_of(1), "P-00000001");
    }

    #[test]
    fn generation_is_deterministic() {
        assert_eq!(ds(10).generated(3), ds(10).generated(3));
        assert_ne!(ds(10).generated(3).data, ds(10).generated(4).data);
    }

    #[test]
    fn snapshot_merges_changes_in_id_order() {
        let mut d = ds(3);
        let base = d.last_sequence();
        d.apply(
            vec![EntityChange::upsert("P-0000002", json!({"n": 2}))],
            Utc::now(),
        )
        .unwrap();
        d.apply(
            vec![
                EntityChange::upsert("A-1", json!({})),
                EntityChange::delete("P-0000003"),
            ],
            Utc::now(),
        )
        .unwrap();
        let all = d.final_state();
        let ids: Vec<&String> = all.keys().collect();
        assert_eq!(ids, ["A-1", "P-0000001", "P-0000002", "P-0000003"]);
        assert!(all["P-0000003"].deleted);
        assert_eq!(all["P-0000002"].data, json!({"n": 2}));
        // As of the base sequence, nothing changed yet.
        let old: Vec<_> = d.iter_as_of(base, None).collect();
        assert_eq!(old.len(), 3);
        assert_eq!(old[1].1, d.generated(2));
    }

    #[test]
    fn changes_pages_keep_a_change_whole() {
        let mut d = ds(10);
        let base = d.last_sequence();
        let three: Vec<_> = (1..=3)
            .map(|i| EntityChange::upsert(d.id_of(i), json!({})))
            .collect();
        d.apply(three, Utc::now()).unwrap();
        d.apply(vec![EntityChange::delete(d.id_of(4))], Utc::now())
            .unwrap();
        let p = d.changes_page(base, 2).unwrap();
        assert_eq!(p.items.len(), 3, "a change is never split");
        assert!(p.has_more);
        assert_eq!(p.last_sequence, base + 1);
        let p = d.changes_page(base + 1, 2).unwrap();
        assert_eq!(p.items.len(), 1);
        assert!(!p.has_more);
        let p = d.changes_page(base + 2, 2).unwrap();
        assert!(p.items.is_empty());
        assert_eq!(p.last_sequence, base + 2);
        assert!(matches!(
            d.changes_page(base - 1, 2),
            Err(PageError::Expired(_))
        ));
        assert!(matches!(
            d.changes_page(base + 3, 2),
            Err(PageError::Expired(_))
        ));
        d.expire_through(base + 1);
        assert!(matches!(
            d.changes_page(base, 2),
            Err(PageError::Expired(_))
        ));
        assert!(d.changes_page(base + 1, 2).is_ok());
    }

    #[test]
    fn invalid_changes_are_refused() {
        let mut d = ds(1);
        assert!(d.apply(vec![], Utc::now()).is_err());
        assert!(
            d.apply(
                vec![EntityChange::delete("x"), EntityChange::delete("x")],
                Utc::now()
            )
            .is_err()
        );
    }

    #[test]
    fn entity_change_json_forms() {
        let up: EntityChange =
            serde_json::from_value(json!({"id": "P-1", "data": {"a": 1}})).unwrap();
        assert_eq!(up, EntityChange::upsert("P-1", json!({"a": 1})));
        let del: EntityChange =
            serde_json::from_value(json!({"id": "P-1", "delete": true})).unwrap();
        assert_eq!(del, EntityChange::delete("P-1"));
        assert!(
            serde_json::from_value::<EntityChange>(json!({"id": "P-1", "delete": false})).is_err()
        );
    }

    #[test]
    fn cursor_matches_contract_example_shape() {
        assert_eq!(
            encode_cursor(98765, "P-1002"),
            "eyJhcyI6OTg3NjUsImFmdGVyIjoiUC0xMDAyIn0"
        );
    }
}
