//! Staff sessions: login, local verification, refresh, logout.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use spacepos_core::{Clock, RemoteError, Secret};
use tracing::{info, warn};

use crate::jwt::{TokenError, TokenExpectations, VerifiedToken, verify};
use crate::ports::{
    AuthApi, AuthApiError, CachedJwks, CredentialStore, CredentialStoreError, StoredSession,
    TokenGrant,
};

/// Refresh a session proactively when less than this is left.
const REFRESH_AHEAD: Duration = Duration::minutes(5);

/// A staff member logged in on this terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaffSession {
    pub store_staff_id: String,
    pub expires_at: DateTime<Utc>,
}

/// What [`Sessions::current`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionStatus {
    /// Nobody is logged in.
    None,
    /// A verified, unexpired session (verified locally: it holds while the ERP is down).
    Active(StaffSession),
    /// The token expired and could not be refreshed because the ERP is unreachable;
    /// the session resumes if a later refresh succeeds.
    Expired {
        store_staff_id: String,
        expired_at: DateTime<Utc>,
        reason: String,
    },
}

/// Why a session operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Api(#[from] AuthApiError),
    #[error("the ERP granted a token this terminal refuses: {0}")]
    Token(#[from] TokenError),
    #[error("the ERP said the session is for {granted}, but the token is for {token}")]
    Mismatch { granted: String, token: String },
    #[error(transparent)]
    Store(#[from] CredentialStoreError),
    #[error("nobody is logged in")]
    NotLoggedIn,
}

/// Staff sessions of one terminal.
#[derive(Debug, Clone)]
pub struct Sessions {
    api: Arc<dyn AuthApi>,
    store: Arc<dyn CredentialStore>,
    clock: Arc<dyn Clock>,
    expect: TokenExpectations,
}

impl std::fmt::Debug for dyn AuthApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuthApi")
    }
}

impl std::fmt::Debug for dyn CredentialStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CredentialStore")
    }
}

impl Sessions {
    pub fn new(
        api: Arc<dyn AuthApi>,
        store: Arc<dyn CredentialStore>,
        clock: Arc<dyn Clock>,
        expect: TokenExpectations,
    ) -> Self {
        Sessions {
            api,
            store,
            clock,
            expect,
        }
    }

    /// Log a staff member in: the ERP checks code and PIN, this terminal verifies
    /// the token it grants against the ERP's keys, then keeps the session.
    pub async fn login(
        &self,
        staff_code: &str,
        pin: &Secret,
    ) -> Result<StaffSession, SessionError> {
        let grant = self.api.login(staff_code, pin).await?;
        let session = self.accept(grant).await?;
        info!(staff = %session.store_staff_id, expires_at = %session.expires_at, "staff logged in");
        Ok(session)
    }

    /// The current session, verified locally with the cached keys. Refreshes it
    /// when it is about to expire (best effort) or has expired (required).
    pub async fn current(&self) -> Result<SessionStatus, SessionError> {
        let Some(stored) = self.store.load_session().await? else {
            return Ok(SessionStatus::None);
        };
        let now = self.clock.now();
        match self.verify_cached(&stored.access_token, now).await {
            Ok(token) => {
                if token.expires_at - now < REFRESH_AHEAD {
                    match self.refresh_stored(&stored).await {
                        Ok(s) => return Ok(SessionStatus::Active(s)),
                        Err(e) => {
                            warn!(error = %e, "could not refresh the staff session ahead of expiry")
                        }
                    }
                }
                Ok(SessionStatus::Active(StaffSession {
                    store_staff_id: token.store_staff_id,
                    expires_at: token.expires_at,
                }))
            }
            Err(TokenError::Expired { at }) => match self.refresh_stored(&stored).await {
                Ok(s) => Ok(SessionStatus::Active(s)),
                Err(SessionError::Api(AuthApiError::Remote(e))) if e.is_retryable() => {
                    Ok(SessionStatus::Expired {
                        store_staff_id: stored.store_staff_id,
                        expired_at: at,
                        reason: e.to_string(),
                    })
                }
                Err(SessionError::Api(
                    AuthApiError::SessionEnded | AuthApiError::InvalidCredentials,
                )) => {
                    info!(staff = %stored.store_staff_id, "the ERP ended the staff session");
                    self.store.clear_session().await?;
                    Ok(SessionStatus::None)
                }
                Err(e) => Err(e),
            },
            Err(e) => {
                warn!(staff = %stored.store_staff_id, error = %e, "stored staff session refused; logging out");
                self.store.clear_session().await?;
                Ok(SessionStatus::None)
            }
        }
    }

    /// Refresh the current session now.
    pub async fn refresh(&self) -> Result<StaffSession, SessionError> {
        let stored = self
            .store
            .load_session()
            .await?
            .ok_or(SessionError::NotLoggedIn)?;
        self.refresh_stored(&stored).await
    }

    /// End the session on this terminal.
    pub async fn logout(&self) -> Result<(), SessionError> {
        self.store.clear_session().await?;
        Ok(())
    }

    async fn refresh_stored(&self, stored: &StoredSession) -> Result<StaffSession, SessionError> {
        let grant = self.api.refresh(&stored.refresh_token).await?;
        self.accept(grant).await
    }

    /// Verify a grant's token (fetching keys if needed) and persist the session.
    async fn accept(&self, grant: TokenGrant) -> Result<StaffSession, SessionError> {
        let now = self.clock.now();
        let token = self.verify_fetching(&grant.access_token, now).await?;
        if token.store_staff_id != grant.store_staff_id {
            return Err(SessionError::Mismatch {
                granted: grant.store_staff_id,
                token: token.store_staff_id,
            });
        }
        let stored = StoredSession {
            store_staff_id: token.store_staff_id.clone(),
            access_token: grant.access_token,
            refresh_token: grant.refresh_token,
            expires_at: token.expires_at,
            logged_in_at: now,
        };
        self.store.save_session(&stored).await?;
        Ok(StaffSession {
            store_staff_id: token.store_staff_id,
            expires_at: token.expires_at,
        })
    }

    /// Verify with the cached keys only; an unknown key triggers one key fetch
    /// (key rotation at the ERP), which fails quietly when the ERP is down.
    async fn verify_cached(
        &self,
        token: &Secret,
        now: DateTime<Utc>,
    ) -> Result<VerifiedToken, TokenError> {
        let cached = self.store.load_jwks().await.ok().flatten();
        match cached {
            Some(c) => match verify(token.expose(), &c.jwks, &self.expect, now) {
                Err(TokenError::UnknownKey { kid }) => match self.fetch_keys(now).await {
                    Ok(jwks) => verify(token.expose(), &jwks.jwks, &self.expect, now),
                    Err(_) => Err(TokenError::UnknownKey { kid }),
                },
                other => other,
            },
            None => match self.fetch_keys(now).await {
                Ok(jwks) => verify(token.expose(), &jwks.jwks, &self.expect, now),
                Err(e) => Err(TokenError::Malformed(format!(
                    "no cached keys and the ERP's keys are unavailable: {e}"
                ))),
            },
        }
    }

    async fn verify_fetching(
        &self,
        token: &Secret,
        now: DateTime<Utc>,
    ) -> Result<VerifiedToken, SessionError> {
        if let Some(c) = self.store.load_jwks().await? {
            match verify(token.expose(), &c.jwks, &self.expect, now) {
                Err(TokenError::UnknownKey { .. }) => {}
                other => return Ok(other?),
            }
        }
        let jwks = self.fetch_keys(now).await?;
        Ok(verify(token.expose(), &jwks.jwks, &self.expect, now)?)
    }

    async fn fetch_keys(&self, now: DateTime<Utc>) -> Result<CachedJwks, SessionError> {
        let jwks = self.api.jwks().await?;
        let cached = CachedJwks {
            jwks,
            fetched_at: now,
        };
        self.store.save_jwks(&cached).await?;
        Ok(cached)
    }
}

impl From<RemoteError> for SessionError {
    fn from(e: RemoteError) -> Self {
        SessionError::Api(AuthApiError::Remote(e))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::TimeZone;
    use serde_json::json;
    use spacepos_core::FixedClock;

    use super::*;
    use crate::jwt::test_support::{Key, key, set, token};
    use crate::ports::MockAuthApi;

    /// A local in-memory credential store (testkit cannot be used in-file, cargo#6765).
    #[derive(Debug, Default)]
    struct Mem {
        session: Mutex<Option<StoredSession>>,
        jwks: Mutex<Option<CachedJwks>>,
    }

    #[async_trait]
    impl CredentialStore for Mem {
        async fn load_session(&self) -> Result<Option<StoredSession>, CredentialStoreError> {
            Ok(self.session.lock().unwrap().clone())
        }
        async fn save_session(&self, s: &StoredSession) -> Result<(), CredentialStoreError> {
            *self.session.lock().unwrap() = Some(s.clone());
            Ok(())
        }
        async fn clear_session(&self) -> Result<(), CredentialStoreError> {
            *self.session.lock().unwrap() = None;
            Ok(())
        }
        async fn load_jwks(&self) -> Result<Option<CachedJwks>, CredentialStoreError> {
            Ok(self.jwks.lock().unwrap().clone())
        }
        async fn save_jwks(&self, j: &CachedJwks) -> Result<(), CredentialStoreError> {
            *self.jwks.lock().unwrap() = Some(j.clone());
            Ok(())
        }
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap()
    }

    fn grant(k: &Key, staff: &str, lifetime_s: i64, at: DateTime<Utc>) -> TokenGrant {
        let claims = json!({"sub": staff, "store": 12, "aud": "spacepos", "iss": "erp",
                            "iat": at.timestamp(), "exp": at.timestamp() + lifetime_s});
        TokenGrant {
            access_token: Secret::new(token(k, claims)),
            refresh_token: Secret::new(format!("refresh-{staff}-{}", at.timestamp())),
            expires_in: std::time::Duration::from_secs(lifetime_s as u64),
            store_staff_id: staff.into(),
        }
    }

    fn unreachable() -> AuthApiError {
        AuthApiError::Remote(RemoteError::Unreachable {
            host: "erp".into(),
            detail: "connection refused".into(),
        })
    }

    fn sessions(api: MockAuthApi, store: Arc<Mem>, clock: Arc<FixedClock>) -> Sessions {
        Sessions::new(
            Arc::new(api),
            store,
            clock,
            TokenExpectations::for_store(12),
        )
    }

    #[tokio::test]
    async fn login_verifies_and_the_session_survives_an_erp_outage_until_expiry() {
        let k = key("k1", 1);
        let jwks = set(&[&k]);
        let g = grant(&k, "S-0042", 3600, t0());
        let mut api = MockAuthApi::new();
        api.expect_login().times(1).return_once(move |_, _| Ok(g));
        api.expect_jwks().times(1).return_once(move || Ok(jwks));
        // From here on the ERP is down: refreshes fail.
        api.expect_refresh().returning(|_| Err(unreachable()));
        let store = Arc::new(Mem::default());
        let clock = Arc::new(FixedClock::new(t0()));
        let s = sessions(api, store.clone(), clock.clone());

        let session = s.login("0042", &Secret::new("1234")).await.unwrap();
        assert_eq!(session.store_staff_id, "S-0042");
        assert!(store.load_session().await.unwrap().is_some());

        clock.advance(Duration::minutes(30));
        assert!(
            matches!(s.current().await.unwrap(), SessionStatus::Active(a) if a.store_staff_id == "S-0042")
        );

        // Within the refresh window the failed refresh is tolerated.
        clock.advance(Duration::minutes(27));
        assert!(matches!(
            s.current().await.unwrap(),
            SessionStatus::Active(_)
        ));

        clock.advance(Duration::minutes(10));
        match s.current().await.unwrap() {
            SessionStatus::Expired { store_staff_id, .. } => assert_eq!(store_staff_id, "S-0042"),
            other => panic!("expected Expired, got {other:?}"),
        }
        // The session is kept so a later refresh can resume it.
        assert!(store.load_session().await.unwrap().is_some());
    }

    #[tokio::test]
    async fn expired_session_resumes_when_refresh_succeeds() {
        let k = key("k1", 1);
        let jwks = set(&[&k]);
        let first = grant(&k, "S-0042", 600, t0());
        let later = t0() + Duration::minutes(20);
        let second = grant(&k, "S-0042", 600, later);
        let mut api = MockAuthApi::new();
        api.expect_login().return_once(move |_, _| Ok(first));
        api.expect_jwks().return_once(move || Ok(jwks));
        api.expect_refresh()
            .times(1)
            .return_once(move |_| Ok(second));
        let store = Arc::new(Mem::default());
        let clock = Arc::new(FixedClock::new(t0()));
        let s = sessions(api, store.clone(), clock.clone());
        s.login("0042", &Secret::new("1234")).await.unwrap();
        clock.set(later);
        match s.current().await.unwrap() {
            SessionStatus::Active(a) => assert_eq!(a.expires_at, later + Duration::seconds(600)),
            other => panic!("expected Active, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn refresh_refused_ends_the_session() {
        let k = key("k1", 1);
        let jwks = set(&[&k]);
        let first = grant(&k, "S-0042", 600, t0());
        let mut api = MockAuthApi::new();
        api.expect_login().return_once(move |_, _| Ok(first));
        api.expect_jwks().return_once(move || Ok(jwks));
        api.expect_refresh()
            .return_once(|_| Err(AuthApiError::SessionEnded));
        let store = Arc::new(Mem::default());
        let clock = Arc::new(FixedClock::new(t0()));
        let s = sessions(api, store.clone(), clock.clone());
        s.login("0042", &Secret::new("1234")).await.unwrap();
        clock.advance(Duration::hours(2));
        assert_eq!(s.current().await.unwrap(), SessionStatus::None);
        assert!(store.load_session().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn token_from_an_unknown_key_is_refused_at_login() {
        let (k, rogue) = (key("k1", 1), key("rogue", 2));
        let jwks = set(&[&k]);
        let g = grant(&rogue, "S-0042", 600, t0());
        let mut api = MockAuthApi::new();
        api.expect_login().return_once(move |_, _| Ok(g));
        api.expect_jwks().times(1).return_once(move || Ok(jwks));
        let store = Arc::new(Mem::default());
        let s = sessions(api, store.clone(), Arc::new(FixedClock::new(t0())));
        let e = s.login("0042", &Secret::new("1234")).await.unwrap_err();
        assert!(
            matches!(e, SessionError::Token(TokenError::UnknownKey { .. })),
            "{e:?}"
        );
        assert!(store.load_session().await.unwrap().is_none());
    }

    #[tokio::test]
    async fn rotated_key_is_fetched_once_when_a_token_names_it() {
        let (k1, k2) = (key("k1", 1), key("k2", 2));
        let old = set(&[&k1]);
        let new = set(&[&k1, &k2]);
        let g1 = grant(&k1, "S-1", 600, t0());
        let g2 = grant(&k2, "S-2", 600, t0());
        let mut api = MockAuthApi::new();
        let mut grants = vec![g2, g1];
        api.expect_login()
            .times(2)
            .returning(move |_, _| Ok(grants.pop().unwrap()));
        let mut sets = vec![new, old];
        api.expect_jwks()
            .times(2)
            .returning(move || Ok(sets.pop().unwrap()));
        let s = sessions(
            api,
            Arc::new(Mem::default()),
            Arc::new(FixedClock::new(t0())),
        );
        assert_eq!(
            s.login("1", &Secret::new("1"))
                .await
                .unwrap()
                .store_staff_id,
            "S-1"
        );
        assert_eq!(
            s.login("2", &Secret::new("2"))
                .await
                .unwrap()
                .store_staff_id,
            "S-2"
        );
    }

    #[tokio::test]
    async fn wrong_pin_is_reported_and_nothing_stored() {
        let mut api = MockAuthApi::new();
        api.expect_login()
            .return_once(|_, _| Err(AuthApiError::InvalidCredentials));
        let store = Arc::new(Mem::default());
        let s = sessions(api, store.clone(), Arc::new(FixedClock::new(t0())));
        let e = s.login("0042", &Secret::new("0000")).await.unwrap_err();
        assert!(matches!(
            e,
            SessionError::Api(AuthApiError::InvalidCredentials)
        ));
        assert!(store.load_session().await.unwrap().is_none());
    }
}
