//! Staff sessions (contract section 6): Ed25519 JWTs, rotating refresh tokens, JWKS.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use spacepos_core::Secret;
use spacepos_erp_wire::rest::{Jwks, TokenResponse};

use crate::config::StaffAccount;
use crate::error::FakeErpError;
use crate::util::random_hex;

/// `iss` of every token the fake issues.
pub const TOKEN_ISSUER: &str = "spacepos-fake-erp";
/// `aud` of every token the fake issues.
pub const TOKEN_AUDIENCE: &str = "spacepos";

/// PKCS#8 v1 prefix of an Ed25519 private key; the 32-byte seed follows.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The `storeStaffId`.
    pub sub: String,
    /// The store number of the terminal the staff member logged in at.
    pub store: u32,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
}

/// Which key signs a token minted with [`crate::FakeErp::mint_token`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TokenKey {
    /// The key `login` signs with now (in the JWKS).
    #[default]
    Current,
    /// A key the JWKS never lists.
    Unknown,
}

/// A token to mint for a test: valid by default, with helpers to make it wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSpec {
    pub sub: String,
    pub store: u32,
    /// `iat` relative to now, in seconds (negative = in the past).
    pub issued_at_offset_seconds: i64,
    /// `exp - iat`, in seconds.
    pub lifetime_seconds: i64,
    pub audience: String,
    pub issuer: String,
    pub key: TokenKey,
}

impl TokenSpec {
    /// A valid token for `sub` at `store`, one hour long.
    pub fn new(sub: impl Into<String>, store: u32) -> Self {
        Self {
            sub: sub.into(),
            store,
            issued_at_offset_seconds: 0,
            lifetime_seconds: 3600,
            audience: TOKEN_AUDIENCE.into(),
            issuer: TOKEN_ISSUER.into(),
            key: TokenKey::Current,
        }
    }

    /// Issued two hours ago, expired one hour ago.
    pub fn expired(mut self) -> Self {
        self.issued_at_offset_seconds = -7200;
        self.lifetime_seconds = 3600;
        self
    }

    /// Signed by a key the JWKS does not list.
    pub fn signed_by_unknown_key(mut self) -> Self {
        self.key = TokenKey::Unknown;
        self
    }

    pub fn for_audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    pub fn for_store(mut self, store: u32) -> Self {
        self.store = store;
        self
    }

    pub fn with_issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    pub fn with_lifetime_seconds(mut self, seconds: i64) -> Self {
        self.lifetime_seconds = seconds;
        self
    }
}

/// An Ed25519 signing key with its kid.
struct JwtKey {
    kid: String,
    public: [u8; 32],
    encoding: EncodingKey,
}

impl std::fmt::Debug for JwtKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKey")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn jwt_error(e: impl std::fmt::Display) -> FakeErpError {
    FakeErpError::Keys(e.to_string())
}

impl JwtKey {
    /// A fresh Ed25519 key. The key pair comes from minisign's generator (an
    /// Ed25519 key pair in libsodium layout: seed then public key), so no other
    /// crypto crate is needed; a sign/verify round trip proves the layout.
    fn generate(label: &str) -> Result<Self, FakeErpError> {
        let pair = minisign::KeyPair::generate_unencrypted_keypair().map_err(jwt_error)?;
        // SecretKey bytes: sig_alg(2) kdf_alg(2) chk_alg(2) salt(32) ops(8) mem(8) keynum(8) sk(64) chk(32).
        let sk = pair.sk.to_bytes();
        let pk = pair.pk.to_bytes(); // sig_alg(2) keynum(8) pk(32)
        let (Some(seed), Some(public), Some(pk_copy)) =
            (sk.get(62..94), sk.get(94..126), pk.get(10..42))
        else {
            return Err(FakeErpError::Keys("unexpected minisign key layout".into()));
        };
        if public != pk_copy {
            return Err(FakeErpError::Keys("unexpected minisign key layout".into()));
        }
        let mut der = ED25519_PKCS8_PREFIX.to_vec();
        der.extend_from_slice(seed);
        let mut pub_bytes = [0u8; 32];
        pub_bytes.copy_from_slice(public);
        let kid = format!("{label}-{}", &hex::encode(pub_bytes)[..12]);
        let key = Self {
            kid,
            public: pub_bytes,
            encoding: EncodingKey::from_ed_der(&der),
        };
        key.self_check()?;
        Ok(key)
    }

    fn self_check(&self) -> Result<(), FakeErpError> {
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::EdDSA),
            &json!({"check": 1}),
            &self.encoding,
        )
        .map_err(jwt_error)?;
        let decoding = DecodingKey::from_ed_components(&URL_SAFE_NO_PAD.encode(self.public))
            .map_err(jwt_error)?;
        let mut v = Validation::new(Algorithm::EdDSA);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        v.validate_aud = false;
        jsonwebtoken::decode::<Value>(&token, &decoding, &v).map_err(jwt_error)?;
        Ok(())
    }

    fn jwk(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("kty".into(), json!("OKP"));
        m.insert("crv".into(), json!("Ed25519"));
        m.insert("x".into(), json!(URL_SAFE_NO_PAD.encode(self.public)));
        m.insert("kid".into(), json!(self.kid));
        m.insert("alg".into(), json!("EdDSA"));
        m.insert("use".into(), json!("sig"));
        m
    }

    fn sign(&self, claims: &AccessClaims) -> Result<String, FakeErpError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(jwt_error)
    }
}

#[derive(Debug, Clone)]
struct RefreshSession {
    client_id: String,
    staff_code: String,
}

/// Why login or refresh failed (401 either way).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionError {
    InvalidCredentials,
    InvalidRefreshToken,
    /// Signing failed: 500.
    Internal,
}

#[derive(Debug)]
pub(crate) struct Sessions {
    staff: Vec<StaffAccount>,
    lifetime_seconds: u64,
    current: JwtKey,
    /// Keys rotated out: still in the JWKS so issued tokens keep verifying.
    retired: Vec<JwtKey>,
    unknown: JwtKey,
    generation: u32,
    refresh: HashMap<String, RefreshSession>,
}

impl Sessions {
    pub(crate) fn new(
        staff: Vec<StaffAccount>,
        lifetime_seconds: u64,
    ) -> Result<Self, FakeErpError> {
        Ok(Self {
            staff,
            lifetime_seconds,
            current: JwtKey::generate("fake-erp-1")?,
            retired: Vec::new(),
            unknown: JwtKey::generate("unknown")?,
            generation: 1,
            refresh: HashMap::new(),
        })
    }

    fn issue(
        &mut self,
        client_id: &str,
        staff: &StaffAccount,
        store: u32,
    ) -> Result<TokenResponse, SessionError> {
        let now = Utc::now().timestamp();
        let lifetime = i64::try_from(self.lifetime_seconds).unwrap_or(i64::MAX / 4);
        let claims = AccessClaims {
            sub: staff.store_staff_id.clone(),
            store,
            iat: now,
            exp: now.saturating_add(lifetime),
            iss: TOKEN_ISSUER.into(),
            aud: TOKEN_AUDIENCE.into(),
        };
        let access = self
            .current
            .sign(&claims)
            .map_err(|_| SessionError::Internal)?;
        let refresh = format!("rt_{}", random_hex(32));
        self.refresh.insert(
            refresh.clone(),
            RefreshSession {
                client_id: client_id.to_owned(),
                staff_code: staff.staff_code.clone(),
            },
        );
        Ok(TokenResponse {
            access_token: Secret::new(access),
            refresh_token: Secret::new(refresh),
            expires_in: self.lifetime_seconds,
            store_staff_id: staff.store_staff_id.clone(),
        })
    }

    pub(crate) fn login(
        &mut self,
        client_id: &str,
        store: u32,
        staff_code: &str,
        pin: &str,
    ) -> Result<TokenResponse, SessionError> {
        let staff = self
            .staff
            .iter()
            .find(|s| s.staff_code == staff_code && s.pin.expose() == pin)
            .cloned()
            .ok_or(SessionError::InvalidCredentials)?;
        self.issue(client_id, &staff, store)
    }

    /// Rotates the refresh token: the old one is invalid afterwards, whatever happens.
    pub(crate) fn refresh(
        &mut self,
        client_id: &str,
        store: u32,
        token: &str,
    ) -> Result<TokenResponse, SessionError> {
        let session = self
            .refresh
            .remove(token)
            .ok_or(SessionError::InvalidRefreshToken)?;
        if session.client_id != client_id {
            return Err(SessionError::InvalidRefreshToken);
        }
        let staff = self
            .staff
            .iter()
            .find(|s| s.staff_code == session.staff_code)
            .cloned()
            .ok_or(SessionError::InvalidRefreshToken)?;
        self.issue(client_id, &staff, store)
    }

    pub(crate) fn jwks(&self) -> Jwks {
        let keys = std::iter::once(&self.current)
            .chain(self.retired.iter())
            .map(JwtKey::jwk)
            .collect();
        Jwks { keys }
    }

    pub(crate) fn current_kid(&self) -> String {
        self.current.kid.clone()
    }

    pub(crate) fn rotate(&mut self) -> Result<String, FakeErpError> {
        self.generation += 1;
        let next = JwtKey::generate(&format!("fake-erp-{}", self.generation))?;
        let old = std::mem::replace(&mut self.current, next);
        self.retired.insert(0, old);
        Ok(self.current.kid.clone())
    }

    pub(crate) fn drop_retired(&mut self) {
        self.retired.clear();
    }

    pub(crate) fn mint(&self, spec: &TokenSpec) -> Result<String, FakeErpError> {
        let iat = Utc::now()
            .timestamp()
            .saturating_add(spec.issued_at_offset_seconds);
        let claims = AccessClaims {
            sub: spec.sub.clone(),
            store: spec.store,
            iat,
            exp: iat.saturating_add(spec.lifetime_seconds),
            iss: spec.issuer.clone(),
            aud: spec.audience.clone(),
        };
        match spec.key {
            TokenKey::Current => self.current.sign(&claims),
            TokenKey::Unknown => self.unknown.sign(&claims),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::jwk::Jwk;

    fn verify(jwks: &Jwks, token: &str) -> Result<AccessClaims, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
        let kid = header.kid.ok_or("no kid")?;
        let jwk = jwks
            .keys
            .iter()
            .find(|k| k.get("kid").and_then(Value::as_str) == Some(kid.as_str()))
            .ok_or("unknown kid")?;
        let jwk: Jwk =
            serde_json::from_value(Value::Object(jwk.clone())).map_err(|e| e.to_string())?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
        let mut v = Validation::new(Algorithm::EdDSA);
        v.set_audience(&[TOKEN_AUDIENCE]);
        v.set_issuer(&[TOKEN_ISSUER]);
        jsonwebtoken::decode::<AccessClaims>(token, &key, &v)
            .map(|d| d.claims)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn login_refresh_rotation_and_jwks() {
        let mut s = Sessions::new(vec![StaffAccount::new("0042", "1234", "S-0042")], 60).unwrap();
        assert_eq!(
            s.login("c", 12, "0042", "0000").unwrap_err(),
            SessionError::InvalidCredentials
        );
        let t = s.login("c", 12, "0042", "1234").unwrap();
        let claims = verify(&s.jwks(), t.access_token.expose()).unwrap();
        assert_eq!(
            (claims.sub.as_str(), claims.store, claims.exp - claims.iat),
            ("S-0042", 12, 60)
        );
        assert_eq!(
            s.refresh("other", 12, t.refresh_token.expose())
                .unwrap_err(),
            SessionError::InvalidRefreshToken
        );
        // The failed attempt from another terminal consumed it too.
        assert!(s.refresh("c", 12, t.refresh_token.expose()).is_err());
        let t = s.login("c", 12, "0042", "1234").unwrap();
        let t2 = s.refresh("c", 12, t.refresh_token.expose()).unwrap();
        assert!(s.refresh("c", 12, t.refresh_token.expose()).is_err());
        s.rotate().unwrap();
        assert_eq!(s.jwks().keys.len(), 2);
        assert!(
            verify(&s.jwks(), t2.access_token.expose()).is_ok(),
            "old tokens verify after rotation"
        );
        assert!(verify(&s.jwks(), &s.mint(&TokenSpec::new("S-1", 12)).unwrap()).is_ok());
        assert!(
            verify(
                &s.jwks(),
                &s.mint(&TokenSpec::new("S-1", 12).signed_by_unknown_key())
                    .unwrap()
            )
            .is_err()
        );
        assert!(
            verify(
                &s.jwks(),
                &s.mint(&TokenSpec::new("S-1", 12).expired()).unwrap()
            )
            .is_err()
        );
        assert!(
            verify(
                &s.jwks(),
                &s.mint(&TokenSpec::new("S-1", 12).for_audience("x"))
                    .unwrap()
            )
            .is_err()
        );
        s.drop_retired();
        assert!(verify(&s.jwks(), t2.access_token.expose()).is_err());
    }
}
