//! Helpers of the CLI end-to-end tests: run `spacepos` as a process, and run
//! `spacepos erp-sim` as another process, controlled through its admin API.

#![allow(dead_code, unreachable_pub, clippy::unwrap_used)] // shared by several test crates; test code

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_spacepos");

/// What a finished `spacepos` run printed.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> &Self {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

/// A data directory plus the environment a `spacepos` run gets.
pub struct Node {
    pub dir: tempfile::TempDir,
    pub env: Vec<(String, String)>,
}

impl Node {
    pub fn new() -> Node {
        Node {
            dir: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, "")
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: &str) -> Run {
        let mut cmd = Command::new(BIN);
        cmd.arg("--data-dir").arg(self.path()).args(args);
        // A clean environment: nothing of the developer's SPACEPOS_* leaks in.
        cmd.env_clear();
        for key in ["PATH", "HOME", "TMPDIR"] {
            if let Ok(v) = std::env::var(key) {
                cmd.env(key, v);
            }
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Everything under `logs/`, concatenated.
    pub fn logs(&self) -> String {
        let mut all = String::new();
        if let Ok(entries) = std::fs::read_dir(self.file("logs")) {
            for e in entries.flatten() {
                all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        all
    }

    /// The client secret stored at onboarding.
    pub fn client_secret(&self) -> String {
        let text = std::fs::read_to_string(self.file("terminal.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["client_secret"].as_str().unwrap().to_owned()
    }
}

/// A free loopback port (bound and released: good enough for tests).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `spacepos erp-sim` running as its own process; killed on drop.
pub struct ErpSim {
    child: Child,
    pub url: String,
    pub port: u16,
    http: reqwest::Client,
}

impl ErpSim {
    pub fn start() -> ErpSim {
        Self::start_on(free_port())
    }

    pub fn start_on(port: u16) -> ErpSim {
        let mut child = Command::new(BIN)
            .args(["erp-sim", "--listen", &format!("127.0.0.1:{port}")])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let deadline = Instant::now() + Duration::from_secs(20);
        let url = loop {
            assert!(Instant::now() < deadline, "erp-sim did not start");
            let line = lines.next().expect("erp-sim exited").unwrap();
            if let Some(url) = line.strip_prefix("ERP simulator listening on ") {
                break url.trim().to_owned();
            }
        };
        // Keep draining stdout so the simulator never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        ErpSim {
            child,
            url,
            port,
            http: reqwest::Client::new(),
        }
    }

    pub async fn admin_get(&self, path: &str) -> serde_json::Value {
        let r = self
            .http
            .get(format!("{}/__admin/{path}", self.url))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.unwrap()
    }

    pub async fn admin_post(&self, path: &str, body: serde_json::Value) -> serde_json::Value {
        let r = self
            .http
            .post(format!("{}/__admin/{path}", self.url))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "POST {path}: {}", r.status());
        r.json().await.unwrap_or(serde_json::Value::Null)
    }

    pub async fn new_code(&self, terminal: u32) -> String {
        let v = self
            .admin_post(
                "onboarding-codes",
                serde_json::json!({"storeNumber": 12, "terminalNumber": terminal}),
            )
            .await;
        v["code"].as_str().unwrap().to_owned()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ErpSim {
    fn drop(&mut self) {
        self.kill();
    }
}
