//! `spacefuel-service`: the SpaceFuel forecourt service.
//!
//! Composes the SpaceFuel domain (`spacepos-spacefuel`) with its adapters.
//! Two roles, one binary:
//!
//! - the **host** (`run`; on Windows the service the SCM starts): recovers an
//!   interrupted blue/green switch, supervises the active slot's worker
//!   (`spacepos-windows-scm`'s process supervisor), keeps it running, applies
//!   SpaceFuel updates at a quiet moment (switch, health check, rollback) and,
//!   on SpaceFuel-only sites, runs the sync send loop, presence and update
//!   checks through `spacepos-runtime`;
//! - the **worker** (`worker --slot S`, started by the host from the slot's
//!   copy of this binary): talks to the fuel controller, writes every finished
//!   delivery to the shared store before it can be cleared, authorises and
//!   settles where configured, and reports its health and the forecourt every
//!   second to `extensions/spacefuel/health.json`.

mod host;
mod node;
mod observer;
mod status;
mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use spacepos_config::Slot;

/// SpaceFuel: the forecourt service of SpacePOS.
///
/// Runs the fuel controller link from the active blue/green slot, records every
/// fuel sale in the shared SpacePOS store, and switches to a new version only
/// at a quiet moment, rolling back when it does not come up healthy.
#[derive(Debug, Parser)]
#[command(name = "spacefuel-service", version, max_term_width = 100)]
struct Cli {
    /// The data directory shared with SpacePOS (default: the platform's
    /// SpacePOS directory; or SPACEPOS_DATA_DIR).
    #[arg(long, global = true, env = "SPACEPOS_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// A TOML config file (default: spacepos.toml in the data directory, when it exists).
    #[arg(long, global = true, env = "SPACEPOS_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run SpaceFuel in the foreground until Ctrl-C or SIGTERM: recover an
    /// interrupted switch, start the active slot, keep it running, apply
    /// updates at a quiet moment.
    Run {
        /// Log to the console (the default outside a Windows service).
        #[arg(long)]
        console: bool,
    },
    /// Show the active slot, both slots' versions, the service and the pumps.
    Status {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Choose the active slot by hand: only when state.json was lost and both
    /// slots hold a complete installation (the service says so at start).
    Slot {
        #[command(subcommand)]
        action: SlotAction,
    },
    /// Register SpaceFuel as a Windows service (started automatically,
    /// restarted after a failure). Windows only.
    Install,
    /// Remove the Windows service. Windows only.
    Uninstall,
    /// Internal: run SpaceFuel from a slot. The host starts this from the
    /// slot's copy of the program; do not start it by hand.
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        slot: Slot,
    },
}

#[derive(Debug, Subcommand)]
enum SlotAction {
    /// Make SLOT the active one (blue or green).
    Use { slot: Slot },
}

/// How a command failed: the message for the operator and the exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    /// 3: configuration; 5: refused; 7: storage or the service manager; 1: other.
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }
}

pub(crate) const EXIT_INTERNAL: u8 = 1;
pub(crate) const EXIT_USAGE: u8 = 2;
pub(crate) const EXIT_CONFIG: u8 = 3;
pub(crate) const EXIT_REFUSED: u8 = 5;
pub(crate) const EXIT_STORAGE: u8 = 7;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let node = node::Node::new(cli.data_dir, cli.config);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_INTERNAL);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run { console: _ } => {
                let _log = node::init_logging(&node, "spacefuel");
                host::run(&node).await
            }
            Command::Worker { slot } => {
                let _log = node::init_logging(&node, &format!("spacefuel-{slot}"));
                worker::run(&node, slot).await
            }
            Command::Status { json } => status::run(&node, json).await,
            Command::Slot {
                action: SlotAction::Use { slot },
            } => status::use_slot(&node, slot).await,
            Command::Install | Command::Uninstall => Err(Failure::new(
                EXIT_USAGE,
                "installing SpaceFuel as a service needs Windows; elsewhere run \
                 `spacefuel-service run` under your service manager (e.g. a systemd unit)",
            )),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
