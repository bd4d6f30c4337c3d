//! The admin API, as an out-of-process test drives it.

use std::time::Duration;

use serde_json::{Value, json};
use spacepos_erp_wire::events::DatasetChangedIntegrationEvent;
use spacepos_erp_wire::rest::{OnboardResponse, OperationStatus, Release, TerminalMe};
use spacepos_fake_erp::{FaultKind, FaultRule, Route};
use tokio::net::TcpStream;

use crate::common::{Device, client, demo, error_of};
use crate::operations::{sale, submit};

#[tokio::test]
async fn every_admin_route_works_over_http() {
    let erp = demo().await;
    let http = client();
    let admin = |p: &str| format!("{}/__admin/{p}", erp.base_url());
    let post = |p: &str, body: Value| http.post(admin(p)).json(&body).send();

    // Onboarding codes, then onboarding with it.
    let code: Value = post(
        "onboarding-codes",
        json!({"storeNumber": 12, "terminalNumber": 4}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let code = code["code"].as_str().unwrap().to_owned();
    let onboarded: OnboardResponse = http
        .post(format!("{}/api/pos/terminals/onboard", erp.base_url()))
        .json(&json!({"onboardingCode": code, "hostname": "TILL-04", "os": "Windows 11", "arch": "x86_64", "appVersion": "1.4.2"}))
        .send().await.unwrap().json().await.unwrap();
    assert_eq!(onboarded.terminal_number, 4);
    let chosen: Value = post(
        "onboarding-codes",
        json!({"storeNumber": 12, "terminalNumber": 5, "code": "MY-CODE"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(chosen["code"], "MY-CODE");

    // Terminals: list (no secret), settings, revoke.
    let terminals: Value = http
        .get(admin("terminals"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(terminals[0]["clientId"], onboarded.client_id.as_str());
    assert!(
        !terminals
            .to_string()
            .contains(onboarded.client_secret.expose())
    );
    let device = Device {
        creds: spacepos_core::DeviceCredentials {
            client_id: onboarded.client_id.clone(),
            client_secret: onboarded.client_secret.clone(),
        },
        base: erp.base_url().into(),
        client: client(),
    };
    let me: TerminalMe = post(
        &format!("terminals/{}/settings", onboarded.client_id),
        json!({"presenceIntervalSeconds": 90}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(me.presence_interval_seconds, Some(90));
    let served: TerminalMe = device.get_json("/api/pos/terminals/me").await;
    assert_eq!(served.presence_interval_seconds, Some(90));
    let resp = post("terminals/trm_nope/settings", json!({}))
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);

    // Reject rules and operations.
    assert_eq!(
        post(
            "reject-rules",
            json!({"type": "sale.completed", "error": "closed"})
        )
        .await
        .unwrap()
        .status(),
        204
    );
    let r = submit(&device, &[sale(1)]).await;
    assert_eq!(
        (r.results[0].status, r.results[0].error.as_deref()),
        (OperationStatus::Rejected, Some("closed"))
    );
    assert_eq!(
        http.delete(admin("reject-rules"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    submit(&device, &[sale(2), sale(3)]).await;
    let ops: Value = http
        .get(admin("operations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            ops["acceptedCount"].as_u64(),
            ops["rejectedAnswers"].as_u64()
        ),
        (Some(2), Some(1))
    );
    assert_eq!(
        ops["accepted"][1]["operation"]["payload"]["receiptNumber"],
        "12-1-000003"
    );

    // Datasets: mutate, events, state, expire.
    let base = erp.dataset_last_sequence("products").unwrap();
    let m: Value = post("datasets/products/mutate", json!({"count": 4}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(m["lastSequence"].as_u64(), Some(base + 4));
    assert_eq!(m["sequences"].as_array().unwrap().len(), 4);
    let m: Value = post("datasets/products/mutate", json!({"changes": [{"id": "P-0000001", "data": {"name": "X"}}, {"id": "P-0000002", "delete": true}]}))
        .await.unwrap().json().await.unwrap();
    assert_eq!(m["sequences"], json!([base + 5]));
    let event: DatasetChangedIntegrationEvent = http
        .get(admin(&format!("datasets/products/events/{}", base + 5)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        event,
        erp.dataset_changed_event("products", base + 5).unwrap()
    );
    let state: Value = http
        .get(admin("datasets/products/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["P-0000002"]["deleted"], true);
    assert_eq!(
        post(
            "datasets/products/expire",
            json!({"throughSequence": base + 3})
        )
        .await
        .unwrap()
        .status(),
        204
    );
    let resp = device
        .get(&format!(
            "/api/pos/datasets/products/changes?after={}",
            base + 1
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 410);
    assert_eq!(
        post("datasets/nope/mutate", json!({"count": 1}))
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        post("datasets/products/mutate", json!({}))
            .await
            .unwrap()
            .status(),
        422
    );

    // Releases and keys.
    let release: Release = post("releases", json!({"component": "spacefuel", "version": "2.2.0", "size": 1234, "signingKey": "rotated", "notes": "n"}))
        .await.unwrap().json().await.unwrap();
    assert_eq!(release.size, Some(1234));
    let pending: Value = device.get_json("/api/pos/releases/pending").await;
    assert_eq!(pending["releases"][0]["version"], "2.2.0");
    let keys: Value = http
        .get(admin("keys"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for k in ["primary", "rotated", "rogue"] {
        assert_eq!(keys[k]["keyLine"].as_str().unwrap().len(), 56, "{k}");
        assert!(keys[k]["tauriPubkey"].is_string());
    }
    assert_eq!(
        keys["rotated"]["keyLine"],
        erp.update_keys().rotated.key_line.as_str()
    );
    assert_eq!(
        http.delete(admin("releases"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let pending: Value = device.get_json("/api/pos/releases/pending").await;
    assert_eq!(pending["releases"], json!([]));

    // JWT helpers.
    let kid: Value = post("jwt/rotate", json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(kid["kid"], erp.current_jwt_kid().as_str());
    let token: Value = post(
        "tokens",
        json!({"sub": "S-0042", "store": 12, "expired": true}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(token["token"].as_str().unwrap().split('.').count(), 3);

    // Faults: add (one or many), list, clear. Admin routes are never faulted.
    let added: Value = post(
        "faults",
        json!([
            {"route": "datasets", "kind": {"type": "status", "status": 503}, "times": 1},
            {"route": "any", "kind": {"type": "drop"}}
        ]),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(added.as_array().unwrap().len(), 2);
    assert_eq!(
        erp.faults()[0],
        FaultRule::once(Route::Datasets, FaultKind::Status(503))
    );
    assert_eq!(
        device
            .get("/api/pos/datasets")
            .send()
            .await
            .unwrap()
            .status(),
        503
    );
    assert!(device.get("/api/pos/datasets").send().await.is_err());
    let listed: Value = http
        .get(admin("faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed,
        json!([{"route": "any", "kind": {"type": "drop"}, "times": null}])
    );
    assert_eq!(
        http.delete(admin("faults")).send().await.unwrap().status(),
        204
    );
    let bad = post(
        "faults",
        json!({"route": "any", "kind": {"type": "status", "status": 42}}),
    )
    .await
    .unwrap();
    assert_eq!(error_of(bad).await, (422, "invalid_request".into()));

    // Requests: recorded in order (admin calls are not), then cleared.
    let recorded: Value = http
        .get(admin("requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let recorded = recorded.as_array().unwrap();
    assert!(
        recorded
            .iter()
            .all(|r| !r["path"].as_str().unwrap().starts_with("/__admin"))
    );
    assert_eq!(recorded[0]["path"], "/api/pos/terminals/onboard");
    assert_eq!(recorded[0]["bodyJson"]["hostname"], "TILL-04");
    assert_eq!(recorded.last().unwrap()["fault"], "drop");
    assert_eq!(
        http.delete(admin("requests"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert!(erp.requests().is_empty());

    // Unknown admin path and bad JSON answer contract errors.
    assert_eq!(
        http.get(admin("nothing")).send().await.unwrap().status(),
        404
    );
    let resp = http
        .post(admin("onboarding-codes"))
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await, (422, "invalid_request".into()));

    // Revoke last: the device is locked out.
    assert_eq!(
        post(
            &format!("terminals/{}/revoke", onboarded.client_id),
            json!({})
        )
        .await
        .unwrap()
        .status(),
        204
    );
    assert_eq!(
        device
            .get("/api/pos/terminals/me")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test]
async fn admin_pause_closes_the_port_for_a_while() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let resp = client()
        .post(format!("{}/__admin/pause", erp.base_url()))
        .json(&json!({"forMillis": 600}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202);
    let mut was_down = false;
    for _ in 0..100 {
        if TcpStream::connect(erp.addr()).await.is_err() {
            was_down = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(was_down, "the port closed");
    let mut back = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        if let Ok(r) = device.get("/api/pos/datasets").send().await {
            back = r.status() == 200;
            break;
        }
    }
    assert!(back, "the port reopened");
}

#[tokio::test]
async fn oversized_or_invalid_requests_are_refused_and_the_server_lives_on() {
    let erp = demo().await;
    let http = client();
    let admin = |p: &str| format!("{}/__admin/{p}", erp.base_url());
    let resp = http
        .post(admin("releases"))
        .json(&json!({"component": "spacepos", "version": "1.0.0", "size": 1_000_000_000_000u64}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await, (422, "invalid_request".into()));
    let resp = http
        .post(admin("releases"))
        .json(&json!({"component": "spacepos", "version": "../../etc"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await, (422, "invalid_request".into()));
    let resp = http
        .post(admin("releases"))
        .json(&json!({"component": "other", "version": "1.0.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await, (422, "invalid_request".into()));
    let resp = http
        .post(admin("datasets/products/mutate"))
        .json(&json!({"count": 1_000_000_000u64}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await, (422, "invalid_request".into()));
    let resp = http
        .post(admin("datasets/products/mutate"))
        .json(&json!({"changes": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await, (422, "invalid_request".into()));
    let device = Device::register(&erp, 12, 1);
    assert_eq!(
        device
            .get("/api/pos/datasets")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn start_refuses_invalid_configurations() {
    use spacepos_fake_erp::{DatasetKind, DatasetSpec, FakeErp, FakeErpConfig, FakeErpError};
    let huge = FakeErpConfig {
        datasets: vec![DatasetSpec::new(
            "products",
            DatasetKind::Products,
            u64::MAX,
        )],
        ..FakeErpConfig::default()
    };
    assert!(matches!(
        FakeErp::start(huge).await,
        Err(FakeErpError::InvalidConfig(_))
    ));
    let twice = FakeErpConfig {
        datasets: vec![
            DatasetSpec::of(DatasetKind::Staff, 1),
            DatasetSpec::of(DatasetKind::Staff, 2),
        ],
        ..FakeErpConfig::default()
    };
    assert!(matches!(
        FakeErp::start(twice).await,
        Err(FakeErpError::InvalidConfig(_))
    ));
    let taken = demo().await;
    assert!(matches!(
        FakeErp::start_on(taken.addr(), FakeErpConfig::default()).await,
        Err(FakeErpError::Bind { .. })
    ));
}

/// This machine's address on its default route, if it has one.
fn non_loopback_ipv4() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test]
async fn the_admin_api_answers_loopback_clients_only() {
    use spacepos_fake_erp::{FakeErp, FakeErpConfig};
    let Some(ip) = non_loopback_ipv4() else {
        eprintln!(
            "SKIPPED the_admin_api_answers_loopback_clients_only: this machine has no non-loopback IPv4 address"
        );
        return;
    };
    let erp = FakeErp::start_on("0.0.0.0:0".parse().unwrap(), FakeErpConfig::default())
        .await
        .unwrap();
    let port = erp.addr().port();
    let http = client();
    let remote = http
        .get(format!("http://{ip}:{port}/__admin/requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(remote).await, (403, "forbidden".into()));
    let local = http
        .get(format!("http://127.0.0.1:{port}/__admin/requests"))
        .send()
        .await
        .unwrap();
    assert_eq!(local.status(), 200);
    // The contract side answers everyone (with device auth).
    let contract = http
        .get(format!("http://{ip}:{port}/api/pos/datasets"))
        .send()
        .await
        .unwrap();
    assert_eq!(contract.status(), 401);
}
