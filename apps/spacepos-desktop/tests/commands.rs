//! The Tauri commands under Tauri's mock runtime (`mock_builder()`), against
//! the fake ERP over HTTP: onboarding with its errors, staff login, retry
//! and snooze errors, and that no IPC payload and no pushed view ever
//! carries the terminal's client secret or a PIN.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use spacepos_desktop::backend::{Backend, SelfInstall, ViewSink};
use spacepos_desktop::view::View;
use spacepos_desktop::with_backend;
use spacepos_fake_erp::{FakeErp, FakeErpConfig};
use spacepos_node::Node;
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{
    INVOKE_KEY, MockRuntime, get_ipc_response, mock_builder, mock_context, noop_assets,
};
use tauri::webview::InvokeRequest;

/// Every view the backend pushed, as the JSON the window receives.
#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

impl ViewSink for Recorder {
    fn push(&self, view: &View) {
        let text = serde_json::to_string(view).expect("a view encodes");
        self.0.lock().unwrap().push(text);
    }
}

struct App {
    _app: tauri::App<MockRuntime>,
    webview: tauri::WebviewWindow<MockRuntime>,
    /// Every IPC answer, success or error, as JSON text.
    answers: Mutex<Vec<String>>,
}

impl App {
    fn new(backend: Backend) -> App {
        let app = with_backend(mock_builder(), backend)
            .build(mock_context(noop_assets()))
            .expect("the mock app builds");
        let webview = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
            .build()
            .expect("the mock window builds");
        App {
            _app: app,
            webview,
            answers: Mutex::new(Vec::new()),
        }
    }

    fn invoke(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        let answer = get_ipc_response(
            &self.webview,
            InvokeRequest {
                cmd: cmd.into(),
                callback: CallbackFn(0),
                error: CallbackFn(1),
                url: "tauri://localhost".parse().unwrap(),
                body: InvokeBody::Json(args),
                headers: Default::default(),
                invoke_key: INVOKE_KEY.to_string(),
            },
        )
        .map(|body| body.deserialize::<Value>().expect("JSON answer"));
        let text = match &answer {
            Ok(v) | Err(v) => v.to_string(),
        };
        self.answers.lock().unwrap().push(text);
        answer
    }
}

fn kind(answer: Result<Value, Value>) -> String {
    let err = answer.expect_err("the command must fail");
    assert!(
        err["message"].as_str().is_some_and(|m| !m.is_empty()),
        "every error says what to do: {err}"
    );
    err["kind"].as_str().unwrap_or_default().to_owned()
}

#[test]
fn commands_translate_between_the_ui_and_the_runtime_and_no_secret_reaches_the_window() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut config = FakeErpConfig::demo();
    config.amqp_url = None;
    let erp = rt
        .block_on(FakeErp::start(config))
        .expect("the fake ERP starts");
    let code = erp.issue_onboarding_code(12, 7);
    let used = erp.issue_onboarding_code(12, 8);
    let data = tempfile::tempdir().unwrap();
    let recorder = Arc::new(Recorder::default());
    let backend = Backend::new(
        Node::from_cli(Some(data.path().to_path_buf()), None),
        recorder.clone(),
        SelfInstall::default(),
    );
    let app = App::new(backend.clone());
    let api = erp.base_url().to_owned();

    // Not onboarded: the view says so and commands that need a runtime refuse.
    let view = app.invoke("view", json!({})).expect("view");
    assert_eq!(view["onboarded"], false);
    assert!(view["terminal"].is_null());
    assert_eq!(
        kind(app.invoke("snooze_update", json!({"component": "spacepos"}))),
        "not-onboarded"
    );

    // Onboarding errors: each has its kind and a sentence.
    assert_eq!(
        kind(app.invoke("onboard", json!({"code": " ", "api": api}))),
        "invalid"
    );
    assert_eq!(
        kind(app.invoke("onboard", json!({"code": code, "api": "not a url"}))),
        "invalid"
    );
    assert_eq!(
        kind(app.invoke(
            "onboard",
            json!({"code": code, "api": "http://erp.example.com/"})
        )),
        "invalid",
        "plain HTTP to a remote host breaks the TLS rule"
    );
    assert_eq!(
        kind(app.invoke("onboard", json!({"code": "NO-SUCH-CODE", "api": api}))),
        "unknown-code"
    );
    // A code used by another till.
    let other = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let node = Node::from_cli(Some(other.path().to_path_buf()), None);
        let config = node.config(None).unwrap();
        let url = url::Url::parse(&api).unwrap();
        spacepos_node::onboard::onboard(&node, &config, &url, &used, false)
            .await
            .expect("the other till onboards");
    });
    assert_eq!(
        kind(app.invoke("onboard", json!({"code": used, "api": api}))),
        "used-code"
    );
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", l.local_addr().unwrap())
    };
    assert_eq!(
        kind(app.invoke("onboard", json!({"code": code, "api": closed}))),
        "unreachable"
    );

    // Onboarded: the identity and the company come back.
    let view = app
        .invoke("onboard", json!({"code": code, "api": api}))
        .expect("onboarding with a fresh code works");
    assert_eq!(view["onboarded"], true, "{view}");
    assert_eq!(view["terminal"]["storeNumber"], 12);
    assert_eq!(view["terminal"]["terminalNumber"], 7);
    assert!(view["terminal"]["company"].is_string(), "{view}");
    assert_eq!(
        kind(app.invoke("onboard", json!({"code": code, "api": api}))),
        "refused"
    );

    // Staff: a wrong PIN is refused, the right one logs in.
    assert_eq!(
        kind(app.invoke("staff_login", json!({"staff": "0042", "pin": "0000"}))),
        "refused"
    );
    let view = app
        .invoke("staff_login", json!({"staff": "0042", "pin": "1234"}))
        .expect("staff 0042 logs in");
    assert_eq!(view["staff"]["state"], "logged-in");
    assert_eq!(view["staff"]["storeStaffId"], "S-0042");
    let view = app.invoke("staff_logout", json!({})).expect("logout");
    assert_eq!(view["staff"]["state"], "nobody");

    // Retry and updates: clear refusals.
    assert_eq!(
        kind(app.invoke("retry_operation", json!({"id": "nope"}))),
        "invalid"
    );
    assert_eq!(
        kind(app.invoke(
            "retry_operation",
            json!({"id": uuid::Uuid::new_v4().to_string()})
        )),
        "invalid",
        "an unknown operation"
    );
    assert_eq!(
        kind(app.invoke("snooze_update", json!({"component": "spacepos"}))),
        "config"
    );
    assert_eq!(
        kind(app.invoke("install_update", json!({"component": "spacefuel"}))),
        "refused"
    );
    assert_eq!(
        kind(app.invoke("install_update", json!({"component": "teapot"}))),
        "invalid"
    );

    // No secret in anything the window got: the client secret, the PINs.
    let record = rt
        .block_on(Node::from_cli(Some(data.path().to_path_buf()), None).record())
        .unwrap()
        .expect("onboarded");
    let secret = record.client_secret.expose().to_owned();
    assert!(secret.len() >= 16, "a real secret to look for");
    let answers = app.answers.lock().unwrap().clone();
    let pushed = recorder.0.lock().unwrap().clone();
    assert!(!pushed.is_empty(), "views were pushed");
    for text in answers.iter().chain(pushed.iter()) {
        assert!(
            !text.contains(&secret),
            "the client secret reached the window: {text}"
        );
        assert!(
            !text.contains("\"1234\"") && !text.contains("\"0000\""),
            "a PIN reached the window: {text}"
        );
    }
    backend.stop();
}
