use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use spacepos_core::endpoint::{EndpointError, EndpointKind, check_transport};
use spacepos_core::{ClientInfo, DeviceCredentials, RemoteError, TerminalIdentity};
use spacepos_erp_wire::rest::ErrorBody;
use url::Url;

/// Longest `Retry-After` we accept from the ERP; longer values are capped.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// How to reach the ERP and who is calling.
#[derive(Debug, Clone)]
pub struct ErpHttpConfig {
    pub base_url: Url,
    pub client: ClientInfo,
    /// Device credentials; `None` before onboarding (only onboarding works then).
    pub credentials: Option<DeviceCredentials>,
    /// Store and terminal, for `X-Terminal`; known once onboarded.
    pub terminal: Option<TerminalIdentity>,
    /// Contract: 5 s.
    pub connect_timeout: Duration,
    /// Contract: 30 s for the whole request.
    pub request_timeout: Duration,
    /// Seed pages and downloads have no whole-request limit but must make
    /// progress: at most this long between two reads.
    pub progress_timeout: Duration,
}

impl ErpHttpConfig {
    pub fn new(base_url: Url, client: ClientInfo) -> Self {
        ErpHttpConfig {
            base_url,
            client,
            credentials: None,
            terminal: None,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            progress_timeout: Duration::from_secs(30),
        }
    }

    pub fn with_device(
        mut self,
        credentials: DeviceCredentials,
        terminal: TerminalIdentity,
    ) -> Self {
        self.credentials = Some(credentials);
        self.terminal = Some(terminal);
        self
    }
}

/// Why a client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ErpHttpError {
    #[error("ERP endpoint {url}: {source}")]
    InsecureEndpoint {
        url: String,
        #[source]
        source: EndpointError,
    },
    #[error("a device header value is not valid in HTTP ({0}); check the credentials")]
    BadHeader(&'static str),
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

/// The ERP REST client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct ErpHttpClient {
    http: reqwest::Client,
    base: Url,
    host: String,
    device_headers: Option<HeaderMap>,
    request_timeout: Duration,
    progress_timeout: Duration,
}

/// Upper bound of a long transfer (a seed page, a download) that keeps making
/// progress: generous, but not forever.
pub(crate) const LONG_TRANSFER_LIMIT: Duration = Duration::from_secs(15 * 60);

impl ErpHttpClient {
    pub fn new(config: ErpHttpConfig) -> Result<Self, ErpHttpError> {
        check_transport(&config.base_url, EndpointKind::Http).map_err(|source| {
            ErpHttpError::InsecureEndpoint {
                url: config.base_url.to_string(),
                source,
            }
        })?;
        let user_agent = HeaderValue::from_str(&config.client.user_agent())
            .map_err(|_| ErpHttpError::BadHeader("User-Agent"))?;
        let http = reqwest::Client::builder()
            .user_agent(user_agent)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .read_timeout(config.progress_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ErpHttpError::Build(e.to_string()))?;
        let device_headers = match config.credentials {
            Some(creds) => Some(device_headers(&creds, config.terminal.as_ref())?),
            None => None,
        };
        let host = host_of(&config.base_url);
        let mut base = config.base_url;
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        Ok(ErpHttpClient {
            http,
            base,
            host,
            device_headers,
            request_timeout: config.request_timeout,
            progress_timeout: config.progress_timeout,
        })
    }

    /// `host[:port]` of the ERP, as error messages name it.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub(crate) fn url(&self, path: &str) -> Url {
        // `path` is relative ("api/pos/..."); the base ends with '/'.
        self.base.join(path).unwrap_or_else(|_| self.base.clone())
    }

    /// The URL of `segments` below the base, each percent-encoded as one segment.
    pub(crate) fn url_of(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    /// A device request to `segments`.
    pub(crate) fn device_to(
        &self,
        method: Method,
        segments: &[&str],
    ) -> Result<RequestBuilder, RemoteError> {
        let headers = self
            .device_headers
            .clone()
            .ok_or_else(|| RemoteError::Unauthorized {
                host: self.host.clone(),
            })?;
        Ok(self
            .http
            .request(method, self.url_of(segments))
            .headers(headers))
    }

    /// A GET of an absolute URL the ERP gave (a release artifact): with the
    /// device headers when it is on the ERP's own origin (scheme, host and
    /// port of the base URL), without them elsewhere, so that the client
    /// secret never reaches another host; any URL must obey the TLS rule.
    pub(crate) fn download_from(&self, url: &Url) -> Result<RequestBuilder, EndpointError> {
        check_transport(url, EndpointKind::Http)?;
        let request = self.http.get(url.clone());
        if url.origin() == self.base.origin()
            && let Some(headers) = self.device_headers.clone()
        {
            return Ok(request.headers(headers));
        }
        Ok(request)
    }

    /// A request without device headers (onboarding only).
    pub(crate) fn anonymous(&self, method: Method, path: &str) -> RequestBuilder {
        self.http.request(method, self.url(path))
    }

    /// A device request: `X-Client-Id`, `X-Client-Secret`, `X-Terminal`.
    pub(crate) fn device(&self, method: Method, path: &str) -> Result<RequestBuilder, RemoteError> {
        let headers = self
            .device_headers
            .clone()
            .ok_or_else(|| RemoteError::Unauthorized {
                host: self.host.clone(),
            })?;
        Ok(self.http.request(method, self.url(path)).headers(headers))
    }

    /// Send and map transport failures and non-2xx answers to [`RemoteError`].
    /// Returns the response for 2xx, or the status and error body otherwise so
    /// callers can map business cases (404, 409, 422) first.
    pub(crate) async fn send(
        &self,
        request: RequestBuilder,
    ) -> Result<Result<Response, Failure>, RemoteError> {
        let response = request.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        if status.is_success() {
            return Ok(Ok(response));
        }
        let retry_after = retry_after(response.headers(), Utc::now());
        let body: Option<ErrorBody> = response.json().await.ok();
        Ok(Err(Failure {
            status,
            retry_after,
            body,
        }))
    }

    /// The generic mapping of a non-2xx answer (contract section 1).
    pub(crate) fn remote_error(&self, f: Failure) -> RemoteError {
        let host = self.host.clone();
        let code = f.body.as_ref().map(|b| b.error.clone());
        match f.status.as_u16() {
            401 => RemoteError::Unauthorized { host },
            s @ (429 | 503) if f.retry_after.is_some() => RemoteError::RetryAfter {
                host,
                status: s,
                retry_after: f.retry_after.unwrap_or_default(),
            },
            s if s == 429 || f.status.is_server_error() => RemoteError::Server {
                host,
                status: s,
                code,
            },
            s => RemoteError::Rejected {
                host,
                status: s,
                code,
                message: f.body.map(|b| b.message).unwrap_or_default(),
            },
        }
    }

    /// Send, and turn every non-2xx answer into a [`RemoteError`].
    pub(crate) async fn send_ok(&self, request: RequestBuilder) -> Result<Response, RemoteError> {
        match self.send(request).await? {
            Ok(r) => Ok(r),
            Err(f) => Err(self.remote_error(f)),
        }
    }

    pub(crate) async fn json<T: DeserializeOwned>(
        &self,
        response: Response,
    ) -> Result<T, RemoteError> {
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| RemoteError::Protocol {
            host: self.host.clone(),
            detail: e.to_string(),
        })
    }

    pub(crate) fn transport_error(&self, e: &reqwest::Error) -> RemoteError {
        let host = self.host.clone();
        if e.is_timeout() {
            // A whole-request timeout, or no progress for `progress_timeout` on a long transfer.
            let after = if e.is_body() || e.is_decode() {
                self.progress_timeout
            } else {
                self.request_timeout
            };
            return RemoteError::Timeout { host, after };
        }
        RemoteError::Unreachable {
            host,
            detail: root_cause(e),
        }
    }
}

/// A non-2xx answer, before mapping.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) status: StatusCode,
    pub(crate) retry_after: Option<Duration>,
    pub(crate) body: Option<ErrorBody>,
}

impl Failure {
    pub(crate) fn code(&self) -> Option<&str> {
        self.body.as_ref().map(|b| b.error.as_str())
    }

    pub(crate) fn message(&self) -> String {
        self.body
            .as_ref()
            .map(|b| b.message.clone())
            .unwrap_or_default()
    }
}

fn device_headers(
    creds: &DeviceCredentials,
    terminal: Option<&TerminalIdentity>,
) -> Result<HeaderMap, ErpHttpError> {
    let mut h = HeaderMap::new();
    let id = HeaderValue::from_str(&creds.client_id)
        .map_err(|_| ErpHttpError::BadHeader("X-Client-Id"))?;
    let mut secret = HeaderValue::from_str(creds.client_secret.expose())
        .map_err(|_| ErpHttpError::BadHeader("X-Client-Secret"))?;
    secret.set_sensitive(true);
    h.insert(HeaderName::from_static("x-client-id"), id);
    h.insert(HeaderName::from_static("x-client-secret"), secret);
    if let Some(t) = terminal {
        let v = HeaderValue::from_str(&t.terminal_header())
            .map_err(|_| ErpHttpError::BadHeader("X-Terminal"))?;
        h.insert(HeaderName::from_static("x-terminal"), v);
    }
    Ok(h)
}

fn host_of(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => url.to_string(),
    }
}

/// The innermost cause, e.g. "Connection refused (os error 111)". reqwest's own
/// message contains the URL; the root cause does not.
fn root_cause(e: &reqwest::Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    let text = cause.to_string();
    if e.is_connect() && !text.to_lowercase().contains("connect") {
        format!("connection failed: {text}")
    } else {
        text
    }
}

/// `Retry-After` as seconds or an HTTP date, capped.
pub(crate) fn retry_after(headers: &HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = if let Ok(secs) = text.parse::<u64>() {
        Duration::from_secs(secs)
    } else {
        let at = DateTime::parse_from_rfc2822(text).ok()?.with_timezone(&Utc);
        (at - now).to_std().unwrap_or_default()
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn retry_after_forms() {
        let now = Utc.with_ymd_and_hms(2015, 10, 21, 7, 28, 0).unwrap();
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:30 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(Duration::from_secs(30)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("999999"));
        assert_eq!(retry_after(&h, now), Some(MAX_RETRY_AFTER));
        h.insert(RETRY_AFTER, HeaderValue::from_static("soon"));
        assert_eq!(retry_after(&h, now), None);
    }

    #[test]
    fn plain_http_to_a_remote_host_is_refused() {
        let info = ClientInfo {
            product: spacepos_core::Product::SpacePos,
            version: "0.1.0".into(),
            os_name: "Linux".into(),
            os_version: "6".into(),
            arch: "x86_64".into(),
            hostname: "h".into(),
        };
        let e = ErpHttpClient::new(ErpHttpConfig::new(
            Url::parse("http://erp.example.com").unwrap(),
            info.clone(),
        ))
        .unwrap_err();
        assert!(e.to_string().contains("https://erp.example.com"), "{e}");
        assert!(
            ErpHttpClient::new(ErpHttpConfig::new(
                Url::parse("http://127.0.0.1:9").unwrap(),
                info
            ))
            .is_ok()
        );
    }
}
