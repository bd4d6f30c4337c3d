//! The command line.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use url::Url;

use crate::exit::EXIT_CODES_HELP;

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
}
