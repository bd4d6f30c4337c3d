//! [`ReleaseApi`]: `GET /api/pos/releases/pending` and ranged artifact downloads.

use async_trait::async_trait;
use chrono::Utc;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, HeaderMap, RANGE};
use reqwest::{Method, StatusCode};
use spacepos_core::{ComponentId, RemoteError};
use spacepos_erp_wire::rest;
use spacepos_updates::{
    MAX_ARTIFACT_SIZE, PendingRelease, RangeChunk, ReleaseApi, ReleaseApiError, ReleaseComponent,
};
use url::Url;

use crate::ErpHttpClient;
use crate::client::{Failure, LONG_TRANSFER_LIMIT, retry_after};

fn release(r: rest::Release) -> PendingRelease {
    PendingRelease {
        component: match r.component.parse::<ComponentId>() {
            Ok(c) => ReleaseComponent::Known(c),
            Err(_) => ReleaseComponent::Unknown(r.component),
        },
        version: r.version,
        notes: r.notes,
        pub_date: r.pub_date,
        url: r.url,
        signature: r.signature,
        sha256: r.sha256,
        size: r.size,
        allow_downgrade: r.allow_downgrade,
    }
}

/// `bytes <first>-<last>/<total>` or `bytes */<total>`: (first, total).
fn content_range(headers: &HeaderMap) -> Option<(Option<u64>, u64)> {
    let text = headers.get(CONTENT_RANGE)?.to_str().ok()?.trim();
    let rest = text.strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = total.trim().parse().ok()?;
    if range.trim() == "*" {
        return Some((None, total));
    }
    let (first, _) = range.split_once('-')?;
    Some((Some(first.trim().parse().ok()?), total))
}

impl ErpHttpClient {
    fn protocol(&self, detail: impl Into<String>) -> ReleaseApiError {
        ReleaseApiError::Remote(RemoteError::Protocol {
            host: self.host().to_owned(),
            detail: detail.into(),
        })
    }
}

#[async_trait]
impl ReleaseApi for ErpHttpClient {
    async fn pending(&self) -> Result<Vec<PendingRelease>, ReleaseApiError> {
        let response = self
            .send_ok(self.device_to(Method::GET, &["api", "pos", "releases", "pending"])?)
            .await?;
        let list: rest::PendingReleases = self.json(response).await?;
        Ok(list.releases.into_iter().map(release).collect())
    }

    async fn fetch_range(
        &self,
        url: &str,
        start: u64,
        max_len: u64,
    ) -> Result<RangeChunk, ReleaseApiError> {
        let bad = |reason: String| ReleaseApiError::BadUrl {
            url: url.to_owned(),
            reason,
        };
        let parsed = Url::parse(url).map_err(|e| bad(format!("not a URL ({e})")))?;
        let last = start.saturating_add(max_len.max(1) - 1);
        let request = self
            .download_from(&parsed)
            .map_err(|e| bad(e.to_string()))?
            .header(RANGE, format!("bytes={start}-{last}"))
            .timeout(LONG_TRANSFER_LIMIT);
        let mut response = request.send().await.map_err(|e| self.transport_error(&e))?;
        let status = response.status();
        let (chunk_start, total) = match status {
            StatusCode::PARTIAL_CONTENT => {
                let (first, total) = content_range(response.headers())
                    .ok_or_else(|| self.protocol("a 206 answer without a valid Content-Range"))?;
                let first =
                    first.ok_or_else(|| self.protocol("a 206 answer with Content-Range `*`"))?;
                if first != start {
                    return Err(self.protocol(format!(
                        "asked for bytes from {start}, got bytes from {first}"
                    )));
                }
                (first, total)
            }
            StatusCode::OK => {
                // The server ignored the range: the whole artifact follows.
                let total = response
                    .headers()
                    .get(CONTENT_LENGTH)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                if total.is_some_and(|t| t > MAX_ARTIFACT_SIZE) {
                    return Err(self.protocol("the artifact is larger than any accepted"));
                }
                (0, total.unwrap_or(0))
            }
            StatusCode::RANGE_NOT_SATISFIABLE => {
                let total = content_range(response.headers())
                    .map(|(_, total)| total)
                    .ok_or_else(|| {
                        self.protocol("a 416 answer without `Content-Range: bytes */<size>`")
                    })?;
                return Err(ReleaseApiError::RangeNotSatisfiable { total });
            }
            StatusCode::NOT_FOUND => {
                return Err(ReleaseApiError::NotFound {
                    url: url.to_owned(),
                });
            }
            _ => {
                let failure = Failure {
                    status,
                    retry_after: retry_after(response.headers(), Utc::now()),
                    body: response.json().await.ok(),
                };
                return Err(self.remote_error(failure).into());
            }
        };
        let mut bytes = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(part)) => bytes.extend_from_slice(&part),
                Ok(None) => break,
                Err(e) if !bytes.is_empty() => {
                    // Cut short: hand over what arrived; the caller resumes after it.
                    tracing::debug!(
                        received = bytes.len(),
                        error = %self.transport_error(&e),
                        "artifact transfer cut short"
                    );
                    break;
                }
                Err(e) => return Err(self.transport_error(&e).into()),
            }
        }
        let total = if status == StatusCode::OK && total == 0 {
            bytes.len() as u64
        } else {
            total
        };
        Ok(RangeChunk {
            start: chunk_start,
            bytes,
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    #[test]
    fn content_range_forms() {
        let mut h = HeaderMap::new();
        h.insert(
            CONTENT_RANGE,
            HeaderValue::from_static("bytes 40000-99999/100000"),
        );
        assert_eq!(content_range(&h), Some((Some(40000), 100_000)));
        h.insert(CONTENT_RANGE, HeaderValue::from_static("bytes */100000"));
        assert_eq!(content_range(&h), Some((None, 100_000)));
        h.insert(CONTENT_RANGE, HeaderValue::from_static("items 1-2/3"));
        assert_eq!(content_range(&h), None);
    }
}
