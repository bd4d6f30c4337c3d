//! REST bodies (contract sections 1-6), camelCase as ASP.NET Core writes them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use spacepos_core::Secret;
use uuid::Uuid;

/// Error body of every non-2xx answer: `{"error": "<code>", "message": "<text>"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorBody {
    pub error: String,
    #[serde(default)]
    pub message: String,
}

// ---- section 2: onboarding -------------------------------------------------

/// `POST /api/pos/terminals/onboard` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnboardRequest {
    pub onboarding_code: String,
    pub hostname: String,
    pub os: String,
    pub arch: String,
    pub app_version: String,
    #[serde(default)]
    pub components: Vec<String>,
}

/// `POST /api/pos/terminals/onboard` response `200`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnboardResponse {
    pub client_id: String,
    pub client_secret: Secret,
    pub store_number: u32,
    pub terminal_number: u32,
    pub api_endpoint: Option<String>,
    pub amqp_url: Option<String>,
    pub report_presence: Option<bool>,
    pub presence_interval_seconds: Option<u32>,
    pub company_information: Option<CompanyInformation>,
}

/// The company the terminal belongs to, as the ERP describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CompanyInformation {
    pub name: Option<String>,
    pub vat_number: Option<String>,
    pub address: Option<String>,
    pub currency: Option<String>,
    pub time_zone: Option<String>,
}

/// `GET /api/pos/terminals/me`: the terminal's settings as the ERP holds them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TerminalMe {
    pub store_number: u32,
    pub terminal_number: u32,
    pub report_presence: Option<bool>,
    pub presence_interval_seconds: Option<u32>,
    pub company_information: Option<CompanyInformation>,
}

// ---- section 3: datasets ---------------------------------------------------

/// `GET /api/pos/datasets`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetList {
    pub datasets: Vec<DatasetInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetInfo {
    pub name: String,
    pub last_sequence: u64,
}

/// `GET /api/pos/datasets/{name}/snapshot`: one page of a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotPage {
    pub dataset: String,
    pub as_of_sequence: u64,
    pub items: Vec<SnapshotItem>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotItem {
    pub id: String,
    pub version: u64,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub data: Value,
}

/// `GET /api/pos/datasets/{name}/changes`: changes after a sequence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangesPage {
    pub dataset: String,
    pub items: Vec<ChangeItem>,
    pub last_sequence: u64,
    pub has_more: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeItem {
    pub sequence: u64,
    pub id: String,
    pub version: u64,
    #[serde(default)]
    pub deleted: bool,
    #[serde(default)]
    pub data: Value,
}

// ---- section 4: operations -------------------------------------------------

/// `POST /api/pos/operations` request: at most 500 operations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationsRequest {
    pub operations: Vec<Operation>,
}

/// Most operations a batch may carry.
pub const MAX_OPERATIONS_PER_BATCH: usize = 500;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    pub id: Uuid,
    #[serde(rename = "type")]
    pub kind: String,
    pub occurred_at: DateTime<Utc>,
    pub store_staff_id: Option<String>,
    pub payload: Value,
}

/// `POST /api/pos/operations` response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationsResponse {
    pub results: Vec<OperationResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationResult {
    pub id: Uuid,
    pub status: OperationStatus,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperationStatus {
    Accepted,
    Duplicate,
    Rejected,
}

// ---- section 5: releases ---------------------------------------------------

/// `GET /api/pos/releases/pending`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingReleases {
    pub releases: Vec<Release>,
}

/// One pending release. `component` stays a string here so that a component
/// this build does not know is skipped by the caller instead of failing the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Release {
    pub component: String,
    pub version: String,
    #[serde(default)]
    pub notes: Option<String>,
    pub pub_date: Option<DateTime<Utc>>,
    pub url: String,
    pub signature: String,
    pub sha256: String,
    pub size: Option<u64>,
    #[serde(default)]
    pub allow_downgrade: bool,
}

// ---- section 6: user sessions ----------------------------------------------

/// `POST /api/pos/auth/login` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginRequest {
    pub staff_code: String,
    pub pin: Secret,
}

/// `POST /api/pos/auth/refresh` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    pub refresh_token: Secret,
}

/// Answer of `login` and `refresh`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    pub access_token: Secret,
    pub refresh_token: Secret,
    pub expires_in: u64,
    pub store_staff_id: String,
}

/// `GET /api/pos/auth/jwks`: a JSON Web Key Set. Keys stay JSON objects here;
/// the auth domain parses them with its JWT library.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Jwks {
    pub keys: Vec<serde_json::Map<String, Value>>,
}
