//! `spacepos seed`: seed or catch up the datasets, with progress.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use spacepos_sync::{DatasetSync, LocalStore, SeedProgress, Seeder};

use crate::cli::SeedArgs;
use spacepos_node::Node;
use spacepos_node::error::{Kind, NodeError};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct DatasetResult {
    dataset: String,
    /// `seeded`, `reseeded`, `caught-up`, `up-to-date` or `failed`.
    result: &'static str,
    sequence: Option<u64>,
    entities: Option<u64>,
    error: Option<String>,
}

pub(crate) async fn run(node: &Node, args: SeedArgs) -> Result<(), NodeError> {
    let record = node.require_record().await?;
    let config = node.config(Some(&record))?;
    let client = Arc::new(node.device_client(&config, &record, None)?);
    let store = Arc::new(node.store().await?);
    let seeder = Seeder::new(client, store.clone());

    let bars = Bars::new(!args.json && std::io::stderr().is_terminal());
    let progress = |p: SeedProgress| bars.update(p);
    let results = seeder
        .sync_all(args.dataset.as_deref(), &progress)
        .await
        .map_err(|e| sync_error(&e))?;
    bars.finish();
    if let Some(only) = &args.dataset
        && results.is_empty()
    {
        return Err(NodeError::new(
            Kind::Usage,
            format!("the ERP has no dataset {only:?}; `spacepos seed` lists what it has"),
        ));
    }

    let mut rows = Vec::new();
    let mut failed = None;
    for (dataset, result) in results {
        let entities = store.checkpoint(&dataset).await.ok().map(|c| c.entities);
        let row = match result {
            Ok(DatasetSync::Seeded { sequence, reseed }) => DatasetResult {
                dataset,
                result: if reseed { "reseeded" } else { "seeded" },
                sequence: Some(sequence),
                entities,
                error: None,
            },
            Ok(DatasetSync::CaughtUp { sequence, .. }) => DatasetResult {
                dataset,
                result: "caught-up",
                sequence: Some(sequence),
                entities,
                error: None,
            },
            Ok(DatasetSync::UpToDate { sequence }) => DatasetResult {
                dataset,
                result: "up-to-date",
                sequence: Some(sequence),
                entities,
                error: None,
            },
            Err(e) => {
                failed.get_or_insert_with(|| sync_error(&e));
                DatasetResult {
                    dataset,
                    result: "failed",
                    sequence: None,
                    entities,
                    error: Some(e.to_string()),
                }
            }
        };
        rows.push(row);
    }
    if args.json {
        super::print_json(&rows)?;
    } else {
        for r in &rows {
            println!(
                "{:<18} {:<11} sequence {:<10} {} entities{}",
                r.dataset,
                r.result,
                r.sequence
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
                r.entities
                    .map(|n| n.to_string())
                    .unwrap_or_else(|| "?".into()),
                r.error
                    .as_deref()
                    .map(|e| format!("  ({e})"))
                    .unwrap_or_default()
            );
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn sync_error(e: &spacepos_sync::SyncError) -> NodeError {
    match e {
        spacepos_sync::SyncError::Api(spacepos_sync::DatasetApiError::Remote(r)) => {
            r.clone().into()
        }
        spacepos_sync::SyncError::Store(s) => NodeError::new(Kind::Storage, s.to_string()),
        other => NodeError::new(Kind::Refused, other.to_string()),
    }
}

/// One progress bar per dataset on a terminal; nothing otherwise.
struct Bars {
    enabled: bool,
    bars: Mutex<BTreeMap<String, ProgressBar>>,
}

impl Bars {
    fn new(enabled: bool) -> Self {
        Bars {
            enabled,
            bars: Mutex::new(BTreeMap::new()),
        }
    }

    fn update(&self, p: SeedProgress) {
        if !self.enabled {
            return;
        }
        let Ok(mut bars) = self.bars.lock() else {
            return;
        };
        match p {
            SeedProgress::Started {
                dataset,
                resumed,
                items_done,
                ..
            } => {
                let bar = ProgressBar::new_spinner();
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {prefix:<18} {pos:>9} entities  {per_sec:>12}  {msg}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(dataset.clone());
                bar.set_position(items_done);
                bar.set_message(if resumed { "resumed" } else { "" });
                bar.enable_steady_tick(Duration::from_millis(120));
                bars.insert(dataset, bar);
            }
            SeedProgress::Page {
                dataset,
                items_done,
                ..
            } => {
                if let Some(bar) = bars.get(&dataset) {
                    bar.set_position(items_done);
                }
            }
            SeedProgress::Completed {
                dataset,
                entities,
                as_of_sequence,
            } => {
                if let Some(bar) = bars.get(&dataset) {
                    bar.finish_with_message(format!(
                        "done: {entities} entities at sequence {as_of_sequence}"
                    ));
                }
            }
        }
    }

    fn finish(&self) {
        if let Ok(bars) = self.bars.lock() {
            for bar in bars.values() {
                if !bar.is_finished() {
                    bar.abandon();
                }
            }
        }
    }
}
