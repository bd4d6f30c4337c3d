//! Set-up shared by the benchmarks: a fake ERP with an onboarded terminal, the
//! product's HTTP client for it, and a bare reqwest client with the same headers.

use std::time::Instant;

use spacepos_core::{ClientInfo, DeviceCredentials, Product, TerminalIdentity};
use spacepos_erp_http::{ErpHttpClient, ErpHttpConfig};
use spacepos_fake_erp::{FakeErp, FakeErpConfig};

use crate::Result;

/// A fake ERP on loopback and terminal 12/3's credentials at it.
#[derive(Debug)]
pub(crate) struct Erp {
    pub(crate) erp: FakeErp,
    pub(crate) credentials: DeviceCredentials,
    pub(crate) identity: TerminalIdentity,
}

impl Erp {
    pub(crate) async fn start(config: FakeErpConfig) -> Result<Erp> {
        let erp = FakeErp::start(config).await?;
        let credentials = erp.register_terminal(12, 3);
        let identity = TerminalIdentity {
            client_id: credentials.client_id.clone(),
            store_number: 12,
            terminal_number: 3,
        };
        Ok(Erp {
            erp,
            credentials,
            identity,
        })
    }

    /// The product's ERP client, as a till builds it.
    pub(crate) fn product_client(&self) -> Result<ErpHttpClient> {
        let info = ClientInfo {
            product: Product::SpacePos,
            version: env!("CARGO_PKG_VERSION").into(),
            os_name: "Linux".into(),
            os_version: "bench".into(),
            arch: std::env::consts::ARCH.into(),
            hostname: "BENCH".into(),
        };
        let config = ErpHttpConfig::new(url::Url::parse(self.erp.base_url())?, info)
            .with_device(self.credentials.clone(), self.identity.clone());
        Ok(ErpHttpClient::new(config)?)
    }

    /// A bare reqwest client sending the device headers on every request.
    pub(crate) fn raw_client(&self) -> Result<reqwest::Client> {
        use reqwest::header::{HeaderMap, HeaderValue};
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-client-id",
            HeaderValue::from_str(&self.credentials.client_id)?,
        );
        headers.insert(
            "x-client-secret",
            HeaderValue::from_str(self.credentials.client_secret.expose())?,
        );
        headers.insert(
            "x-terminal",
            HeaderValue::from_str(&self.identity.terminal_header())?,
        );
        Ok(reqwest::Client::builder()
            .default_headers(headers)
            .build()?)
    }

    pub(crate) async fn shutdown(self) {
        self.erp.shutdown().await;
    }
}

/// Run `f`, saying on stderr what it is and how long it took.
pub(crate) async fn step<T>(what: &str, f: impl Future<Output = Result<T>>) -> Result<T> {
    eprint!("  {what} ... ");
    let start = Instant::now();
    let out = f.await;
    match &out {
        Ok(_) => eprintln!("{:.2} s", start.elapsed().as_secs_f64()),
        Err(e) => eprintln!("failed: {e}"),
    }
    out
}
