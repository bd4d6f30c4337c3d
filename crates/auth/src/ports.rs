//! The ports of the auth domain. Each trait's doc is its contract; the suites in
//! `spacepos_testkit::suites` check the clauses against the fakes and the adapters.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use jsonwebtoken::jwk::JwkSet;
use serde::{Deserialize, Serialize};
use spacepos_config::CompanyInformation;
use spacepos_core::{ClientInfo, ComponentId, DeviceCredentials, RedactedUrl, RemoteError, Secret};
use url::Url;

// ---- OnboardingApi ---------------------------------------------------------

/// What the terminal sends to be onboarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnboardingRequest {
    pub code: String,
    pub client: ClientInfo,
    pub components: Vec<ComponentId>,
}

/// What the ERP issued: credentials, identity, endpoints and settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Onboarded {
    pub credentials: DeviceCredentials,
    pub store_number: u32,
    pub terminal_number: u32,
    pub api_endpoint: Option<Url>,
    pub amqp_url: Option<RedactedUrl>,
    pub report_presence: Option<bool>,
    pub presence_interval_seconds: Option<u32>,
    pub company_information: Option<CompanyInformation>,
}

/// The terminal's settings as the ERP holds them (`GET /api/pos/terminals/me`).
#[derive(Debug, Clone, PartialEq)]
pub struct TerminalSettings {
    pub store_number: u32,
    pub terminal_number: u32,
    pub report_presence: Option<bool>,
    pub presence_interval_seconds: Option<u32>,
    pub company_information: Option<CompanyInformation>,
}

/// Why the ERP did not onboard the terminal. Messages say what to do next.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum OnboardError {
    #[error(
        "the ERP at {host} does not know this onboarding code (HTTP 404): check the code, or ask the ERP for a new one"
    )]
    UnknownCode { host: String },
    #[error("this onboarding code was already used (HTTP 409): ask the ERP for a new code")]
    CodeUsed { host: String },
    #[error("the ERP at {host} refused the onboarding request as malformed (HTTP 422): {message}")]
    Invalid { host: String, message: String },
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

/// The terminal's registration at the ERP.
///
/// Contract (checked by `spacepos_testkit::suites::onboarding_api`):
/// - `onboard` with a code the ERP issued returns credentials and identity; the
///   same code a second time is [`OnboardError::CodeUsed`]; a code the ERP never
///   issued is [`OnboardError::UnknownCode`]. It sends no device headers.
/// - `terminal_settings` answers with the identity issued at onboarding and the
///   settings the ERP holds now; with revoked or wrong credentials it is
///   [`RemoteError::Unauthorized`].
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait OnboardingApi: Send + Sync + 'static {
    async fn onboard(&self, request: &OnboardingRequest) -> Result<Onboarded, OnboardError>;
    async fn terminal_settings(&self) -> Result<TerminalSettings, RemoteError>;
}

// ---- AuthApi ---------------------------------------------------------------

/// Tokens the ERP granted to a staff member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    pub access_token: Secret,
    pub refresh_token: Secret,
    pub expires_in: Duration,
    pub store_staff_id: String,
}

/// Why a user-session call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuthApiError {
    #[error("wrong staff code or PIN")]
    InvalidCredentials,
    #[error("the ERP ended the session (refresh refused): log in again")]
    SessionEnded,
    #[error(transparent)]
    Remote(#[from] RemoteError),
}

/// User sessions at the ERP (contract section 6).
///
/// Contract (checked by `spacepos_testkit::suites::auth_api`):
/// - `login` with a known staff code and PIN grants an access token for that
///   staff member; a wrong PIN is [`AuthApiError::InvalidCredentials`].
/// - `refresh` with the current refresh token grants new tokens; the previous
///   refresh token no longer works ([`AuthApiError::SessionEnded`]).
/// - `jwks` returns the keys that verify the access tokens it grants.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AuthApi: Send + Sync + 'static {
    async fn login(&self, staff_code: &str, pin: &Secret) -> Result<TokenGrant, AuthApiError>;
    async fn refresh(&self, refresh_token: &Secret) -> Result<TokenGrant, AuthApiError>;
    async fn jwks(&self) -> Result<JwkSet, AuthApiError>;
}

// ---- CredentialStore -------------------------------------------------------

/// A staff session as persisted between runs (the node config's "auth token").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredSession {
    pub store_staff_id: String,
    pub access_token: Secret,
    pub refresh_token: Secret,
    pub expires_at: DateTime<Utc>,
    pub logged_in_at: DateTime<Utc>,
}

/// The ERP's JWKS as last fetched, so tokens verify while the ERP is unreachable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CachedJwks {
    pub jwks: JwkSet,
    pub fetched_at: DateTime<Utc>,
}

/// Failure of a [`CredentialStore`]; `location` names the file.
#[derive(Debug, thiserror::Error)]
pub enum CredentialStoreError {
    #[error("credential store failed at {location}: {source}")]
    Backend {
        location: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Keeps the staff session and the cached JWKS.
///
/// Contract (checked by `spacepos_testkit::suites::credential_store`):
/// - `load_*` on a fresh store is `Ok(None)`; `save_*` then `load_*` returns an
///   equal value; `clear_session` then `load_session` is `Ok(None)`.
/// - Saves are atomic; a file-backed store keeps the session (it holds tokens)
///   readable by the owner only.
/// - A damaged session file reads as "no session" (the staff member logs in
///   again), never as an error that blocks the till.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait CredentialStore: Send + Sync + 'static {
    async fn load_session(&self) -> Result<Option<StoredSession>, CredentialStoreError>;
    async fn save_session(&self, session: &StoredSession) -> Result<(), CredentialStoreError>;
    async fn clear_session(&self) -> Result<(), CredentialStoreError>;
    async fn load_jwks(&self) -> Result<Option<CachedJwks>, CredentialStoreError>;
    async fn save_jwks(&self, jwks: &CachedJwks) -> Result<(), CredentialStoreError>;
}
