//! `spacepos ops`: the local integration point of other till software, and the
//! operator's view of the outbox.

use std::io::Read;
use std::path::Path;

use chrono::Utc;
use spacepos_sync::{Destination, NewOperation, OperationState, Outbox};
use uuid::Uuid;

use crate::cli::{OpsCommand, OpsListArgs, OpsSubmitArgs};
use spacepos_node::Node;
use spacepos_node::error::{Kind, NodeError};
use spacepos_node::ops::{OperationView, store_error};

pub(crate) async fn run(node: &Node, command: OpsCommand) -> Result<(), NodeError> {
    match command {
        OpsCommand::Submit(args) => submit(node, args).await,
        OpsCommand::List(args) => list(node, args).await,
        OpsCommand::Retry { id, json } => retry(node, id, json).await,
    }
}

/// Read the payload from a file or stdin (`-`); it must be a JSON object.
fn read_payload(source: &Path) -> Result<serde_json::Value, NodeError> {
    let (text, name) = if source == Path::new("-") {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).map_err(|e| {
            NodeError::new(
                Kind::Usage,
                format!("cannot read the payload from stdin: {e}"),
            )
        })?;
        (text, "stdin".to_owned())
    } else {
        let text = std::fs::read_to_string(source).map_err(|e| {
            NodeError::new(
                Kind::Usage,
                format!("cannot read the payload file {}: {e}", source.display()),
            )
        })?;
        (text, source.display().to_string())
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
        NodeError::new(
            Kind::Usage,
            format!("the payload in {name} is not JSON: {e}"),
        )
    })?;
    if !value.is_object() {
        return Err(NodeError::new(
            Kind::Usage,
            format!("the payload in {name} must be a JSON object ({{...}})"),
        ));
    }
    Ok(value)
}

fn valid_type(kind: &str) -> bool {
    !kind.is_empty()
        && kind.len() <= 100
        && kind
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

async fn submit(node: &Node, args: OpsSubmitArgs) -> Result<(), NodeError> {
    if !valid_type(&args.r#type) {
        return Err(NodeError::new(
            Kind::Usage,
            format!(
                "--type {:?}: use lower-case letters, digits, '.', '_' or '-', e.g. sale.completed",
                args.r#type
            ),
        ));
    }
    let payload = read_payload(&args.payload)?;
    let store = node.store().await?;
    let op = NewOperation {
        id: args.id.unwrap_or_else(Uuid::new_v4),
        destination: Destination::ErpOperations,
        kind: args.r#type,
        occurred_at: args.occurred_at.unwrap_or_else(Utc::now),
        store_staff_id: args.staff,
        payload,
    };
    let queued = store
        .enqueue(std::slice::from_ref(&op))
        .await
        .map_err(store_error)?;
    let queued = queued
        .into_iter()
        .next()
        .ok_or_else(|| NodeError::new(Kind::Internal, "the outbox returned nothing"))?;
    if args.json {
        super::print_json(&OperationView::from(&queued))
    } else {
        println!("{}", queued.id);
        Ok(())
    }
}

async fn list(node: &Node, args: OpsListArgs) -> Result<(), NodeError> {
    let store = node.store().await?;
    let state: Option<OperationState> = args.state;
    let ops = store.list(state, args.limit).await.map_err(store_error)?;
    if args.json {
        let views: Vec<OperationView> = ops.iter().map(OperationView::from).collect();
        return super::print_json(&views);
    }
    if ops.is_empty() {
        println!(
            "no operations{}",
            state
                .map(|s| format!(" in state {}", s.as_str()))
                .unwrap_or_default()
        );
        return Ok(());
    }
    println!(
        "{:<7} {:<36} {:<22} {:<8} {:<20} {:>8}  last error",
        "seq", "id", "type", "state", "created (UTC)", "attempts"
    );
    for op in &ops {
        println!(
            "{:<7} {:<36} {:<22} {:<8} {:<20} {:>8}  {}",
            op.seq,
            op.id,
            op.kind,
            op.state.as_str(),
            op.created_at.format("%Y-%m-%d %H:%M:%S"),
            op.attempts,
            op.last_error.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

async fn retry(node: &Node, id: Uuid, json: bool) -> Result<(), NodeError> {
    let store = node.store().await?;
    let op = store.retry(id).await.map_err(store_error)?;
    if json {
        super::print_json(&OperationView::from(&op))
    } else {
        println!("{} is pending again; it is sent with the next push", op.id);
        Ok(())
    }
}
