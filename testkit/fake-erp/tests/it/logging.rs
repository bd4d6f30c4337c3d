//! The fake logs one line per request and never a header value, query or body.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::json;
use tracing_subscriber::fmt::MakeWriter;

use spacepos_fake_erp::{FakeErp, FakeErpConfig, StaffAccount};

use crate::common::Device;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for Captured {
    type Writer = Captured;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[tokio::test]
async fn logs_name_method_path_and_status_but_no_secret() {
    let captured = Captured::default();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(captured.clone())
        .with_ansi(false)
        .finish();
    // The default (current-thread) test runtime keeps every task on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);

    let mut config = FakeErpConfig::demo();
    config
        .staff
        .push(StaffAccount::new("0555", "PIN-PLAINTEXT-42", "S-0555"));
    let erp = FakeErp::start(config).await.unwrap();
    let device = Device::register(&erp, 12, 1);
    let login = device
        .post("/api/pos/auth/login")
        .json(&json!({"staffCode": "0555", "pin": "PIN-PLAINTEXT-42"}))
        .send()
        .await
        .unwrap();
    let tokens: serde_json::Value = login.json().await.unwrap();
    let onboard = json!({"onboardingCode": "DEMO-1201", "hostname": "h", "os": "o", "arch": "a", "appVersion": "1"});
    let resp: serde_json::Value = device
        .client
        .post(format!("{}/api/pos/terminals/onboard", erp.base_url()))
        .json(&onboard)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    device
        .get("/api/pos/datasets/products/snapshot?limit=3&cursor=SECRET-CURSOR")
        .send()
        .await
        .unwrap();
    erp.shutdown().await;

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("/api/pos/auth/login"), "{log}");
    assert!(log.contains("status=200"), "{log}");
    for secret in [
        device.creds.client_secret.expose(),
        "PIN-PLAINTEXT-42",
        "DEMO-1201",
        tokens["accessToken"].as_str().unwrap(),
        tokens["refreshToken"].as_str().unwrap(),
        resp["clientSecret"].as_str().unwrap(),
        "SECRET-CURSOR",
    ] {
        assert!(
            !log.contains(secret),
            "{secret} leaked into the log:\n{log}"
        );
    }
}
