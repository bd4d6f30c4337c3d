//! The ERP-port suites against the in-memory fake and against the HTTP adapter
//! talking to the fake ERP server.

use std::sync::Arc;

use async_trait::async_trait;
use spacepos_auth::{AuthApi, Onboarded, OnboardingApi};
use spacepos_core::{ClientInfo, Product, TerminalIdentity};
use spacepos_erp_http::{ErpHttpClient, ErpHttpConfig};
use spacepos_fake_erp::{FakeErp, FakeErpConfig, TerminalSettings};
use spacepos_testkit::fakes::MemoryErp;
use spacepos_testkit::suites::erp::ErpHarness;

struct Memory(MemoryErp);

#[async_trait]
impl ErpHarness for Memory {
    async fn issue_code(&self, terminal_number: u32) -> String {
        self.0.issue_code(12, terminal_number)
    }
    fn anonymous(&self) -> Arc<dyn OnboardingApi> {
        Arc::new(self.0.anonymous())
    }
    fn onboarding_for(&self, t: &Onboarded) -> Arc<dyn OnboardingApi> {
        Arc::new(self.0.device(t.credentials.clone()))
    }
    fn auth_for(&self, t: &Onboarded) -> Arc<dyn AuthApi> {
        Arc::new(self.0.device(t.credentials.clone()))
    }
    async fn revoke(&self, client_id: &str) {
        self.0.revoke(client_id);
    }
    async fn set_presence(&self, client_id: &str, interval_seconds: u32, report: bool) {
        self.0.set_presence(client_id, interval_seconds, report);
    }
    fn staff(&self) -> (String, String, String) {
        ("0042".into(), "1234".into(), "S-0042".into())
    }
}

async fn memory() -> Memory {
    let erp = MemoryErp::new();
    erp.add_staff("0042", "1234", "S-0042");
    Memory(erp)
}

struct Http {
    erp: FakeErp,
}

fn client_info() -> ClientInfo {
    ClientInfo {
        product: Product::SpacePos,
        version: "0.1.0".into(),
        os_name: "Linux".into(),
        os_version: "6.1".into(),
        arch: "x86_64".into(),
        hostname: "SUITE".into(),
    }
}

impl Http {
    fn client(&self, t: Option<&Onboarded>) -> ErpHttpClient {
        let mut config = ErpHttpConfig::new(
            url::Url::parse(self.erp.base_url()).expect("url"),
            client_info(),
        );
        if let Some(t) = t {
            let identity = TerminalIdentity {
                client_id: t.credentials.client_id.clone(),
                store_number: t.store_number,
                terminal_number: t.terminal_number,
            };
            config = config.with_device(t.credentials.clone(), identity);
        }
        ErpHttpClient::new(config).expect("client")
    }
}

#[async_trait]
impl ErpHarness for Http {
    async fn issue_code(&self, terminal_number: u32) -> String {
        self.erp.issue_onboarding_code(12, terminal_number)
    }
    fn anonymous(&self) -> Arc<dyn OnboardingApi> {
        Arc::new(self.client(None))
    }
    fn onboarding_for(&self, t: &Onboarded) -> Arc<dyn OnboardingApi> {
        Arc::new(self.client(Some(t)))
    }
    fn auth_for(&self, t: &Onboarded) -> Arc<dyn AuthApi> {
        Arc::new(self.client(Some(t)))
    }
    async fn revoke(&self, client_id: &str) {
        self.erp.revoke_terminal(client_id).expect("revoke");
    }
    async fn set_presence(&self, client_id: &str, interval_seconds: u32, report: bool) {
        let settings = TerminalSettings {
            presence_interval_seconds: Some(interval_seconds),
            report_presence: Some(report),
            ..Default::default()
        };
        self.erp
            .set_terminal_settings(client_id, settings)
            .expect("settings");
    }
    fn staff(&self) -> (String, String, String) {
        let s = &self.erp.config().staff[0];
        (
            s.staff_code.clone(),
            s.pin.expose().to_owned(),
            s.store_staff_id.clone(),
        )
    }
}

async fn http() -> Http {
    Http {
        erp: FakeErp::start(FakeErpConfig::demo())
            .await
            .expect("fake ERP"),
    }
}

mod memory_erp {
    spacepos_testkit::erp_port_suite!(super::memory());
}

mod http_adapter_against_the_fake_erp {
    spacepos_testkit::erp_port_suite!(super::http());
}
