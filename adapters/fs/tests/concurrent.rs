//! `FileStateStore::update` from many tasks and from several OS processes
//! loses nothing.

mod common;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use spacepos_config::StateStore;
use spacepos_fs::FileStateStore;

use common::{bump, counter};

/// Set in the child processes this test binary starts: the data directory.
const CHILD_DIR: &str = "SPACEPOS_FS_TEST_CHILD_DIR";
const UPDATES_PER_PROCESS: u64 = 40;
/// Created by the parent when the children may start updating.
const GO: &str = "go";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_from_many_tasks_lose_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Arc::new(FileStateStore::new(dir.path()));
    // A second handle on the same directory: only the file lock orders them.
    let other = Arc::new(FileStateStore::new(dir.path()));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..32 {
        let store = if i % 2 == 0 {
            Arc::clone(&store)
        } else {
            Arc::clone(&other)
        };
        tasks.spawn(async move {
            for _ in 0..3 {
                store.update(Box::new(bump)).await.expect("update");
            }
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.expect("task");
    }
    assert_eq!(counter(&store.load().await.expect("load").state), 96);
}

#[tokio::test]
async fn concurrent_updates_from_several_processes_lose_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FileStateStore::new(dir.path());
    let first = store.load().await.expect("create").state;

    let exe = std::env::current_exe().expect("test binary");
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&exe)
                .args([
                    "--exact",
                    "child_process_updates",
                    "--test-threads=1",
                    "--nocapture",
                ])
                .env(CHILD_DIR, dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn child")
        })
        .collect();
    // Start all three processes' updates together.
    std::fs::write(dir.path().join(GO), b"").expect("go");
    for _ in 0..UPDATES_PER_PROCESS {
        store.update(Box::new(bump)).await.expect("update");
    }
    for child in children {
        let out = child.wait_with_output().expect("wait");
        assert!(
            out.status.success(),
            "a child process failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let last = store.load().await.expect("load").state;
    assert_eq!(counter(&last), 3 * UPDATES_PER_PROCESS);
    assert_eq!(last.instance_id, first.instance_id);
}

/// Does nothing in a normal run; in a child process started by the test
/// above, it updates the shared state.
#[tokio::test]
async fn child_process_updates() {
    let Some(dir) = std::env::var_os(CHILD_DIR).map(PathBuf::from) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !dir.join(GO).exists() {
        assert!(Instant::now() < deadline, "the parent test never said go");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let store = FileStateStore::new(dir);
    for _ in 0..UPDATES_PER_PROCESS {
        store.update(Box::new(bump)).await.expect("update in child");
    }
}
