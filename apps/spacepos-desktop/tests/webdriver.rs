//! The desktop app end to end: the real binary in a real window under Xvfb,
//! driven through WebDriver (`tauri-driver` from crates.io in front of
//! Debian's `WebKitWebDriver`), against the fake ERP over HTTP and the real
//! RabbitMQ. It onboards (a wrong code first), sees a parked operation and
//! retries it, sees the ERP go down and come back, snoozes an update until
//! no snooze is left, watches SpaceFuel's pumps change, logs staff in, and
//! checks that the client secret is nowhere in the DOM. It saves a
//! screenshot of each screen under `target/tmp/screenshots/` (and, with
//! `UPDATE_DOCS_SCREENSHOTS=1`, into `docs/screenshots/`).
//!
//! Needs: `Xvfb` (xvfb), `WebKitWebDriver` (webkit2gtk-driver), `tauri-driver`
//! (`cargo install tauri-driver --locked`) and RabbitMQ on 127.0.0.1:5672;
//! `.ci/run` and `scripts/test` install or start them.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::net::TcpListener;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use spacepos_config::{Slot, SlotRecord, StateStore};
use spacepos_core::ComponentId;
use spacepos_fake_erp::{FakeErp, FakeErpConfig, RejectRule, ReleaseSpec};
use spacepos_spacefuel::{HealthReport, Pump, PumpState};
use spacepos_sync::{Destination, NewOperation, Outbox};

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Two seconds of repaints nobody can see, so that the page draws frames.
const REPAINT: &str = "let n = 0; const t = setInterval(() => { \
    document.body.style.opacity = (n++ % 2) ? '' : '0.999'; \
    if (n > 40) { clearInterval(t); document.body.style.opacity = ''; } }, 50);";

/// A child process killed (and reaped) when dropped; with `group`, its whole
/// process group (tauri-driver's WebKitWebDriver, the app, WebKit's processes).
struct Proc {
    child: Child,
    group: bool,
}

impl Drop for Proc {
    fn drop(&mut self) {
        if self.group {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn step(what: &str) {
    eprintln!("[webdriver] {what}");
}

fn tool(name: &str, install: &str) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        dirs.push(PathBuf::from(home).join("bin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(home).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!("{name} is missing: {install} (.ci/run and scripts/test do this)")
        })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An X server of its own for the window.
fn xvfb() -> (Proc, String) {
    let bin = tool("Xvfb", "apt-get install -y xvfb");
    for n in 90..200 {
        if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists()
            || Path::new(&format!("/tmp/.X{n}-lock")).exists()
        {
            continue;
        }
        let child = Command::new(&bin)
            .args([
                &format!(":{n}"),
                "-screen",
                "0",
                "1280x800x24",
                "-nolisten",
                "tcp",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("Xvfb starts");
        let proc = Proc {
            child,
            group: false,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() {
                return (proc, format!(":{n}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("no Xvfb display could be started");
}

/// A minimal W3C WebDriver client: what this suite needs, nothing more.
struct Session {
    http: reqwest::Client,
    base: String,
}

impl Session {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        let status = resp.status();
        let v: Value = resp.json().await.expect("WebDriver answers JSON");
        assert!(status.is_success(), "{url}: {status} {v}");
        v["value"].clone()
    }

    async fn find(&self, css: &str) -> String {
        let v = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT].as_str().expect("an element id").to_owned()
    }

    async fn click(&self, css: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            Some(json!({})),
        )
        .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let id = self.find(css).await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/clear"),
            Some(json!({})),
        )
        .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Run `script` in the page (its `return` value comes back).
    async fn js(&self, script: &str) -> Value {
        self.call(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// The element's text content and an attribute (a DOM property when
    /// `attribute` starts with `.`), read in the page.
    async fn read(&self, css: &str, attribute: &str) -> (Option<String>, Option<String>) {
        let v = self
            .js(&format!(
                "const e = document.querySelector({css}); const a = {attribute}; \
                 if (!e) return null; \
                 return [e.textContent, a.startsWith('.') ? String(e[a.slice(1)]) : e.getAttribute(a)];",
                css = json!(css),
                attribute = json!(attribute)
            ))
            .await;
        (
            v[0].as_str().map(str::to_owned),
            v[1].as_str().map(str::to_owned),
        )
    }

    async fn text(&self, css: &str) -> String {
        self.read(css, "id").await.0.unwrap_or_default()
    }

    /// Wait (up to `secs`) until `check` holds, reading the page with `read`.
    async fn wait_for(
        &self,
        what: &str,
        secs: u64,
        css: &str,
        attribute: &str,
        check: impl Fn(&str, &str) -> bool,
    ) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let (text, attr) = self.read(css, attribute).await;
            let (text, attr) = (text.unwrap_or_default(), attr.unwrap_or_default());
            if check(&text, &attr) {
                return;
            }
            if Instant::now() > deadline {
                let shot = self.screenshot("failure").await;
                panic!(
                    "timed out after {secs} s waiting for {what}: {css} reads {text:?} ({attribute} = {attr:?}); screenshot {shot:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Save a screenshot of the window. WebKitWebDriver answers a
    /// screenshot after the page's next frame, which an idle page under Xvfb
    /// may never draw: so the page first gets two seconds of invisible
    /// repaints (opacity 0.999 and back), the request has a timeout, and
    /// after three tries the suite goes on without the picture (the
    /// screenshots document; the assertions are the checks).
    async fn screenshot(&self, name: &str) -> Option<PathBuf> {
        for attempt in 1..=3 {
            let _ = self
                .http
                .post(format!("{}/execute/sync", self.base))
                .timeout(Duration::from_secs(5))
                .json(&json!({"script": REPAINT, "args": []}))
                .send()
                .await;
            let url = format!("{}/screenshot", self.base);
            let answer = self
                .http
                .get(&url)
                .timeout(Duration::from_secs(15))
                .send()
                .await;
            let data = match answer {
                Ok(resp) => resp.json::<Value>().await.ok().map(|v| v["value"].clone()),
                Err(_) => None,
            };
            let png = data.and_then(|d| {
                base64::engine::general_purpose::STANDARD
                    .decode(d.as_str().unwrap_or_default())
                    .ok()
            });
            let Some(png) = png.filter(|p| p.starts_with(b"\x89PNG")) else {
                step(&format!(
                    "screenshot {name}: no answer (try {attempt} of 3)"
                ));
                continue;
            };
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
            std::fs::create_dir_all(&dir).unwrap();
            let path = dir.join(format!("{name}.png"));
            std::fs::write(&path, &png).unwrap();
            if std::env::var_os("UPDATE_DOCS_SCREENSHOTS").is_some() && name != "failure" {
                let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
                std::fs::create_dir_all(&docs).unwrap();
                std::fs::write(docs.join(format!("{name}.png")), &png).unwrap();
            }
            step(&format!("screenshot {}", path.display()));
            return Some(path);
        }
        None
    }
}

fn pump(id: u8, state: PumpState) -> Pump {
    Pump {
        id,
        nozzles: Vec::new(),
        state,
    }
}

fn health(pumps: Vec<Pump>) -> HealthReport {
    HealthReport {
        slot: Slot::Blue,
        version: "2.1.0".into(),
        pid: std::process::id(),
        ready: true,
        detail: None,
        at: chrono::Utc::now(),
        pumps,
        sales: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_till_app_onboards_shows_status_snoozes_and_the_forecourt_through_webdriver() {
    let driver_bin = tool("tauri-driver", "cargo install tauri-driver --locked");
    tool("WebKitWebDriver", "apt-get install -y webkit2gtk-driver");
    let (_x, display) = xvfb();

    // The ERP: a code, staff, an update for SpacePOS, a rule that parks one kind of sale.
    let mut config = FakeErpConfig::demo();
    config.amqp_url = Some(AMQP.into());
    let erp = Arc::new(FakeErp::start(config).await.expect("the fake ERP starts"));
    let code = erp.issue_onboarding_code(12, 9);
    erp.add_reject_rule(RejectRule::by_type("fuel.unknown", "unknown_grade"));
    erp.publish_release(
        ReleaseSpec::new(ComponentId::SpacePos, "0.9.0")
            .with_size(256 * 1024)
            .with_notes("Faster receipts"),
    )
    .expect("a release");

    // The node: short loops, the ERP's update key trusted, SpaceFuel installed
    // in blue with its service's last report (as the SpaceFuel service writes them).
    let data = tempfile::tempdir().unwrap();
    let cfg = data.path().join("spacepos.toml");
    std::fs::write(
        &cfg,
        format!(
            "[sync]\ningest_frequency = 2\nsend_frequency = 1\n\n[updates]\ntrusted_keys = [{:?}]\n",
            erp.update_keys().primary.key_line
        ),
    )
    .unwrap();
    let states = spacepos_fs::FileStateStore::new(data.path());
    states
        .update(Box::new(|s| {
            s.spacefuel.active_slot = Some(Slot::Blue);
            s.spacefuel.blue = Some(SlotRecord {
                version: "2.1.0".into(),
                verified: true,
                installed_at: chrono::Utc::now(),
            });
        }))
        .await
        .expect("state.json");
    let ext = data.path().join("extensions").join("spacefuel");
    spacepos_fs::write_health_report(
        &ext,
        &health(vec![
            pump(1, PumpState::Idle),
            pump(
                2,
                PumpState::Fuelling {
                    nozzle: 1,
                    volume_ml: 12_400,
                    amount_minor: 2356,
                },
            ),
            pump(3, PumpState::Payable),
            pump(
                4,
                PumpState::Error {
                    reason: "no answer from the pump".into(),
                },
            ),
        ]),
    )
    .unwrap();

    // tauri-driver, which starts WebKitWebDriver, which starts the app.
    let port = free_port();
    let native = free_port();
    let _driver = Proc {
        child: Command::new(&driver_bin)
            .args([
                "--port",
                &port.to_string(),
                "--native-port",
                &native.to_string(),
            ])
            .env("DISPLAY", &display)
            .env("SPACEPOS_DATA_DIR", data.path())
            .env("SPACEPOS_CONFIG", &cfg)
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .env("LIBGL_ALWAYS_SOFTWARE", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .expect("tauri-driver starts"),
        group: true,
    };
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let root = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while http.get(format!("{root}/status")).send().await.is_err() {
        assert!(
            Instant::now() < deadline,
            "tauri-driver did not listen on {port}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let app = env!("CARGO_BIN_EXE_spacepos-desktop");
    let created: Value = http
        .post(format!("{root}/session"))
        .json(&json!({"capabilities": {"alwaysMatch": {"tauri:options": {"application": app}}}}))
        .send()
        .await
        .expect("new session")
        .json()
        .await
        .unwrap();
    let id = created["value"]["sessionId"]
        .as_str()
        .unwrap_or_else(|| panic!("no session: {created}"))
        .to_owned();
    let ui = Session {
        http: http.clone(),
        base: format!("{root}/session/{id}"),
    };

    // 1. Onboarding: a wrong code is explained, the right one onboards.
    step("1. onboarding");
    ui.wait_for(
        "the onboarding screen",
        30,
        "#screen-onboarding",
        "hidden",
        |_, hidden| hidden.is_empty(),
    )
    .await;
    ui.screenshot("onboarding").await;
    ui.type_into("#onboard-code", "NOPE-0000").await;
    ui.type_into("#onboard-api", erp.base_url()).await;
    ui.click("#onboard-submit").await;
    ui.wait_for(
        "the unknown-code error",
        15,
        "#onboard-error",
        "id",
        |t, _| t.contains("does not know this onboarding code"),
    )
    .await;
    ui.type_into("#onboard-code", &code).await;
    ui.click("#onboard-submit").await;
    ui.wait_for(
        "the status screen",
        30,
        "#screen-status",
        "hidden",
        |_, hidden| hidden.is_empty(),
    )
    .await;
    ui.wait_for("the identity", 10, "#identity", "id", |t, _| {
        t.contains("pos-0012-09") || t.contains("12")
    })
    .await;
    ui.wait_for("the ERP online", 30, "#erp-state", "data-state", |_, s| {
        s == "online"
    })
    .await;
    ui.wait_for(
        "the broker online",
        30,
        "#broker-state",
        "data-state",
        |_, s| s == "online",
    )
    .await;
    ui.wait_for(
        "the datasets",
        30,
        "#datasets tr[data-dataset]",
        "data-dataset",
        |_, d| !d.is_empty(),
    )
    .await;

    // 2. A sale the ERP rejects is parked with its error; Retry sends it again.
    step("2. a parked operation and Retry");
    let store = spacepos_sqlite::SqliteStore::open(data.path().join("spacepos.db"))
        .await
        .expect("the till's store");
    let parked_id = uuid::Uuid::new_v4();
    store
        .enqueue(&[NewOperation {
            id: parked_id,
            destination: Destination::ErpOperations,
            kind: "fuel.unknown".into(),
            occurred_at: chrono::Utc::now(),
            store_staff_id: None,
            payload: json!({"grade": "X9", "litres": 10}),
        }])
        .await
        .expect("enqueue");
    let row = format!(".parked-op[data-id=\"{parked_id}\"]");
    ui.wait_for(
        "the parked operation",
        30,
        &format!("{row} .parked-error"),
        "id",
        |t, _| t.contains("unknown_grade"),
    )
    .await;
    ui.screenshot("status").await;
    erp.clear_reject_rules();
    ui.click(&format!("{row} .retry")).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !erp
        .accepted_operations()
        .iter()
        .any(|op| op.operation.id == parked_id)
    {
        assert!(
            Instant::now() < deadline,
            "the retried operation never reached the ERP"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ui.wait_for(
        "no parked operation",
        20,
        "#queue-parked",
        "data-count",
        |_, n| n == "0",
    )
    .await;

    // 3. The ERP goes down, then comes back: the status follows by itself.
    step("3. the ERP down and back");
    erp.pause().await;
    ui.wait_for("the ERP offline", 30, "#erp-state", "data-state", |_, s| {
        s == "offline"
    })
    .await;
    ui.screenshot("status-offline").await;
    erp.resume().await.expect("the ERP listens again");
    // The runtime asks again after its retry interval (1 min at least, with jitter).
    ui.wait_for(
        "the ERP online again",
        150,
        "#erp-state",
        "data-state",
        |_, s| s == "online",
    )
    .await;

    // 4. Updates: SpacePOS 0.9.0 is staged; snooze until no snooze is left.
    step("4. updates and snoozes");
    ui.click("#nav-updates").await;
    let snooze = ".update[data-component=\"spacepos\"] .snooze";
    ui.wait_for("the staged update", 60, snooze, "id", |t, _| {
        t.contains("Snooze (3 left)")
    })
    .await;
    ui.screenshot("updates").await;
    for left in [2, 1, 0] {
        ui.click(snooze).await;
        let want = format!("Snooze ({left} left)");
        ui.wait_for("the snooze count", 15, snooze, "id", |t, _| {
            t.contains(&want)
        })
        .await;
    }
    ui.wait_for(
        "the snooze button disabled",
        5,
        snooze,
        ".disabled",
        |_, d| d == "true",
    )
    .await;
    let refused = ui
        .js("return window.__TAURI__.core.invoke('snooze_update', {component: 'spacepos'}).then(() => 'granted', e => e.message);")
        .await;
    // (execute/sync returns the promise's value in WebKit's driver)
    if let Some(text) = refused.as_str() {
        assert!(
            text.contains("refused") || text.contains("Snooze"),
            "a 4th snooze: {text}"
        );
    }

    // 5. SpaceFuel: the pumps as the service reports them, and a change pushed.
    step("5. SpaceFuel pumps");
    ui.click("#nav-spacefuel").await;
    ui.wait_for(
        "pump 2 fuelling",
        15,
        ".pump[data-pump=\"2\"] .pump-state",
        "data-state",
        |_, s| s == "fuelling",
    )
    .await;
    ui.wait_for(
        "pump 4 in error",
        5,
        ".pump[data-pump=\"4\"] .pump-state",
        "data-state",
        |_, s| s == "error",
    )
    .await;
    assert!(
        ui.text("#sf-active-slot")
            .await
            .to_lowercase()
            .contains("blue")
    );
    ui.screenshot("spacefuel").await;
    spacepos_fs::write_health_report(
        &ext,
        &health(vec![
            pump(1, PumpState::Idle),
            pump(2, PumpState::Payable),
            pump(3, PumpState::Idle),
            pump(4, PumpState::Idle),
        ]),
    )
    .unwrap();
    ui.wait_for(
        "pump 2 payable",
        15,
        ".pump[data-pump=\"2\"] .pump-state",
        "data-state",
        |_, s| s == "payable",
    )
    .await;

    // 6. Staff login: the session's staff id is shown.
    step("6. staff login and no secret in the DOM");
    ui.click("#nav-staff").await;
    ui.type_into("#staff-code", "0042").await;
    ui.type_into("#staff-pin", "1234").await;
    ui.click("#staff-login").await;
    ui.wait_for("staff logged in", 15, "#staff-current", "id", |t, _| {
        t.contains("S-0042")
    })
    .await;
    ui.screenshot("staff").await;

    // No secret in the DOM: not the client secret, not the PIN.
    let record = spacepos_node::Node::from_cli(Some(data.path().to_path_buf()), Some(cfg.clone()))
        .record()
        .await
        .unwrap()
        .expect("onboarded");
    let source = ui.call(reqwest::Method::GET, "/source", None).await;
    let source = source.as_str().unwrap_or_default();
    assert!(source.contains("S-0042"), "the page source was read");
    assert!(
        !source.contains(record.client_secret.expose()),
        "the client secret is in the DOM"
    );
    let pin_value = ui
        .js("return document.querySelector('#staff-pin').value;")
        .await;
    assert_eq!(pin_value, json!(""), "the PIN field is cleared after login");

    let _ = http.delete(format!("{root}/session/{id}")).send().await;
}
