//! Contract suite of [`CredentialStore`]; stamp it with
//! [`crate::credential_store_suite!`].

use chrono::{TimeZone as _, Utc};
use spacepos_auth::{CachedJwks, CredentialStore, JwkSet, StoredSession};
use spacepos_core::Secret;

/// A session as login stores it.
pub fn logged_in_session() -> StoredSession {
    let at = Utc
        .with_ymd_and_hms(2026, 11, 25, 8, 0, 0)
        .single()
        .unwrap_or_default();
    StoredSession {
        store_staff_id: "S-0042".into(),
        access_token: Secret::new("eyJhbGciOiJFZERTQSJ9.access.token"),
        refresh_token: Secret::new("refresh-token-0042"),
        expires_at: at + chrono::Duration::hours(1),
        logged_in_at: at,
    }
}

/// A one-key JWKS (an Ed25519 public key).
pub fn key_set() -> CachedJwks {
    let jwks: JwkSet = serde_json::from_str(
        r#"{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k1","alg":"EdDSA","use":"sig"}]}"#,
    )
    .unwrap_or_else(|e| panic!("sample JWKS: {e}"));
    CachedJwks {
        jwks,
        fetched_at: Utc
            .with_ymd_and_hms(2026, 11, 25, 8, 0, 0)
            .single()
            .unwrap_or_default(),
    }
}

/// Clause: "`load_*` on a fresh store is `Ok(None)`."
pub async fn case_fresh_store_has_nothing(store: &dyn CredentialStore) {
    assert_eq!(store.load_session().await.expect("load session"), None);
    assert_eq!(store.load_jwks().await.expect("load jwks"), None);
}

/// Clause: "`save_*` then `load_*` returns an equal value."
pub async fn case_session_round_trips_tokens_included(store: &dyn CredentialStore) {
    let s = logged_in_session();
    store.save_session(&s).await.expect("save");
    let back = store
        .load_session()
        .await
        .expect("load")
        .expect("a session");
    assert_eq!(back.access_token.expose(), s.access_token.expose());
    assert_eq!(back.refresh_token.expose(), s.refresh_token.expose());
    assert_eq!(back, s);
}

/// Clause: "`save_*` then `load_*` returns an equal value" (a later save wins).
pub async fn case_a_new_session_replaces_the_old(store: &dyn CredentialStore) {
    store
        .save_session(&logged_in_session())
        .await
        .expect("save");
    let mut other = logged_in_session();
    other.store_staff_id = "S-0007".into();
    other.refresh_token = Secret::new("rotated");
    store.save_session(&other).await.expect("save again");
    assert_eq!(store.load_session().await.expect("load"), Some(other));
}

/// Clause: "`clear_session` then `load_session` is `Ok(None)`" (and clearing
/// twice is fine; the keys stay).
pub async fn case_clear_removes_the_session_only(store: &dyn CredentialStore) {
    store
        .save_session(&logged_in_session())
        .await
        .expect("save");
    store.save_jwks(&key_set()).await.expect("save jwks");
    store.clear_session().await.expect("clear");
    store.clear_session().await.expect("clear again");
    assert_eq!(store.load_session().await.expect("load"), None);
    assert_eq!(store.load_jwks().await.expect("load jwks"), Some(key_set()));
}

/// Clause: "`save_*` then `load_*` returns an equal value" for the key set.
pub async fn case_key_set_round_trips(store: &dyn CredentialStore) {
    store.save_jwks(&key_set()).await.expect("save");
    let back = store.load_jwks().await.expect("load").expect("keys");
    assert_eq!(back, key_set());
    assert!(back.jwks.find("k1").is_some());
}

/// Stamp one `#[tokio::test]` per [`CredentialStore`] contract case.
#[macro_export]
macro_rules! credential_store_suite {
    ($factory:expr) => {
        $crate::credential_store_suite!(@cases $factory;
            case_fresh_store_has_nothing,
            case_session_round_trips_tokens_included,
            case_a_new_session_replaces_the_old,
            case_clear_removes_the_session_only,
            case_key_set_round_trips,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let store = $factory.await;
                $crate::suites::credential_store::$case(&store).await;
            }
        )+
    };
}
