//! Runs the SpaceFuel service from one of its blue/green slots: the adapter of
//! the [`ServiceManager`] port declared by `spacepos-spacefuel`.
//!
//! It owns two implementations of the port:
//!
//! - [`ProcessSupervisor`], on every platform (what Linux runs, and what the
//!   tests drive): it starts the slot's entry program as a child process (in
//!   its own process group on Unix, working directory = the slot), stops it
//!   gracefully (`SIGTERM` to the group) and forcibly after a grace period
//!   (`SIGKILL`), reports a child that died by itself as
//!   [`ServiceState::Failed`](spacepos_spacefuel::ServiceState::Failed) with
//!   its exit status, and records the child in a pid file ([`PID_FILE`]) so
//!   that a supervisor restarted after a crash adopts the orphaned service
//!   instead of starting a second one.
//! - `ScmServiceManager` (with `ScmOptions`), under `cfg(windows)` only: the same port over the
//!   Windows Service Control Manager (the `windows-service` crate, used by
//!   this crate alone): install with recovery actions, uninstall, start from
//!   a slot (the service's binary path is pointed at the slot's entry first),
//!   stop within a grace period, query. It is thin glue, type-checked on Linux
//!   with `cargo check --target x86_64-pc-windows-gnu`.
//!
//! - The host as a Windows service, under `cfg(windows)` only:
//!   `install_host_service` (auto start, LocalSystem, the same recovery
//!   actions), `uninstall_host_service` (stops it first) and
//!   `run_host_service` (the service's entry point: Stop and Shutdown call the
//!   host's graceful shutdown; its exit code is the service's). This is what
//!   `spacefuel-service install` registers: the host, outside the slots,
//!   which supervises the slot's worker with [`ProcessSupervisor`].
//!
//! Both never start a slot whose extraction is not complete: they read the
//! slot's manifest through [`SlotFs`](spacepos_spacefuel::SlotFs) first, and
//! an incomplete slot is a
//! [`ServiceError::Start`](spacepos_spacefuel::ServiceError::Start).
//! Everything else in this crate (pid file, process helpers) is portable;
//! only `ScmServiceManager` and the Windows process helpers are
//! `cfg(windows)`.

#[cfg(windows)]
mod host_service;
mod pid_file;
mod process;
#[cfg(windows)]
mod scm;
mod supervisor;

#[cfg(windows)]
pub use host_service::{
    HostInstalled, HostServiceError, HostServiceSpec, HostUninstalled, install_host_service,
    run_host_service, uninstall_host_service,
};
pub use pid_file::PID_FILE;
#[cfg(windows)]
pub use scm::{ScmOptions, ScmServiceManager};
pub use spacepos_spacefuel::ServiceManager;
pub use supervisor::{DEFAULT_STOP_GRACE, ProcessSupervisor, SLOT_PLACEHOLDER, SupervisorOptions};

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use spacepos_config::Slot;

/// `args` with every [`SLOT_PLACEHOLDER`] replaced by the slot's name.
fn expand_args(args: &[OsString], slot: Slot) -> Vec<OsString> {
    args.iter()
        .map(|arg| match arg.to_str() {
            Some(text) if text.contains(SLOT_PLACEHOLDER) => {
                OsString::from(text.replace(SLOT_PLACEHOLDER, slot.as_str()))
            }
            _ => arg.clone(),
        })
        .collect()
}

/// The entry program of a slot: `entry` must be a plain relative path inside
/// the slot directory (no root, no `..`).
fn entry_path(slot_dir: &Path, entry: &str) -> Result<PathBuf, String> {
    let relative = Path::new(entry);
    let plain = !entry.is_empty()
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if plain {
        Ok(slot_dir.join(relative))
    } else {
        Err(format!(
            "the slot's entry {entry:?} is not a relative path inside the slot"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_slot_placeholder_is_expanded_in_every_argument() {
        let args: Vec<OsString> = ["--console", "--slot", "{slot}", "--name=sf-{slot}"]
            .into_iter()
            .map(OsString::from)
            .collect();
        assert_eq!(
            expand_args(&args, Slot::Green),
            ["--console", "--slot", "green", "--name=sf-green"]
                .into_iter()
                .map(OsString::from)
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn an_entry_outside_the_slot_is_refused() {
        let dir = Path::new("/x/blue");
        assert_eq!(
            entry_path(dir, "bin/spacefuel").ok(),
            Some(dir.join("bin/spacefuel"))
        );
        for bad in ["", "../green/bin", "/bin/sh", "bin/../../etc"] {
            assert!(entry_path(dir, bad).is_err(), "{bad:?}");
        }
    }
}
