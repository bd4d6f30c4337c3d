//! The host of a service as a Windows service: register it
//! ([`install_host_service`]), remove it ([`uninstall_host_service`]), and run
//! inside it when the Service Control Manager starts the program
//! ([`run_host_service`]). Thin glue over `windows-service`; every call
//! blocks.
//!
//! The host is installed outside the blue/green slots: its registration never
//! changes when a slot is switched (the host supervises the slot's worker
//! itself), so unlike [`ScmServiceManager`](crate::ScmServiceManager) nothing
//! here knows about slots.

use std::ffi::OsString;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use windows_service::service::{
    ServiceAccess, ServiceControl, ServiceControlAccept, ServiceErrorControl, ServiceExitCode,
    ServiceInfo, ServiceStartType, ServiceState, ServiceStatus, ServiceType,
};
use windows_service::service_control_handler::{
    self, ServiceControlHandlerResult, ServiceStatusHandle,
};
use windows_service::service_manager::{ServiceManager as Scm, ServiceManagerAccess};

use crate::scm::{
    ERROR_SERVICE_CANNOT_ACCEPT_CTRL, ERROR_SERVICE_DOES_NOT_EXIST, ERROR_SERVICE_EXISTS,
    ERROR_SERVICE_NOT_ACTIVE, set_recovery_actions, wait_for_stopped, win32_code,
};

/// `StartServiceCtrlDispatcher` fails with this when the process was not
/// started by the Service Control Manager (a console, a script).
const ERROR_FAILED_SERVICE_CONTROLLER_CONNECT: i32 = 1063;
/// How long [`uninstall_host_service`] waits for the service to stop.
const UNINSTALL_STOP_WAIT: Duration = Duration::from_secs(30);
/// The wait hint of StartPending and StopPending; while stopping, the
/// checkpoint advances every [`STOP_HEARTBEAT`], so a graceful stop may take
/// longer than this without the SCM taking the service for hung.
const PENDING_WAIT_HINT: Duration = Duration::from_secs(10);
const STOP_HEARTBEAT: Duration = Duration::from_secs(2);

/// How the host is registered: auto start, LocalSystem, its own process,
/// with the recovery actions of [`ScmServiceManager`](crate::ScmServiceManager)
/// (restart after 5 s, twice, then none; the count resets after a day).
#[derive(Debug, Clone)]
pub struct HostServiceSpec {
    /// The service's name (`sc query <name>`).
    pub name: String,
    pub display_name: String,
    pub description: String,
    /// The program the SCM starts: an absolute path, outside the slots.
    pub executable: PathBuf,
    /// Its arguments (each quoted by the SCM registration as needed).
    pub args: Vec<OsString>,
}

/// What [`install_host_service`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostInstalled {
    /// The service was registered.
    Created,
    /// The service existed: its command line, description and recovery
    /// actions were updated (a running service uses them from its next start).
    Updated,
}

/// What [`uninstall_host_service`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostUninstalled {
    /// The service was removed; `stopped` says it was running and was
    /// stopped first.
    Removed { stopped: bool },
    /// No service of that name is registered.
    NotInstalled,
}

/// Why a host-service operation failed.
#[derive(Debug)]
pub enum HostServiceError {
    /// [`run_host_service`] in a process the Service Control Manager did not
    /// start (for example from a console).
    NotStartedByScm,
    /// A Service Control Manager call failed (often: not run as administrator).
    Scm(String),
}

impl fmt::Display for HostServiceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostServiceError::NotStartedByScm => {
                f.write_str("this process was not started by the Windows Service Control Manager")
            }
            HostServiceError::Scm(detail) => f.write_str(detail),
        }
    }
}

impl std::error::Error for HostServiceError {}

fn scm_error(what: &str, e: windows_service::Error) -> HostServiceError {
    HostServiceError::Scm(format!("{what}: {e}"))
}

/// Registers the host service (or updates the registration when it exists).
/// Does not start it. Needs administrator rights.
pub fn install_host_service(spec: &HostServiceSpec) -> Result<HostInstalled, HostServiceError> {
    let info = ServiceInfo {
        name: OsString::from(&spec.name),
        display_name: OsString::from(&spec.display_name),
        service_type: ServiceType::OWN_PROCESS,
        start_type: ServiceStartType::AutoStart,
        error_control: ServiceErrorControl::Normal,
        executable_path: spec.executable.clone(),
        launch_arguments: spec.args.clone(),
        dependencies: Vec::new(),
        account_name: None,
        account_password: None,
    };
    let scm = Scm::local_computer(
        None::<&str>,
        ServiceManagerAccess::CONNECT | ServiceManagerAccess::CREATE_SERVICE,
    )
    .map_err(|e| scm_error("cannot open the Service Control Manager", e))?;
    let access = ServiceAccess::CHANGE_CONFIG
        | ServiceAccess::QUERY_CONFIG
        | ServiceAccess::QUERY_STATUS
        | ServiceAccess::START;
    let (service, done) = match scm.create_service(&info, access) {
        Ok(service) => (service, HostInstalled::Created),
        Err(e) if win32_code(&e) == Some(ERROR_SERVICE_EXISTS) => {
            let service = scm
                .open_service(&info.name, access)
                .map_err(|e| scm_error("cannot open the service", e))?;
            service
                .change_config(&info)
                .map_err(|e| scm_error("cannot update the service", e))?;
            (service, HostInstalled::Updated)
        }
        Err(e) => return Err(scm_error("cannot create the service", e)),
    };
    service
        .set_description(&spec.description)
        .map_err(|e| scm_error("cannot describe the service", e))?;
    set_recovery_actions(&service).map_err(|e| scm_error("cannot set the recovery actions", e))?;
    Ok(done)
}

/// Stops the service `name` if it runs (waiting up to 30 s for it to stop),
/// then removes its registration. Not registered is fine; a service that does
/// not stop in time is an error and stays registered. Needs administrator
/// rights.
pub fn uninstall_host_service(name: &str) -> Result<HostUninstalled, HostServiceError> {
    let scm = Scm::local_computer(None::<&str>, ServiceManagerAccess::CONNECT)
        .map_err(|e| scm_error("cannot open the Service Control Manager", e))?;
    let access = ServiceAccess::QUERY_STATUS | ServiceAccess::STOP | ServiceAccess::DELETE;
    let service = match scm.open_service(name, access) {
        Ok(service) => service,
        Err(e) if win32_code(&e) == Some(ERROR_SERVICE_DOES_NOT_EXIST) => {
            return Ok(HostUninstalled::NotInstalled);
        }
        Err(e) => return Err(scm_error("cannot open the service", e)),
    };
    let status = service
        .query_status()
        .map_err(|e| scm_error("cannot query the service", e))?;
    let running = status.current_state != ServiceState::Stopped;
    if running {
        match service.stop() {
            Ok(_) => {}
            Err(e)
                if matches!(
                    win32_code(&e),
                    Some(ERROR_SERVICE_NOT_ACTIVE | ERROR_SERVICE_CANNOT_ACCEPT_CTRL)
                ) => {}
            Err(e) => return Err(scm_error("cannot stop the service", e)),
        }
        let stopped = wait_for_stopped(&service, UNINSTALL_STOP_WAIT)
            .map_err(|e| scm_error("cannot query the service", e))?;
        if !stopped {
            return Err(HostServiceError::Scm(format!(
                "the service {name} did not stop within {}s; it was not removed",
                UNINSTALL_STOP_WAIT.as_secs()
            )));
        }
    }
    service
        .delete()
        .map_err(|e| scm_error("cannot delete the service", e))?;
    Ok(HostUninstalled::Removed { stopped: running })
}

/// What the service's main function runs, handed over by [`run_host_service`].
struct Job {
    name: String,
    on_stop: Box<dyn Fn() + Send + Sync>,
    body: Box<dyn FnOnce() -> u32 + Send>,
}

/// The job of the one service this process hosts: `define_windows_service!`
/// needs a plain function, so the closures wait here (no `unsafe`).
static JOB: Mutex<Option<Job>> = Mutex::new(None);
/// Set by the service's main function when it could not run the job.
static FAILURE: Mutex<Option<HostServiceError>> = Mutex::new(None);

/// The generated `extern "system"` entry point of the service (the macro's
/// own `unsafe`, parsing the SCM's arguments, is `windows-service`'s: the
/// workspace's `unsafe_code = "deny"` holds here without an `allow`).
mod entry {
    windows_service::define_windows_service!(ffi_service_main, service_main);

    fn service_main(_arguments: Vec<std::ffi::OsString>) {
        super::service_main();
    }

    /// Runs the SCM's dispatcher with this entry point until the service
    /// has stopped.
    pub(super) fn dispatch(name: &str) -> windows_service::Result<()> {
        windows_service::service_dispatcher::start(name, ffi_service_main)
    }
}

/// Runs this process as the Windows service `name`: connects to the Service
/// Control Manager, reports StartPending then Running (accepting Stop and
/// Shutdown), and runs `body` on the service's thread. Stop and Shutdown
/// report StopPending and call `on_stop` (once), which must make `body`
/// finish gracefully; the checkpoint advances every 2 s until it has. What
/// `body` returns is the service's exit code: 0 is a clean stop, anything
/// else a service-specific error, which the recovery actions restart (a
/// panic in `body` is exit code 1). Returns once the service has stopped.
///
/// Call it once, from `main`, outside any async runtime (it blocks the
/// thread). In a process the SCM did not start it returns
/// [`HostServiceError::NotStartedByScm`] at once, without running `body`.
pub fn run_host_service<S, B>(name: &str, on_stop: S, body: B) -> Result<(), HostServiceError>
where
    S: Fn() + Send + Sync + 'static,
    B: FnOnce() -> u32 + Send + 'static,
{
    {
        let mut job = JOB.lock().unwrap_or_else(PoisonError::into_inner);
        if job.is_some() {
            return Err(HostServiceError::Scm(
                "run_host_service is already running in this process".to_owned(),
            ));
        }
        *job = Some(Job {
            name: name.to_owned(),
            on_stop: Box::new(on_stop),
            body: Box::new(body),
        });
    }
    let started = entry::dispatch(name);
    // Not started by the SCM, the job never ran: drop it either way.
    drop(JOB.lock().unwrap_or_else(PoisonError::into_inner).take());
    match started {
        Ok(()) => {}
        Err(e) if win32_code(&e) == Some(ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) => {
            return Err(HostServiceError::NotStartedByScm);
        }
        Err(e) => {
            return Err(scm_error(
                "cannot connect to the Service Control Manager",
                e,
            ));
        }
    }
    match FAILURE
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take()
    {
        Some(failure) => Err(failure),
        None => Ok(()),
    }
}

/// The service's main function (on a thread of the SCM's dispatcher).
fn service_main() {
    let Some(job) = JOB.lock().unwrap_or_else(PoisonError::into_inner).take() else {
        return;
    };
    if let Err(e) = run_job(job) {
        tracing::error!("the service could not run: {e}");
        *FAILURE.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
    }
}

/// Where the service is in its life, for the reports to the SCM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Stopping { checkpoint: u32 },
    Stopped,
}

/// Reports the service's status; shared by the service's thread, the control
/// handler and the stop heartbeat, so a late StopPending never follows
/// Stopped.
struct Reporter {
    handle: ServiceStatusHandle,
    phase: Mutex<Phase>,
}

impl Reporter {
    fn report(
        &self,
        state: ServiceState,
        accept: ServiceControlAccept,
        exit_code: ServiceExitCode,
        checkpoint: u32,
    ) -> windows_service::Result<()> {
        let pending = matches!(
            state,
            ServiceState::StartPending | ServiceState::StopPending
        );
        self.handle.set_service_status(ServiceStatus {
            service_type: ServiceType::OWN_PROCESS,
            current_state: state,
            controls_accepted: accept,
            exit_code,
            checkpoint,
            wait_hint: if pending {
                PENDING_WAIT_HINT
            } else {
                Duration::ZERO
            },
            process_id: None,
        })
    }

    /// Stop or Shutdown: StopPending, and true the first time.
    fn begin_stop(&self) -> bool {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        if *phase != Phase::Running {
            return false;
        }
        *phase = Phase::Stopping { checkpoint: 1 };
        self.stop_pending(1);
        true
    }

    /// While stopping: advance the checkpoint; false once stopped.
    fn heartbeat(&self) -> bool {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        match *phase {
            Phase::Stopping { checkpoint } => {
                let checkpoint = checkpoint.saturating_add(1);
                *phase = Phase::Stopping { checkpoint };
                self.stop_pending(checkpoint);
                true
            }
            Phase::Running | Phase::Stopped => false,
        }
    }

    fn stop_pending(&self, checkpoint: u32) {
        let reported = self.report(
            ServiceState::StopPending,
            ServiceControlAccept::empty(),
            ServiceExitCode::Win32(0),
            checkpoint,
        );
        if let Err(e) = reported {
            tracing::warn!("cannot report StopPending to the Service Control Manager: {e}");
        }
    }

    fn stopped(&self, code: u32) -> windows_service::Result<()> {
        let mut phase = self.phase.lock().unwrap_or_else(PoisonError::into_inner);
        *phase = Phase::Stopped;
        let exit_code = match code {
            0 => ServiceExitCode::Win32(0),
            code => ServiceExitCode::ServiceSpecific(code),
        };
        self.report(
            ServiceState::Stopped,
            ServiceControlAccept::empty(),
            exit_code,
            0,
        )
    }
}

fn run_job(job: Job) -> Result<(), HostServiceError> {
    let Job {
        name,
        on_stop,
        body,
    } = job;
    let on_stop: Arc<dyn Fn() + Send + Sync> = Arc::from(on_stop);
    // The control handler needs the reporter, which needs the handle that
    // registering the handler returns.
    let reporter: Arc<std::sync::OnceLock<Arc<Reporter>>> = Arc::default();
    let handler = {
        let (reporter, on_stop) = (Arc::clone(&reporter), Arc::clone(&on_stop));
        move |control| match control {
            ServiceControl::Stop | ServiceControl::Shutdown => {
                if let Some(reporter) = reporter.get()
                    && reporter.begin_stop()
                {
                    let beat = Arc::clone(reporter);
                    std::thread::spawn(move || {
                        loop {
                            std::thread::sleep(STOP_HEARTBEAT);
                            if !beat.heartbeat() {
                                return;
                            }
                        }
                    });
                    on_stop();
                }
                ServiceControlHandlerResult::NoError
            }
            ServiceControl::Interrogate => ServiceControlHandlerResult::NoError,
            _ => ServiceControlHandlerResult::NotImplemented,
        }
    };
    let handle = service_control_handler::register(&name, handler)
        .map_err(|e| scm_error("cannot register the service's control handler", e))?;
    let this = Arc::new(Reporter {
        handle,
        phase: Mutex::new(Phase::Running),
    });
    let _ = reporter.set(Arc::clone(&this));
    let accept = ServiceControlAccept::STOP | ServiceControlAccept::SHUTDOWN;
    let started = this
        .report(
            ServiceState::StartPending,
            ServiceControlAccept::empty(),
            ServiceExitCode::Win32(0),
            1,
        )
        .and_then(|()| this.report(ServiceState::Running, accept, ServiceExitCode::Win32(0), 0));
    if let Err(e) = started {
        let _ = this.stopped(1);
        return Err(scm_error("cannot report the service as running", e));
    }
    let code = catch_unwind(AssertUnwindSafe(body)).unwrap_or_else(|_| {
        tracing::error!("the service panicked");
        1
    });
    this.stopped(code)
        .map_err(|e| scm_error("cannot report Stopped", e))
}
