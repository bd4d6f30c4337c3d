//! Helpers: a started fake, a registered device with its HTTP client, raw TCP requests.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::{Client, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde_json::Value;
use spacepos_core::DeviceCredentials;
use spacepos_fake_erp::{FakeErp, FakeErpConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub(crate) const USER_AGENT: &str = "SpacePOS/1.4.2 (Windows 10.0.22631; x86_64)";

pub(crate) fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

pub(crate) async fn demo() -> FakeErp {
    FakeErp::start(FakeErpConfig::demo()).await.unwrap()
}

/// A terminal registered at the fake, with a client that sends its device headers.
#[derive(Debug, Clone)]
pub(crate) struct Device {
    pub(crate) creds: DeviceCredentials,
    pub(crate) base: String,
    pub(crate) client: Client,
}

impl Device {
    pub(crate) fn register(erp: &FakeErp, store: u32, terminal: u32) -> Self {
        Self {
            creds: erp.register_terminal(store, terminal),
            base: erp.base_url().to_owned(),
            client: client(),
        }
    }

    fn with_headers(&self, rb: RequestBuilder) -> RequestBuilder {
        rb.header("X-Client-Id", &self.creds.client_id)
            .header("X-Client-Secret", self.creds.client_secret.expose())
            .header("X-Terminal", "12/1")
            .header("User-Agent", USER_AGENT)
    }

    pub(crate) fn get(&self, path: &str) -> RequestBuilder {
        self.with_headers(self.client.get(format!("{}{path}", self.base)))
    }

    pub(crate) fn post(&self, path: &str) -> RequestBuilder {
        self.with_headers(self.client.post(format!("{}{path}", self.base)))
    }

    pub(crate) async fn get_json<T: DeserializeOwned>(&self, path: &str) -> T {
        let resp = self.get(path).send().await.unwrap();
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.json().await.unwrap()
    }
}

/// Status and error code of a contract error answer.
pub(crate) async fn error_of(resp: Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap();
    (
        status,
        body["error"].as_str().unwrap_or_default().to_owned(),
    )
}

/// Sends `request` over a fresh TCP connection and reads until the server closes
/// it (or 10 s pass). Returns what was read and whether the server closed it.
pub(crate) async fn raw_exchange(addr: SocketAddr, request: &[u8]) -> (Vec<u8>, bool) {
    raw_exchange_for(addr, request, Duration::from_secs(10)).await
}

pub(crate) async fn raw_exchange_for(
    addr: SocketAddr,
    request: &[u8],
    wait: Duration,
) -> (Vec<u8>, bool) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (out, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (out, true),
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
        }
    }
}

/// A raw HTTP/1.1 request with the device's headers.
pub(crate) fn raw_request(device: &Device, method: &str, path: &str, body: &str) -> Vec<u8> {
    format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Client-Id: {}\r\nX-Client-Secret: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        device.creds.client_id,
        device.creds.client_secret.expose(),
        body.len()
    )
    .into_bytes()
}

/// Splits a raw HTTP answer into its head (text) and body bytes.
pub(crate) fn split_head(raw: &[u8]) -> (String, Vec<u8>) {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no complete head");
    (
        String::from_utf8_lossy(&raw[..end]).into_owned(),
        raw[end + 4..].to_vec(),
    )
}
