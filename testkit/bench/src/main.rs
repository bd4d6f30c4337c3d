//! Benchmarks of SpacePOS's sync paths, each measured against the raw limit of
//! the technology underneath, in the same run, on the same data and the same disk.
//!
//! | subcommand | the product path (what a till runs) | the raw baseline |
//! | --- | --- | --- |
//! | `seed` | seeding N entities (default 1,000,000 `products`) from the in-process fake ERP over real HTTP on loopback: `ErpHttpClient` + `Seeder` + `SqliteStore` | the same rows as CSV, loaded with the sqlite3 CLI's `.import` into a table of the same shape (same columns, key, indexes and pragmas) |
//! | `events` | applying N `DatasetChangedIntegrationEvent`s (default 100,000) from RabbitMQ: `AmqpSubscriber` + `WireDecoder` + `Inbox` + `SqliteStore` (decode, dedupe, one commit and one multiple-ack per batch) | a bare lapin consumer of the same queue and messages: manual ack, the same prefetch, one `basic.ack(multiple)` every `--raw-ack-every` deliveries |
//! | `drain` | sending N queued operations (default 100,000) to the fake ERP: `Sender` + `ErpHttpClient` + the `SqliteStore` outbox | bare reqwest POSTs of the same batches of 500 (bodies serialized beforehand) to the same endpoint of a fake ERP started the same way |
//! | `enqueue` | the latency of `Outbox::enqueue` of one operation (as a till queues a sale), p50/p99 | one raw sqlx transaction inserting the same row into a table of the same shape, with the same pragmas (WAL, `synchronous=FULL`) |
//!
//! Throughputs are compared as `product rate / raw rate`; latencies as `raw
//! latency / product latency` (1.0 = as fast as raw). Every run also says where
//! the product's time goes: the ports are wrapped in timing decorators, so the
//! time spent in each call of each port (HTTP fetch, SQLite commit, broker
//! receive, ...) is summed without touching product code.
//!
//! These are benchmarks, not tests: nothing here fails on a slow figure. The
//! figures are only meaningful from a release build on an otherwise idle machine:
//!
//! ```text
//! just bench          # = cargo run --release -p spacepos-bench -- all --markdown
//! cargo run --release -p spacepos-bench -- seed --entities 200000
//! cargo run --release -p spacepos-bench -- --help
//! ```
//!
//! Needs: RabbitMQ on 127.0.0.1:5672 with guest/guest (`events`; the exchange
//! and queues it declares have unique names and are deleted afterwards), and
//! the sqlite3 CLI (`seed`; Debian's `sqlite3`). Files go to a temporary
//! directory under `--dir` (default: the system's temp dir), removed afterwards.
//! Progress goes to stderr, the report to stdout. The latest figures are in
//! `BENCHMARKS.md` at the workspace root.

mod drain;
mod enqueue;
mod events;
mod fixture;
mod machine;
mod report;
mod seed;
mod timed;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::report::Comparison;

/// Errors of a benchmark run: it stops and says why.
pub(crate) type BenchError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type Result<T, E = BenchError> = std::result::Result<T, E>;

#[derive(Debug, Parser)]
#[command(
    name = "spacepos-bench",
    about = "Benchmarks of the sync paths against their raw limits (release builds only mean anything)"
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

/// Options of every subcommand.
#[derive(Debug, Clone, Args)]
pub(crate) struct Common {
    /// Print the report as Markdown (for BENCHMARKS.md).
    #[arg(long, global = true)]
    pub(crate) markdown: bool,
    /// Where the temporary databases and CSV go (a fresh directory inside it,
    /// removed afterwards).
    #[arg(long, global = true, value_name = "DIR")]
    pub(crate) dir: Option<PathBuf>,
    /// The RabbitMQ broker (loopback only).
    #[arg(
        long,
        global = true,
        value_name = "URL",
        default_value = "amqp://guest:guest@127.0.0.1:5672/%2f"
    )]
    pub(crate) amqp_url: String,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Seed entities from the fake ERP vs `sqlite3 .import` of the same rows.
    Seed(seed::SeedArgs),
    /// Apply events from RabbitMQ vs a bare lapin consume-and-ack loop.
    Events(events::EventsArgs),
    /// Drain the outbox to the fake ERP vs bare reqwest POSTs of the same batches.
    Drain(drain::DrainArgs),
    /// Durable enqueue latency vs one raw SQLite commit.
    Enqueue(enqueue::EnqueueArgs),
    /// Everything above, one after the other.
    All(AllArgs),
}

#[derive(Debug, Args)]
struct AllArgs {
    #[command(flatten)]
    seed: seed::SeedArgs,
    #[command(flatten)]
    events: events::EventsArgs,
    #[command(flatten)]
    drain: drain::DrainArgs,
    #[command(flatten)]
    enqueue: enqueue::EnqueueArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the Tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("spacepos-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<()> {
    if machine::PROFILE != "release" {
        eprintln!(
            "warning: this is a {} build; only release figures mean anything \
             (cargo run --release -p spacepos-bench -- ...)",
            machine::PROFILE
        );
    }
    let base = match &cli.common.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir(),
    };
    std::fs::create_dir_all(&base)?;
    let work = tempfile::Builder::new()
        .prefix("spacepos-bench.")
        .tempdir_in(&base)?;
    let machine = machine::Machine::probe().await;
    eprintln!("{}", machine.one_line());
    let common = &cli.common;
    let mut results: Vec<Comparison> = Vec::new();
    let started = std::time::Instant::now();
    let dir = work.path();
    let (seed, events, drain, enqueue) = match &cli.command {
        Command::Seed(a) => (Some(a), None, None, None),
        Command::Events(a) => (None, Some(a), None, None),
        Command::Drain(a) => (None, None, Some(a), None),
        Command::Enqueue(a) => (None, None, None, Some(a)),
        Command::All(a) => (
            Some(&a.seed),
            Some(&a.events),
            Some(&a.drain),
            Some(&a.enqueue),
        ),
    };
    // The machine may be shared: each result says how busy it was.
    let load = |mut c: Comparison, before: String| {
        c.notes.push(format!(
            "load average (1, 5, 15 min) before: {before}; after: {}",
            machine::load()
        ));
        c
    };
    if let Some(a) = seed {
        let before = machine::load();
        results.push(load(seed::run(a, common, dir).await?, before));
    }
    if let Some(a) = events {
        let before = machine::load();
        results.push(load(events::run(a, common, dir).await?, before));
    }
    if let Some(a) = drain {
        let before = machine::load();
        results.push(load(drain::run(a, common, dir).await?, before));
    }
    if let Some(a) = enqueue {
        let before = machine::load();
        results.push(load(enqueue::run(a, common, dir).await?, before));
    }
    let command_line = std::env::args().skip(1).collect::<Vec<_>>().join(" ");
    let text = if common.markdown {
        report::markdown(&machine, &results, &command_line, started.elapsed())
    } else {
        report::plain(&machine, &results, started.elapsed())
    };
    println!("{text}");
    work.close()?;
    Ok(())
}
