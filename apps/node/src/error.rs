//! Exit codes and the error type every command returns.

use std::fmt;
use std::process::ExitCode;

/// What kind of failure ended a command; each has its own exit code so scripts
/// can react without parsing text. Listed in `spacepos --help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 1: anything not covered below (a bug, or the machine itself failing).
    Internal,
    /// 2: the command line is wrong (clap uses 2 as well).
    Usage,
    /// 3: the configuration is invalid (file, environment or ERP-set values).
    Config,
    /// 4: not onboarded, or the ERP refused the credentials (re-onboarding needed).
    NotOnboarded,
    /// 5: the ERP (or this terminal) refused the request: unknown or used code,
    /// wrong PIN, already onboarded.
    Refused,
    /// 6: the ERP is unreachable, timed out or failed (5xx, 429); try again later.
    Unreachable,
    /// 7: local storage failed (data directory, state files).
    Storage,
}

impl Kind {
    pub fn code(self) -> u8 {
        match self {
            Kind::Internal => 1,
            Kind::Usage => 2,
            Kind::Config => 3,
            Kind::NotOnboarded => 4,
            Kind::Refused => 5,
            Kind::Unreachable => 6,
            Kind::Storage => 7,
        }
    }
}

/// The exit-code table shown at the end of `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0  success
  1  internal error (a bug, or the machine failing)
  2  usage error (wrong arguments)
  3  invalid configuration (the message names the field and the file or variable)
  4  not onboarded, or the ERP refused this terminal's credentials: run `spacepos onboard`
  5  refused: unknown or already used onboarding code, wrong PIN, already onboarded
  6  the ERP is unreachable, timed out or failed: try again later
  7  local storage failed (data directory or state files)";

/// An error a command reports: one message for the operator, one exit code.
#[derive(Debug)]
pub struct NodeError {
    pub kind: Kind,
    pub message: String,
    /// A finer reason where a UI offers different help: `unknown-code`,
    /// `used-code` (onboarding).
    pub reason: Option<&'static str>,
}

impl NodeError {
    pub fn new(kind: Kind, message: impl Into<String>) -> Self {
        NodeError {
            kind,
            message: message.into(),
            reason: None,
        }
    }

    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(self.kind.code())
    }
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<spacepos_core::RemoteError> for NodeError {
    fn from(e: spacepos_core::RemoteError) -> Self {
        let kind = if e.needs_reonboarding() {
            Kind::NotOnboarded
        } else if e.is_retryable() {
            Kind::Unreachable
        } else {
            Kind::Refused
        };
        NodeError::new(kind, e.to_string())
    }
}

impl From<spacepos_auth::OnboardingError> for NodeError {
    fn from(e: spacepos_auth::OnboardingError) -> Self {
        use spacepos_auth::{OnboardError, OnboardingError as E};
        let kind = match &e {
            E::AlreadyOnboarded { .. } | E::EmptyCode => Kind::Refused,
            E::Refused(OnboardError::Remote(r)) | E::Remote(r) => return r.clone().into(),
            E::Refused(OnboardError::UnknownCode { .. }) => {
                let mut err = NodeError::new(Kind::Refused, e.to_string());
                err.reason = Some("unknown-code");
                return err;
            }
            E::Refused(OnboardError::CodeUsed { .. }) => {
                let mut err = NodeError::new(Kind::Refused, e.to_string());
                err.reason = Some("used-code");
                return err;
            }
            E::Refused(_) => Kind::Refused,
            E::UnsafeEndpoint { .. } | E::IdentityChanged { .. } => Kind::Refused,
            E::NotOnboarded => Kind::NotOnboarded,
            E::Store(_) => Kind::Storage,
        };
        NodeError::new(kind, e.to_string())
    }
}

impl From<spacepos_auth::SessionError> for NodeError {
    fn from(e: spacepos_auth::SessionError) -> Self {
        use spacepos_auth::{AuthApiError, SessionError as E};
        match e {
            E::Api(AuthApiError::Remote(r)) => r.into(),
            E::Api(a) => NodeError::new(Kind::Refused, a.to_string()),
            E::Store(s) => NodeError::new(Kind::Storage, s.to_string()),
            other => NodeError::new(Kind::Refused, other.to_string()),
        }
    }
}

impl From<spacepos_config::ConfigError> for NodeError {
    fn from(e: spacepos_config::ConfigError) -> Self {
        NodeError::new(Kind::Config, e.to_string())
    }
}

impl From<spacepos_config::StateError> for NodeError {
    fn from(e: spacepos_config::StateError) -> Self {
        NodeError::new(Kind::Storage, e.to_string())
    }
}

impl From<spacepos_config::TerminalStoreError> for NodeError {
    fn from(e: spacepos_config::TerminalStoreError) -> Self {
        NodeError::new(Kind::Storage, e.to_string())
    }
}

impl From<spacepos_auth::CredentialStoreError> for NodeError {
    fn from(e: spacepos_auth::CredentialStoreError) -> Self {
        NodeError::new(Kind::Storage, e.to_string())
    }
}
