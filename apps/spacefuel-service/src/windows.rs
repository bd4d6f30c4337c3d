//! SpaceFuel as a Windows service: `install` registers the host (this
//! program, `service`, outside the slots), `uninstall` removes it, and
//! `service` is the entry point the SCM starts. The host is the same as
//! `run --console`: only its stop differs (the service's Stop or Shutdown
//! instead of Ctrl-C).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use spacepos_windows_scm::{
    HostInstalled, HostServiceError, HostServiceSpec, HostUninstalled, install_host_service,
    run_host_service, uninstall_host_service,
};
use tokio_util::sync::CancellationToken;

use crate::node::{self, Node};
use crate::{EXIT_REFUSED, EXIT_STORAGE, EXIT_USAGE, Failure, host};

/// The service's name (`sc query SpaceFuel`).
pub(crate) const SERVICE_NAME: &str = "SpaceFuel";
const DISPLAY_NAME: &str = "SpaceFuel forecourt service";
const DESCRIPTION: &str = "SpaceFuel: the forecourt controller and fuel sales of SpacePOS. \
     Runs the active blue/green slot and applies SpaceFuel updates at a quiet moment.";
/// How long the runtime may take to wind down after the host returned.
const RUNTIME_SHUTDOWN: Duration = Duration::from_secs(5);

fn scm_failure(e: HostServiceError) -> Failure {
    match e {
        HostServiceError::NotStartedByScm => Failure::new(
            EXIT_USAGE,
            "the `service` command is for the Windows service manager; use `run --console`",
        ),
        HostServiceError::Scm(detail) => Failure::new(
            EXIT_STORAGE,
            format!("{detail} (the Windows service commands need an administrator)"),
        ),
    }
}

/// `service`: the host until the SCM stops it; its failure code is the
/// service's exit code, so the recovery actions restart it.
pub(crate) fn service(node: Node) -> Result<(), Failure> {
    let token = CancellationToken::new();
    let stop = token.clone();
    let body = move || -> u32 {
        let _log = node::init_logging(&node, "spacefuel", true);
        let runtime = match crate::runtime() {
            Ok(runtime) => runtime,
            Err(f) => {
                tracing::error!("{}", f.message);
                return u32::from(f.code);
            }
        };
        let result = runtime.block_on(host::run_until(&node, token.cancelled_owned()));
        runtime.shutdown_timeout(RUNTIME_SHUTDOWN);
        match result {
            Ok(()) => 0,
            Err(f) => {
                tracing::error!("SpaceFuel stopped: {}", f.message);
                u32::from(f.code)
            }
        }
    };
    run_host_service(SERVICE_NAME, move || stop.cancel(), body).map_err(scm_failure)
}

/// `install`: register `<this program> service --data-dir <dir> [--config
/// <file>]`, with absolute paths. This program must live outside the slots
/// (they are replaced by updates).
pub(crate) fn install(node: &Node, config_file: Option<PathBuf>) -> Result<(), Failure> {
    let absolute = |path: &Path| {
        std::path::absolute(path).map_err(|e| {
            Failure::new(
                EXIT_STORAGE,
                format!("cannot resolve {}: {e}", path.display()),
            )
        })
    };
    let executable = std::env::current_exe()
        .map_err(|e| Failure::new(EXIT_STORAGE, format!("cannot locate this program: {e}")))?;
    let executable = absolute(&executable)?;
    let data_dir = absolute(&node.data_dir)?;
    let slots = data_dir.join("extensions").join("spacefuel");
    if is_within(&executable, &slots) {
        return Err(Failure::new(
            EXIT_REFUSED,
            format!(
                "{} is inside the SpaceFuel slots ({}), which updates replace: install the \
                 service from a copy installed outside them",
                executable.display(),
                slots.display()
            ),
        ));
    }
    let mut args: Vec<OsString> = vec![
        "service".into(),
        "--data-dir".into(),
        data_dir.clone().into(),
    ];
    if let Some(file) = &config_file {
        args.push("--config".into());
        args.push(absolute(file)?.into());
    }
    let spec = HostServiceSpec {
        name: SERVICE_NAME.to_owned(),
        display_name: DISPLAY_NAME.to_owned(),
        description: DESCRIPTION.to_owned(),
        executable,
        args,
    };
    let done = install_host_service(&spec).map_err(scm_failure)?;
    let command_line = std::iter::once(spec.executable.as_os_str())
        .chain(spec.args.iter().map(OsString::as_os_str))
        .map(|part| part.to_string_lossy())
        .collect::<Vec<_>>()
        .join(" ");
    match done {
        HostInstalled::Created => println!("Registered the Windows service {SERVICE_NAME}."),
        HostInstalled::Updated => println!(
            "Updated the Windows service {SERVICE_NAME} (a running service uses the new \
             settings from its next start)."
        ),
    }
    println!("  runs:     {command_line}");
    println!("  starts:   automatically at boot, as LocalSystem");
    println!("  recovery: restart after 5 s, twice, then none (reset after a day)");
    println!("Start it now with: sc start {SERVICE_NAME}");
    Ok(())
}

/// `uninstall`: stop the service (up to 30 s), then remove it.
pub(crate) fn uninstall() -> Result<(), Failure> {
    match uninstall_host_service(SERVICE_NAME).map_err(scm_failure)? {
        HostUninstalled::Removed { stopped: true } => {
            println!("Stopped and removed the Windows service {SERVICE_NAME}.")
        }
        HostUninstalled::Removed { stopped: false } => {
            println!("Removed the Windows service {SERVICE_NAME}.")
        }
        HostUninstalled::NotInstalled => {
            println!("The Windows service {SERVICE_NAME} is not installed: nothing to remove.")
        }
    }
    Ok(())
}

/// `path` is `dir` or inside it; Windows paths compare case-insensitively.
fn is_within(path: &Path, dir: &Path) -> bool {
    let lower = |p: &Path| PathBuf::from(p.to_string_lossy().to_lowercase());
    lower(path).starts_with(lower(dir))
}
