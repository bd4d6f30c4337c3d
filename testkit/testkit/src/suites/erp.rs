//! Contract suites of the ERP-facing ports of the auth domain,
//! [`OnboardingApi`] and [`AuthApi`]; stamp them with [`crate::erp_port_suite!`].
//!
//! A case needs more than the port: it must issue an onboarding code, revoke a
//! terminal or change its settings at the ERP. [`ErpHarness`] gives it those,
//! for the in-memory fake ([`crate::fakes::MemoryErp`]) and for the HTTP
//! adapter talking to the fake ERP server alike.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Utc;
use spacepos_auth::jwt::{TokenExpectations, verify};
use spacepos_auth::{
    AuthApi, AuthApiError, OnboardError, Onboarded, OnboardingApi, OnboardingRequest,
};
use spacepos_core::{ClientInfo, ComponentId, Product, RemoteError, Secret};

/// An ERP under test, with the set-up operations the cases need.
#[async_trait]
pub trait ErpHarness: Send + Sync {
    /// A new onboarding code for `terminal_number` of store 12.
    async fn issue_code(&self, terminal_number: u32) -> String;
    /// The onboarding port, without credentials.
    fn anonymous(&self) -> Arc<dyn OnboardingApi>;
    /// The onboarding port of an onboarded terminal.
    fn onboarding_for(&self, terminal: &Onboarded) -> Arc<dyn OnboardingApi>;
    /// The session port of an onboarded terminal.
    fn auth_for(&self, terminal: &Onboarded) -> Arc<dyn AuthApi>;
    async fn revoke(&self, client_id: &str);
    async fn set_presence(&self, client_id: &str, interval_seconds: u32, report: bool);
    /// A staff account the ERP knows: (staff code, PIN, store staff id).
    fn staff(&self) -> (String, String, String);
}

fn request(code: &str) -> OnboardingRequest {
    OnboardingRequest {
        code: code.to_owned(),
        client: ClientInfo {
            product: Product::SpacePos,
            version: "0.1.0".into(),
            os_name: "Linux".into(),
            os_version: "6.1".into(),
            arch: "x86_64".into(),
            hostname: "SUITE-TILL".into(),
        },
        components: vec![ComponentId::SpacePos],
    }
}

async fn onboarded(erp: &dyn ErpHarness, terminal: u32) -> Onboarded {
    let code = erp.issue_code(terminal).await;
    erp.anonymous()
        .onboard(&request(&code))
        .await
        .expect("onboard with an issued code")
}

/// OnboardingApi: "`onboard` with a code the ERP issued returns credentials and identity".
pub async fn case_onboarding_returns_credentials_and_identity(erp: &dyn ErpHarness) {
    let o = onboarded(erp, 21).await;
    assert!(!o.credentials.client_id.is_empty());
    assert!(!o.credentials.client_secret.is_empty());
    assert_eq!((o.store_number, o.terminal_number), (12, 21));
}

/// OnboardingApi: "the same code a second time is `CodeUsed`".
pub async fn case_a_code_works_once(erp: &dyn ErpHarness) {
    let code = erp.issue_code(22).await;
    erp.anonymous()
        .onboard(&request(&code))
        .await
        .expect("first use");
    let again = erp.anonymous().onboard(&request(&code)).await;
    assert!(
        matches!(again, Err(OnboardError::CodeUsed { .. })),
        "{again:?}"
    );
}

/// OnboardingApi: "a code the ERP never issued is `UnknownCode`".
pub async fn case_an_unknown_code_is_refused(erp: &dyn ErpHarness) {
    let r = erp.anonymous().onboard(&request("NEVER-ISSUED")).await;
    assert!(matches!(r, Err(OnboardError::UnknownCode { .. })), "{r:?}");
}

/// OnboardingApi: "`terminal_settings` answers with the identity issued at
/// onboarding and the settings the ERP holds now".
pub async fn case_terminal_settings_follow_the_erp(erp: &dyn ErpHarness) {
    let o = onboarded(erp, 23).await;
    erp.set_presence(&o.credentials.client_id, 120, false).await;
    let s = erp
        .onboarding_for(&o)
        .terminal_settings()
        .await
        .expect("settings");
    assert_eq!((s.store_number, s.terminal_number), (12, 23));
    assert_eq!(s.presence_interval_seconds, Some(120));
    assert_eq!(s.report_presence, Some(false));
}

/// OnboardingApi: "with revoked or wrong credentials it is `Unauthorized`".
pub async fn case_revoked_or_wrong_credentials_are_unauthorized(erp: &dyn ErpHarness) {
    let o = onboarded(erp, 24).await;
    let mut wrong = o.clone();
    wrong.credentials.client_secret = Secret::new("not-the-secret");
    let r = erp.onboarding_for(&wrong).terminal_settings().await;
    assert!(matches!(r, Err(RemoteError::Unauthorized { .. })), "{r:?}");
    erp.revoke(&o.credentials.client_id).await;
    let r = erp.onboarding_for(&o).terminal_settings().await;
    assert!(matches!(r, Err(RemoteError::Unauthorized { .. })), "{r:?}");
}

/// AuthApi: "`login` with a known staff code and PIN grants an access token for
/// that staff member" and "`jwks` returns the keys that verify the access tokens it grants".
pub async fn case_login_grants_a_token_the_jwks_verifies(erp: &dyn ErpHarness) {
    let o = onboarded(erp, 25).await;
    let (code, pin, staff_id) = erp.staff();
    let auth = erp.auth_for(&o);
    let grant = auth.login(&code, &Secret::new(pin)).await.expect("login");
    assert_eq!(grant.store_staff_id, staff_id);
    let jwks = auth.jwks().await.expect("jwks");
    let token = verify(
        grant.access_token.expose(),
        &jwks,
        &TokenExpectations::for_store(12),
        Utc::now(),
    )
    .expect("the granted token verifies against the ERP's keys");
    assert_eq!(token.store_staff_id, staff_id);
}

/// AuthApi: "a wrong PIN is `InvalidCredentials`".
pub async fn case_a_wrong_pin_is_invalid_credentials(erp: &dyn ErpHarness) {
    let o = onboarded(erp, 26).await;
    let (code, _, _) = erp.staff();
    let r = erp
        .auth_for(&o)
        .login(&code, &Secret::new("definitely-wrong"))
        .await;
    assert!(matches!(r, Err(AuthApiError::InvalidCredentials)), "{r:?}");
}

/// AuthApi: "`refresh` with the current refresh token grants new tokens; the
/// previous refresh token no longer works".
pub async fn case_refresh_rotates_the_refresh_token(erp: &dyn ErpHarness) {
    let o = onboarded(erp, 27).await;
    let (code, pin, staff_id) = erp.staff();
    let auth = erp.auth_for(&o);
    let first = auth.login(&code, &Secret::new(pin)).await.expect("login");
    let second = auth.refresh(&first.refresh_token).await.expect("refresh");
    assert_eq!(second.store_staff_id, staff_id);
    let reused = auth.refresh(&first.refresh_token).await;
    assert!(
        matches!(reused, Err(AuthApiError::SessionEnded)),
        "{reused:?}"
    );
}

/// AuthApi on a revoked terminal: a device problem, not a staff one.
pub async fn case_a_revoked_terminal_cannot_log_staff_in(erp: &dyn ErpHarness) {
    let o = onboarded(erp, 28).await;
    erp.revoke(&o.credentials.client_id).await;
    let (code, pin, _) = erp.staff();
    let r = erp.auth_for(&o).login(&code, &Secret::new(pin)).await;
    assert!(
        matches!(
            r,
            Err(AuthApiError::Remote(RemoteError::Unauthorized { .. }))
        ),
        "{r:?}"
    );
}

/// Stamp one `#[tokio::test]` per ERP-port contract case. The argument is an
/// expression evaluating to a future of a value implementing [`ErpHarness`].
#[macro_export]
macro_rules! erp_port_suite {
    ($factory:expr) => {
        $crate::erp_port_suite!(@cases $factory;
            case_onboarding_returns_credentials_and_identity,
            case_a_code_works_once,
            case_an_unknown_code_is_refused,
            case_terminal_settings_follow_the_erp,
            case_revoked_or_wrong_credentials_are_unauthorized,
            case_login_grants_a_token_the_jwks_verifies,
            case_a_wrong_pin_is_invalid_credentials,
            case_refresh_rotates_the_refresh_token,
            case_a_revoked_terminal_cannot_log_staff_in,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let erp = $factory.await;
                $crate::suites::erp::$case(&erp).await;
            }
        )+
    };
}
