//! The fake ERP: a real HTTP server on loopback that implements the server side
//! of ERP contract v1 (`docs/contract/ERP-CONTRACT.md`), statefully, recording
//! every request, with fault switches.
//!
//! This crate implements no port of SpacePOS: it is the other end of the wire.
//! Every body it reads or writes is a type of `spacepos-erp-wire`, so the fake
//! and the terminal's HTTP adapter cannot drift apart on spelling. It is used by
//! integration tests in-process (through the [`FakeErp`] handle), by the CLI's
//! `spacepos erp-sim` and `spacepos demo` (so it has no test-only dependency,
//! answers bad input with contract errors instead of panicking, and logs only
//! method, path and status: never a header value, a query or a body), and by
//! end-to-end tests out-of-process, through the admin API.
//!
//! # What it serves
//!
//! | contract | routes | state |
//! | --- | --- | --- |
//! | 2 onboarding | `POST /api/pos/terminals/onboard`, `GET /api/pos/terminals/me` | codes (configured or [`FakeErp::issue_onboarding_code`]), terminals, their settings |
//! | 3 datasets | `GET /api/pos/datasets`, `.../{name}/snapshot`, `.../{name}/changes` | entities generated from the seed on the fly (any size), a change log ([`FakeErp::mutate`]) |
//! | 4 operations | `POST /api/pos/operations` | accepted operations in order, reject rules |
//! | 5 releases | `GET /api/pos/releases/pending`, `GET /api/pos/releases/{component}/{version}/{file}` (with `Range`) | releases signed with minisign (primary, rotated, rogue keys) |
//! | 6 sessions | `POST /api/pos/auth/login`, `POST /api/pos/auth/refresh`, `GET /api/pos/auth/jwks` | Ed25519 JWTs, rotating refresh tokens |
//!
//! Every contract route except onboarding requires `X-Client-Id` +
//! `X-Client-Secret` of an onboarded, non-revoked terminal (else `401
//! invalid_client`); every contract request is recorded ([`FakeErp::requests`]),
//! authenticated or not.
//!
//! # Fault switches
//!
//! [`FaultRule`]s (handle: [`FakeErp::add_fault`]; admin: `POST /__admin/faults`)
//! make the next matching requests answer a status, `401`, `429`/`503` with
//! `Retry-After`, wait, close the connection without an answer (before or after
//! doing the work), or cut or stall the body after some bytes. [`FakeErp::pause`]
//! closes the port and every connection; [`FakeErp::resume`] listens again on
//! the same port.
//!
//! # Admin API (test-only)
//!
//! Under `/__admin/`, unauthenticated, answered to loopback clients only (`403`
//! otherwise), never recorded, never faulted. JSON is camelCase. **It exists for
//! tests and `erp-sim`; nothing in a terminal may call it.**
//!
//! | route | body | answer |
//! | --- | --- | --- |
//! | `GET /__admin/requests` | | `[RecordedRequest]` |
//! | `DELETE /__admin/requests` | | `204` |
//! | `GET /__admin/faults` | | `[FaultRule]` |
//! | `POST /__admin/faults` | a rule or an array: `{"route": "operations", "kind": {"type": "status", "status": 503}, "times": 2}` | the active rules |
//! | `DELETE /__admin/faults` | | `204` |
//! | `POST /__admin/onboarding-codes` | `{"storeNumber": 12, "terminalNumber": 4}` (optional `"code"`) | `{"code": "K7Q2-9XTM", "storeNumber": 12, "terminalNumber": 4}` |
//! | `GET /__admin/terminals` | | `[TerminalInfo]` (no secrets) |
//! | `POST /__admin/terminals/{clientId}/settings` | `{"presenceIntervalSeconds": 120, "reportPresence": true, "companyInformation": {...}}` (each optional) | `TerminalMe` |
//! | `POST /__admin/terminals/{clientId}/revoke` | | `204` |
//! | `GET /__admin/operations` | | `{"acceptedCount", "duplicateAnswers", "rejectedAnswers", "accepted": [...]}` |
//! | `POST /__admin/reject-rules` | `{"type": "sale.completed", "error": "x"}`, `{"id": "<uuid>", "error": "x"}` or `{"pointer": "/grade", "value": "FUEL-X", "error": "unknown_grade"}` (or an array) | `204` |
//! | `DELETE /__admin/reject-rules` | | `204` |
//! | `POST /__admin/datasets/{name}/mutate` | `{"count": 5}` or `{"changes": [{"id": "P-0000001", "data": {...}}, {"id": "P-0000002", "delete": true}]}` | `{"sequences": [...], "lastSequence": n}` |
//! | `POST /__admin/datasets/{name}/expire` | `{"throughSequence": n}` | `204` |
//! | `GET /__admin/datasets/{name}/state` | | `{id: {"version", "deleted", "data"}}` |
//! | `GET /__admin/datasets/{name}/events/{sequence}` | | `DatasetChangedIntegrationEvent` (PascalCase) |
//! | `POST /__admin/releases` | `{"component": "spacepos", "version": "1.5.0", "size": 65536, "notes", "fileName", "allowDowngrade", "signingKey": "primary"/"rotated"/"rogue", "advertisedVersion", "tamper", "sha256"}` | the `Release` as `pending` lists it |
//! | `DELETE /__admin/releases` | | `204` (nothing pending) |
//! | `GET /__admin/keys` | | `{"primary", "rotated", "rogue"}`, each `{"keyId", "keyLine", "pubFile", "tauriPubkey"}` |
//! | `POST /__admin/jwt/rotate` | | `{"kid": ...}` |
//! | `POST /__admin/tokens` | `{"sub": "S-0042", "store": 12, "expired", "unknownKey", "audience", "issuer", "lifetimeSeconds"}` | `{"token": ...}` |
//! | `POST /__admin/pause` | `{"forMillis": 3000}` (optional) | `202`, then the port closes (and reopens after `forMillis`) |
//!
//! # Where the contract is silent
//!
//! The fake decides as a careful ASP.NET Core team would; terminals may rely on
//! these answers only as far as the contract does.
//!
//! - **Errors.** Malformed JSON, a missing or mistyped property, an empty
//!   onboarding code: `422 invalid_request` (the message never echoes a value).
//!   Unknown path: `404 not_found` (after device auth, so `401` first); wrong
//!   method: `405 method_not_allowed`; body over 32 MiB: `413 payload_too_large`.
//! - **Device auth** covers every route but onboarding: JWKS and artifact
//!   downloads included. `X-Terminal` is recorded, not enforced.
//! - **Onboarding codes** are single use, compared trimmed and case-insensitively.
//!   Onboarding a till slot again issues new credentials and leaves the old ones
//!   valid: revoking is an explicit ERP action ([`FakeErp::revoke_terminal`]).
//! - **Snapshots.** `limit` defaults to 1000; outside 1..=5000 it is `422
//!   invalid_request`. The cursor is base64url (no padding) of
//!   `{"as": asOfSequence, "after": lastId}`, as in the contract's example; a
//!   cursor this dataset cannot have issued is `422 invalid_cursor`. Entities
//!   deleted by a change appear as tombstones (`deleted: true, data: null`).
//! - **Changes.** `after` is required. Below what the ERP holds (the generated
//!   base state, or [`FakeErp::expire_changes_through`]) and also *above* the last
//!   sequence (an ERP restored from an older state): `410 sequence_expired`. A
//!   change with more items than `limit` comes whole, alone on its page.
//!   `lastSequence` is the last item's sequence, or `after` on an empty page.
//! - **Operations.** Ids are global (UUIDs), not per terminal. An id repeated in
//!   one batch is `duplicate` the second time; `duplicate` is checked before the
//!   reject rules. An empty batch is `200` with no results; a batch over 500 or a
//!   malformed one is refused whole (`422`), nothing applied.
//! - **Releases.** `pending` lists the last release published per component;
//!   publishing replaces it, and older artifacts stay downloadable. The URL is
//!   `{base}/api/pos/releases/{component}/{advertised version}/{file}`. `Range`:
//!   one range (`N-`, `N-M`, `-N`) gives `206` with `Content-Range`; several
//!   ranges or an unreadable header give the whole file (`200`); a start past
//!   the end gives `416` with `Content-Range: bytes */len`.
//! - **Sessions.** A refresh token belongs to the terminal that got it and is
//!   spent by any attempt to use it (from another terminal: `401`, and the token
//!   is gone). A rotated-out JWT key stays in the JWKS until
//!   [`FakeErp::drop_retired_jwt_keys`]. Tokens carry `typ: JWT` and `kid`.
//!
//! # Example
//!
//! ```no_run
//! # async fn example() -> Result<(), spacepos_fake_erp::FakeErpError> {
//! use spacepos_fake_erp::{FakeErp, FakeErpConfig, FaultKind, FaultRule, Route};
//!
//! let erp = FakeErp::start(FakeErpConfig::demo()).await?;
//! let code = erp.issue_onboarding_code(12, 7);
//! erp.add_fault(FaultRule::once(Route::Operations, FaultKind::ApplyThenDrop));
//! // ... point a terminal at erp.base_url() and onboard it with `code` ...
//! erp.shutdown().await;
//! # Ok(()) }
//! ```

mod admin;
mod api;
mod body;
mod config;
mod datasets;
mod error;
mod faults;
mod generate;
mod operations;
mod record;
mod releases;
mod server;
mod sessions;
mod state;
mod terminals;
mod util;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use spacepos_core::DeviceCredentials;
use spacepos_erp_wire::events::{
    DatasetChangedIntegrationEvent, PosReleasePublishedIntegrationEvent,
};
use spacepos_erp_wire::rest::{Jwks, Release, TerminalMe};

pub use config::{DatasetKind, DatasetSpec, FakeErpConfig, OnboardingCodeSpec, StaffAccount};
pub use datasets::{
    DeleteMarker, EntityChange, EntitySnapshot, MAX_DATASET_SIZE, MAX_RANDOM_CHANGES,
};
pub use error::FakeErpError;
pub use faults::{FaultKind, FaultRule, Route};
pub use operations::{AcceptedOperation, RejectMatch, RejectRule};
pub use record::{RECORDED_JSON_LIMIT, RecordedRequest};
pub use releases::{
    ArtifactSource, MAX_GENERATED_ARTIFACT, ReleaseSpec, UpdateKey, UpdateKeys, UpdatePublicKey,
};
pub use sessions::{AccessClaims, TOKEN_AUDIENCE, TOKEN_ISSUER, TokenKey, TokenSpec};
pub use terminals::{TerminalInfo, TerminalSettings};

use crate::state::{ErpState, Inner};
use crate::util::lock;

/// A running fake ERP. Cheap to clone (an `Arc` inside); the server stops when
/// the last clone is dropped or [`FakeErp::shutdown`] is called.
#[derive(Debug, Clone)]
pub struct FakeErp {
    inner: Arc<Inner>,
}

impl FakeErp {
    /// Starts on `127.0.0.1` and a free port.
    pub async fn start(config: FakeErpConfig) -> Result<FakeErp, FakeErpError> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    /// Starts on `addr` (port 0 = a free port). The admin API still answers
    /// loopback clients only.
    pub async fn start_on(
        addr: SocketAddr,
        config: FakeErpConfig,
    ) -> Result<FakeErp, FakeErpError> {
        let listener = server::bind(addr)?;
        let actual = listener
            .local_addr()
            .map_err(|source| FakeErpError::Bind { addr, source })?;
        let state = Arc::new(ErpState::new(config, actual)?);
        state.launch(listener);
        tracing::debug!(addr = %actual, "fake ERP listening");
        Ok(FakeErp {
            inner: Arc::new(Inner { state }),
        })
    }

    fn state(&self) -> &Arc<ErpState> {
        &self.inner.state
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash: the `apiEndpoint`.
    pub fn base_url(&self) -> &str {
        &self.state().base_url
    }

    pub fn addr(&self) -> SocketAddr {
        self.state().addr
    }

    pub fn config(&self) -> &FakeErpConfig {
        &self.state().config
    }

    /// Stops the server for good (port closed, connections closed).
    pub async fn shutdown(&self) {
        self.state().shutdown().await;
    }

    /// Makes the ERP unreachable: closes the port and every open connection.
    /// State is kept; [`FakeErp::resume`] listens again on the same port.
    pub async fn pause(&self) {
        self.state().pause().await;
    }

    /// Listens again on the same port after [`FakeErp::pause`].
    pub async fn resume(&self) -> Result<(), FakeErpError> {
        self.state().resume().await
    }

    pub fn is_paused(&self) -> bool {
        self.state().is_paused()
    }

    // ---- onboarding and terminals --------------------------------------------

    /// A new single-use onboarding code (`XXXX-XXXX`) for a till slot.
    pub fn issue_onboarding_code(&self, store_number: u32, terminal_number: u32) -> String {
        lock(&self.state().terminals).issue_code(store_number, terminal_number)
    }

    /// Adds a chosen onboarding code (compared trimmed, case-insensitively).
    pub fn add_onboarding_code(&self, code: &str, store_number: u32, terminal_number: u32) {
        lock(&self.state().terminals).add_code(code, store_number, terminal_number);
    }

    /// Creates a terminal without the onboarding call, for tests that start onboarded.
    pub fn register_terminal(&self, store_number: u32, terminal_number: u32) -> DeviceCredentials {
        lock(&self.state().terminals).register(store_number, terminal_number)
    }

    pub fn terminals(&self) -> Vec<TerminalInfo> {
        lock(&self.state().terminals).list()
    }

    pub fn terminal(&self, client_id: &str) -> Option<TerminalInfo> {
        lock(&self.state().terminals).get(client_id)
    }

    /// Changes a terminal's presence settings and company information (`None` = unchanged);
    /// returns what `GET /api/pos/terminals/me` answers from now on.
    pub fn set_terminal_settings(
        &self,
        client_id: &str,
        settings: TerminalSettings,
    ) -> Result<TerminalMe, FakeErpError> {
        lock(&self.state().terminals)
            .update(client_id, settings)
            .map(|t| t.me())
    }

    /// Revokes a terminal's credentials: its calls get `401 invalid_client` from now on.
    pub fn revoke_terminal(&self, client_id: &str) -> Result<(), FakeErpError> {
        lock(&self.state().terminals).revoke(client_id)
    }

    // ---- datasets --------------------------------------------------------------

    pub fn dataset_names(&self) -> Vec<String> {
        lock(&self.state().datasets)
            .all()
            .iter()
            .map(|d| d.name().to_owned())
            .collect()
    }

    /// The dataset's current sequence (`lastSequence` of the datasets list).
    pub fn dataset_last_sequence(&self, dataset: &str) -> Result<u64, FakeErpError> {
        self.state().last_sequence(dataset)
    }

    /// Makes one change (one sequence number) touching the given entities; returns its sequence.
    pub fn mutate(&self, dataset: &str, changes: Vec<EntityChange>) -> Result<u64, FakeErpError> {
        self.state().mutate(dataset, changes)
    }

    /// Makes `count` random changes (each 1 to 3 entities: updates, creates,
    /// deletes), deterministic for a given seed and history; returns their sequences.
    pub fn mutate_random(&self, dataset: &str, count: usize) -> Result<Vec<u64>, FakeErpError> {
        self.state().mutate_random(dataset, count)
    }

    /// Forgets the changes up to `sequence`: `changes?after=` below it answers `410 sequence_expired`.
    pub fn expire_changes_through(&self, dataset: &str, sequence: u64) -> Result<(), FakeErpError> {
        self.state().expire_changes_through(dataset, sequence)
    }

    /// Every entity as the ERP holds it now, tombstones included, by id.
    pub fn dataset_final_state(
        &self,
        dataset: &str,
    ) -> Result<BTreeMap<String, EntitySnapshot>, FakeErpError> {
        self.state().final_state(dataset)
    }

    /// One entity as the ERP holds it now.
    pub fn entity(&self, dataset: &str, id: &str) -> Result<Option<EntitySnapshot>, FakeErpError> {
        Ok(lock(&self.state().datasets).require(dataset)?.entity(id))
    }

    /// The live event of change `sequence`, to publish on the bus. Its `Id` is
    /// deterministic, so publishing it twice makes a duplicate.
    pub fn dataset_changed_event(
        &self,
        dataset: &str,
        sequence: u64,
    ) -> Result<DatasetChangedIntegrationEvent, FakeErpError> {
        self.state().changed_event(dataset, sequence)
    }

    // ---- operations ------------------------------------------------------------

    pub fn add_reject_rule(&self, rule: RejectRule) {
        lock(&self.state().operations).add_rule(rule);
    }

    pub fn clear_reject_rules(&self) {
        lock(&self.state().operations).clear_rules();
    }

    /// Accepted operations, in acceptance order, with their full body.
    pub fn accepted_operations(&self) -> Vec<AcceptedOperation> {
        lock(&self.state().operations).accepted()
    }

    pub fn accepted_count(&self) -> usize {
        lock(&self.state().operations).accepted_count()
    }

    /// How many `duplicate` results the fake has answered.
    pub fn duplicate_answers(&self) -> u64 {
        lock(&self.state().operations).duplicate_answers()
    }

    /// How many `rejected` results the fake has answered.
    pub fn rejected_answers(&self) -> u64 {
        lock(&self.state().operations).rejected_answers()
    }

    // ---- releases --------------------------------------------------------------

    /// Publishes a release: it becomes the pending release of its component
    /// (replacing the previous one), and its artifact is served from then on.
    pub fn publish_release(&self, spec: ReleaseSpec) -> Result<Release, FakeErpError> {
        self.state().publish_release(spec)
    }

    /// Nothing pending for `component` (`None` = for any component) any more; artifacts stay served.
    pub fn withdraw_releases(&self, component: Option<spacepos_core::ComponentId>) {
        lock(&self.state().releases).withdraw(component);
    }

    /// The live event announcing `release`, to publish on the bus.
    pub fn release_published_event(
        &self,
        release: &Release,
    ) -> Result<PosReleasePublishedIntegrationEvent, FakeErpError> {
        self.state().release_published_event(release)
    }

    /// The update public keys (primary, rotated, rogue) for the terminal's trusted keys.
    pub fn update_keys(&self) -> UpdateKeys {
        lock(&self.state().releases).keys()
    }

    /// The `User-Agent` of every `releases/pending` call, in order.
    pub fn release_check_user_agents(&self) -> Vec<Option<String>> {
        lock(&self.state().releases).checks()
    }

    // ---- sessions --------------------------------------------------------------

    /// Mints an access token outside `login`: expired, from an unknown key, for
    /// another audience or store, ...
    pub fn mint_token(&self, spec: &TokenSpec) -> Result<String, FakeErpError> {
        lock(&self.state().sessions).mint(spec)
    }

    /// Signs with a new key from now on; the previous key stays in the JWKS so
    /// tokens already issued keep verifying. Returns the new `kid`.
    pub fn rotate_jwt_key(&self) -> Result<String, FakeErpError> {
        lock(&self.state().sessions).rotate()
    }

    /// Removes rotated-out keys from the JWKS: tokens they signed stop verifying.
    pub fn drop_retired_jwt_keys(&self) {
        lock(&self.state().sessions).drop_retired();
    }

    /// The JWKS as `GET /api/pos/auth/jwks` answers it.
    pub fn jwks(&self) -> Jwks {
        lock(&self.state().sessions).jwks()
    }

    /// The `kid` that `login` signs with now.
    pub fn current_jwt_kid(&self) -> String {
        lock(&self.state().sessions).current_kid()
    }

    // ---- faults ----------------------------------------------------------------

    pub fn add_fault(&self, rule: FaultRule) {
        lock(&self.state().faults).add(rule);
    }

    pub fn clear_faults(&self) {
        lock(&self.state().faults).clear();
    }

    /// The active fault rules (with their remaining counts).
    pub fn faults(&self) -> Vec<FaultRule> {
        lock(&self.state().faults).list()
    }

    // ---- recording -------------------------------------------------------------

    /// Every contract request received, oldest first (at most the configured number).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state().recorder).all()
    }

    /// The recorded requests of one route.
    pub fn requests_to(&self, route: Route) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(|r| route == Route::Any || r.route == Some(route))
            .collect()
    }

    pub fn clear_requests(&self) {
        lock(&self.state().recorder).clear();
    }
}
