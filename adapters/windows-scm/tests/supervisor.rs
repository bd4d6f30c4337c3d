//! `ProcessSupervisor` specifics beyond the contract suite: options reaching
//! the program, the kill after the grace period, the pid file, and the
//! adoption of a service left running by a supervisor killed with `kill -9`.

#![cfg(unix)]

mod common;

use std::ffi::OsString;
use std::io::BufRead;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spacepos_config::Slot;
use spacepos_spacefuel::{ServiceError, ServiceManager, ServiceState, SlotFs, SlotManifest};
use spacepos_testkit::suites::service_manager::{
    ENTRY, Program, STARTED, STOPPED, ServiceFixture, install, process_is_alive, wait_for_marker,
    write_program,
};
use spacepos_windows_scm::{ProcessSupervisor, SupervisorOptions};

use common::{Fixture, GRACE, TestSlots, slots_root};

/// Set in the helper process this test binary starts: the test's directory.
const HELPER_DIR: &str = "SPACEPOS_SCM_TEST_SUPERVISOR_DIR";
/// Printed by the helper once the service it supervises runs.
const HELPER_READY: &str = "helper: the service runs";

fn manifest() -> SlotManifest {
    SlotManifest {
        version: "2.3.0".into(),
        entry: ENTRY.into(),
    }
}

/// Installs `script` as the complete slot's entry.
fn install_script(fixture: &Fixture, slot: Slot, script: &str) -> PathBuf {
    let dir = fixture.slots.dir(slot);
    let path = dir.join(ENTRY);
    std::fs::create_dir_all(path.parent().expect("bin dir")).expect("bin dir");
    std::fs::write(&path, script).expect("write");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    fixture.slots.complete(slot, &manifest());
    dir
}

fn pid_record(path: &Path) -> Option<serde_json::Value> {
    std::fs::read(path)
        .ok()
        .map(|bytes| serde_json::from_slice(&bytes).expect("pid file json"))
}

async fn wait_until_failed(manager: &dyn ServiceManager) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match manager.state().await {
            ServiceState::Failed { reason } => return reason,
            other => assert!(Instant::now() < deadline, "never Failed: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn args_env_and_log_file_reach_the_program_with_the_slot_expanded() {
    let log = tempfile::tempdir().expect("temp dir");
    let log_file = log.path().join("logs").join("spacefuel.log");
    let fixture = Fixture::new(SupervisorOptions {
        args: [
            "--console",
            "--slot",
            "{slot}",
            "--data-dir",
            "/var/lib/spacepos",
        ]
        .into_iter()
        .map(OsString::from)
        .collect(),
        env: vec![("SPACEFUEL_TEST".into(), "on".into())],
        log_file: Some(log_file.clone()),
        ..SupervisorOptions::default()
    });
    let dir = install_script(
        &fixture,
        Slot::Green,
        concat!(
            "#!/bin/sh\n",
            "echo \"$@\" > args\n",
            "echo \"$SPACEFUEL_TEST\" > env\n",
            "pwd -P > cwd\n",
            "echo to-stdout\n",
            "echo to-stderr >&2\n",
            "echo $$ > started.tmp && mv started.tmp started\n",
            "sleep 60 & wait\n",
        ),
    );
    fixture.supervisor.start(Slot::Green).await.expect("start");
    wait_for_marker(&dir, STARTED).await;
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect(name);
    assert_eq!(
        read("args").trim(),
        "--console --slot green --data-dir /var/lib/spacepos"
    );
    assert_eq!(read("env").trim(), "on");
    assert_eq!(
        PathBuf::from(read("cwd").trim()),
        dir.canonicalize().expect("canonical")
    );
    let logged = std::fs::read_to_string(&log_file).expect("log file");
    assert!(
        logged.contains("to-stdout") && logged.contains("to-stderr"),
        "{logged}"
    );
    fixture.supervisor.stop().await.expect("stop");
}

#[tokio::test]
async fn a_service_ignoring_term_is_killed_with_its_group_after_the_grace() {
    let fixture = Fixture::new(SupervisorOptions::default());
    let dir = install_script(
        &fixture,
        Slot::Blue,
        concat!(
            "#!/bin/sh\n",
            "trap '' TERM\n",
            "sleep 60 &\n",
            "echo $! > grandchild\n",
            "echo $$ > started.tmp && mv started.tmp started\n",
            "while :; do sleep 1; done\n",
        ),
    );
    fixture.supervisor.start(Slot::Blue).await.expect("start");
    let pid = wait_for_marker(&dir, STARTED).await;
    let grandchild: u32 = std::fs::read_to_string(dir.join("grandchild"))
        .expect("grandchild")
        .trim()
        .parse()
        .expect("pid");
    let began = Instant::now();
    fixture.supervisor.stop().await.expect("stop");
    let took = began.elapsed();
    assert!(took >= GRACE, "killed before the grace period: {took:?}");
    assert!(took < GRACE + Duration::from_secs(5), "{took:?}");
    assert!(!process_is_alive(pid), "the service survived");
    // The grandchild was reparented, so another process must reap it.
    let deadline = Instant::now() + Duration::from_secs(5);
    while process_is_alive(grandchild) {
        assert!(Instant::now() < deadline, "its process group survived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(fixture.supervisor.state().await, ServiceState::Stopped);
}

#[tokio::test]
async fn the_pid_file_records_the_running_service_until_it_stops() {
    let fixture = Fixture::new(SupervisorOptions::default());
    assert_eq!(fixture.supervisor.pid_file(), fixture.pid_file());
    install(&fixture, Slot::Green, Program::Service).await;
    fixture.supervisor.start(Slot::Green).await.expect("start");
    let pid = wait_for_marker(&fixture.slots.dir(Slot::Green), STARTED).await;
    assert_eq!(
        pid_record(&fixture.pid_file()),
        Some(serde_json::json!({"pid": pid, "slot": "green"}))
    );
    fixture.supervisor.stop().await.expect("stop");
    assert_eq!(pid_record(&fixture.pid_file()), None);
}

#[tokio::test]
async fn starting_the_running_slot_is_ok_and_the_other_slot_is_refused() {
    let fixture = Fixture::new(SupervisorOptions::default());
    install(&fixture, Slot::Blue, Program::Service).await;
    install(&fixture, Slot::Green, Program::Service).await;
    fixture.supervisor.start(Slot::Blue).await.expect("start");
    let pid = wait_for_marker(&fixture.slots.dir(Slot::Blue), STARTED).await;
    fixture.supervisor.start(Slot::Blue).await.expect("again");
    let e = fixture
        .supervisor
        .start(Slot::Green)
        .await
        .expect_err("the other slot while blue runs");
    let ServiceError::Start { slot, detail } = e else {
        panic!("{e:?}");
    };
    assert_eq!(slot, Slot::Green);
    assert!(
        detail.contains("blue") && detail.contains(&pid.to_string()),
        "{detail}"
    );
    assert_eq!(
        fixture.supervisor.state().await,
        ServiceState::Running {
            slot: Slot::Blue,
            pid: Some(pid)
        }
    );
    assert!(!fixture.slots.dir(Slot::Green).join(STARTED).exists());
    fixture.supervisor.stop().await.expect("stop");
}

#[tokio::test]
async fn a_failed_service_says_why_forgets_its_pid_and_can_start_again() {
    let fixture = Fixture::new(SupervisorOptions::default());
    install(&fixture, Slot::Blue, Program::ExitsAtOnce).await;
    fixture.supervisor.start(Slot::Blue).await.expect("start");
    let reason = wait_until_failed(fixture.supervisor.as_ref()).await;
    assert_eq!(reason, "exited with status 3");
    assert_eq!(pid_record(&fixture.pid_file()), None);
    install(&fixture, Slot::Blue, Program::Service).await;
    fixture
        .supervisor
        .start(Slot::Blue)
        .await
        .expect("start again");
    let pid = wait_for_marker(&fixture.slots.dir(Slot::Blue), STARTED).await;
    assert_eq!(
        fixture.supervisor.state().await,
        ServiceState::Running {
            slot: Slot::Blue,
            pid: Some(pid)
        }
    );
    fixture.supervisor.stop().await.expect("stop");
}

#[tokio::test]
async fn a_service_killed_by_a_signal_is_failed_with_the_signal() {
    let fixture = Fixture::new(SupervisorOptions::default());
    install(&fixture, Slot::Blue, Program::Service).await;
    fixture.supervisor.start(Slot::Blue).await.expect("start");
    let pid = wait_for_marker(&fixture.slots.dir(Slot::Blue), STARTED).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    assert_eq!(
        wait_until_failed(fixture.supervisor.as_ref()).await,
        "killed by signal 9"
    );
    fixture
        .supervisor
        .stop()
        .await
        .expect("stop a failed service");
    assert_eq!(fixture.supervisor.state().await, ServiceState::Stopped);
}

#[tokio::test]
async fn a_program_that_cannot_run_is_a_start_error_and_leaves_no_pid_file() {
    let fixture = Fixture::new(SupervisorOptions::default());
    let path = write_program(fixture.slots.as_ref(), Slot::Blue, Program::Service);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    fixture.complete(Slot::Blue, manifest()).await;
    let e = fixture
        .supervisor
        .start(Slot::Blue)
        .await
        .expect_err("not executable");
    let ServiceError::Start { slot, detail } = e else {
        panic!("{e:?}");
    };
    assert_eq!(slot, Slot::Blue);
    assert!(detail.contains(&path.display().to_string()), "{detail}");
    assert_eq!(pid_record(&fixture.pid_file()), None);
    assert_eq!(fixture.supervisor.state().await, ServiceState::Stopped);
}

#[tokio::test]
async fn a_stale_or_damaged_pid_file_is_removed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = slots_root(dir.path());
    std::fs::create_dir_all(&root).expect("root");
    let pid_file = root.join(spacepos_windows_scm::PID_FILE);
    let slots = Arc::new(TestSlots::new(&root));
    let mut ended = Command::new("true").spawn().expect("true");
    let dead = ended.id();
    ended.wait().expect("wait");
    // A dead pid; this test process (alive, but not running from a slot:
    // only Linux can tell); a damaged file.
    let mut records = vec![format!(r#"{{"pid":{dead},"slot":"blue"}}"#)];
    if cfg!(target_os = "linux") {
        records.push(format!(
            r#"{{"pid":{},"slot":"green"}}"#,
            std::process::id()
        ));
    }
    records.push("garbage".to_owned());
    for record in records {
        std::fs::write(&pid_file, &record).expect("write");
        let supervisor = ProcessSupervisor::new(slots.clone(), SupervisorOptions::default());
        assert_eq!(supervisor.state().await, ServiceState::Stopped, "{record}");
        assert!(!pid_file.exists(), "{record} was kept");
        supervisor.stop().await.expect("stop");
    }
}

#[tokio::test]
async fn a_supervisor_adopts_a_live_service_and_sees_it_die() {
    let fixture = Fixture::new(SupervisorOptions::default());
    install(&fixture, Slot::Green, Program::Service).await;
    fixture.supervisor.start(Slot::Green).await.expect("start");
    let pid = wait_for_marker(&fixture.slots.dir(Slot::Green), STARTED).await;
    // A second supervisor over the same slots (as after a restart).
    let second = ProcessSupervisor::new(fixture.slots.clone(), SupervisorOptions::default());
    assert_eq!(
        second.state().await,
        ServiceState::Running {
            slot: Slot::Green,
            pid: Some(pid)
        }
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
    let reason = wait_until_failed(&second).await;
    assert!(reason.contains("exit status unknown"), "{reason}");
    assert_eq!(pid_record(&fixture.pid_file()), None);
}

#[tokio::test]
async fn a_service_left_by_a_killed_supervisor_is_adopted_and_stopped() {
    let fixture = Fixture::new(SupervisorOptions::default());
    install(&fixture, Slot::Blue, Program::Service).await;
    let exe = std::env::current_exe().expect("test binary");
    let mut helper = Command::new(exe)
        .args([
            "--exact",
            "supervisor_in_a_helper_process",
            "--test-threads=1",
            "--nocapture",
        ])
        .env(HELPER_DIR, fixture.dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn the helper");
    let stdout = helper.stdout.take().expect("stdout");
    let mut seen = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.expect("helper output");
        if line.ends_with(HELPER_READY) {
            break;
        }
        seen.push(line);
    }
    assert!(
        helper.try_wait().expect("try_wait").is_none(),
        "the helper ended: {seen:?}"
    );
    helper.kill().expect("kill -9 the helper supervisor");
    helper.wait().expect("reap the helper");

    let dir = fixture.slots.dir(Slot::Blue);
    let pid = wait_for_marker(&dir, STARTED).await;
    assert!(
        process_is_alive(pid),
        "the service died with its supervisor"
    );
    let adopter = ProcessSupervisor::new(
        fixture.slots.clone(),
        SupervisorOptions {
            stop_grace: GRACE,
            ..SupervisorOptions::default()
        },
    );
    assert_eq!(
        adopter.state().await,
        ServiceState::Running {
            slot: Slot::Blue,
            pid: Some(pid)
        }
    );
    adopter.stop().await.expect("stop the adopted service");
    assert!(!process_is_alive(pid), "the adopted service still runs");
    assert_eq!(
        wait_for_marker(&dir, STOPPED).await,
        pid,
        "stopped gracefully"
    );
    assert_eq!(adopter.state().await, ServiceState::Stopped);
    assert_eq!(pid_record(&fixture.pid_file()), None);
}

/// Does nothing in a normal run. In the helper process started by the test
/// above: a supervisor starts blue, says so, and waits to be killed.
#[tokio::test]
async fn supervisor_in_a_helper_process() {
    let Some(dir) = std::env::var_os(HELPER_DIR).map(PathBuf::from) else {
        return;
    };
    let slots = Arc::new(TestSlots::new(&slots_root(&dir)));
    let supervisor = ProcessSupervisor::new(
        slots.clone(),
        SupervisorOptions {
            // Not our stdout: the parent test reads it until it sees READY.
            log_file: Some(dir.join("service.log")),
            ..SupervisorOptions::default()
        },
    );
    supervisor
        .start(Slot::Blue)
        .await
        .expect("start in the helper");
    wait_for_marker(&slots.dir(Slot::Blue), STARTED).await;
    println!("{HELPER_READY}");
    tokio::time::sleep(Duration::from_secs(60)).await;
    panic!("the parent test never killed this helper");
}
