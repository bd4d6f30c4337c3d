//! `spacepos updates` and `spacepos safe-point`.

use spacepos_config::ConfigStateStore;
use spacepos_core::ComponentId;
use spacepos_updates::SnoozeOutcome;

use crate::cli::{SafePointCommand, UpdatesCommand};
use spacepos_node::Node;
use spacepos_node::error::{Kind, NodeError};
use spacepos_node::updates::{
    OutcomeView, SAFE_POINT_KEY, describe, failed, for_node as updates, outcome_view, snoozes,
};

pub(crate) async fn run(node: &Node, command: UpdatesCommand) -> Result<(), NodeError> {
    match command {
        UpdatesCommand::Check { json } => check(node, json).await,
        UpdatesCommand::List { json } => list(node, json).await,
        UpdatesCommand::Snooze { component, json } => snooze(node, component, json).await,
        UpdatesCommand::Apply { component, json } => apply(node, component, json).await,
    }
}

async fn check(node: &Node, json: bool) -> Result<(), NodeError> {
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

async fn list(node: &Node, json: bool) -> Result<(), NodeError> {
    let views = spacepos_node::updates::views(node).await?;
    if json {
        return super::print_json(&views);
    }
    for v in &views {
        println!("{:<10} {}", v.component, describe(v));
    }
    Ok(())
}

async fn snooze(node: &Node, component: ComponentId, json: bool) -> Result<(), NodeError> {
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
            Err(NodeError::new(
                Kind::Refused,
                format!("snooze refused: {why}"),
            ))
        }
    }
}

async fn apply(node: &Node, component: ComponentId, json: bool) -> Result<(), NodeError> {
    match component {
        ComponentId::SpacePos => Err(NodeError::new(
            Kind::Refused,
            "SpacePOS updates are installed by the SpacePOS desktop app (Tauri's updater); this node stages them: \
             see `spacepos updates list`",
        )),
        ComponentId::SpaceFuel => {
            let _ = json;
            let _ = updates(node).await?;
            Err(NodeError::new(
                Kind::Refused,
                "SpaceFuel updates are applied by the SpaceFuel service at a quiet moment on the forecourt",
            ))
        }
    }
}

pub(crate) async fn safe_point(node: &Node, command: SafePointCommand) -> Result<(), NodeError> {
    let store = node.store().await?;
    let value = match &command {
        SafePointCommand::Busy { reason } => serde_json::Value::String(reason.clone()),
        SafePointCommand::Clear => serde_json::Value::Null,
    };
    store
        .put(SAFE_POINT_KEY, &value)
        .await
        .map_err(|e| NodeError::new(Kind::Storage, e.to_string()))?;
    match command {
        SafePointCommand::Busy { reason } => {
            println!("No update starts until `spacepos safe-point clear` ({reason}).")
        }
        SafePointCommand::Clear => println!("Updates may start now."),
    }
    Ok(())
}
