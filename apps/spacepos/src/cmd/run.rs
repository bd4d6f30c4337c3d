//! `spacepos run`: the headless runtime.

use std::time::Duration;

use spacepos_node::runtime::{SpacePosInstalls, build};
use tokio_util::sync::CancellationToken;
use tracing::info;

use crate::cli::RunArgs;
use spacepos_node::Node;
use spacepos_node::error::{Kind, NodeError};

pub(crate) async fn run(node: &Node, args: RunArgs) -> Result<(), NodeError> {
    let record = node.require_record().await?;
    let config = node.config(Some(&record))?;
    let composed = build(node, !args.no_bus, SpacePosInstalls::Elsewhere, None).await?;
    let (runtime, bus) = (composed.runtime, composed.bus);
    println!(
        "SpacePOS running as {} (store {}, terminal {})",
        record.client_id, record.store_number, record.terminal_number
    );
    println!(
        "  ERP:       {}",
        config
            .node
            .api_endpoint
            .as_ref()
            .map(|u| u.as_str())
            .unwrap_or("?")
    );
    match (&config.node.amqp_url, &bus) {
        (Some(url), Some(_)) => println!("  event bus: {url}"),
        (Some(_), None) => println!(
            "  event bus: off (--no-bus); datasets caught up every {} s",
            config.sync.ingest_frequency.as_secs()
        ),
        (None, _) => println!(
            "  event bus: none configured; datasets caught up every {} s",
            config.sync.ingest_frequency.as_secs()
        ),
    }
    println!(
        "  queue:     pushed every {} s; Ctrl-C stops after the current step",
        config.sync.send_frequency.as_secs()
    );

    let shutdown = CancellationToken::new();
    let trigger = shutdown.clone();
    tokio::spawn(async move {
        super::erp_sim::wait_for_shutdown().await;
        info!("stopping: finishing the current step");
        trigger.cancel();
    });
    let result = runtime.run(shutdown).await;
    if let Some(bus) = bus {
        tokio::time::timeout(Duration::from_secs(5), bus.close())
            .await
            .ok();
    }
    result.map_err(|e| NodeError::new(Kind::Internal, e.to_string()))?;
    println!("SpacePOS stopped.");
    Ok(())
}
