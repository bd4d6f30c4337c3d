//! `spacepos updates` and `spacepos safe-point`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::Serialize;
use spacepos_config::ConfigStateStore;
use spacepos_core::ComponentId;
use spacepos_updates::{ComponentView, ReleaseOutcome, SnoozeOutcome, Updates};

use crate::cli::{SafePointCommand, UpdatesCommand};
use crate::exit::{CliError, Kind};
use crate::node::Node;
use crate::updates::{NO_TRUSTED_KEYS, SAFE_POINT_KEY, service};

async fn updates(node: &Node) -> Result<Updates, CliError> {
    let record = node.require_record().await?;
    let config = node.config(Some(&record))?;
    let client = Arc::new(node.device_client(&config, &record, None)?);
    let store = Arc::new(node.store().await?);
    service(
        node,
        &config,
        &record,
        client,
        store,
        config.updates.trusted_keys.clone(),
    )
    .await?
    .ok_or_else(|| CliError::new(Kind::Config, NO_TRUSTED_KEYS))
}

fn failed(e: spacepos_updates::UpdatesError) -> CliError {
    CliError::new(Kind::Unreachable, e.to_string())
}

pub(crate) async fn run(node: &Node, command: UpdatesCommand) -> Result<(), CliError> {
    match command {
        UpdatesCommand::Check { json } => check(node, json).await,
        UpdatesCommand::List { json } => list(node, json).await,
        UpdatesCommand::Snooze { component, json } => snooze(node, component, json).await,
        UpdatesCommand::Apply { component, json } => apply(node, component, json).await,
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct OutcomeView {
    component: String,
    version: Option<String>,
    /// `staged`, `already-staged`, `up-to-date`, `downgrade-ignored`, `not-installed`,
    /// `unknown-component`, `previously-rejected`, `rejected`, `busy`, `download-incomplete`.
    result: &'static str,
    detail: Option<String>,
}

fn outcome_view(o: &ReleaseOutcome) -> OutcomeView {
    let v = |component: &ComponentId, version: Option<&String>, result, detail: Option<String>| {
        OutcomeView {
            component: component.to_string(),
            version: version.cloned(),
            result,
            detail,
        }
    };
    match o {
        ReleaseOutcome::Staged { component, version } => {
            v(component, Some(version), "staged", None)
        }
        ReleaseOutcome::AlreadyStaged { component, version } => {
            v(component, Some(version), "already-staged", None)
        }
        ReleaseOutcome::UpToDate { component, version } => {
            v(component, Some(version), "up-to-date", None)
        }
        ReleaseOutcome::Downgrade {
            component,
            version,
            installed,
        } => v(
            component,
            Some(version),
            "downgrade-ignored",
            Some(format!("{installed} is installed")),
        ),
        ReleaseOutcome::NotInstalled { component } => v(component, None, "not-installed", None),
        ReleaseOutcome::UnknownComponent { name } => OutcomeView {
            component: name.clone(),
            version: None,
            result: "unknown-component",
            detail: None,
        },
        ReleaseOutcome::PreviouslyRejected { component, version } => {
            v(component, Some(version), "previously-rejected", None)
        }
        ReleaseOutcome::Rejected {
            component,
            version,
            reason,
        } => v(component, Some(version), "rejected", Some(reason.clone())),
        ReleaseOutcome::Busy { component } => v(
            component,
            None,
            "busy",
            Some("an installation is in progress".into()),
        ),
        ReleaseOutcome::DownloadIncomplete {
            component,
            version,
            downloaded,
            error,
        } => v(
            component,
            Some(version),
            "download-incomplete",
            Some(format!(
                "{downloaded} bytes kept, resumed at the next check: {error}"
            )),
        ),
    }
}

async fn check(node: &Node, json: bool) -> Result<(), CliError> {
    let updates = updates(node).await?;
    let report = updates.check().await.map_err(failed)?;
    let views: Vec<OutcomeView> = report.outcomes.iter().map(outcome_view).collect();
    if json {
        return super::print_json(&views);
    }
    if views.is_empty() {
        println!("The ERP offers no release for this terminal.");
    }
    for o in &views {
        println!(
            "{:<10} {:<10} {}{}",
            o.component,
            o.version.as_deref().unwrap_or("-"),
            o.result,
            o.detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct UpdateView {
    pub(crate) component: String,
    installed: Option<String>,
    offered: Option<String>,
    staged: Option<String>,
    staged_at: Option<DateTime<Utc>>,
    notes: Option<String>,
    snoozes_left: u32,
    snoozed_until: Option<DateTime<Utc>>,
    due_at: Option<DateTime<Utc>>,
    waiting_for: Option<String>,
    applying: Option<String>,
    last_rejected: Option<String>,
}

impl From<&ComponentView> for UpdateView {
    fn from(v: &ComponentView) -> Self {
        UpdateView {
            component: v.component.to_string(),
            installed: v.installed.clone(),
            offered: v.offered.clone(),
            staged: v.staged.as_ref().map(|s| s.version.clone()),
            staged_at: v.staged.as_ref().map(|s| s.staged_at),
            notes: v.staged.as_ref().and_then(|s| s.notes.clone()),
            snoozes_left: v.snoozes_left,
            snoozed_until: v.snoozed_until,
            due_at: v.due_at,
            waiting_for: v.waiting_for.clone(),
            applying: v.applying.clone(),
            last_rejected: v
                .last_rejected
                .as_ref()
                .map(|(version, reason)| format!("{version}: {reason}")),
        }
    }
}

/// The update views of this node, for `updates list` and `status`.
pub(crate) async fn views(node: &Node) -> Result<Vec<UpdateView>, CliError> {
    let updates = updates(node).await?;
    Ok(updates
        .list()
        .await
        .map_err(failed)?
        .iter()
        .map(UpdateView::from)
        .collect())
}

/// One line per component with something to say.
pub(crate) fn describe(v: &UpdateView) -> String {
    let Some(installed) = &v.installed else {
        return "not installed on this node".to_owned();
    };
    let mut text = format!("installed {installed}");
    match (&v.staged, &v.applying) {
        (_, Some(a)) => text.push_str(&format!("; installing {a}")),
        (Some(s), None) => {
            text.push_str(&format!("; {s} staged, {}", snoozes(v.snoozes_left)));
            if let Some(until) = v.snoozed_until {
                text.push_str(&format!(", snoozed until {}", until.format("%H:%M UTC")));
            }
            if let Some(w) = &v.waiting_for {
                text.push_str(&format!(", waiting for a safe moment ({w})"));
            }
        }
        (None, None) => {
            if let Some(o) = &v.offered {
                text.push_str(&format!("; {o} offered, not staged"));
            }
        }
    }
    if let Some(r) = &v.last_rejected {
        text.push_str(&format!("; refused {r}"));
    }
    text
}

fn snoozes(left: u32) -> String {
    match left {
        0 => "no snooze left".to_owned(),
        1 => "1 snooze left".to_owned(),
        n => format!("{n} snoozes left"),
    }
}

async fn list(node: &Node, json: bool) -> Result<(), CliError> {
    let views = views(node).await?;
    if json {
        return super::print_json(&views);
    }
    for v in &views {
        println!("{:<10} {}", v.component, describe(v));
    }
    Ok(())
}

async fn snooze(node: &Node, component: ComponentId, json: bool) -> Result<(), CliError> {
    let updates = updates(node).await?;
    match updates.snooze(component).await.map_err(failed)? {
        SnoozeOutcome::Granted {
            version,
            until,
            left,
        } => {
            if json {
                return super::print_json(
                    &serde_json::json!({"granted": true, "version": version, "until": until, "left": left}),
                );
            }
            println!(
                "{component} {version} snoozed until {} ({})",
                until.format("%H:%M:%S UTC"),
                snoozes(left)
            );
            Ok(())
        }
        SnoozeOutcome::Refused(why) => {
            if json {
                super::print_json(
                    &serde_json::json!({"granted": false, "reason": why.to_string()}),
                )?;
            }
            Err(CliError::new(
                Kind::Refused,
                format!("snooze refused: {why}"),
            ))
        }
    }
}

async fn apply(node: &Node, component: ComponentId, json: bool) -> Result<(), CliError> {
    match component {
        ComponentId::SpacePos => Err(CliError::new(
            Kind::Refused,
            "SpacePOS updates are installed by the SpacePOS desktop app (Tauri's updater); this node stages them: \
             see `spacepos updates list`",
        )),
        ComponentId::SpaceFuel => {
            let _ = json;
            let _ = updates(node).await?;
            Err(CliError::new(
                Kind::Refused,
                "SpaceFuel updates are applied by the SpaceFuel service at a quiet moment on the forecourt",
            ))
        }
    }
}

pub(crate) async fn safe_point(node: &Node, command: SafePointCommand) -> Result<(), CliError> {
    let store = node.store().await?;
    let value = match &command {
        SafePointCommand::Busy { reason } => serde_json::Value::String(reason.clone()),
        SafePointCommand::Clear => serde_json::Value::Null,
    };
    store
        .put(SAFE_POINT_KEY, &value)
        .await
        .map_err(|e| CliError::new(Kind::Storage, e.to_string()))?;
    match command {
        SafePointCommand::Busy { reason } => {
            println!("No update starts until `spacepos safe-point clear` ({reason}).")
        }
        SafePointCommand::Clear => println!("Updates may start now."),
    }
    Ok(())
}
