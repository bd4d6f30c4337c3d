//! Contract suite of [`ServiceManager`]; stamp it with
//! [`crate::service_manager_suite!`].
//!
//! The manager runs real programs: the cases write small `#!/bin/sh` programs
//! into the slots (Unix only, like this module) and watch them through files
//! they write in their working directory, which must be the slot directory:
//!
//! - `started` (the program's pid) once it runs and is ready to be stopped;
//! - `stopped` (its pid) when it stopped gracefully on `SIGTERM`.
//!
//! The factory returns a [`ServiceFixture`]: the manager under test, the
//! [`SlotFs`] it reads, and a way to mark a slot complete (as a finished
//! extraction would). Its stop grace should be short (about a second): one
//! case waits for it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use spacepos_config::Slot;
use spacepos_spacefuel::{ServiceError, ServiceManager, ServiceState, SlotFs, SlotManifest};

/// The entry every case installs, relative to the slot.
pub const ENTRY: &str = "bin/spacefuel-service";
/// Written by a case's program, in its working directory, once it runs.
pub const STARTED: &str = "started";
/// Written by a case's program when it stopped gracefully.
pub const STOPPED: &str = "stopped";
/// The exit status of [`Program::ExitsAtOnce`].
pub const EXIT_STATUS: i32 = 3;

/// How long a case waits for something a program does.
const PATIENCE: Duration = Duration::from_secs(15);

/// What a case needs around the manager under test.
#[async_trait]
pub trait ServiceFixture: Send + Sync {
    /// The manager under test; it runs the slots of [`ServiceFixture::slots`].
    fn manager(&self) -> Arc<dyn ServiceManager>;
    /// The slots the manager reads.
    fn slots(&self) -> Arc<dyn SlotFs>;
    /// Marks `slot` as a complete installation described by `manifest`, its
    /// files being in place in `slots().dir(slot)`, as a finished
    /// `SlotFs::extract` would.
    async fn complete(&self, slot: Slot, manifest: SlotManifest);
}

/// The programs the cases install.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Program {
    /// A well-behaved service: runs (up to a minute) until `SIGTERM`, then
    /// writes [`STOPPED`] and exits 0.
    Service,
    /// Ignores `SIGTERM`: only a kill ends it (within a minute anyway).
    IgnoresTerm,
    /// Exits with [`EXIT_STATUS`] at once.
    ExitsAtOnce,
}

impl Program {
    /// The program's `#!/bin/sh` text.
    pub fn script(self) -> &'static str {
        match self {
            Program::Service => concat!(
                "#!/bin/sh\n",
                "trap 'echo $$ > stopped.tmp && mv stopped.tmp stopped; kill $sleeper 2>/dev/null; exit 0' TERM\n",
                "sleep 60 &\n",
                "sleeper=$!\n",
                "echo $$ > started.tmp && mv started.tmp started\n",
                "wait $sleeper\n",
            ),
            Program::IgnoresTerm => concat!(
                "#!/bin/sh\n",
                "trap '' TERM\n",
                "echo $$ > started.tmp && mv started.tmp started\n",
                "exec sleep 60\n",
            ),
            Program::ExitsAtOnce => concat!(
                "#!/bin/sh\n",
                "echo $$ > started.tmp && mv started.tmp started\n",
                "exit 3\n",
            ),
        }
    }
}

/// Writes `program` as the slot's [`ENTRY`] (executable) and removes the
/// marker files of an earlier run. The slot is not marked complete.
pub fn write_program(slots: &dyn SlotFs, slot: Slot, program: Program) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let dir = slots.dir(slot);
    let path = dir.join(ENTRY);
    let parent = path.parent().unwrap_or(&dir);
    std::fs::create_dir_all(parent).expect("create the slot's bin dir");
    for marker in [STARTED, STOPPED] {
        let _ = std::fs::remove_file(dir.join(marker));
    }
    std::fs::write(&path, program.script()).expect("write the program");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// Installs `program` as a complete installation of `slot`.
pub async fn install(fixture: &dyn ServiceFixture, slot: Slot, program: Program) {
    write_program(fixture.slots().as_ref(), slot, program);
    fixture
        .complete(
            slot,
            SlotManifest {
                version: "2.3.0".into(),
                entry: ENTRY.into(),
            },
        )
        .await;
}

/// The pid the program in `dir` wrote to `marker`, once it has.
pub async fn wait_for_marker(dir: &Path, marker: &str) -> u32 {
    let path = dir.join(marker);
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(pid) = text.trim().parse()
        {
            return pid;
        }
        assert!(
            Instant::now() < deadline,
            "{} never appeared: the program did not run from its slot",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Whether process `pid` exists and has not ended (a zombie has ended).
pub fn process_is_alive(pid: u32) -> bool {
    if Path::new("/proc/self/stat").exists() {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        return !stat
            .rfind(')')
            .and_then(|at| stat[at + 1..].trim_start().chars().next())
            .is_some_and(|state| matches!(state, 'Z' | 'X' | 'x'));
    }
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The state once it is no longer `Starting`.
async fn settled_state(manager: &dyn ServiceManager) -> ServiceState {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let state = manager.state().await;
        if !matches!(state, ServiceState::Starting { .. }) || Instant::now() >= deadline {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Starts `slot` and checks it runs: `Running { slot, pid }`, the pid being
/// the program's. Returns the pid.
async fn start_and_check(fixture: &dyn ServiceFixture, slot: Slot) -> u32 {
    let manager = fixture.manager();
    manager.start(slot).await.expect("start a complete slot");
    let pid = wait_for_marker(&fixture.slots().dir(slot), STARTED).await;
    match settled_state(manager.as_ref()).await {
        ServiceState::Running {
            slot: running,
            pid: reported,
        } => {
            assert_eq!(running, slot);
            assert_eq!(reported, Some(pid), "the reported pid is the program's");
        }
        other => panic!("expected Running from {slot}, got {other:?}"),
    }
    assert!(process_is_alive(pid));
    pid
}

/// Clause: "`start(slot)` runs the slot's entry program" (from the slot
/// directory), and "`state` reports what runs now": Running, with its pid.
pub async fn case_start_runs_the_slot_and_reports_its_pid(fixture: &dyn ServiceFixture) {
    install(fixture, Slot::Blue, Program::Service).await;
    start_and_check(fixture, Slot::Blue).await;
    fixture.manager().stop().await.expect("stop");
}

/// Clause: "it never starts a slot whose extraction is not complete": a
/// `Start` error naming the slot, and nothing runs.
pub async fn case_an_incomplete_slot_is_never_started(fixture: &dyn ServiceFixture) {
    let slots = fixture.slots();
    write_program(slots.as_ref(), Slot::Green, Program::Service);
    let manager = fixture.manager();
    let e = manager
        .start(Slot::Green)
        .await
        .expect_err("an incomplete slot");
    assert!(
        matches!(
            e,
            ServiceError::Start {
                slot: Slot::Green,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        !matches!(
            manager.state().await,
            ServiceState::Running { .. } | ServiceState::Starting { .. }
        ),
        "nothing runs"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !slots.dir(Slot::Green).join(STARTED).exists(),
        "the program of an incomplete slot ran"
    );
}

/// Clause: "`stop` ends the service gracefully": the program got its stop
/// request and ended by itself; afterwards the state is Stopped and the
/// process is gone.
pub async fn case_stop_ends_the_service_gracefully(fixture: &dyn ServiceFixture) {
    install(fixture, Slot::Blue, Program::Service).await;
    let pid = start_and_check(fixture, Slot::Blue).await;
    let manager = fixture.manager();
    manager.stop().await.expect("stop");
    assert_eq!(manager.state().await, ServiceState::Stopped);
    assert!(!process_is_alive(pid), "pid {pid} still runs after stop");
    let dir = fixture.slots().dir(Slot::Blue);
    assert_eq!(
        wait_for_marker(&dir, STOPPED).await,
        pid,
        "the program stopped gracefully"
    );
}

/// Clause: "stopping a stopped service is fine": before any start, and
/// twice after one.
pub async fn case_stopping_a_stopped_service_is_fine(fixture: &dyn ServiceFixture) {
    let manager = fixture.manager();
    manager.stop().await.expect("stop before any start");
    assert_eq!(manager.state().await, ServiceState::Stopped);
    install(fixture, Slot::Green, Program::Service).await;
    start_and_check(fixture, Slot::Green).await;
    manager.stop().await.expect("stop");
    manager.stop().await.expect("stop again");
    assert_eq!(manager.state().await, ServiceState::Stopped);
}

/// Clause: "and forcibly after a grace period": a program ignoring the
/// stop request is killed; stop succeeds and nothing runs.
pub async fn case_a_service_ignoring_the_stop_request_is_killed(fixture: &dyn ServiceFixture) {
    install(fixture, Slot::Blue, Program::IgnoresTerm).await;
    let pid = start_and_check(fixture, Slot::Blue).await;
    let manager = fixture.manager();
    manager.stop().await.expect("stop kills it");
    assert_eq!(manager.state().await, ServiceState::Stopped);
    assert!(!process_is_alive(pid), "pid {pid} still runs after stop");
    assert!(!fixture.slots().dir(Slot::Blue).join(STOPPED).exists());
}

/// Clause: "`state` reports what runs now, including a crash after a
/// start": Failed, with the exit status in the reason; stopping it is fine.
pub async fn case_a_service_that_dies_is_failed_with_its_status(fixture: &dyn ServiceFixture) {
    install(fixture, Slot::Green, Program::ExitsAtOnce).await;
    let manager = fixture.manager();
    manager.start(Slot::Green).await.expect("start");
    wait_for_marker(&fixture.slots().dir(Slot::Green), STARTED).await;
    let deadline = Instant::now() + PATIENCE;
    let reason = loop {
        match manager.state().await {
            ServiceState::Failed { reason } => break reason,
            other => assert!(
                Instant::now() < deadline,
                "expected Failed after the program exited, got {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        reason.contains(&EXIT_STATUS.to_string()),
        "the reason names the exit status {EXIT_STATUS}: {reason}"
    );
    manager.stop().await.expect("stopping a failed service");
}

/// Clauses: "`stop` ends the service" then "`start(slot)` runs the slot's
/// entry program", across slots (a blue/green switch): the other slot runs,
/// the first one no longer does.
pub async fn case_start_after_stop_runs_the_other_slot(fixture: &dyn ServiceFixture) {
    install(fixture, Slot::Blue, Program::Service).await;
    install(fixture, Slot::Green, Program::Service).await;
    let blue = start_and_check(fixture, Slot::Blue).await;
    let manager = fixture.manager();
    manager.stop().await.expect("stop blue");
    let green = start_and_check(fixture, Slot::Green).await;
    assert_ne!(blue, green);
    assert!(!process_is_alive(blue), "blue still runs");
    manager.stop().await.expect("stop green");
    assert!(!process_is_alive(green), "green still runs");
}

/// Stamps one `#[tokio::test]` per case of the [`ServiceManager`] suite.
/// `$factory` evaluates to a future of a [`ServiceFixture`].
#[macro_export]
macro_rules! service_manager_suite {
    ($factory:expr) => {
        $crate::service_manager_suite!(@cases $factory;
            case_start_runs_the_slot_and_reports_its_pid,
            case_an_incomplete_slot_is_never_started,
            case_stop_ends_the_service_gracefully,
            case_stopping_a_stopped_service_is_fine,
            case_a_service_ignoring_the_stop_request_is_killed,
            case_a_service_that_dies_is_failed_with_its_status,
            case_start_after_stop_runs_the_other_slot,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let fixture = $factory.await;
                $crate::suites::service_manager::$case(&fixture).await;
            }
        )+
    };
}
