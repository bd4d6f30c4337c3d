//! `spacepos erp-sim`: the fake ERP as a standalone server.

use spacepos_fake_erp::{FakeErp, FakeErpConfig};

use crate::cli::ErpSimArgs;
use spacepos_node::error::{Kind, NodeError};

pub(crate) async fn run(args: ErpSimArgs) -> Result<(), NodeError> {
    let mut config = FakeErpConfig::demo();
    config.seed = args.seed;
    config.amqp_url = args.amqp_url;
    if !args.listen.ip().is_loopback() {
        tracing::warn!(
            "the simulator speaks plain HTTP and is listening on {}; terminals only accept plain HTTP on loopback",
            args.listen
        );
    }
    let erp = FakeErp::start_on(args.listen, config.clone())
        .await
        .map_err(|e| {
            NodeError::new(
                Kind::Internal,
                format!("cannot start the ERP simulator on {}: {e}", args.listen),
            )
        })?;
    println!("ERP simulator listening on {}", erp.base_url());
    println!("Onboarding codes (each works once):");
    for c in &config.onboarding_codes {
        println!(
            "  {}  -> store {}, terminal {}",
            c.code, c.store_number, c.terminal_number
        );
    }
    println!("Staff (demo accounts; PIN on stdin for `spacepos login --staff CODE`):");
    for s in &config.staff {
        println!(
            "  {}  PIN {}  -> {}",
            s.staff_code,
            s.pin.expose(),
            s.store_staff_id
        );
    }
    println!("Datasets:");
    for d in &config.datasets {
        println!("  {:<16} {} entities", d.name, d.size);
    }
    let keys = erp.update_keys();
    println!(
        "Update signing key (trust it with updates.trusted_keys): {}",
        keys.primary.key_line
    );
    println!("Admin API (tests only): {}/__admin/", erp.base_url());
    println!(
        "Try: spacepos onboard --api {} --code {}",
        erp.base_url(),
        config.onboarding_codes[0].code
    );
    println!("Stop with Ctrl-C.");

    wait_for_shutdown().await;
    println!("Stopping the ERP simulator.");
    erp.shutdown().await;
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix.
pub(crate) async fn wait_for_shutdown() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
