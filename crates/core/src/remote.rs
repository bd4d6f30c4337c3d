use std::time::Duration;

/// Why a call to the ERP (or the broker) failed, classified the way contract
/// section 1 asks the terminal to react.
///
/// Every port error that crosses the network embeds one of these, so the
/// runtime decides in one place: [`RemoteError::is_retryable`] failures are
/// retried later (after [`RemoteError::retry_after`] when the ERP said so),
/// [`RemoteError::Unauthorized`] stops device calls until the terminal is
/// onboarded again, the rest are surfaced to the operator.
///
/// Messages name the host and the HTTP status; they never contain a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RemoteError {
    /// `401`: the credentials are bad or revoked.
    #[error(
        "the ERP at {host} refused this terminal's credentials (HTTP 401): re-onboarding needed; \
         run `spacepos onboard --code <new code> --force`"
    )]
    Unauthorized { host: String },

    /// `429` or `503` with `Retry-After`: the ERP asked us to come back later.
    #[error("the ERP at {host} asked to retry after {} s (HTTP {status})", retry_after.as_secs())]
    RetryAfter {
        host: String,
        status: u16,
        retry_after: Duration,
    },

    /// Other `5xx`, or `429`/`503` without `Retry-After`: retryable.
    #[error(
        "the ERP at {host} failed (HTTP {status}{}); will retry",
        code_suffix(code)
    )]
    Server {
        host: String,
        status: u16,
        code: Option<String>,
    },

    /// The TCP/TLS connection could not be made or broke before an answer.
    #[error("cannot reach {host}: {detail}")]
    Unreachable { host: String, detail: String },

    /// No answer within the time allowed.
    #[error("{host} did not answer within {} s", after.as_secs())]
    Timeout { host: String, after: Duration },

    /// A non-retryable `4xx` the caller did not map to a business case.
    #[error(
        "the ERP at {host} rejected the request (HTTP {status}{}): {message}",
        code_suffix(code)
    )]
    Rejected {
        host: String,
        status: u16,
        code: Option<String>,
        message: String,
    },

    /// The answer could not be understood (not the contract's JSON).
    #[error("the ERP at {host} sent an answer that does not follow the contract: {detail}")]
    Protocol { host: String, detail: String },
}

fn code_suffix(code: &Option<String>) -> String {
    match code {
        Some(c) => format!(", {c}"),
        None => String::new(),
    }
}

impl RemoteError {
    /// Whether trying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            RemoteError::RetryAfter { .. }
                | RemoteError::Server { .. }
                | RemoteError::Unreachable { .. }
                | RemoteError::Timeout { .. }
        )
    }

    /// The delay the ERP asked for, if it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            RemoteError::RetryAfter { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    /// Whether the terminal must stop device calls until it is onboarded again.
    pub fn needs_reonboarding(&self) -> bool {
        matches!(self, RemoteError::Unauthorized { .. })
    }

    /// The host the failure concerns.
    pub fn host(&self) -> &str {
        match self {
            RemoteError::Unauthorized { host }
            | RemoteError::RetryAfter { host, .. }
            | RemoteError::Server { host, .. }
            | RemoteError::Unreachable { host, .. }
            | RemoteError::Timeout { host, .. }
            | RemoteError::Rejected { host, .. }
            | RemoteError::Protocol { host, .. } => host,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let h = || "erp.example.com".to_owned();
        assert!(
            RemoteError::Server {
                host: h(),
                status: 500,
                code: None
            }
            .is_retryable()
        );
        assert!(
            RemoteError::Unreachable {
                host: h(),
                detail: "refused".into()
            }
            .is_retryable()
        );
        assert!(!RemoteError::Unauthorized { host: h() }.is_retryable());
        assert!(RemoteError::Unauthorized { host: h() }.needs_reonboarding());
        let ra = RemoteError::RetryAfter {
            host: h(),
            status: 429,
            retry_after: Duration::from_secs(7),
        };
        assert_eq!(ra.retry_after(), Some(Duration::from_secs(7)));
        assert!(ra.to_string().contains("erp.example.com"));
        assert!(ra.to_string().contains("7 s"));
    }

    #[test]
    fn messages_name_host_and_status() {
        let e = RemoteError::Server {
            host: "erp:8080".into(),
            status: 503,
            code: Some("maintenance".into()),
        };
        assert_eq!(
            e.to_string(),
            "the ERP at erp:8080 failed (HTTP 503, maintenance); will retry"
        );
        let u = RemoteError::Unauthorized { host: "erp".into() };
        assert!(u.to_string().contains("re-onboarding needed"));
    }
}
