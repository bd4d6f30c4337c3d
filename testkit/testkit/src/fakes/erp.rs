//! [`MemoryErp`]: the ERP-facing ports of the auth domain, in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use spacepos_auth::{
    AuthApi, AuthApiError, JwkSet, OnboardError, Onboarded, OnboardingApi, OnboardingRequest,
    TerminalSettings, TokenGrant,
};
use spacepos_config::CompanyInformation;
use spacepos_core::{DeviceCredentials, RemoteError, Secret};
use uuid::Uuid;

const HOST: &str = "memory-erp";

#[derive(Debug, Clone)]
struct Terminal {
    secret: String,
    store_number: u32,
    terminal_number: u32,
    report_presence: bool,
    presence_interval_seconds: u32,
    revoked: bool,
}

#[derive(Debug, Default)]
struct State {
    codes: HashMap<String, (u32, u32, bool)>,
    terminals: HashMap<String, Terminal>,
    /// staff code -> (pin, store staff id)
    staff: HashMap<String, (String, String)>,
    /// refresh token -> (store staff id, store)
    refresh: HashMap<String, (String, u32)>,
}

/// An in-memory ERP for the auth ports: onboarding codes, terminals, staff,
/// Ed25519-signed access tokens and their JWKS. [`MemoryErp::anonymous`] and
/// [`MemoryErp::device`] hand out clients that implement [`OnboardingApi`] and
/// [`AuthApi`] the way the contract says (checked by the suites, like the HTTP adapter).
#[derive(Debug, Clone)]
pub struct MemoryErp {
    state: Arc<Mutex<State>>,
    signing: Arc<(EncodingKey, serde_json::Value)>,
    token_lifetime: Duration,
}

impl Default for MemoryErp {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryErp {
    pub fn new() -> Self {
        let seed = [7u8; 32];
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(&seed);
        let public = ed25519_dalek::SigningKey::from_bytes(&seed)
            .verifying_key()
            .to_bytes();
        let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(public),
                                     "kid": "memory-1", "alg": "EdDSA", "use": "sig"});
        MemoryErp {
            state: Arc::new(Mutex::new(State::default())),
            signing: Arc::new((EncodingKey::from_ed_der(&der), jwk)),
            token_lifetime: Duration::from_secs(3600),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new onboarding code for a terminal of a store.
    pub fn issue_code(&self, store_number: u32, terminal_number: u32) -> String {
        let code = format!("MEM-{}", &Uuid::new_v4().simple().to_string()[..8]).to_uppercase();
        self.lock()
            .codes
            .insert(code.clone(), (store_number, terminal_number, false));
        code
    }

    pub fn add_staff(&self, staff_code: &str, pin: &str, store_staff_id: &str) {
        self.lock()
            .staff
            .insert(staff_code.into(), (pin.into(), store_staff_id.into()));
    }

    pub fn revoke(&self, client_id: &str) {
        if let Some(t) = self.lock().terminals.get_mut(client_id) {
            t.revoked = true;
        }
    }

    pub fn set_presence(&self, client_id: &str, interval_seconds: u32, report: bool) {
        if let Some(t) = self.lock().terminals.get_mut(client_id) {
            t.presence_interval_seconds = interval_seconds;
            t.report_presence = report;
        }
    }

    /// A client without credentials: only onboarding works.
    pub fn anonymous(&self) -> MemoryErpClient {
        MemoryErpClient {
            erp: self.clone(),
            credentials: None,
        }
    }

    /// A client calling with a terminal's device credentials.
    pub fn device(&self, credentials: DeviceCredentials) -> MemoryErpClient {
        MemoryErpClient {
            erp: self.clone(),
            credentials: Some(credentials),
        }
    }

    fn token(&self, staff_id: &str, store: u32) -> Result<TokenGrant, AuthApiError> {
        let now = Utc::now().timestamp();
        let claims = serde_json::json!({"sub": staff_id, "store": store, "aud": "spacepos", "iss": HOST,
            "iat": now, "exp": now + self.token_lifetime.as_secs() as i64});
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("memory-1".into());
        let access = jsonwebtoken::encode(&header, &claims, &self.signing.0).map_err(|e| {
            AuthApiError::Remote(RemoteError::Protocol {
                host: HOST.into(),
                detail: e.to_string(),
            })
        })?;
        let refresh = Uuid::new_v4().to_string();
        self.lock()
            .refresh
            .insert(refresh.clone(), (staff_id.to_owned(), store));
        Ok(TokenGrant {
            access_token: Secret::new(access),
            refresh_token: Secret::new(refresh),
            expires_in: self.token_lifetime,
            store_staff_id: staff_id.to_owned(),
        })
    }
}

/// One caller of a [`MemoryErp`].
#[derive(Debug, Clone)]
pub struct MemoryErpClient {
    erp: MemoryErp,
    credentials: Option<DeviceCredentials>,
}

impl MemoryErpClient {
    /// The calling terminal, if its credentials are valid and not revoked.
    fn terminal(&self) -> Result<Terminal, RemoteError> {
        let unauthorized = || RemoteError::Unauthorized { host: HOST.into() };
        let creds = self.credentials.as_ref().ok_or_else(unauthorized)?;
        let state = self.erp.lock();
        let t = state
            .terminals
            .get(&creds.client_id)
            .ok_or_else(unauthorized)?;
        if t.revoked || t.secret != creds.client_secret.expose() {
            return Err(unauthorized());
        }
        Ok(t.clone())
    }
}

#[async_trait]
impl OnboardingApi for MemoryErpClient {
    async fn onboard(&self, request: &OnboardingRequest) -> Result<Onboarded, OnboardError> {
        let mut state = self.erp.lock();
        let Some(entry) = state.codes.get_mut(&request.code) else {
            return Err(OnboardError::UnknownCode { host: HOST.into() });
        };
        if entry.2 {
            return Err(OnboardError::CodeUsed { host: HOST.into() });
        }
        entry.2 = true;
        let (store_number, terminal_number, _) = *entry;
        let client_id = format!("trm_{}", &Uuid::new_v4().simple().to_string()[..16]);
        let secret = Uuid::new_v4().simple().to_string();
        state.terminals.insert(
            client_id.clone(),
            Terminal {
                secret: secret.clone(),
                store_number,
                terminal_number,
                report_presence: true,
                presence_interval_seconds: 300,
                revoked: false,
            },
        );
        Ok(Onboarded {
            credentials: DeviceCredentials {
                client_id,
                client_secret: Secret::new(secret),
            },
            store_number,
            terminal_number,
            api_endpoint: None,
            amqp_url: None,
            report_presence: Some(true),
            presence_interval_seconds: Some(300),
            company_information: Some(CompanyInformation {
                name: Some("Memory Co".into()),
                ..Default::default()
            }),
        })
    }

    async fn terminal_settings(&self) -> Result<TerminalSettings, RemoteError> {
        let t = self.terminal()?;
        Ok(TerminalSettings {
            store_number: t.store_number,
            terminal_number: t.terminal_number,
            report_presence: Some(t.report_presence),
            presence_interval_seconds: Some(t.presence_interval_seconds),
            company_information: Some(CompanyInformation {
                name: Some("Memory Co".into()),
                ..Default::default()
            }),
        })
    }
}

#[async_trait]
impl AuthApi for MemoryErpClient {
    async fn login(&self, staff_code: &str, pin: &Secret) -> Result<TokenGrant, AuthApiError> {
        let t = self.terminal()?;
        let staff = self.erp.lock().staff.get(staff_code).cloned();
        match staff {
            Some((p, id)) if p == pin.expose() => self.erp.token(&id, t.store_number),
            _ => Err(AuthApiError::InvalidCredentials),
        }
    }

    async fn refresh(&self, refresh_token: &Secret) -> Result<TokenGrant, AuthApiError> {
        self.terminal()?;
        let found = self.erp.lock().refresh.remove(refresh_token.expose());
        match found {
            Some((id, store)) => self.erp.token(&id, store),
            None => Err(AuthApiError::SessionEnded),
        }
    }

    async fn jwks(&self) -> Result<JwkSet, AuthApiError> {
        self.terminal()?;
        serde_json::from_value(serde_json::json!({"keys": [self.erp.signing.1.clone()]})).map_err(
            |e| {
                AuthApiError::Remote(RemoteError::Protocol {
                    host: HOST.into(),
                    detail: e.to_string(),
                })
            },
        )
    }
}
