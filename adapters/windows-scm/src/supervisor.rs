//! [`ProcessSupervisor`]: the SpaceFuel service as a child process.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use spacepos_config::Slot;
use spacepos_spacefuel::{ServiceError, ServiceManager, ServiceState, SlotFs};
use tokio::process::{Child, Command};
use tokio::sync::Mutex;

use crate::pid_file::{self, PID_FILE, PidRecord};
use crate::process;

/// How long [`ServiceManager::stop`] waits for a graceful exit by default.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);
/// In [`SupervisorOptions::args`], replaced by the slot's name (`blue`, `green`).
pub const SLOT_PLACEHOLDER: &str = "{slot}";

/// How long to wait for a killed process to be gone.
const KILL_WAIT: Duration = Duration::from_secs(5);
/// How often an adopted process (not our child: no exit notification) is polled.
const POLL: Duration = Duration::from_millis(50);

/// How the supervisor runs the service.
#[derive(Debug, Clone)]
pub struct SupervisorOptions {
    /// Arguments after the entry program, every [`SLOT_PLACEHOLDER`] in them
    /// replaced by the slot's name: for example `--console --slot {slot}
    /// --data-dir /var/lib/spacepos`.
    pub args: Vec<OsString>,
    /// Environment variables set for the service, on top of the supervisor's.
    pub env: Vec<(OsString, OsString)>,
    /// How long `stop` waits after the graceful request (`SIGTERM`) before
    /// killing the service (`SIGKILL`). Default [`DEFAULT_STOP_GRACE`].
    pub stop_grace: Duration,
    /// Where the running service is recorded; default [`PID_FILE`] in the
    /// directory holding the slots (the parent of `SlotFs::dir(Blue)`, that is
    /// `extensions/spacefuel/service.pid`).
    pub pid_file: Option<PathBuf>,
    /// A file the service's stdout and stderr are appended to; default: the
    /// supervisor's own stdout and stderr.
    pub log_file: Option<PathBuf>,
}

impl Default for SupervisorOptions {
    fn default() -> Self {
        SupervisorOptions {
            args: Vec::new(),
            env: Vec::new(),
            stop_grace: DEFAULT_STOP_GRACE,
            pid_file: None,
            log_file: None,
        }
    }
}

/// Runs the SpaceFuel service as a child process: the [`ServiceManager`] of
/// Linux (and of any platform without a service manager).
///
/// - `start(slot)` reads the slot's manifest (an incomplete slot is
///   [`ServiceError::Start`] and nothing runs), runs `<slot dir>/<entry>` with
///   [`SupervisorOptions::args`] and `env`, working directory = the slot
///   directory, stdin closed, in a process group of its own (Unix), and
///   records `{"pid":N,"slot":"blue"}` in the pid file. Starting the slot that
///   already runs is Ok (nothing more runs); starting the other one while a
///   service runs is a `Start` error: stop first.
/// - `stop()` sends `SIGTERM` to the service's process group (Windows: kills
///   at once), waits up to the grace period, then sends `SIGKILL` to the
///   group, reaps the child and removes the pid file. Stopping a stopped (or
///   failed) service is Ok.
/// - `state()` is `Running { slot, pid }` while the child runs, `Failed {
///   reason: "exited with status N" }` (or `"killed by signal N"`) once it has
///   ended by itself, `Stopped` otherwise.
/// - Dropping the supervisor leaves the service running. A supervisor created
///   later (after a crash, or `kill -9`) reads the pid file and adopts a live
///   process that runs from the recorded slot (on Linux: its executable,
///   command line or working directory is in the slot directory; elsewhere
///   the pid is a hint, only checked to be alive): `state` reports it
///   running, `stop` stops it the same way. A stale pid file is removed.
pub struct ProcessSupervisor {
    slots: Arc<dyn SlotFs>,
    options: SupervisorOptions,
    pid_file: PathBuf,
    current: Mutex<Current>,
}

// One per supervisor: the size of a Windows `Child` does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Current {
    Stopped,
    /// Started by this supervisor.
    Child {
        slot: Slot,
        pid: u32,
        child: Child,
    },
    /// Found through the pid file, started by an earlier supervisor.
    Adopted {
        slot: Slot,
        pid: u32,
    },
    /// Ended by itself.
    Failed {
        reason: String,
    },
}

impl fmt::Debug for ProcessSupervisor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProcessSupervisor")
            .field("options", &self.options)
            .field("pid_file", &self.pid_file)
            .finish_non_exhaustive()
    }
}

impl ProcessSupervisor {
    /// A supervisor of the service installed in `slots`. Reads the pid file
    /// at once and adopts the service a previous supervisor left running.
    pub fn new(slots: Arc<dyn SlotFs>, options: SupervisorOptions) -> Self {
        let pid_file = options
            .pid_file
            .clone()
            .unwrap_or_else(|| default_pid_file(slots.as_ref()));
        let current = adopt(slots.as_ref(), &pid_file);
        ProcessSupervisor {
            slots,
            options,
            pid_file,
            current: Mutex::new(current),
        }
    }

    /// Where the running service is recorded.
    pub fn pid_file(&self) -> &Path {
        &self.pid_file
    }

    /// Notices a service that ended by itself.
    fn refresh(&self, current: &mut Current) {
        let ended = match current {
            Current::Child { child, pid, .. } => match child.try_wait() {
                Ok(Some(status)) => Some(describe(status)),
                Ok(None) => None,
                Err(e) => {
                    tracing::warn!(pid = *pid, "cannot check on the SpaceFuel service: {e}");
                    None
                }
            },
            Current::Adopted { slot, pid } => {
                let alive =
                    process::is_alive(*pid) && process::runs_from(*pid, &self.slots.dir(*slot));
                (!alive).then(|| {
                    "exited by itself (started by an earlier supervisor: exit status unknown)"
                        .to_owned()
                })
            }
            Current::Stopped | Current::Failed { .. } => None,
        };
        if let Some(reason) = ended {
            tracing::warn!(reason = %reason, "the SpaceFuel service stopped by itself");
            pid_file::remove(&self.pid_file);
            *current = Current::Failed { reason };
        }
    }

    fn command(&self, slot: Slot, dir: &Path, program: &Path) -> Result<Command, String> {
        let mut command = Command::new(program);
        command
            .args(crate::expand_args(&self.options.args, slot))
            .envs(self.options.env.iter().map(|(k, v)| (k, v)))
            .current_dir(dir)
            .stdin(Stdio::null())
            .kill_on_drop(false);
        #[cfg(unix)]
        command.process_group(0);
        if let Some(log) = &self.options.log_file {
            let open = || {
                if let Some(parent) = log.parent().filter(|p| !p.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(log)
            };
            let out = open().map_err(|e| format!("cannot open {}: {e}", log.display()))?;
            let err = out
                .try_clone()
                .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
            command.stdout(out).stderr(err);
        }
        Ok(command)
    }

    /// Stops a child of this supervisor; gives it back if it would not end.
    async fn stop_child(&self, pid: u32, mut child: Child) -> Result<(), (Child, ServiceError)> {
        let grace = self.options.stop_grace;
        if !process::request_stop(pid)
            && let Err(e) = child.start_kill()
        {
            tracing::warn!(pid, "cannot kill the SpaceFuel service: {e}");
        }
        let waited = tokio::time::timeout(grace, child.wait()).await;
        let status = match waited {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => {
                return Err((
                    child,
                    ServiceError::Stop(format!("cannot wait for pid {pid}: {e}")),
                ));
            }
            Err(_) => {
                tracing::warn!(
                    pid,
                    grace_ms = grace.as_millis() as u64,
                    "the SpaceFuel service did not stop within its grace period: killing it"
                );
                process::kill(pid);
                // The group leader itself, where there is no group (Windows).
                let _ = child.start_kill();
                match tokio::time::timeout(KILL_WAIT, child.wait()).await {
                    Ok(Ok(status)) => status,
                    Ok(Err(e)) => {
                        return Err((
                            child,
                            ServiceError::Stop(format!("cannot wait for pid {pid}: {e}")),
                        ));
                    }
                    Err(_) => {
                        return Err((
                            child,
                            ServiceError::Stop(format!(
                                "pid {pid} is still running {}s after it was killed",
                                KILL_WAIT.as_secs()
                            )),
                        ));
                    }
                }
            }
        };
        tracing::info!(pid, status = %describe(status), "the SpaceFuel service stopped");
        Ok(())
    }

    /// Stops a service adopted from the pid file (not our child: polled).
    async fn stop_adopted(&self, pid: u32) -> Result<(), ServiceError> {
        if process::request_stop(pid) && wait_until_gone(pid, self.options.stop_grace).await {
            tracing::info!(pid, "the adopted SpaceFuel service stopped");
            return Ok(());
        }
        if process::is_alive(pid) {
            tracing::warn!(
                pid,
                "the adopted SpaceFuel service did not stop: killing it"
            );
            process::kill(pid);
            if !wait_until_gone(pid, KILL_WAIT).await {
                return Err(ServiceError::Stop(format!(
                    "pid {pid} is still running {}s after it was killed",
                    KILL_WAIT.as_secs()
                )));
            }
        }
        Ok(())
    }
}

#[async_trait]
impl ServiceManager for ProcessSupervisor {
    async fn start(&self, slot: Slot) -> Result<(), ServiceError> {
        let mut current = self.current.lock().await;
        self.refresh(&mut current);
        if let Current::Child {
            slot: running, pid, ..
        }
        | Current::Adopted { slot: running, pid } = &*current
        {
            if *running == slot {
                return Ok(());
            }
            return Err(ServiceError::Start {
                slot,
                detail: format!(
                    "the service already runs from slot {running} (pid {pid}); stop it first"
                ),
            });
        }
        let start_error = |detail: String| ServiceError::Start { slot, detail };
        let manifest = self
            .slots
            .manifest(slot)
            .await
            .map_err(|e| start_error(e.to_string()))?;
        let dir = self.slots.dir(slot);
        let program = crate::entry_path(&dir, &manifest.entry).map_err(start_error)?;
        let mut command = self.command(slot, &dir, &program).map_err(start_error)?;
        let mut child = spawn(&mut command)
            .await
            .map_err(|e| start_error(format!("cannot run {}: {e}", program.display())))?;
        let Some(pid) = child.id() else {
            return Err(start_error(format!(
                "{} ended before its pid was known",
                program.display()
            )));
        };
        if let Err(e) = pid_file::write(&self.pid_file, PidRecord { pid, slot }) {
            // A service that a restarted supervisor could not find might end
            // up running twice: refuse to leave it running.
            process::kill(pid);
            let _ = child.kill().await;
            return Err(start_error(format!(
                "cannot record its pid in {}: {e}; the service was stopped again",
                self.pid_file.display()
            )));
        }
        tracing::info!(
            %slot,
            pid,
            version = %manifest.version,
            program = %program.display(),
            "the SpaceFuel service started"
        );
        *current = Current::Child { slot, pid, child };
        Ok(())
    }

    async fn stop(&self) -> Result<(), ServiceError> {
        let mut current = self.current.lock().await;
        match std::mem::replace(&mut *current, Current::Stopped) {
            Current::Stopped => Ok(()),
            Current::Failed { .. } => {
                pid_file::remove(&self.pid_file);
                Ok(())
            }
            Current::Child { slot, pid, child } => match self.stop_child(pid, child).await {
                Ok(()) => {
                    pid_file::remove(&self.pid_file);
                    Ok(())
                }
                Err((child, e)) => {
                    *current = Current::Child { slot, pid, child };
                    Err(e)
                }
            },
            Current::Adopted { slot, pid } => match self.stop_adopted(pid).await {
                Ok(()) => {
                    pid_file::remove(&self.pid_file);
                    Ok(())
                }
                Err(e) => {
                    *current = Current::Adopted { slot, pid };
                    Err(e)
                }
            },
        }
    }

    async fn state(&self) -> ServiceState {
        let mut current = self.current.lock().await;
        self.refresh(&mut current);
        match &*current {
            Current::Stopped => ServiceState::Stopped,
            Current::Child { slot, pid, .. } | Current::Adopted { slot, pid } => {
                ServiceState::Running {
                    slot: *slot,
                    pid: Some(*pid),
                }
            }
            Current::Failed { reason } => ServiceState::Failed {
                reason: reason.clone(),
            },
        }
    }
}

fn default_pid_file(slots: &dyn SlotFs) -> PathBuf {
    let blue = slots.dir(Slot::Blue);
    match blue.parent() {
        Some(parent) => parent.join(PID_FILE),
        None => PathBuf::from(PID_FILE),
    }
}

/// The service a previous supervisor left running, if the pid file names a
/// live process running from its slot; a stale pid file is removed.
fn adopt(slots: &dyn SlotFs, pid_file: &Path) -> Current {
    match pid_file::read(pid_file) {
        Ok(None) => Current::Stopped,
        Err(e) => {
            tracing::warn!("{e}; ignoring it");
            pid_file::remove(pid_file);
            Current::Stopped
        }
        Ok(Some(PidRecord { pid, slot })) => {
            let dir = slots.dir(slot);
            if process::is_alive(pid) && process::runs_from(pid, &dir) {
                tracing::info!(pid, %slot, "adopting the SpaceFuel service left running");
                Current::Adopted { slot, pid }
            } else {
                tracing::info!(
                    pid,
                    %slot,
                    path = %pid_file.display(),
                    "the recorded SpaceFuel service is gone: removing the stale pid file"
                );
                pid_file::remove(pid_file);
                Current::Stopped
            }
        }
    }
}

/// Spawns `command`, retrying briefly while the program is still open for
/// writing somewhere (`ETXTBSY`: a slot extracted a moment ago in this
/// process, whose file descriptor a concurrent fork briefly holds).
async fn spawn(command: &mut Command) -> std::io::Result<Child> {
    #[cfg(unix)]
    for _ in 0..20 {
        match command.spawn() {
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ETXTBSY as i32) => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            other => return other,
        }
    }
    command.spawn()
}

async fn wait_until_gone(pid: u32, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if !process::is_alive(pid) {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// "exited with status N", or "killed by signal N".
fn describe(status: ExitStatus) -> String {
    if let Some(code) = status.code() {
        return format!("exited with status {code}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("killed by signal {signal}");
        }
    }
    format!("ended: {status}")
}
