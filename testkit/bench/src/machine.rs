//! What the figures were measured on.

use std::process::Command;

/// The compiler that built this binary (from `build.rs`).
pub(crate) const RUSTC: &str = env!("BENCH_RUSTC_VERSION");
/// `release` or `debug`.
pub(crate) const PROFILE: &str = env!("BENCH_PROFILE");

#[derive(Debug, Clone)]
pub(crate) struct Machine {
    pub(crate) cpu: String,
    pub(crate) cores: usize,
    pub(crate) ram: String,
    pub(crate) os: String,
    pub(crate) kernel: String,
    pub(crate) rustc: String,
    pub(crate) profile: String,
    pub(crate) sqlite_cli: String,
    pub(crate) sqlite_lib: String,
    pub(crate) rabbitmq: String,
    /// `/proc/loadavg` when the run started: the machine may be shared.
    pub(crate) load_at_start: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

fn command(program: &str, args: &[&str]) -> Option<String> {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
}

impl Machine {
    pub(crate) async fn probe() -> Machine {
        let cpuinfo = read("/proc/cpuinfo");
        let cpu = cpuinfo
            .lines()
            .find(|l| l.starts_with("model name"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_owned())
            .unwrap_or_else(|| "unknown".into());
        let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
        let ram = read("/proc/meminfo")
            .lines()
            .find(|l| l.starts_with("MemTotal:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| format!("{:.1} GiB", kb / 1024.0 / 1024.0))
            .unwrap_or_else(|| "unknown".into());
        let os = read("/etc/os-release")
            .lines()
            .find_map(|l| l.strip_prefix("PRETTY_NAME="))
            .map(|v| v.trim_matches('"').to_owned())
            .unwrap_or_else(|| "unknown".into());
        let kernel = read("/proc/sys/kernel/osrelease").trim().to_owned();
        let sqlite_cli = command("sqlite3", &["--version"])
            .and_then(|v| v.split_whitespace().next().map(str::to_owned))
            .unwrap_or_else(|| "not installed".into());
        let sqlite_lib = sqlite_library_version().await;
        let rabbitmq = command("dpkg-query", &["-W", "-f", "${Version}", "rabbitmq-server"])
            .unwrap_or_else(|| "unknown".into());
        let load_at_start = load();
        Machine {
            cpu,
            cores,
            ram,
            os,
            kernel,
            rustc: RUSTC.to_owned(),
            profile: PROFILE.to_owned(),
            sqlite_cli,
            sqlite_lib,
            rabbitmq,
            load_at_start,
        }
    }

    pub(crate) fn one_line(&self) -> String {
        format!(
            "{} x {} | {} RAM | {} ({}) | {} | {} build | sqlite3 CLI {} / SQLite (sqlx) {} | RabbitMQ {} | load {}",
            self.cores,
            self.cpu,
            self.ram,
            self.os,
            self.kernel,
            self.rustc,
            self.profile,
            self.sqlite_cli,
            self.sqlite_lib,
            self.rabbitmq,
            self.load_at_start
        )
    }
}

/// The SQLite library the product (through sqlx) is linked with.
async fn sqlite_library_version() -> String {
    use sqlx::Connection;
    let Ok(mut conn) = sqlx::SqliteConnection::connect("sqlite::memory:").await else {
        return "unknown".into();
    };
    let version: Result<(String,), _> = sqlx::query_as("SELECT sqlite_version()")
        .fetch_one(&mut conn)
        .await;
    let _ = conn.close().await;
    version.map_or_else(|_| "unknown".into(), |(v,)| v)
}

/// The load averages (1, 5, 15 minutes).
pub(crate) fn load() -> String {
    read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
