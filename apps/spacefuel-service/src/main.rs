//! `spacefuel-service`: the SpaceFuel forecourt service.
//!
//! Composes the SpaceFuel domain (`spacepos-spacefuel`) with its adapters.
//! Two roles, one binary:
//!
//! - the **host** (`run --console` in the foreground on every platform; on
//!   Windows also the service the SCM starts, `service`, which `install`
//!   registers from this program's location, outside the slots): recovers an
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
mod requests;
mod status;
#[cfg(windows)]
mod windows;
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
    /// A till's request to the forecourt: authorise a pump (a customer waits
    /// at it), optionally with a preset.
    Pump {
        #[command(subcommand)]
        action: PumpAction,
    },
    /// Fuel sales waiting in the controller: list them, lock one while the
    /// till takes payment, clear it once paid (it is stored first).
    Sale {
        #[command(subcommand)]
        action: SaleAction,
    },
    /// Choose the active slot by hand: only when state.json was lost and both
    /// slots hold a complete installation (the service says so at start).
    Slot {
        #[command(subcommand)]
        action: SlotAction,
    },
    /// Register SpaceFuel as a Windows service (started automatically,
    /// restarted after a failure): this program, from where it is now, with
    /// the current --data-dir and --config. Needs an administrator. Windows only.
    Install,
    /// Stop and remove the Windows service. Needs an administrator. Windows only.
    Uninstall,
    /// Internal: the Windows service's entry point (the host, stopped by the
    /// service manager). The service manager starts this; do not start it
    /// by hand: use `run --console`.
    #[command(hide = true)]
    Service,
    /// Internal: run SpaceFuel from a slot. The host starts this from the
    /// slot's copy of the program; do not start it by hand.
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        slot: Slot,
    },
}

#[derive(Debug, Subcommand)]
enum PumpAction {
    /// AuthoriseFuelPoint: let pump PUMP deliver, up to a preset if given.
    Authorise {
        pump: u8,
        /// The till asking (its name appears in the service's log).
        #[arg(long)]
        till: String,
        /// Stop at this amount, in minor units of the currency (e.g. 5000 = 50.00).
        #[arg(long, conflicts_with = "volume_ml")]
        amount_minor: Option<u64>,
        /// Stop at this volume, in millilitres.
        #[arg(long)]
        volume_ml: Option<u64>,
    },
}

#[derive(Debug, Subcommand)]
enum SaleAction {
    /// The sales waiting for payment, as SpaceFuel last reported them.
    List {
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
    },
    /// LockFuelSaleTrx: the till named by --till takes payment for this sale.
    Lock {
        transaction_id: String,
        #[arg(long)]
        till: String,
    },
    /// ClearFuelSaleTrx: paid. SpaceFuel stores the sale in the outbox, then clears it.
    Clear {
        transaction_id: String,
        #[arg(long)]
        till: String,
    },
}

#[derive(Debug, Subcommand)]
enum SlotAction {
    /// Make SLOT the active one (blue or green).
    Use { slot: Slot },
    /// The first installation of SpaceFuel on this site: check ARTIFACT (a
    /// release zip) against its minisign signature by a trusted update key
    /// (updates.trusted_keys) and the version it was signed as, extract it
    /// into slot blue and make it active. Later versions come as updates.
    Install {
        artifact: PathBuf,
        /// The version the release was signed as, e.g. 2.1.0.
        #[arg(long)]
        version: String,
        /// The signature: a minisign .sig file (or the ERP's base64 of it).
        #[arg(long, value_name = "FILE")]
        signature: PathBuf,
    },
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
    let config_file = cli.config.clone();
    let node = node::Node::new(cli.data_dir, cli.config);
    let result = match cli.command {
        Command::Run { console: _ } => block_on(async {
            let _log = node::init_logging(&node, "spacefuel", true);
            host::run(&node).await
        }),
        Command::Worker { slot } => block_on(async {
            let _log = node::init_logging(&node, &format!("spacefuel-{slot}"), false);
            worker::run(&node, slot).await
        }),
        Command::Status { json } => block_on(status::run(&node, json)),
        Command::Slot {
            action: SlotAction::Use { slot },
        } => block_on(status::use_slot(&node, slot)),
        Command::Slot {
            action:
                SlotAction::Install {
                    artifact,
                    version,
                    signature,
                },
        } => block_on(status::install_first(
            &node, &artifact, &version, &signature,
        )),
        Command::Pump {
            action:
                PumpAction::Authorise {
                    pump,
                    till,
                    amount_minor,
                    volume_ml,
                },
        } => {
            let preset = match (amount_minor, volume_ml) {
                (Some(minor), _) => Some(spacepos_spacefuel::Preset::Amount { minor }),
                (None, Some(ml)) => Some(spacepos_spacefuel::Preset::Volume { ml }),
                (None, None) => None,
            };
            block_on(status::request(
                &node,
                &till,
                requests::Action::Authorise { pump, preset },
            ))
        }
        Command::Sale {
            action: SaleAction::List { json },
        } => block_on(status::sales(&node, json)),
        Command::Sale {
            action:
                SaleAction::Lock {
                    transaction_id,
                    till,
                },
        } => block_on(status::request(
            &node,
            &till,
            requests::Action::Lock { transaction_id },
        )),
        Command::Sale {
            action:
                SaleAction::Clear {
                    transaction_id,
                    till,
                },
        } => block_on(status::request(
            &node,
            &till,
            requests::Action::Clear { transaction_id },
        )),
        // Blocking SCM calls and the SCM's dispatcher: outside the runtime.
        Command::Service => service(node),
        Command::Install => install(&node, config_file),
        Command::Uninstall => uninstall(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("error: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// The async runtime every command but the service's plumbing runs on.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Failure::new(
                EXIT_INTERNAL,
                format!("cannot start the async runtime: {e}"),
            )
        })
}

fn block_on(command: impl Future<Output = Result<(), Failure>>) -> Result<(), Failure> {
    runtime()?.block_on(command)
}

#[cfg(windows)]
use windows::{install, service, uninstall};

/// Elsewhere the host runs in the foreground under the platform's service
/// manager: there is no service entry point to run.
#[cfg(not(windows))]
fn service(_node: node::Node) -> Result<(), Failure> {
    Err(Failure::new(
        EXIT_USAGE,
        "the `service` command is for the Windows service manager; use `run --console`",
    ))
}

#[cfg(not(windows))]
const NEEDS_WINDOWS: &str = "installing SpaceFuel as a service needs Windows; elsewhere run \
     `spacefuel-service run --console` under your service manager (e.g. a systemd unit)";

#[cfg(not(windows))]
fn install(_node: &node::Node, _config_file: Option<PathBuf>) -> Result<(), Failure> {
    Err(Failure::new(EXIT_USAGE, NEEDS_WINDOWS))
}

#[cfg(not(windows))]
fn uninstall() -> Result<(), Failure> {
    Err(Failure::new(EXIT_USAGE, NEEDS_WINDOWS))
}
