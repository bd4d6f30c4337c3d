//! Local verification of staff access tokens against the ERP's JWKS (contract
//! section 6), so a session survives the ERP being unreachable until it expires.

use chrono::{DateTime, Duration, TimeZone, Utc};
use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode, decode_header};
use serde::Deserialize;

/// What a token must say to be accepted by this terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenExpectations {
    /// `aud`; the contract fixes it to `spacepos`.
    pub audience: String,
    /// `store`: a token for another store is refused.
    pub store_number: u32,
    /// `iss`, when configured; the contract does not fix its value.
    pub issuer: Option<String>,
    /// Clock skew tolerated on `exp`.
    pub leeway: Duration,
}

impl TokenExpectations {
    pub fn for_store(store_number: u32) -> Self {
        TokenExpectations {
            audience: AUDIENCE.to_owned(),
            store_number,
            issuer: None,
            leeway: Duration::seconds(30),
        }
    }
}

/// The audience of every SpacePOS access token.
pub const AUDIENCE: &str = "spacepos";

/// The claims of a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedToken {
    pub store_staff_id: String,
    pub store_number: u32,
    pub expires_at: DateTime<Utc>,
    pub key_id: String,
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the access token is malformed: {0}")]
    Malformed(String),
    #[error("the access token names no signing key (`kid`)")]
    NoKeyId,
    #[error("the access token is signed by key `{kid}`, which the ERP's key set does not contain")]
    UnknownKey { kid: String },
    #[error("the access token uses algorithm {alg}, which key `{kid}` does not allow")]
    AlgorithmMismatch { kid: String, alg: String },
    #[error("the access token's signature does not verify")]
    BadSignature,
    #[error("the access token is not meant for SpacePOS (audience)")]
    WrongAudience,
    #[error("the access token was issued by an unexpected issuer")]
    WrongIssuer,
    #[error("the access token is for store {token_store}, this terminal is in store {expected}")]
    WrongStore { token_store: u32, expected: u32 },
    #[error("the access token expired at {at}")]
    Expired { at: DateTime<Utc> },
}

#[derive(Debug, Deserialize)]
struct Claims {
    sub: String,
    store: u32,
    exp: i64,
    #[serde(default)]
    iss: Option<String>,
}

/// Algorithms a key of this kind may verify (no `none`, no HMAC with a public key).
fn allowed(params: &AlgorithmParameters) -> &'static [Algorithm] {
    match params {
        AlgorithmParameters::OctetKeyPair(_) => &[Algorithm::EdDSA],
        AlgorithmParameters::RSA(_) => &[
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(_) => &[Algorithm::ES256, Algorithm::ES384],
        AlgorithmParameters::OctetKey(_) => &[],
    }
}

/// Verify `token` with the keys of `jwks` at time `now`.
pub fn verify(
    token: &str,
    jwks: &JwkSet,
    expect: &TokenExpectations,
    now: DateTime<Utc>,
) -> Result<VerifiedToken, TokenError> {
    let header = decode_header(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
    let kid = header.kid.ok_or(TokenError::NoKeyId)?;
    let jwk = jwks
        .find(&kid)
        .ok_or_else(|| TokenError::UnknownKey { kid: kid.clone() })?;
    if !allowed(&jwk.algorithm).contains(&header.alg) {
        return Err(TokenError::AlgorithmMismatch {
            kid,
            alg: format!("{:?}", header.alg),
        });
    }
    let key = DecodingKey::from_jwk(jwk)
        .map_err(|e| TokenError::Malformed(format!("key `{kid}`: {e}")))?;

    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[expect.audience.as_str()]);
    validation.set_required_spec_claims(&["exp", "sub", "aud"]);
    // Expiry is checked below against the injected clock, not the system's.
    validation.validate_exp = false;
    validation.validate_nbf = false;

    let data = decode::<Claims>(token, &key, &validation).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidSignature => TokenError::BadSignature,
            ErrorKind::InvalidAudience => TokenError::WrongAudience,
            ErrorKind::InvalidAlgorithm => TokenError::AlgorithmMismatch {
                kid: kid.clone(),
                alg: "?".into(),
            },
            _ => TokenError::Malformed(e.to_string()),
        }
    })?;
    let claims = data.claims;

    if let Some(issuer) = &expect.issuer
        && claims.iss.as_deref() != Some(issuer.as_str())
    {
        return Err(TokenError::WrongIssuer);
    }
    if claims.store != expect.store_number {
        return Err(TokenError::WrongStore {
            token_store: claims.store,
            expected: expect.store_number,
        });
    }
    let expires_at = Utc
        .timestamp_opt(claims.exp, 0)
        .single()
        .ok_or_else(|| TokenError::Malformed("`exp` is out of range".into()))?;
    if now > expires_at + expect.leeway {
        return Err(TokenError::Expired { at: expires_at });
    }
    Ok(VerifiedToken {
        store_staff_id: claims.sub,
        store_number: claims.store,
        expires_at,
        key_id: kid,
    })
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Ed25519 keys and tokens for the crate's unit tests.
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use jsonwebtoken::jwk::JwkSet;
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    use serde_json::json;

    pub(crate) struct Key {
        pub(crate) kid: String,
        enc: EncodingKey,
        pub(crate) jwk: serde_json::Value,
    }

    /// A key from a one-byte seed. PKCS#8 v1 DER of Ed25519 = fixed prefix + seed.
    pub(crate) fn key(kid: &str, seed: u8) -> Key {
        let mut der = vec![
            0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22,
            0x04, 0x20,
        ];
        der.extend_from_slice(&[seed; 32]);
        let enc = EncodingKey::from_ed_der(&der);
        // jsonwebtoken 10 cannot derive an Ed25519 JWK (`unimplemented!`): derive it here.
        let public = ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes();
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": URL_SAFE_NO_PAD.encode(public),
                          "kid": kid, "alg": "EdDSA", "use": "sig"});
        Key {
            kid: kid.into(),
            enc,
            jwk,
        }
    }

    pub(crate) fn token(k: &Key, claims: serde_json::Value) -> String {
        let mut h = Header::new(Algorithm::EdDSA);
        h.kid = Some(k.kid.clone());
        encode(&h, &claims, &k.enc).unwrap()
    }

    pub(crate) fn set(keys: &[&Key]) -> JwkSet {
        serde_json::from_value(
            json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()}),
        )
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::test_support::{key, set, token};
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
    }

    fn claims(exp_in: i64) -> serde_json::Value {
        json!({"sub": "S-0042", "store": 12, "aud": "spacepos", "iss": "erp",
               "iat": now().timestamp(), "exp": now().timestamp() + exp_in})
    }

    #[test]
    fn valid_token_verifies() {
        let k = key("k1", 7);
        let v = verify(
            &token(&k, claims(600)),
            &set(&[&k]),
            &TokenExpectations::for_store(12),
            now(),
        )
        .unwrap();
        assert_eq!(v.store_staff_id, "S-0042");
        assert_eq!(v.key_id, "k1");
    }

    #[test]
    fn expired_token_is_refused() {
        let k = key("k1", 7);
        let e = verify(
            &token(&k, claims(-120)),
            &set(&[&k]),
            &TokenExpectations::for_store(12),
            now(),
        )
        .unwrap_err();
        assert!(matches!(e, TokenError::Expired { .. }), "{e:?}");
    }

    #[test]
    fn unknown_key_is_refused() {
        let (k, rogue) = (key("k1", 7), key("rogue", 9));
        let e = verify(
            &token(&rogue, claims(600)),
            &set(&[&k]),
            &TokenExpectations::for_store(12),
            now(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            TokenError::UnknownKey {
                kid: "rogue".into()
            }
        );
    }

    #[test]
    fn key_id_reused_by_another_key_fails_signature() {
        let good = key("k1", 7);
        let forged = key("k1", 9);
        let e = verify(
            &token(&forged, claims(600)),
            &set(&[&good]),
            &TokenExpectations::for_store(12),
            now(),
        )
        .unwrap_err();
        assert_eq!(e, TokenError::BadSignature);
    }

    #[test]
    fn other_audience_is_refused() {
        let k = key("k1", 7);
        let mut c = claims(600);
        c["aud"] = json!("backoffice");
        let e = verify(
            &token(&k, c),
            &set(&[&k]),
            &TokenExpectations::for_store(12),
            now(),
        )
        .unwrap_err();
        assert_eq!(e, TokenError::WrongAudience);
    }

    #[test]
    fn other_store_is_refused() {
        let k = key("k1", 7);
        let e = verify(
            &token(&k, claims(600)),
            &set(&[&k]),
            &TokenExpectations::for_store(13),
            now(),
        )
        .unwrap_err();
        assert_eq!(
            e,
            TokenError::WrongStore {
                token_store: 12,
                expected: 13
            }
        );
    }

    #[test]
    fn issuer_is_checked_when_configured() {
        let k = key("k1", 7);
        let mut expect = TokenExpectations::for_store(12);
        expect.issuer = Some("other".into());
        let e = verify(&token(&k, claims(600)), &set(&[&k]), &expect, now()).unwrap_err();
        assert_eq!(e, TokenError::WrongIssuer);
    }

    #[test]
    fn unsigned_and_tampered_tokens_are_refused() {
        let k = key("k1", 7);
        let t = token(&k, claims(600));
        let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
        let mut c = claims(600);
        c["sub"] = json!("S-9999");
        parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
        let tampered = parts.join(".");
        assert_eq!(
            verify(
                &tampered,
                &set(&[&k]),
                &TokenExpectations::for_store(12),
                now()
            )
            .unwrap_err(),
            TokenError::BadSignature
        );
        let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"k1"}"#);
        let unsigned = format!("{none_header}.{}.", parts[1]);
        assert!(
            verify(
                &unsigned,
                &set(&[&k]),
                &TokenExpectations::for_store(12),
                now()
            )
            .is_err()
        );
    }
}
