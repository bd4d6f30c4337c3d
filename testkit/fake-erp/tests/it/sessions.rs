//! Contract section 6: login, refresh, JWKS; tokens verified with jsonwebtoken.

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::json;
use spacepos_erp_wire::rest::TokenResponse;
use spacepos_fake_erp::{AccessClaims, TOKEN_AUDIENCE, TOKEN_ISSUER, TokenSpec};

use crate::common::{Device, demo, error_of};

/// Verifies an access token the way a terminal does offline: the JWKS, EdDSA,
/// audience `spacepos`, issuer, expiry.
fn verify(jwks: &JwkSet, token: &str) -> Result<AccessClaims, String> {
    let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
    let kid = header.kid.ok_or("no kid")?;
    let jwk: &Jwk = jwks.find(&kid).ok_or("kid not in the JWKS")?;
    let key = DecodingKey::from_jwk(jwk).map_err(|e| e.to_string())?;
    let mut v = Validation::new(Algorithm::EdDSA);
    v.set_audience(&[TOKEN_AUDIENCE]);
    v.set_issuer(&[TOKEN_ISSUER]);
    v.leeway = 0;
    jsonwebtoken::decode::<AccessClaims>(token, &key, &v)
        .map(|d| d.claims)
        .map_err(|e| e.to_string())
}

async fn login(device: &Device, code: &str, pin: &str) -> reqwest::Response {
    device
        .post("/api/pos/auth/login")
        .json(&json!({"staffCode": code, "pin": pin}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn login_issues_an_ed25519_jwt_that_verifies_against_the_jwks() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 3);
    let jwks: JwkSet = device.get_json("/api/pos/auth/jwks").await;
    assert_eq!(jwks.keys.len(), 1);
    let raw: serde_json::Value = device.get_json("/api/pos/auth/jwks").await;
    let k = &raw["keys"][0];
    assert_eq!(
        (
            k["kty"].as_str(),
            k["crv"].as_str(),
            k["alg"].as_str(),
            k["use"].as_str()
        ),
        (Some("OKP"), Some("Ed25519"), Some("EdDSA"), Some("sig"))
    );
    assert_eq!(k["kid"].as_str(), Some(erp.current_jwt_kid().as_str()));

    let resp = login(&device, "0042", "1234").await;
    assert_eq!(resp.status(), 200);
    let tokens: TokenResponse = resp.json().await.unwrap();
    assert_eq!(
        (tokens.expires_in, tokens.store_staff_id.as_str()),
        (3600, "S-0042")
    );
    let header = jsonwebtoken::decode_header(tokens.access_token.expose()).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    let claims = verify(&jwks, tokens.access_token.expose()).unwrap();
    assert_eq!((claims.sub.as_str(), claims.store), ("S-0042", 12));
    assert_eq!(claims.exp - claims.iat, 3600);
    assert_eq!(
        (claims.iss.as_str(), claims.aud.as_str()),
        ("spacepos-fake-erp", "spacepos")
    );

    assert_eq!(
        error_of(login(&device, "0042", "0000").await).await,
        (401, "invalid_credentials".into())
    );
    assert_eq!(
        error_of(login(&device, "9999", "1234").await).await,
        (401, "invalid_credentials".into())
    );
    let resp = device
        .post("/api/pos/auth/login")
        .json(&json!({"staffCode": "0042"}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await, (422, "invalid_request".into()));
}

#[tokio::test]
async fn refresh_rotates_the_refresh_token() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let other = Device::register(&erp, 12, 2);
    let first: TokenResponse = login(&device, "0007", "2468").await.json().await.unwrap();
    let refresh = |d: &Device, token: &str| {
        d.post("/api/pos/auth/refresh")
            .json(&json!({"refreshToken": token}))
            .send()
    };
    let resp = refresh(&device, first.refresh_token.expose())
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let second: TokenResponse = resp.json().await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(second.store_staff_id, "S-0007");
    // The old refresh token is spent.
    let again = refresh(&device, first.refresh_token.expose())
        .await
        .unwrap();
    assert_eq!(error_of(again).await, (401, "invalid_refresh_token".into()));
    // Another terminal cannot use it (and spends it trying).
    let stolen = refresh(&other, second.refresh_token.expose())
        .await
        .unwrap();
    assert_eq!(
        error_of(stolen).await,
        (401, "invalid_refresh_token".into())
    );
    assert_eq!(
        refresh(&device, second.refresh_token.expose())
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(refresh(&device, "rt_made_up").await.unwrap().status(), 401);
}

#[tokio::test]
async fn minted_tokens_cover_the_failure_cases() {
    let erp = demo().await;
    let jwks: JwkSet = serde_json::from_value(serde_json::to_value(erp.jwks()).unwrap()).unwrap();
    let ok = erp.mint_token(&TokenSpec::new("S-0042", 12)).unwrap();
    assert_eq!(verify(&jwks, &ok).unwrap().store, 12);
    let other_store = erp
        .mint_token(&TokenSpec::new("S-0042", 12).for_store(99))
        .unwrap();
    assert_eq!(
        verify(&jwks, &other_store).unwrap().store,
        99,
        "valid signature; the store check is the terminal's"
    );

    let expired = erp
        .mint_token(&TokenSpec::new("S-0042", 12).expired())
        .unwrap();
    assert!(
        verify(&jwks, &expired)
            .unwrap_err()
            .contains("ExpiredSignature")
    );
    let unknown = erp
        .mint_token(&TokenSpec::new("S-0042", 12).signed_by_unknown_key())
        .unwrap();
    assert_eq!(verify(&jwks, &unknown).unwrap_err(), "kid not in the JWKS");
    let audience = erp
        .mint_token(&TokenSpec::new("S-0042", 12).for_audience("backoffice"))
        .unwrap();
    assert!(
        verify(&jwks, &audience)
            .unwrap_err()
            .contains("InvalidAudience")
    );
    let issuer = erp
        .mint_token(&TokenSpec::new("S-0042", 12).with_issuer("someone-else"))
        .unwrap();
    assert!(
        verify(&jwks, &issuer)
            .unwrap_err()
            .contains("InvalidIssuer")
    );
}

#[tokio::test]
async fn jwt_key_rotation_keeps_old_tokens_verifiable_until_retired() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let before: TokenResponse = login(&device, "0100", "9999").await.json().await.unwrap();
    let old_kid = erp.current_jwt_kid();
    let new_kid = erp.rotate_jwt_key().unwrap();
    assert_ne!(old_kid, new_kid);
    let after: TokenResponse = login(&device, "0100", "9999").await.json().await.unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(after.access_token.expose())
            .unwrap()
            .kid,
        Some(new_kid)
    );
    let jwks: JwkSet = device.get_json("/api/pos/auth/jwks").await;
    assert_eq!(jwks.keys.len(), 2);
    assert!(verify(&jwks, before.access_token.expose()).is_ok());
    assert!(verify(&jwks, after.access_token.expose()).is_ok());
    erp.drop_retired_jwt_keys();
    let jwks: JwkSet = device.get_json("/api/pos/auth/jwks").await;
    assert!(verify(&jwks, before.access_token.expose()).is_err());
    assert!(verify(&jwks, after.access_token.expose()).is_ok());
}
