//! `spacepos`: the SpacePOS runtime, headless.
//!
//! The composition root of the CLI: parses the command line, starts logging,
//! builds the node (data directory, configuration, file stores, the ERP HTTP
//! client) and hands it to the command, then maps the result to an exit code
//! (listed in `spacepos --help`). It ships the fake ERP for `erp-sim` and `demo`.

mod cli;
mod cmd;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::filter::LevelFilter;

use crate::cli::{Cli, Command};
use spacepos_node::Node;
use spacepos_node::error::{Kind, NodeError};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(Kind::Usage.code())
            } else {
                ExitCode::SUCCESS
            };
        }
    };

    // The demo works in a temporary directory that lives until the end of main.
    let keep_demo_dir = matches!(&cli.command, Command::Demo(d) if d.keep);
    let demo_dir = match &cli.command {
        Command::Demo(_) => match tempfile::Builder::new().prefix("spacepos-demo-").tempdir() {
            Ok(dir) => Some(dir),
            Err(e) => {
                eprintln!("error: cannot create a temporary data directory: {e}");
                return ExitCode::from(Kind::Storage.code());
            }
        },
        _ => None,
    };
    let node = match &demo_dir {
        Some(dir) => Node::isolated(dir.path()),
        None => Node::from_cli(cli.data_dir.clone(), cli.config.clone()),
    };
    let (stderr_level, log_dir) = match &cli.command {
        Command::ErpSim(_) => (LevelFilter::INFO, None),
        Command::Run(_) => (LevelFilter::INFO, Some(node.log_dir())),
        _ => (LevelFilter::WARN, Some(node.log_dir())),
    };
    let _log = spacepos_node::logging::init(stderr_level, log_dir.as_deref(), "spacepos");

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(Kind::Internal.code());
        }
    };
    let result = runtime.block_on(run(cli.command, &node, demo_dir.as_ref()));
    let code = match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::debug!(exit = e.kind.code(), "command failed");
            eprintln!("error: {e}");
            e.exit_code()
        }
    };
    if let (Some(dir), true) = (demo_dir, keep_demo_dir) {
        let _ = dir.keep();
    }
    code
}

async fn run(
    command: Command,
    node: &Node,
    demo_dir: Option<&tempfile::TempDir>,
) -> Result<(), NodeError> {
    match command {
        Command::Onboard(args) => cmd::onboard::run(node, args).await,
        Command::Config(c) => cmd::config::run(node, c).await,
        Command::Status(args) => cmd::status::run(node, args).await,
        Command::Login(args) => cmd::login::run(node, args).await,
        Command::Logout => cmd::login::logout(node).await,
        Command::Seed(args) => cmd::seed::run(node, args).await,
        Command::Ops(c) => cmd::ops::run(node, c).await,
        Command::Run(args) => cmd::run::run(node, args).await,
        Command::Updates(c) => cmd::updates::run(node, c).await,
        Command::SafePoint(c) => cmd::updates::safe_point(node, c).await,
        Command::ErpSim(args) => cmd::erp_sim::run(args).await,
        Command::Demo(args) => match demo_dir {
            Some(dir) => cmd::demo::run(args, dir).await,
            None => Err(NodeError::new(
                Kind::Internal,
                "the demo has no data directory",
            )),
        },
    }
}
