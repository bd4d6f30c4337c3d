//! What this program is: the User-Agent parts.

use spacepos_core::{ClientInfo, Product};

/// The version of this build: the workspace version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

pub fn client_info(product: Product) -> ClientInfo {
    let info = os_info::get();
    let os_name = match std::env::consts::OS {
        "windows" => "Windows",
        "linux" => "Linux",
        "macos" => "macOS",
        other => other,
    };
    let os_version = match info.version() {
        os_info::Version::Unknown => "unknown".to_owned(),
        v => v.to_string(),
    };
    ClientInfo {
        product,
        version: VERSION.to_owned(),
        os_name: os_name.to_owned(),
        os_version: os_version.replace(['(', ')', ';'], ""),
        arch: std::env::consts::ARCH.to_owned(),
        hostname: hostname(),
    }
}

fn hostname() -> String {
    let from_env = std::env::var("COMPUTERNAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok();
    let from_file = || {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .ok()
    };
    from_env
        .or_else(from_file)
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}
