//! `spacepos onboard`, `config show`, `status` and `login` as separate processes
//! against `spacepos erp-sim` running as another process (issue 2's acceptance).

#![allow(clippy::unwrap_used)] // test code

mod support;

use serde_json::json;
use support::{ErpSim, Node, free_port};

#[tokio::test]
async fn onboard_persists_identity_owner_only_and_no_secret_reaches_any_output() {
    let erp = ErpSim::start();
    let code = erp.new_code(4).await;
    let mut node = Node::new();
    node.env.push(("RUST_LOG".into(), "trace".into()));

    let onboard = node.run(&["onboard", "--api", &erp.url, "--code", &code]);
    onboard.ok();
    assert!(
        onboard.stdout.contains("store 12, terminal 4"),
        "{}",
        onboard.stdout
    );

    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(node.file("terminal.json")).unwrap())
            .unwrap();
    assert_eq!(record["store_number"], 12);
    assert_eq!(record["terminal_number"], 4);
    assert!(record["client_id"].as_str().unwrap().starts_with("trm_"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(node.file("terminal.json"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }

    let secret = node.client_secret();
    assert!(secret.len() >= 16, "the fake ERP issues real secrets");
    let show = node.run(&["config", "show"]);
    show.ok();
    let show_json = node.run(&["config", "show", "--json"]);
    show_json.ok();
    assert!(
        show.stdout.contains("terminal.client_secret") && show.stdout.contains("***"),
        "{}",
        show.stdout
    );
    let status = node.run(&["status"]);
    status.ok();
    let pin_login = node.run_with_stdin(&["login", "--staff", "0042"], "1234\n");
    pin_login.ok();

    let logs = node.logs();
    assert!(
        logs.contains("TRACE"),
        "RUST_LOG=trace should have written trace lines to the log file"
    );
    for (what, text) in [
        ("onboard stdout", &onboard.stdout),
        ("onboard stderr", &onboard.stderr),
        ("config show", &show.stdout),
        ("config show stderr", &show.stderr),
        ("config show --json", &show_json.stdout),
        ("status stdout", &status.stdout),
        ("status stderr", &status.stderr),
        ("login stderr", &pin_login.stderr),
        ("log files", &logs),
    ] {
        assert!(
            !text.contains(&secret),
            "the client secret appears in {what}"
        );
    }
}

#[tokio::test]
async fn every_device_request_carries_the_device_headers_and_a_contract_user_agent() {
    let erp = ErpSim::start();
    let code = erp.new_code(5).await;
    let node = Node::new();
    node.run(&["onboard", "--api", &erp.url, "--code", &code])
        .ok();
    node.run(&["status"]).ok();
    node.run_with_stdin(&["login", "--staff", "0007"], "2468\n")
        .ok();

    let requests = erp.admin_get("requests").await;
    let requests = requests.as_array().unwrap();
    let ua = regex_like_user_agent;
    let mut device = 0;
    for r in requests {
        let path = r["path"].as_str().unwrap();
        let header = |name: &str| {
            r["headers"]
                .as_array()
                .unwrap()
                .iter()
                .find(|h| h[0] == name)
                .map(|h| h[1].as_str().unwrap().to_owned())
        };
        let agent = header("user-agent").unwrap_or_default();
        assert!(
            ua(&agent),
            "{path}: User-Agent {agent:?} is not of the contract's form"
        );
        if path.ends_with("/terminals/onboard") {
            assert!(
                header("x-client-secret").is_none(),
                "onboarding must not send device headers"
            );
            continue;
        }
        device += 1;
        assert!(
            header("x-client-id").is_some_and(|v| v.starts_with("trm_")),
            "{path}: X-Client-Id"
        );
        assert!(
            header("x-client-secret").is_some_and(|v| !v.is_empty()),
            "{path}: X-Client-Secret"
        );
        assert_eq!(
            header("x-terminal").as_deref(),
            Some("12/5"),
            "{path}: X-Terminal"
        );
    }
    assert!(
        device >= 3,
        "terminals/me, login and jwks at least: {requests:?}"
    );
}

/// `SpacePOS/<version> (<os name> <os version>; <arch>)`.
fn regex_like_user_agent(ua: &str) -> bool {
    let Some(rest) = ua.strip_prefix("SpacePOS/") else {
        return false;
    };
    let Some((version, rest)) = rest.split_once(" (") else {
        return false;
    };
    let Some(inner) = rest.strip_suffix(')') else {
        return false;
    };
    let Some((os, arch)) = inner.split_once("; ") else {
        return false;
    };
    version.split('.').count() == 3
        && version.split('.').all(|p| p.parse::<u32>().is_ok())
        && os
            .split_once(' ')
            .is_some_and(|(n, v)| !n.is_empty() && !v.is_empty())
        && !arch.is_empty()
        && !arch.contains([' ', ';', ')'])
}

#[tokio::test]
async fn refusals_exit_non_zero_name_the_cause_and_persist_nothing() {
    let erp = ErpSim::start();

    let node = Node::new();
    let unknown = node.run(&["onboard", "--api", &erp.url, "--code", "NOPE-0000"]);
    assert_eq!(unknown.code, 5, "{unknown:?}");
    assert!(
        unknown
            .stderr
            .contains("does not know this onboarding code"),
        "{}",
        unknown.stderr
    );
    assert!(!node.file("terminal.json").exists());

    let code = erp.new_code(6).await;
    Node::new()
        .run(&["onboard", "--api", &erp.url, "--code", &code])
        .ok();
    let used = node.run(&["onboard", "--api", &erp.url, "--code", &code]);
    assert_eq!(used.code, 5, "{used:?}");
    assert!(used.stderr.contains("already used"), "{}", used.stderr);
    assert!(!node.file("terminal.json").exists());

    erp.admin_post(
        "faults",
        json!({"route": "onboard", "kind": {"type": "status", "status": 500}, "times": 1}),
    )
    .await;
    let code = erp.new_code(7).await;
    let failed = node.run(&["onboard", "--api", &erp.url, "--code", &code]);
    assert_eq!(failed.code, 6, "{failed:?}");
    assert!(failed.stderr.contains("HTTP 500"), "{}", failed.stderr);
    assert!(
        failed.stderr.contains(&format!("127.0.0.1:{}", erp.port)),
        "names the host: {}",
        failed.stderr
    );
    assert!(!node.file("terminal.json").exists());

    let dead = format!("http://127.0.0.1:{}", free_port());
    let unreachable = node.run(&["onboard", "--api", &dead, "--code", &code]);
    assert_eq!(unreachable.code, 6, "{unreachable:?}");
    assert!(
        unreachable
            .stderr
            .contains(dead.trim_start_matches("http://")),
        "{}",
        unreachable.stderr
    );
    assert!(
        unreachable.stderr.to_lowercase().contains("refused"),
        "{}",
        unreachable.stderr
    );
    assert!(!node.file("terminal.json").exists());

    // The code was not consumed by the failures: it still works.
    node.run(&["onboard", "--api", &erp.url, "--code", &code])
        .ok();
    let again = node.run(&["onboard", "--api", &erp.url, "--code", &code]);
    assert_eq!(
        again.code, 5,
        "already onboarded without --force: {again:?}"
    );
    assert!(again.stderr.contains("--force"), "{}", again.stderr);
}

#[tokio::test]
async fn wrong_pin_is_refused_and_a_valid_session_survives_the_erp_going_away() {
    let mut erp = ErpSim::start();
    let code = erp.new_code(8).await;
    let node = Node::new();
    node.run(&["onboard", "--api", &erp.url, "--code", &code])
        .ok();

    let wrong = node.run_with_stdin(&["login", "--staff", "0042"], "0000\n");
    assert_eq!(wrong.code, 5, "{wrong:?}");
    assert!(
        wrong.stderr.contains("wrong staff code or PIN"),
        "{}",
        wrong.stderr
    );

    node.run_with_stdin(&["login", "--staff", "0042"], "1234\n")
        .ok();
    erp.kill();
    let status = node.run(&["status", "--json"]);
    status.ok();
    let s: serde_json::Value = serde_json::from_str(&status.stdout).unwrap();
    assert_eq!(s["erp"]["state"], "unreachable", "{s}");
    assert_eq!(s["staff"]["state"], "loggedIn", "{s}");
    assert_eq!(s["staff"]["storeStaffId"], "S-0042");
}

#[tokio::test]
async fn revoked_credentials_say_reonboarding_is_needed() {
    let erp = ErpSim::start();
    let code = erp.new_code(9).await;
    let node = Node::new();
    node.run(&["onboard", "--api", &erp.url, "--code", &code])
        .ok();
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(node.file("terminal.json")).unwrap())
            .unwrap();
    let client_id = record["client_id"].as_str().unwrap();
    erp.admin_post(&format!("terminals/{client_id}/revoke"), json!({}))
        .await;
    let login = node.run_with_stdin(&["login", "--staff", "0042"], "1234\n");
    assert_eq!(login.code, 4, "{login:?}");
    assert!(
        login.stderr.contains("re-onboarding needed"),
        "{}",
        login.stderr
    );
    let status = node.run(&["status"]);
    status.ok();
    assert!(
        status.stdout.contains("CREDENTIALS REFUSED"),
        "{}",
        status.stdout
    );
}
