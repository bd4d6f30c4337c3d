//! Shared vocabulary of SpacePOS Runtime & Sync.
//!
//! This crate owns the few types every other crate speaks: [`Secret`] (a string
//! that never prints), [`ComponentId`], [`TerminalIdentity`] and
//! [`DeviceCredentials`], [`ClientInfo`] (the `User-Agent` of contract section 1),
//! the TLS rule for endpoints ([`endpoint::check_transport`]) and [`RemoteError`],
//! the classification of ERP and broker failures, and a wall [`Clock`] that every port error embeds so
//! the runtime can decide between "retry later", "wait for Retry-After" and
//! "re-onboarding needed". It declares no ports and does no I/O.
//!
//! **Invariant:** nothing in this crate depends on another SpacePOS crate.

mod clock;
pub mod endpoint;
mod identity;
pub mod paths;
mod remote;
mod secret;

pub use clock::{Clock, FixedClock, SystemClock};
pub use identity::{ClientInfo, ComponentId, DeviceCredentials, Product, TerminalIdentity};
pub use remote::RemoteError;
pub use secret::{RedactedUrl, Secret};
