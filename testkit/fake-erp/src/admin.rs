//! The admin API under `/__admin/`: test-only, loopback-only, unauthenticated.
//! It drives the same state as the [`crate::FakeErp`] handle, for tests that run
//! the fake in another process (`spacepos erp-sim`).

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;
use spacepos_core::ComponentId;

use crate::api::parse_json;
use crate::datasets::EntityChange;
use crate::error::FakeErpError;
use crate::faults::FaultRule;
use crate::operations::RejectRule;
use crate::releases::{ReleaseSpec, UpdateKey};
use crate::sessions::{TOKEN_AUDIENCE, TOKEN_ISSUER, TokenKey, TokenSpec};
use crate::state::ErpState;
use crate::terminals::TerminalSettings;
use crate::util::{error, lock};

type AppState = State<Arc<ErpState>>;

pub(crate) fn routes() -> Router<Arc<ErpState>> {
    Router::new()
        .route("/__admin/requests", get(requests).delete(clear_requests))
        .route(
            "/__admin/faults",
            get(faults).post(add_faults).delete(clear_faults),
        )
        .route("/__admin/onboarding-codes", post(issue_code))
        .route("/__admin/terminals", get(terminals))
        .route(
            "/__admin/terminals/{client_id}/settings",
            post(terminal_settings),
        )
        .route(
            "/__admin/terminals/{client_id}/revoke",
            post(revoke_terminal),
        )
        .route("/__admin/operations", get(operations))
        .route(
            "/__admin/reject-rules",
            post(add_reject_rule).delete(clear_reject_rules),
        )
        .route("/__admin/datasets/{name}/mutate", post(mutate))
        .route("/__admin/datasets/{name}/expire", post(expire))
        .route("/__admin/datasets/{name}/state", get(dataset_state))
        .route(
            "/__admin/datasets/{name}/events/{sequence}",
            get(dataset_event),
        )
        .route(
            "/__admin/releases",
            post(publish_release).delete(withdraw_releases),
        )
        .route("/__admin/keys", get(keys))
        .route("/__admin/jwt/rotate", post(rotate_jwt))
        .route("/__admin/tokens", post(mint_token))
        .route("/__admin/pause", post(pause))
}

fn failure(e: FakeErpError) -> Response {
    let (status, code) = match &e {
        FakeErpError::UnknownDataset(_)
        | FakeErpError::UnknownTerminal(_)
        | FakeErpError::UnknownSequence { .. } => (StatusCode::NOT_FOUND, "not_found"),
        FakeErpError::InvalidChange { .. } | FakeErpError::InvalidConfig(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request")
        }
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
    };
    error(status, code, e.to_string())
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

async fn requests(State(s): AppState) -> Response {
    Json(lock(&s.recorder).all()).into_response()
}

async fn clear_requests(State(s): AppState) -> Response {
    lock(&s.recorder).clear();
    no_content()
}

async fn faults(State(s): AppState) -> Response {
    Json(lock(&s.faults).list()).into_response()
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

async fn add_faults(State(s): AppState, body: Bytes) -> Response {
    let rules = match parse_json::<OneOrMany<FaultRule>>(&body) {
        Ok(OneOrMany::One(r)) => vec![r],
        Ok(OneOrMany::Many(r)) => r,
        Err(e) => return e.into_response(),
    };
    let mut faults = lock(&s.faults);
    for rule in rules {
        faults.add(rule);
    }
    Json(faults.list()).into_response()
}

async fn clear_faults(State(s): AppState) -> Response {
    lock(&s.faults).clear();
    no_content()
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CodeRequest {
    store_number: u32,
    terminal_number: u32,
    /// A chosen code; by default the fake makes one up.
    code: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CodeResponse {
    code: String,
    store_number: u32,
    terminal_number: u32,
}

async fn issue_code(State(s): AppState, body: Bytes) -> Response {
    let req: CodeRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let mut terminals = lock(&s.terminals);
    let code = match req.code.filter(|c| !c.trim().is_empty()) {
        Some(c) => {
            terminals.add_code(&c, req.store_number, req.terminal_number);
            c
        }
        None => terminals.issue_code(req.store_number, req.terminal_number),
    };
    Json(CodeResponse {
        code,
        store_number: req.store_number,
        terminal_number: req.terminal_number,
    })
    .into_response()
}

async fn terminals(State(s): AppState) -> Response {
    Json(lock(&s.terminals).list()).into_response()
}

async fn terminal_settings(
    State(s): AppState,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let settings: TerminalSettings = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let updated = lock(&s.terminals).update(&client_id, settings);
    match updated {
        Ok(info) => Json(info.me()).into_response(),
        Err(e) => failure(e),
    }
}

async fn revoke_terminal(State(s): AppState, Path(client_id): Path<String>) -> Response {
    let result = lock(&s.terminals).revoke(&client_id);
    match result {
        Ok(()) => no_content(),
        Err(e) => failure(e),
    }
}

async fn operations(State(s): AppState) -> Response {
    let ops = lock(&s.operations);
    Json(json!({
        "acceptedCount": ops.accepted_count(),
        "duplicateAnswers": ops.duplicate_answers(),
        "rejectedAnswers": ops.rejected_answers(),
        "accepted": ops.accepted(),
    }))
    .into_response()
}

async fn add_reject_rule(State(s): AppState, body: Bytes) -> Response {
    let rules = match parse_json::<OneOrMany<RejectRule>>(&body) {
        Ok(OneOrMany::One(r)) => vec![r],
        Ok(OneOrMany::Many(r)) => r,
        Err(e) => return e.into_response(),
    };
    let mut ops = lock(&s.operations);
    for rule in rules {
        ops.add_rule(rule);
    }
    no_content()
}

async fn clear_reject_rules(State(s): AppState) -> Response {
    lock(&s.operations).clear_rules();
    no_content()
}

/// `{"count": n}` makes n random changes; `{"changes": [...]}` makes one change of those entities.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MutateRequest {
    count: Option<usize>,
    changes: Option<Vec<EntityChange>>,
}

async fn mutate(State(s): AppState, Path(name): Path<String>, body: Bytes) -> Response {
    let req: MutateRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let result = match (req.count, req.changes) {
        (None, Some(changes)) => s.mutate(&name, changes).map(|seq| vec![seq]),
        (Some(n), None) => s.mutate_random(&name, n),
        _ => {
            return error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                "give either `count` or `changes`",
            );
        }
    };
    match result.and_then(|seqs| Ok((seqs, s.last_sequence(&name)?))) {
        Ok((sequences, last)) => {
            Json(json!({"sequences": sequences, "lastSequence": last})).into_response()
        }
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExpireRequest {
    through_sequence: u64,
}

async fn expire(State(s): AppState, Path(name): Path<String>, body: Bytes) -> Response {
    let req: ExpireRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match s.expire_changes_through(&name, req.through_sequence) {
        Ok(()) => no_content(),
        Err(e) => failure(e),
    }
}

async fn dataset_state(State(s): AppState, Path(name): Path<String>) -> Response {
    match s.final_state(&name) {
        Ok(state) => Json(state).into_response(),
        Err(e) => failure(e),
    }
}

async fn dataset_event(
    State(s): AppState,
    Path((name, sequence)): Path<(String, u64)>,
) -> Response {
    match s.changed_event(&name, sequence) {
        Ok(event) => Json(event).into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ReleaseRequest {
    component: ComponentId,
    version: String,
    #[serde(default = "default_artifact_size")]
    size: u64,
    file_name: Option<String>,
    notes: Option<String>,
    #[serde(default)]
    allow_downgrade: bool,
    #[serde(default)]
    signing_key: UpdateKey,
    advertised_version: Option<String>,
    #[serde(default)]
    tamper: bool,
    sha256: Option<String>,
}

fn default_artifact_size() -> u64 {
    64 * 1024
}

async fn publish_release(State(s): AppState, body: Bytes) -> Response {
    let req: ReleaseRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let spec = ReleaseSpec {
        file_name: req.file_name,
        notes: req.notes,
        allow_downgrade: req.allow_downgrade,
        signing_key: req.signing_key,
        advertised_version: req.advertised_version,
        tamper: req.tamper,
        sha256_override: req.sha256,
        ..ReleaseSpec::new(req.component, req.version).with_size(req.size)
    };
    match s.publish_release(spec) {
        Ok(release) => Json(release).into_response(),
        Err(e) => failure(e),
    }
}

async fn withdraw_releases(State(s): AppState) -> Response {
    lock(&s.releases).withdraw(None);
    no_content()
}

async fn keys(State(s): AppState) -> Response {
    Json(lock(&s.releases).keys()).into_response()
}

async fn rotate_jwt(State(s): AppState) -> Response {
    let rotated = lock(&s.sessions).rotate();
    match rotated {
        Ok(kid) => Json(json!({"kid": kid})).into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct MintRequest {
    sub: String,
    store: u32,
    #[serde(default)]
    expired: bool,
    #[serde(default)]
    unknown_key: bool,
    audience: Option<String>,
    issuer: Option<String>,
    lifetime_seconds: Option<i64>,
}

async fn mint_token(State(s): AppState, body: Bytes) -> Response {
    let req: MintRequest = match parse_json(&body) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let mut spec = TokenSpec::new(req.sub, req.store);
    if let Some(l) = req.lifetime_seconds {
        spec = spec.with_lifetime_seconds(l);
    }
    if req.expired {
        spec = spec.expired();
    }
    if req.unknown_key {
        spec.key = TokenKey::Unknown;
    }
    spec.audience = req.audience.unwrap_or_else(|| TOKEN_AUDIENCE.into());
    spec.issuer = req.issuer.unwrap_or_else(|| TOKEN_ISSUER.into());
    let minted = lock(&s.sessions).mint(&spec);
    match minted {
        Ok(token) => Json(json!({"token": token})).into_response(),
        Err(e) => failure(e),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct PauseRequest {
    /// Come back after this long; by default stay paused until the process ends
    /// (only the in-process handle could resume it then).
    for_millis: Option<u64>,
}

/// Answers `202`, then closes the port (and every connection) shortly after.
async fn pause(State(s): AppState, body: Bytes) -> Response {
    let req: PauseRequest = if body.is_empty() {
        PauseRequest::default()
    } else {
        match parse_json(&body) {
            Ok(r) => r,
            Err(e) => return e.into_response(),
        }
    };
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(50)).await;
        s.pause().await;
        if let Some(ms) = req.for_millis {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            if let Err(e) = s.resume().await {
                tracing::debug!(error = %e, "fake ERP could not resume after an admin pause");
            }
        }
    });
    (
        StatusCode::ACCEPTED,
        Json(json!({"paused": true, "forMillis": req.for_millis})),
    )
        .into_response()
}
