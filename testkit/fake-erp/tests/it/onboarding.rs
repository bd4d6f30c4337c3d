//! Contract section 2 and device authentication.

use serde_json::{Value, json};
use spacepos_erp_wire::rest::{CompanyInformation, OnboardResponse, TerminalMe};
use spacepos_fake_erp::{FakeErp, FakeErpConfig, Route, TerminalSettings};

use crate::common::{Device, client, demo, error_of};

fn onboard_body(code: &str) -> Value {
    json!({
        "onboardingCode": code, "hostname": "TILL-03", "os": "Windows 10.0.22631",
        "arch": "x86_64", "appVersion": "1.4.2", "components": ["spacepos", "spacefuel"]
    })
}

#[tokio::test]
async fn onboarding_issues_credentials_once_per_code() {
    let erp = FakeErp::start(FakeErpConfig {
        amqp_url: Some("amqp://127.0.0.1:5672/%2f".into()),
        ..FakeErpConfig::demo()
    })
    .await
    .unwrap();
    let url = format!("{}/api/pos/terminals/onboard", erp.base_url());
    let http = client();

    let resp = http
        .post(&url)
        .json(&onboard_body("demo-1202"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let ok: OnboardResponse = resp.json().await.unwrap();
    assert!(
        ok.client_id.starts_with("trm_") && ok.client_id.len() == 20,
        "{}",
        ok.client_id
    );
    assert!(ok.client_id[4..].bytes().all(|b| b.is_ascii_hexdigit()));
    assert!(ok.client_secret.expose().len() >= 32);
    assert_eq!((ok.store_number, ok.terminal_number), (12, 2));
    assert_eq!(ok.api_endpoint.as_deref(), Some(erp.base_url()));
    assert_eq!(ok.amqp_url.as_deref(), Some("amqp://127.0.0.1:5672/%2f"));
    assert_eq!(
        (ok.report_presence, ok.presence_interval_seconds),
        (Some(true), Some(300))
    );
    assert_eq!(
        ok.company_information.unwrap().currency.as_deref(),
        Some("GBP")
    );
    let info = erp.terminal(&ok.client_id).unwrap();
    assert_eq!(
        (info.hostname.as_str(), info.components.len()),
        ("TILL-03", 2)
    );

    let again = http
        .post(&url)
        .json(&onboard_body("DEMO-1202"))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(again).await, (409, "onboarding_code_used".into()));
    let unknown = http
        .post(&url)
        .json(&onboard_body("NOPE-0000"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_of(unknown).await,
        (404, "unknown_onboarding_code".into())
    );

    // A code issued through the handle works once.
    let code = erp.issue_onboarding_code(31, 9);
    let resp: OnboardResponse = http
        .post(&url)
        .json(&onboard_body(&code))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((resp.store_number, resp.terminal_number), (31, 9));

    // The new credentials work for device calls.
    let me: TerminalMe = http
        .get(format!("{}/api/pos/terminals/me", erp.base_url()))
        .header("X-Client-Id", &ok.client_id)
        .header("X-Client-Secret", ok.client_secret.expose())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((me.store_number, me.terminal_number), (12, 2));
}

#[tokio::test]
async fn malformed_onboarding_requests_are_422() {
    let erp = demo().await;
    let url = format!("{}/api/pos/terminals/onboard", erp.base_url());
    let http = client();
    for body in [
        "not json".to_owned(),
        json!({"onboardingCode": "DEMO-1201"}).to_string(),
        onboard_body("").to_string(),
        onboard_body("   ").to_string(),
        json!({"onboardingCode": 5, "hostname": "h", "os": "o", "arch": "a", "appVersion": "1"})
            .to_string(),
    ] {
        let resp = http
            .post(&url)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            error_of(resp).await,
            (422, "invalid_request".into()),
            "{body}"
        );
    }
    // None of these consumed the code.
    let resp = http
        .post(&url)
        .json(&onboard_body("DEMO-1201"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn device_calls_need_valid_unrevoked_credentials_and_are_recorded_anyway() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let http = client();
    let me_url = format!("{}/api/pos/terminals/me", erp.base_url());

    let none = http.get(&me_url).send().await.unwrap();
    assert_eq!(error_of(none).await, (401, "invalid_client".into()));
    let wrong = http
        .get(&me_url)
        .header("X-Client-Id", &device.creds.client_id)
        .header("X-Client-Secret", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(wrong).await, (401, "invalid_client".into()));
    // Every contract endpoint but onboarding is protected, unknown paths too.
    for path in [
        "/api/pos/datasets",
        "/api/pos/datasets/products/snapshot",
        "/api/pos/datasets/products/changes?after=1",
        "/api/pos/releases/pending",
        "/api/pos/releases/spacepos/1.0.0/a.msi",
        "/api/pos/auth/jwks",
        "/api/pos/unknown",
    ] {
        let resp = http
            .get(format!("{}{path}", erp.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{path}");
    }
    for path in [
        "/api/pos/operations",
        "/api/pos/auth/login",
        "/api/pos/auth/refresh",
    ] {
        let resp = http
            .post(format!("{}{path}", erp.base_url()))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{path}");
    }

    let me: TerminalMe = device.get_json("/api/pos/terminals/me").await;
    assert_eq!(me.presence_interval_seconds, Some(300));

    erp.revoke_terminal(&device.creds.client_id).unwrap();
    let revoked = device.get("/api/pos/terminals/me").send().await.unwrap();
    assert_eq!(error_of(revoked).await, (401, "invalid_client".into()));

    let recorded = erp.requests_to(Route::TerminalsMe);
    assert_eq!(recorded.len(), 4);
    assert_eq!(
        recorded.iter().map(|r| r.status).collect::<Vec<_>>(),
        [Some(401), Some(401), Some(200), Some(401)]
    );
    assert_eq!(
        recorded[2].header("x-client-id"),
        Some(device.creds.client_id.as_str())
    );
    assert_eq!(recorded[2].header("x-terminal"), Some("12/1"));
    assert!(
        erp.requests()
            .iter()
            .any(|r| r.route.is_none() && r.path == "/api/pos/unknown")
    );
}

#[tokio::test]
async fn terminal_settings_change_through_the_handle() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let company = CompanyInformation {
        name: Some("Renamed Ltd".into()),
        vat_number: None,
        address: None,
        currency: Some("EUR".into()),
        time_zone: Some("Europe/Dublin".into()),
    };
    let me = erp
        .set_terminal_settings(
            &device.creds.client_id,
            TerminalSettings {
                report_presence: Some(false),
                presence_interval_seconds: Some(120),
                company_information: Some(company.clone()),
            },
        )
        .unwrap();
    let served: TerminalMe = device.get_json("/api/pos/terminals/me").await;
    assert_eq!(served, me);
    assert_eq!(served.report_presence, Some(false));
    assert_eq!(served.presence_interval_seconds, Some(120));
    assert_eq!(served.company_information, Some(company));
    // A partial change keeps the rest.
    erp.set_terminal_settings(
        &device.creds.client_id,
        TerminalSettings {
            presence_interval_seconds: Some(60),
            ..Default::default()
        },
    )
    .unwrap();
    let served: TerminalMe = device.get_json("/api/pos/terminals/me").await;
    assert_eq!(
        (served.report_presence, served.presence_interval_seconds),
        (Some(false), Some(60))
    );
    assert!(
        erp.set_terminal_settings("trm_nope", TerminalSettings::default())
            .is_err()
    );
}

#[tokio::test]
async fn wrong_methods_and_unknown_paths_get_contract_errors() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let resp = device.post("/api/pos/terminals/me").send().await.unwrap();
    assert_eq!(error_of(resp).await, (405, "method_not_allowed".into()));
    let resp = device.get("/api/pos/nothing/here").send().await.unwrap();
    assert_eq!(error_of(resp).await, (404, "not_found".into()));
}
