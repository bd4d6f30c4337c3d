//! The contract's routes (sections 2-6). Device authentication, recording and
//! faults happen before these handlers run (see `server`).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use spacepos_erp_wire::rest::{
    DatasetInfo, DatasetList, LoginRequest, MAX_OPERATIONS_PER_BATCH, OnboardRequest,
    OnboardResponse, OperationsRequest, OperationsResponse, PendingReleases, RefreshRequest,
    SnapshotPage,
};

use crate::admin;
use crate::datasets::PageError;
use crate::sessions::SessionError;
use crate::state::ErpState;
use crate::terminals::{AuthTerminal, OnboardError};
use crate::util::{ApiError, error, lock};

/// `limit` when the request has none.
pub(crate) const DEFAULT_PAGE_LIMIT: usize = 1000;
/// Largest `limit` of snapshot and changes pages.
pub(crate) const MAX_PAGE_LIMIT: usize = 5000;

type AppState = State<Arc<ErpState>>;

pub(crate) fn router(state: Arc<ErpState>) -> Router {
    Router::new()
        .route("/api/pos/terminals/onboard", post(onboard))
        .route("/api/pos/terminals/me", get(me))
        .route("/api/pos/datasets", get(list_datasets))
        .route("/api/pos/datasets/{name}/snapshot", get(snapshot))
        .route("/api/pos/datasets/{name}/changes", get(changes))
        .route("/api/pos/operations", post(operations))
        .route("/api/pos/releases/pending", get(pending_releases))
        .route(
            "/api/pos/releases/{component}/{version}/{file}",
            get(artifact),
        )
        .route("/api/pos/auth/login", post(login))
        .route("/api/pos/auth/refresh", post(refresh))
        .route("/api/pos/auth/jwks", get(jwks))
        .merge(admin::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

async fn not_found() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no such endpoint in ERP contract v1",
    )
}

async fn method_not_allowed() -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
}

/// A serde error described without echoing the input (it may hold a code or a PIN).
fn describe_json_error(e: &serde_json::Error) -> String {
    let text = e.to_string();
    if text.starts_with("missing field") {
        return text;
    }
    let what = match e.classify() {
        serde_json::error::Category::Io => "unreadable body",
        serde_json::error::Category::Syntax => "malformed JSON",
        serde_json::error::Category::Data => "a property has the wrong type or value",
        serde_json::error::Category::Eof => "the JSON ends too early",
    };
    format!("{what} at line {} column {}", e.line(), e.column())
}

/// Parses a JSON body, or answers `422 invalid_request`.
pub(crate) fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid_request(format!("invalid request body: {}", describe_json_error(&e)))
    })
}

/// A `200` JSON answer serialized into a pre-sized buffer: large pages are
/// served noticeably faster than through `Json`'s small growing buffer.
fn json_response<T: serde::Serialize>(value: &T, capacity: usize) -> Response {
    let mut buf = Vec::with_capacity(capacity);
    match serde_json::to_writer(&mut buf, value) {
        Ok(()) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            buf,
        )
            .into_response(),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            format!("cannot serialize the answer: {e}"),
        ),
    }
}

fn invalid_request(message: impl Into<String>) -> Response {
    error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", message)
}

// ---- section 2 ----------------------------------------------------------------

async fn onboard(State(s): AppState, body: Bytes) -> Response {
    let req: OnboardRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if req.onboarding_code.trim().is_empty() {
        return invalid_request("onboardingCode must not be empty");
    }
    let result = lock(&s.terminals).onboard(&req);
    match result {
        Ok((info, secret)) => Json(OnboardResponse {
            client_id: info.client_id,
            client_secret: secret,
            store_number: info.store_number,
            terminal_number: info.terminal_number,
            api_endpoint: Some(s.base_url.clone()),
            amqp_url: s.config.amqp_url.clone(),
            report_presence: Some(info.report_presence),
            presence_interval_seconds: Some(info.presence_interval_seconds),
            company_information: Some(info.company_information),
        })
        .into_response(),
        Err(OnboardError::Unknown) => error(
            StatusCode::NOT_FOUND,
            "unknown_onboarding_code",
            "this onboarding code is not known: check it, or ask the ERP for a new one",
        ),
        Err(OnboardError::Used) => error(
            StatusCode::CONFLICT,
            "onboarding_code_used",
            "this onboarding code was already used: ask the ERP for a new one",
        ),
    }
}

async fn me(State(s): AppState, Extension(t): Extension<AuthTerminal>) -> Response {
    let info = lock(&s.terminals).get(&t.client_id);
    match info {
        Some(info) => Json(info.me()).into_response(),
        None => crate::server::invalid_client(),
    }
}

// ---- section 3 ----------------------------------------------------------------

async fn list_datasets(State(s): AppState) -> Response {
    let datasets = lock(&s.datasets)
        .all()
        .iter()
        .map(|d| DatasetInfo {
            name: d.name().to_owned(),
            last_sequence: d.last_sequence(),
        })
        .collect();
    Json(DatasetList { datasets }).into_response()
}

fn parse_limit(limit: Option<&str>) -> Result<usize, ApiError> {
    let Some(text) = limit else {
        return Ok(DEFAULT_PAGE_LIMIT);
    };
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=MAX_PAGE_LIMIT).contains(&n) => Ok(n),
        _ => Err(ApiError::invalid_request(format!(
            "limit must be a number from 1 to {MAX_PAGE_LIMIT}"
        ))),
    }
}

fn unknown_dataset(name: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "unknown_dataset",
        format!("the ERP has no dataset named {name:?}"),
    )
}

fn page_error(e: PageError) -> Response {
    match e {
        PageError::InvalidCursor(m) => error(StatusCode::UNPROCESSABLE_ENTITY, "invalid_cursor", m),
        PageError::Expired(m) => error(StatusCode::GONE, "sequence_expired", m),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct SnapshotQuery {
    cursor: Option<String>,
    limit: Option<String>,
}

async fn snapshot(
    State(s): AppState,
    Path(name): Path<String>,
    query: Result<Query<SnapshotQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return invalid_request("the query string cannot be read");
    };
    let limit = match parse_limit(q.limit.as_deref()) {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    let page = {
        let all = lock(&s.datasets);
        let Some(d) = all.get(&name) else {
            return unknown_dataset(&name);
        };
        d.snapshot_page(q.cursor.as_deref(), limit)
    };
    match page {
        Ok(p) => {
            let capacity = p.items.len() * 200 + 256;
            let page = SnapshotPage {
                dataset: name,
                as_of_sequence: p.as_of_sequence,
                items: p.items,
                next_cursor: p.next_cursor,
            };
            json_response(&page, capacity)
        }
        Err(e) => page_error(e),
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChangesQuery {
    after: Option<String>,
    limit: Option<String>,
}

async fn changes(
    State(s): AppState,
    Path(name): Path<String>,
    query: Result<Query<ChangesQuery>, QueryRejection>,
) -> Response {
    let Ok(Query(q)) = query else {
        return invalid_request("the query string cannot be read");
    };
    let limit = match parse_limit(q.limit.as_deref()) {
        Ok(l) => l,
        Err(e) => return e.into_response(),
    };
    let Some(after) = q
        .after
        .as_deref()
        .and_then(|a| a.trim().parse::<u64>().ok())
    else {
        return invalid_request("after must be a sequence number");
    };
    let page = {
        let all = lock(&s.datasets);
        let Some(d) = all.get(&name) else {
            return unknown_dataset(&name);
        };
        d.changes_page(after, limit)
    };
    match page {
        Ok(p) => {
            let capacity = p.items.len() * 200 + 256;
            json_response(&p, capacity)
        }
        Err(e) => page_error(e),
    }
}

// ---- section 4 ----------------------------------------------------------------

async fn operations(
    State(s): AppState,
    Extension(t): Extension<AuthTerminal>,
    body: Bytes,
) -> Response {
    let req: OperationsRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    if req.operations.len() > MAX_OPERATIONS_PER_BATCH {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "too_many_operations",
            format!(
                "a batch holds at most {MAX_OPERATIONS_PER_BATCH} operations, this one {}",
                req.operations.len()
            ),
        );
    }
    let results = lock(&s.operations).submit(&t.client_id, req.operations);
    Json(OperationsResponse { results }).into_response()
}

// ---- section 5 ----------------------------------------------------------------

async fn pending_releases(State(s): AppState, headers: HeaderMap) -> Response {
    let user_agent = headers
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let releases = lock(&s.releases).pending(user_agent);
    Json(PendingReleases { releases }).into_response()
}

/// What a `Range` header asks for.
#[derive(Debug, PartialEq, Eq)]
enum RangeRequest {
    /// No usable range: send everything (RFC 9110 lets a server ignore a range it does not support).
    Whole,
    /// Inclusive byte positions.
    Part(u64, u64),
    Unsatisfiable,
}

fn parse_range(value: Option<&HeaderValue>, total: u64) -> RangeRequest {
    let Some(spec) = value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("bytes="))
    else {
        return RangeRequest::Whole;
    };
    if spec.contains(',') {
        return RangeRequest::Whole;
    }
    let Some((a, b)) = spec.split_once('-') else {
        return RangeRequest::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        return match b.parse::<u64>() {
            Ok(0) => RangeRequest::Unsatisfiable,
            Ok(_) if total == 0 => RangeRequest::Unsatisfiable,
            Ok(n) => RangeRequest::Part(total.saturating_sub(n), total - 1),
            Err(_) => RangeRequest::Whole,
        };
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeRequest::Whole;
    };
    let end = if b.is_empty() {
        total.saturating_sub(1)
    } else {
        match b.parse::<u64>() {
            Ok(end) if end >= start => end.min(total.saturating_sub(1)),
            _ => return RangeRequest::Whole,
        }
    };
    if start >= total {
        RangeRequest::Unsatisfiable
    } else {
        RangeRequest::Part(start, end)
    }
}

async fn artifact(
    State(s): AppState,
    Path((component, version, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let Some(bytes) = lock(&s.releases).artifact(&component, &version, &file) else {
        return error(
            StatusCode::NOT_FOUND,
            "release_not_found",
            "no such release artifact",
        );
    };
    let total = bytes.len() as u64;
    let octet = HeaderValue::from_static("application/octet-stream");
    let ranges = HeaderValue::from_static("bytes");
    match parse_range(headers.get(header::RANGE), total) {
        RangeRequest::Whole => (
            [
                (header::CONTENT_TYPE, octet),
                (header::ACCEPT_RANGES, ranges),
            ],
            Body::from(bytes),
        )
            .into_response(),
        RangeRequest::Part(start, end) => {
            let (from, to) = (
                usize::try_from(start).unwrap_or(usize::MAX),
                usize::try_from(end).unwrap_or(usize::MAX),
            );
            let part = bytes.slice(from..=to.min(bytes.len().saturating_sub(1)));
            let content_range = format!("bytes {start}-{end}/{total}");
            (
                StatusCode::PARTIAL_CONTENT,
                [
                    (header::CONTENT_TYPE, octet),
                    (header::ACCEPT_RANGES, ranges),
                ],
                [(header::CONTENT_RANGE, content_range)],
                Body::from(part),
            )
                .into_response()
        }
        RangeRequest::Unsatisfiable => {
            let mut r = error(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range_not_satisfiable",
                format!("the artifact has {total} bytes"),
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{total}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            r
        }
    }
}

// ---- section 6 ----------------------------------------------------------------

fn session_error(e: SessionError) -> Response {
    match e {
        SessionError::InvalidCredentials => error(
            StatusCode::UNAUTHORIZED,
            "invalid_credentials",
            "unknown staff code or wrong PIN",
        ),
        SessionError::InvalidRefreshToken => error(
            StatusCode::UNAUTHORIZED,
            "invalid_refresh_token",
            "the refresh token is unknown, already used or not this terminal's: log in again",
        ),
        SessionError::Internal => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal_error",
            "token signing failed",
        ),
    }
}

async fn login(State(s): AppState, Extension(t): Extension<AuthTerminal>, body: Bytes) -> Response {
    let req: LoginRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let result = lock(&s.sessions).login(
        &t.client_id,
        t.store_number,
        &req.staff_code,
        req.pin.expose(),
    );
    match result {
        Ok(tokens) => Json(tokens).into_response(),
        Err(e) => session_error(e),
    }
}

async fn refresh(
    State(s): AppState,
    Extension(t): Extension<AuthTerminal>,
    body: Bytes,
) -> Response {
    let req: RefreshRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let result =
        lock(&s.sessions).refresh(&t.client_id, t.store_number, req.refresh_token.expose());
    match result {
        Ok(tokens) => Json(tokens).into_response(),
        Err(e) => session_error(e),
    }
}

async fn jwks(State(s): AppState) -> Response {
    Json(lock(&s.sessions).jwks()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(v: &str, total: u64) -> RangeRequest {
        parse_range(Some(&HeaderValue::from_str(v).unwrap()), total)
    }

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), RangeRequest::Whole);
        assert_eq!(range("bytes=4-", 10), RangeRequest::Part(4, 9));
        assert_eq!(range("bytes=0-0", 10), RangeRequest::Part(0, 0));
        assert_eq!(range("bytes=2-100", 10), RangeRequest::Part(2, 9));
        assert_eq!(range("bytes=-3", 10), RangeRequest::Part(7, 9));
        assert_eq!(range("bytes=10-", 10), RangeRequest::Unsatisfiable);
        assert_eq!(range("bytes=0-", 0), RangeRequest::Unsatisfiable);
        assert_eq!(range("bytes=5-2", 10), RangeRequest::Whole);
        assert_eq!(range("bytes=0-1,4-5", 10), RangeRequest::Whole);
        assert_eq!(range("items=0-1", 10), RangeRequest::Whole);
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit(None).unwrap(), DEFAULT_PAGE_LIMIT);
        assert_eq!(parse_limit(Some("5000")).unwrap(), 5000);
        assert!(parse_limit(Some("0")).is_err());
        assert!(parse_limit(Some("5001")).is_err());
        assert!(parse_limit(Some("ten")).is_err());
    }

    #[test]
    fn json_errors_do_not_echo_values() {
        let e = serde_json::from_str::<LoginRequest>(r#"{"staffCode": 1234, "pin": "9876"}"#)
            .unwrap_err();
        assert!(
            !describe_json_error(&e).contains("1234"),
            "{}",
            describe_json_error(&e)
        );
        let e = serde_json::from_str::<LoginRequest>(r#"{"staffCode": "1"}"#).unwrap_err();
        assert!(describe_json_error(&e).contains("missing field `pin`"));
    }
}
