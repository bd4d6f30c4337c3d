//! Onboarding, device credentials and staff sessions.
//!
//! Owns the onboarding flow ([`Onboarding`]: onboarding code -> client
//! credentials, identity and endpoints persisted in one atomic save through
//! config's `TerminalConfigStore`; `terminals/me` kept in sync), and staff
//! sessions ([`Sessions`]: login, local JWT verification against the cached JWKS
//! so a session survives an ERP outage until the token expires, refresh, logout).
//! Device credential headers are built by the HTTP adapter from
//! `spacepos_core::DeviceCredentials`.
//!
//! Ports declared here: [`OnboardingApi`], [`AuthApi`] (implemented by
//! `spacepos-erp-http`) and [`CredentialStore`] (implemented by `spacepos-fs`).

pub mod jwt;
mod onboarding;
mod ports;
mod session;

pub use jsonwebtoken::jwk::JwkSet;
pub use onboarding::{Onboarding, OnboardingError, SettingsRefresh};
pub use ports::{
    AuthApi, AuthApiError, CachedJwks, CredentialStore, CredentialStoreError, OnboardError,
    Onboarded, OnboardingApi, OnboardingRequest, StoredSession, TerminalSettings, TokenGrant,
};
pub use session::{SessionError, SessionStatus, Sessions, StaffSession};

#[cfg(any(test, feature = "mocks"))]
pub use ports::{MockAuthApi, MockCredentialStore, MockOnboardingApi};
