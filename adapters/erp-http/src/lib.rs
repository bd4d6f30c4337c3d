//! The ERP's REST API over HTTP (reqwest with rustls).
//!
//! Implements the ERP-facing ports of the domain: `OnboardingApi` and `AuthApi`
//! (spacepos-auth), `DatasetApi` and `OperationsApi` (spacepos-sync), `ReleaseApi`
//! (spacepos-updates: pending releases and ranged artifact downloads, with the
//! device headers only to the ERP's own origin). Every device call carries `X-Client-Id`, `X-Client-Secret`
//! and `X-Terminal` (secret headers are marked sensitive so no HTTP layer logs
//! them); every call carries the contract's `User-Agent`. Failures are mapped to
//! `spacepos_core::RemoteError` as contract section 1 says: 401 = re-onboarding
//! needed, 429/503 with `Retry-After` = wait that long, other 5xx, timeouts and
//! network errors = retryable. Redirects are never followed, so the credentials
//! cannot be carried to another host, and the TLS rule is enforced when the
//! client is built (plain `http` only to a loopback address).

mod client;
mod datasets;
mod onboarding;
mod releases;
mod session;

pub use client::{ErpHttpClient, ErpHttpConfig, ErpHttpError};
