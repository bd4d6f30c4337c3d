//! [`ScmServiceManager`]: the SpaceFuel service as a Windows service, through
//! the Service Control Manager. Thin glue over `windows-service`; every SCM
//! call blocks, so each runs on tokio's blocking pool.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use spacepos_config::Slot;
use spacepos_spacefuel::{ServiceError, ServiceManager, ServiceState, SlotFs};
use windows_service::service::{
    Service, ServiceAccess, ServiceAction, ServiceActionType, ServiceErrorControl, ServiceExitCode,
    ServiceFailureActions, ServiceFailureResetPeriod, ServiceInfo, ServiceStartType,
    ServiceState as WinState, ServiceType,
};
use windows_service::service_manager::{ServiceManager as Scm, ServiceManagerAccess};

use crate::supervisor::DEFAULT_STOP_GRACE;

const ERROR_SERVICE_ALREADY_RUNNING: i32 = 1056;
pub(crate) const ERROR_SERVICE_DOES_NOT_EXIST: i32 = 1060;
pub(crate) const ERROR_SERVICE_CANNOT_ACCEPT_CTRL: i32 = 1061;
pub(crate) const ERROR_SERVICE_NOT_ACTIVE: i32 = 1062;
pub(crate) const ERROR_SERVICE_EXISTS: i32 = 1073;

/// The recovery actions: restart after 5 s, twice, then nothing.
const RESTART_DELAY: Duration = Duration::from_secs(5);
/// The failure count resets after a day without failures.
const FAILURE_RESET: Duration = Duration::from_secs(24 * 60 * 60);
const POLL: Duration = Duration::from_millis(200);
const KILL_WAIT: Duration = Duration::from_secs(10);

/// How the SpaceFuel service is registered.
#[derive(Debug, Clone)]
pub struct ScmOptions {
    /// The service's name (`sc query <name>`); default `SpaceFuel`.
    pub service_name: String,
    pub display_name: String,
    pub description: String,
    /// Launch arguments after the slot's entry program, every
    /// [`SLOT_PLACEHOLDER`](crate::SLOT_PLACEHOLDER) replaced by the slot's
    /// name: for example `--service --slot {slot} --data-dir C:\ProgramData\SpacePOS`.
    pub args: Vec<OsString>,
    /// How long `stop` waits for the service to report Stopped before it
    /// kills the process. Default [`DEFAULT_STOP_GRACE`].
    pub stop_grace: Duration,
}

impl Default for ScmOptions {
    fn default() -> Self {
        ScmOptions {
            service_name: "SpaceFuel".to_owned(),
            display_name: "SpaceFuel forecourt service".to_owned(),
            description: "SpaceFuel: the forecourt controller and fuel sales of SpacePOS."
                .to_owned(),
            args: Vec::new(),
            stop_grace: DEFAULT_STOP_GRACE,
        }
    }
}

/// The SpaceFuel service registered with the Windows Service Control Manager
/// (auto start, LocalSystem, own process).
///
/// - [`install`](Self::install) registers it (or updates the registration)
///   to run a slot's entry, with recovery actions: restart after 5 s, twice,
///   then none (the count resets after a day).
/// - `start(slot)` checks the slot is complete, points the service's binary
///   path at `<slot dir>\<entry> <args>`, then starts it; starting the slot
///   that already runs is Ok, the other one a `Start` error.
/// - `stop()` asks the SCM to stop the service and waits up to the grace
///   period for Stopped, then kills the process (`taskkill /F /T`).
/// - `state()` maps the SCM's status; the slot is the one whose directory
///   holds the binary path; not registered is `NotInstalled`.
pub struct ScmServiceManager {
    slots: Arc<dyn SlotFs>,
    options: ScmOptions,
    /// Set by `stop`, cleared by `start`: a service we stopped (even
    /// forcibly) is Stopped, not Failed.
    stopped_by_us: Arc<AtomicBool>,
}

impl fmt::Debug for ScmServiceManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScmServiceManager")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn manager_error(what: &str, e: windows_service::Error) -> ServiceError {
    ServiceError::Manager(format!("{what}: {e}"))
}

pub(crate) fn win32_code(e: &windows_service::Error) -> Option<i32> {
    match e {
        windows_service::Error::Winapi(io) => io.raw_os_error(),
        _ => None,
    }
}

async fn blocking<T: Send + 'static>(
    job: impl FnOnce() -> Result<T, ServiceError> + Send + 'static,
) -> Result<T, ServiceError> {
    tokio::task::spawn_blocking(job)
        .await
        .map_err(|e| ServiceError::Manager(format!("the SCM call panicked: {e}")))?
}

impl ScmServiceManager {
    pub fn new(slots: Arc<dyn SlotFs>, options: ScmOptions) -> Self {
        ScmServiceManager {
            slots,
            options,
            stopped_by_us: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The registration of the service running `slot`'s entry (which must be
    /// a complete installation).
    async fn service_info(&self, slot: Slot) -> Result<ServiceInfo, ServiceError> {
        let start_error = |detail: String| ServiceError::Start { slot, detail };
        let manifest = self
            .slots
            .manifest(slot)
            .await
            .map_err(|e| start_error(e.to_string()))?;
        let dir = self.slots.dir(slot);
        let program = crate::entry_path(&dir, &manifest.entry).map_err(start_error)?;
        Ok(ServiceInfo {
            name: OsString::from(&self.options.service_name),
            display_name: OsString::from(&self.options.display_name),
            service_type: ServiceType::OWN_PROCESS,
            start_type: ServiceStartType::AutoStart,
            error_control: ServiceErrorControl::Normal,
            executable_path: program,
            launch_arguments: crate::expand_args(&self.options.args, slot),
            dependencies: Vec::new(),
            account_name: None,
            account_password: None,
        })
    }

    /// Registers the service to run `slot`'s entry (updates the registration
    /// if it exists), with its description and recovery actions. Needs
    /// administrator rights.
    pub async fn install(&self, slot: Slot) -> Result<(), ServiceError> {
        let info = self.service_info(slot).await?;
        let description = self.options.description.clone();
        blocking(move || {
            let scm = Scm::local_computer(
                None::<&str>,
                ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
            )
            .map_err(|e| manager_error("cannot open the Service Control Manager", e))?;
            let access = ServiceAccess::CHANGE_CONFIG
                | ServiceAccess::QUERY_CONFIG
                | ServiceAccess::QUERY_STATUS
                | ServiceAccess::START;
            let service = match scm.create_service(&info, access) {
                Ok(service) => service,
                Err(e) if win32_code(&e) == Some(ERROR_SERVICE_EXISTS) => {
                    let service = scm
                        .open_service(&info.name, access)
                        .map_err(|e| manager_error("cannot open the service", e))?;
                    service
                        .change_config(&info)
                        .map_err(|e| manager_error("cannot update the service", e))?;
                    service
                }
                Err(e) => return Err(manager_error("cannot create the service", e)),
            };
            service
                .set_description(&description)
                .map_err(|e| manager_error("cannot describe the service", e))?;
            set_recovery_actions(&service)
                .map_err(|e| manager_error("cannot set the recovery actions", e))?;
            Ok(())
        })
        .await
    }

    /// Stops the service if it runs, then removes its registration; not
    /// registered is fine.
    pub async fn uninstall(&self) -> Result<(), ServiceError> {
        self.stop().await?;
        let name = self.options.service_name.clone();
        blocking(move || {
            let scm = Scm::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
                .map_err(|e| manager_error("cannot open the Service Control Manager", e))?;
            match scm.open_service(&name, ServiceAccess::DELETE) {
                Ok(service) => service
                    .delete()
                    .map_err(|e| manager_error("cannot delete the service", e)),
                Err(e) if win32_code(&e) == Some(ERROR_SERVICE_DOES_NOT_EXIST) => Ok(()),
                Err(e) => Err(manager_error("cannot open the service", e)),
            }
        })
        .await
    }

    fn open(&self, access: ServiceAccess) -> Result<Option<Service>, windows_service::Error> {
        let scm = Scm::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)?;
        match scm.open_service(&self.options.service_name, access) {
            Ok(service) => Ok(Some(service)),
            Err(e) if win32_code(&e) == Some(ERROR_SERVICE_DOES_NOT_EXIST) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The recovery actions of a service: restart after 5 s, twice, then
/// nothing; the failure count resets after a day. Also applied when the
/// service stops itself with an error code, not only when it crashes.
pub(crate) fn set_recovery_actions(service: &Service) -> windows_service::Result<()> {
    let restart = ServiceAction {
        action_type: ServiceActionType::Restart,
        delay: RESTART_DELAY,
    };
    service.update_failure_actions(ServiceFailureActions {
        reset_period: ServiceFailureResetPeriod::After(FAILURE_RESET),
        reboot_msg: None,
        command: None,
        actions: Some(vec![
            restart.clone(),
            restart,
            ServiceAction {
                action_type: ServiceActionType::None,
                delay: Duration::ZERO,
            },
        ]),
    })?;
    service.set_failure_actions_on_non_crash_failures(true)
}

/// The slot whose directory holds the service's command line, if any.
fn slot_of(command_line: &OsStr, blue: &Path, green: &Path) -> Option<Slot> {
    // Paths on Windows compare case-insensitively.
    let line = command_line.to_string_lossy().to_lowercase();
    let holds = |dir: &Path| {
        let mut dir = dir.to_string_lossy().to_lowercase();
        if !dir.ends_with('\\') {
            dir.push('\\');
        }
        line.contains(&dir)
    };
    if holds(blue) {
        Some(Slot::Blue)
    } else if holds(green) {
        Some(Slot::Green)
    } else {
        None
    }
}

struct Snapshot {
    state: WinState,
    exit_code: ServiceExitCode,
    pid: Option<u32>,
    slot: Option<Slot>,
    command_line: OsString,
}

fn snapshot(service: &Service, blue: &Path, green: &Path) -> windows_service::Result<Snapshot> {
    let status = service.query_status()?;
    let config = service.query_config()?;
    let command_line = config.executable_path.into_os_string();
    Ok(Snapshot {
        state: status.current_state,
        exit_code: status.exit_code,
        pid: status.process_id,
        slot: slot_of(&command_line, blue, green),
        command_line,
    })
}

fn kill(pid: u32) {
    let status = Command::new("taskkill")
        .args(["/F", "/T", "/PID", &pid.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    if let Err(e) = status {
        tracing::warn!(pid, "cannot run taskkill: {e}");
    }
}

pub(crate) fn wait_for_stopped(
    service: &Service,
    within: Duration,
) -> windows_service::Result<bool> {
    let deadline = Instant::now() + within;
    loop {
        if service.query_status()?.current_state == WinState::Stopped {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        std::thread::sleep(POLL);
    }
}

#[async_trait]
impl ServiceManager for ScmServiceManager {
    async fn start(&self, slot: Slot) -> Result<(), ServiceError> {
        let info = self.service_info(slot).await?;
        let (blue, green) = (self.slots.dir(Slot::Blue), self.slots.dir(Slot::Green));
        let this = self.clone_handle();
        blocking(move || {
            let start_error = |detail: String| ServiceError::Start { slot, detail };
            let access = ServiceAccess::QUERY_STATUS
                | ServiceAccess::QUERY_CONFIG
                | ServiceAccess::CHANGE_CONFIG
                | ServiceAccess::START;
            let service = this
                .open(access)
                .map_err(|e| manager_error("cannot open the service", e))?
                .ok_or_else(|| {
                    start_error(format!(
                        "the service {} is not installed; install it first",
                        this.options.service_name
                    ))
                })?;
            let now = snapshot(&service, &blue, &green)
                .map_err(|e| manager_error("cannot query the service", e))?;
            if now.state != WinState::Stopped {
                if now.slot == Some(slot) {
                    return Ok(());
                }
                return Err(start_error(format!(
                    "the service already runs {}; stop it first",
                    match now.slot {
                        Some(other) => format!("from slot {other}"),
                        None => format!("as {}", now.command_line.to_string_lossy()),
                    }
                )));
            }
            service
                .change_config(&info)
                .map_err(|e| start_error(format!("cannot point the service at the slot: {e}")))?;
            this.stopped_by_us.store(false, Ordering::SeqCst);
            match service.start::<&OsStr>(&[]) {
                Ok(()) => Ok(()),
                Err(e) if win32_code(&e) == Some(ERROR_SERVICE_ALREADY_RUNNING) => Ok(()),
                Err(e) => Err(start_error(e.to_string())),
            }
        })
        .await
    }

    async fn stop(&self) -> Result<(), ServiceError> {
        let this = self.clone_handle();
        let grace = self.options.stop_grace;
        blocking(move || {
            let stop_error =
                |what: &str, e: windows_service::Error| ServiceError::Stop(format!("{what}: {e}"));
            let Some(service) = this
                .open(ServiceAccess::QUERY_STATUS | ServiceAccess::STOP)
                .map_err(|e| stop_error("cannot open the service", e))?
            else {
                return Ok(());
            };
            this.stopped_by_us.store(true, Ordering::SeqCst);
            let status = service
                .query_status()
                .map_err(|e| stop_error("cannot query the service", e))?;
            if status.current_state == WinState::Stopped {
                return Ok(());
            }
            let pid = status.process_id;
            match service.stop() {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        win32_code(&e),
                        Some(ERROR_SERVICE_NOT_ACTIVE | ERROR_SERVICE_CANNOT_ACCEPT_CTRL)
                    ) => {}
                Err(e) => return Err(stop_error("cannot stop the service", e)),
            }
            if wait_for_stopped(&service, grace)
                .map_err(|e| stop_error("cannot query the service", e))?
            {
                return Ok(());
            }
            let Some(pid) = pid else {
                return Err(ServiceError::Stop(format!(
                    "the service did not stop within {}s and its process is unknown",
                    grace.as_secs()
                )));
            };
            tracing::warn!(
                pid,
                "the SpaceFuel service did not stop within its grace period: killing it"
            );
            kill(pid);
            if wait_for_stopped(&service, KILL_WAIT)
                .map_err(|e| stop_error("cannot query the service", e))?
            {
                Ok(())
            } else {
                Err(ServiceError::Stop(format!(
                    "the service (pid {pid}) is still running after it was killed"
                )))
            }
        })
        .await
    }

    async fn state(&self) -> ServiceState {
        let (blue, green) = (self.slots.dir(Slot::Blue), self.slots.dir(Slot::Green));
        let this = self.clone_handle();
        let queried = blocking(move || {
            let Some(service) = this
                .open(ServiceAccess::QUERY_STATUS | ServiceAccess::QUERY_CONFIG)
                .map_err(|e| manager_error("cannot open the service", e))?
            else {
                return Ok(None);
            };
            snapshot(&service, &blue, &green)
                .map(Some)
                .map_err(|e| manager_error("cannot query the service", e))
        })
        .await;
        let now = match queried {
            Ok(Some(now)) => now,
            Ok(None) => return ServiceState::NotInstalled,
            Err(e) => {
                return ServiceState::Failed {
                    reason: e.to_string(),
                };
            }
        };
        let Some(slot) = now.slot else {
            if now.state == WinState::Stopped {
                return ServiceState::Stopped;
            }
            return ServiceState::Failed {
                reason: format!(
                    "the service runs {}, which is in no slot",
                    now.command_line.to_string_lossy()
                ),
            };
        };
        match now.state {
            WinState::StartPending | WinState::ContinuePending => ServiceState::Starting { slot },
            WinState::Running
            | WinState::StopPending
            | WinState::PausePending
            | WinState::Paused => ServiceState::Running { slot, pid: now.pid },
            WinState::Stopped => match now.exit_code {
                _ if self.stopped_by_us.load(Ordering::SeqCst) => ServiceState::Stopped,
                ServiceExitCode::Win32(0) => ServiceState::Stopped,
                ServiceExitCode::Win32(code) => ServiceState::Failed {
                    reason: format!("exited with Windows error {code}"),
                },
                ServiceExitCode::ServiceSpecific(code) => ServiceState::Failed {
                    reason: format!("exited with status {code}"),
                },
            },
        }
    }
}

impl ScmServiceManager {
    /// What a blocking job needs, owned.
    fn clone_handle(&self) -> ScmServiceManager {
        ScmServiceManager {
            slots: Arc::clone(&self.slots),
            options: self.options.clone(),
            stopped_by_us: Arc::clone(&self.stopped_by_us),
        }
    }
}
