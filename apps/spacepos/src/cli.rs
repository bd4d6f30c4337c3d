//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use url::Url;

use spacepos_node::error::EXIT_CODES_HELP;

/// SpacePOS Runtime & Sync: keeps a till (and its forecourt) working with the ERP.
///
/// Start with `spacepos demo` to watch a terminal onboard against the built-in
/// ERP simulator. On a real till: `spacepos onboard --code <CODE> --api <URL>`,
/// then `spacepos status`.
#[derive(Debug, Parser)]
#[command(name = "spacepos", version, after_help = EXIT_CODES_HELP, propagate_version = true)]
pub(crate) struct Cli {
    /// Where this node keeps its state (terminal.json, state.json, logs).
    /// Default: %ProgramData%\SpacePOS on Windows, ~/.local/share/spacepos elsewhere.
    #[arg(long, global = true, env = "SPACEPOS_DATA_DIR", value_name = "DIR")]
    pub(crate) data_dir: Option<PathBuf>,

    /// A TOML configuration file (see docs/configuration.md). Without it,
    /// spacepos.toml in the data directory is read when it exists.
    #[arg(long, global = true, env = "SPACEPOS_CONFIG", value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Onboard this terminal: trade the ERP's onboarding code for credentials.
    ///
    /// Credentials, identity and endpoints are saved in one atomic step to
    /// terminal.json in the data directory, readable by its owner only.
    Onboard(OnboardArgs),

    /// Show the effective configuration and where each value came from (secrets redacted).
    #[command(subcommand)]
    Config(ConfigCommand),

    /// Show identity, ERP reachability, the staff session and local state.
    Status(StatusArgs),

    /// Log a staff member in. The PIN is read from stdin, never from the command line.
    Login(LoginArgs),

    /// End the staff session on this terminal.
    Logout,

    /// Run the node: seed and catch up datasets, consume events, push queued
    /// operations, until Ctrl-C or SIGTERM.
    Run(RunArgs),

    /// Seed the datasets from the ERP (or catch them up), with progress. A seed
    /// that was interrupted resumes where it stopped.
    Seed(SeedArgs),

    /// Queue an operation for the ERP, list the queue, or retry a parked operation.
    #[command(subcommand)]
    Ops(OpsCommand),

    /// Look for component updates, list them, snooze one, or apply one.
    #[command(subcommand)]
    Updates(UpdatesCommand),

    /// Tell this node whether an update may start now (the till's software
    /// marks a sale open with `busy` and closed with `clear`).
    #[command(subcommand, name = "safe-point")]
    SafePoint(SafePointCommand),

    /// Run the ERP simulator: the fake ERP as a standalone HTTP server with demo data.
    ErpSim(ErpSimArgs),

    /// Watch a terminal onboard against the built-in ERP simulator, step by step.
    ///
    /// Starts the simulator in-process on a free loopback port and uses a
    /// temporary data directory; touches nothing else.
    Demo(DemoArgs),
}

#[derive(Debug, Args)]
pub(crate) struct OnboardArgs {
    /// The onboarding code the ERP issued (default: terminal.onboarding_code from the config).
    #[arg(long, value_name = "CODE")]
    pub(crate) code: Option<String>,

    /// Base URL of the ERP (default: node.api_endpoint from the config).
    /// https, or http to 127.0.0.1 only.
    #[arg(long, value_name = "URL")]
    pub(crate) api: Option<Url>,

    /// Replace the credentials of an already onboarded terminal.
    #[arg(long)]
    pub(crate) force: bool,

    /// Print the result as JSON (the secret is never printed).
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConfigCommand {
    /// Print every setting with its value and source.
    Show {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct StatusArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,

    /// Do not contact the ERP; report local state only.
    #[arg(long)]
    pub(crate) offline: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    /// The staff member's code, e.g. 0042.
    #[arg(long, value_name = "CODE")]
    pub(crate) staff: String,
}

#[derive(Debug, Args)]
pub(crate) struct ErpSimArgs {
    /// Address to listen on. The simulator speaks plain HTTP: keep it on loopback.
    #[arg(long, default_value = "127.0.0.1:7878", value_name = "ADDR")]
    pub(crate) listen: SocketAddr,

    /// Seed of the generated demo data (same seed, same data).
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,

    /// AMQP URL the simulator hands to terminals at onboarding.
    #[arg(long, value_name = "URL")]
    pub(crate) amqp_url: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Keep the temporary data directory and print its path.
    #[arg(long)]
    pub(crate) keep: bool,

    /// Do not use RabbitMQ even if one answers on 127.0.0.1:5672: the live
    /// change then comes through the ERP's changes endpoint.
    #[arg(long)]
    pub(crate) no_bus: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Do not connect to the event bus even if one is configured (datasets are
    /// then caught up every ingest_frequency).
    #[arg(long)]
    pub(crate) no_bus: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SeedArgs {
    /// Only this dataset (e.g. products).
    #[arg(long, value_name = "NAME")]
    pub(crate) dataset: Option<String>,

    /// Print the result as JSON (no progress bars).
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum OpsCommand {
    /// Queue an operation; prints its id. Durable when this returns: it reaches
    /// the ERP exactly once, in order, even if the ERP is down now.
    Submit(OpsSubmitArgs),
    /// List the queue, oldest first (the last --limit entries).
    List(OpsListArgs),
    /// Queue a parked (rejected) operation again, with the same id.
    Retry {
        /// The operation id.
        id: uuid::Uuid,
        /// Print the operation as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub(crate) struct OpsSubmitArgs {
    /// The operation type, e.g. sale.completed.
    #[arg(long = "type", value_name = "TYPE")]
    pub(crate) r#type: String,

    /// The staff member who made it (storeStaffId, e.g. S-0042).
    #[arg(long, value_name = "ID")]
    pub(crate) staff: Option<String>,

    /// A JSON object file with the operation's payload, or - for stdin.
    #[arg(long, value_name = "FILE|-")]
    pub(crate) payload: PathBuf,

    /// The operation id (idempotency key); submitting the same id and content
    /// again queues nothing new. Default: a new UUID.
    #[arg(long, value_name = "UUID")]
    pub(crate) id: Option<uuid::Uuid>,

    /// When it happened (RFC 3339). Default: now.
    #[arg(long, value_name = "TIME")]
    pub(crate) occurred_at: Option<chrono::DateTime<chrono::Utc>>,

    /// Print the queued operation as JSON instead of its id.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct OpsListArgs {
    /// Only operations in this state.
    #[arg(long, value_parser = parse_state)]
    pub(crate) state: Option<spacepos_sync::OperationState>,

    /// At most this many (the newest).
    #[arg(long, default_value_t = 50)]
    pub(crate) limit: usize,

    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

fn parse_state(s: &str) -> Result<spacepos_sync::OperationState, String> {
    s.parse()
}

#[derive(Debug, Subcommand)]
pub(crate) enum UpdatesCommand {
    /// Ask the ERP for pending releases now; download, verify and stage them.
    Check {
        #[arg(long)]
        json: bool,
    },
    /// Installed, offered and staged versions, snoozes left, what an update waits for.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Postpone the staged update of a component by 5 minutes (3 times per version).
    Snooze {
        /// spacepos or spacefuel.
        component: spacepos_core::ComponentId,
        #[arg(long)]
        json: bool,
    },
    /// Install the staged update of a component at the next safe moment (where
    /// this node can: SpacePOS is installed by the desktop app).
    Apply {
        /// spacepos or spacefuel.
        component: spacepos_core::ComponentId,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum SafePointCommand {
    /// A sale is open: no update may start.
    Busy {
        /// Why, as an operator would read it.
        #[arg(long, default_value = "a sale is open")]
        reason: String,
    },
    /// No sale is open: updates may start.
    Clear,
}
