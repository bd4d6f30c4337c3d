//! Onboarding codes, onboarded terminals and device authentication (contract sections 1-2).

use std::collections::HashMap;

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use spacepos_core::{DeviceCredentials, Secret};
use spacepos_erp_wire::rest::{CompanyInformation, OnboardRequest, TerminalMe};

use crate::config::FakeErpConfig;
use crate::error::FakeErpError;
use crate::util::random_hex;

/// Alphabet of issued onboarding codes: no 0/O, 1/I to read them aloud.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789";

/// A terminal as the fake ERP holds it. The client secret is not part of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TerminalInfo {
    pub client_id: String,
    pub store_number: u32,
    pub terminal_number: u32,
    pub revoked: bool,
    pub report_presence: bool,
    pub presence_interval_seconds: u32,
    pub company_information: CompanyInformation,
    pub onboarded_at: DateTime<Utc>,
    /// From the onboarding request (empty for terminals registered by a test).
    pub hostname: String,
    pub os: String,
    pub arch: String,
    pub app_version: String,
    pub components: Vec<String>,
}

impl TerminalInfo {
    pub fn me(&self) -> TerminalMe {
        TerminalMe {
            store_number: self.store_number,
            terminal_number: self.terminal_number,
            report_presence: Some(self.report_presence),
            presence_interval_seconds: Some(self.presence_interval_seconds),
            company_information: Some(self.company_information.clone()),
        }
    }
}

/// A change of a terminal's settings; `None` fields stay as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TerminalSettings {
    pub report_presence: Option<bool>,
    pub presence_interval_seconds: Option<u32>,
    pub company_information: Option<CompanyInformation>,
}

/// The terminal a device request authenticated as (a request extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AuthTerminal {
    pub(crate) client_id: String,
    pub(crate) store_number: u32,
}

#[derive(Debug, Clone)]
struct CodeEntry {
    store_number: u32,
    terminal_number: u32,
    used_by: Option<String>,
}

#[derive(Debug)]
struct Terminal {
    secret: Secret,
    info: TerminalInfo,
}

/// Why onboarding failed, mapped to 404 / 409 by the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OnboardError {
    Unknown,
    Used,
}

#[derive(Debug)]
pub(crate) struct Terminals {
    codes: HashMap<String, CodeEntry>,
    terminals: HashMap<String, Terminal>,
    /// Client ids in onboarding order.
    order: Vec<String>,
    report_presence: bool,
    presence_interval_seconds: u32,
    company_information: CompanyInformation,
}

/// Codes are compared trimmed and upper case, as people type them.
fn normalize_code(code: &str) -> String {
    code.trim().to_ascii_uppercase()
}

impl Terminals {
    pub(crate) fn new(config: &FakeErpConfig) -> Self {
        let codes = config
            .onboarding_codes
            .iter()
            .map(|c| {
                let entry = CodeEntry {
                    store_number: c.store_number,
                    terminal_number: c.terminal_number,
                    used_by: None,
                };
                (normalize_code(&c.code), entry)
            })
            .collect();
        Self {
            codes,
            terminals: HashMap::new(),
            order: Vec::new(),
            report_presence: config.report_presence,
            presence_interval_seconds: config.presence_interval_seconds,
            company_information: config.company_information.clone(),
        }
    }

    pub(crate) fn add_code(&mut self, code: &str, store_number: u32, terminal_number: u32) {
        self.codes.insert(
            normalize_code(code),
            CodeEntry {
                store_number,
                terminal_number,
                used_by: None,
            },
        );
    }

    /// A fresh code `XXXX-XXXX` for a till slot.
    pub(crate) fn issue_code(&mut self, store_number: u32, terminal_number: u32) -> String {
        loop {
            let raw = uuid::Uuid::new_v4();
            let chars: String = raw
                .as_bytes()
                .iter()
                .take(8)
                .map(|b| char::from(CODE_ALPHABET[usize::from(*b) % CODE_ALPHABET.len()]))
                .collect();
            let code = format!("{}-{}", &chars[..4], &chars[4..]);
            if !self.codes.contains_key(&code) {
                self.add_code(&code, store_number, terminal_number);
                return code;
            }
        }
    }

    fn create(
        &mut self,
        store_number: u32,
        terminal_number: u32,
        req: Option<&OnboardRequest>,
    ) -> (String, Secret) {
        let client_id = format!("trm_{}", random_hex(8));
        let secret = Secret::new(format!("s3cr3t-{}", random_hex(20)));
        let info = TerminalInfo {
            client_id: client_id.clone(),
            store_number,
            terminal_number,
            revoked: false,
            report_presence: self.report_presence,
            presence_interval_seconds: self.presence_interval_seconds,
            company_information: self.company_information.clone(),
            onboarded_at: Utc::now(),
            hostname: req.map(|r| r.hostname.clone()).unwrap_or_default(),
            os: req.map(|r| r.os.clone()).unwrap_or_default(),
            arch: req.map(|r| r.arch.clone()).unwrap_or_default(),
            app_version: req.map(|r| r.app_version.clone()).unwrap_or_default(),
            components: req.map(|r| r.components.clone()).unwrap_or_default(),
        };
        self.terminals.insert(
            client_id.clone(),
            Terminal {
                secret: secret.clone(),
                info,
            },
        );
        self.order.push(client_id.clone());
        (client_id, secret)
    }

    /// Consumes the code and creates the terminal.
    pub(crate) fn onboard(
        &mut self,
        req: &OnboardRequest,
    ) -> Result<(TerminalInfo, Secret), OnboardError> {
        let key = normalize_code(&req.onboarding_code);
        let entry = self.codes.get(&key).ok_or(OnboardError::Unknown)?;
        if entry.used_by.is_some() {
            return Err(OnboardError::Used);
        }
        let (store, terminal) = (entry.store_number, entry.terminal_number);
        let (client_id, secret) = self.create(store, terminal, Some(req));
        if let Some(entry) = self.codes.get_mut(&key) {
            entry.used_by = Some(client_id.clone());
        }
        let info = self
            .terminals
            .get(&client_id)
            .map(|t| t.info.clone())
            .ok_or(OnboardError::Unknown)?;
        Ok((info, secret))
    }

    /// A terminal created directly by a test, without an onboarding code.
    pub(crate) fn register(
        &mut self,
        store_number: u32,
        terminal_number: u32,
    ) -> DeviceCredentials {
        let (client_id, client_secret) = self.create(store_number, terminal_number, None);
        DeviceCredentials {
            client_id,
            client_secret,
        }
    }

    /// The terminal that `X-Client-Id` + `X-Client-Secret` name, if valid and not revoked.
    pub(crate) fn authenticate(&self, headers: &HeaderMap) -> Option<AuthTerminal> {
        let id = headers.get("x-client-id")?.to_str().ok()?;
        let secret = headers.get("x-client-secret")?.to_str().ok()?;
        let t = self.terminals.get(id)?;
        (!t.info.revoked && t.secret.expose() == secret).then(|| AuthTerminal {
            client_id: id.to_owned(),
            store_number: t.info.store_number,
        })
    }

    pub(crate) fn get(&self, client_id: &str) -> Option<TerminalInfo> {
        self.terminals.get(client_id).map(|t| t.info.clone())
    }

    pub(crate) fn list(&self) -> Vec<TerminalInfo> {
        self.order.iter().filter_map(|id| self.get(id)).collect()
    }

    pub(crate) fn update(
        &mut self,
        client_id: &str,
        s: TerminalSettings,
    ) -> Result<TerminalInfo, FakeErpError> {
        let t = self
            .terminals
            .get_mut(client_id)
            .ok_or_else(|| FakeErpError::UnknownTerminal(client_id.into()))?;
        if let Some(v) = s.report_presence {
            t.info.report_presence = v;
        }
        if let Some(v) = s.presence_interval_seconds {
            t.info.presence_interval_seconds = v;
        }
        if let Some(v) = s.company_information {
            t.info.company_information = v;
        }
        Ok(t.info.clone())
    }

    pub(crate) fn revoke(&mut self, client_id: &str) -> Result<(), FakeErpError> {
        let t = self
            .terminals
            .get_mut(client_id)
            .ok_or_else(|| FakeErpError::UnknownTerminal(client_id.into()))?;
        t.info.revoked = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::OnboardingCodeSpec;

    fn request(code: &str) -> OnboardRequest {
        OnboardRequest {
            onboarding_code: code.into(),
            hostname: "TILL-03".into(),
            os: "Windows 10.0.22631".into(),
            arch: "x86_64".into(),
            app_version: "1.4.2".into(),
            components: vec!["spacepos".into()],
        }
    }

    #[test]
    fn codes_are_single_use_and_case_insensitive() {
        let config = FakeErpConfig {
            onboarding_codes: vec![OnboardingCodeSpec::new("ab12-cd34", 12, 3)],
            ..FakeErpConfig::default()
        };
        let mut t = Terminals::new(&config);
        let (info, secret) = t.onboard(&request(" AB12-CD34 ")).unwrap();
        assert!(info.client_id.starts_with("trm_") && info.client_id.len() == 20);
        assert_eq!((info.store_number, info.terminal_number), (12, 3));
        assert!(!secret.is_empty());
        assert_eq!(t.onboard(&request("AB12-CD34")), Err(OnboardError::Used));
        assert_eq!(t.onboard(&request("NOPE")), Err(OnboardError::Unknown));
        let issued = t.issue_code(7, 1);
        assert_eq!(issued.len(), 9);
        assert_eq!(t.onboard(&request(&issued)).unwrap().0.store_number, 7);
    }

    #[test]
    fn authentication_checks_secret_and_revocation() {
        let mut t = Terminals::new(&FakeErpConfig::default());
        let creds = t.register(12, 1);
        let mut h = HeaderMap::new();
        h.insert("x-client-id", creds.client_id.parse().unwrap());
        h.insert(
            "x-client-secret",
            creds.client_secret.expose().parse().unwrap(),
        );
        assert!(t.authenticate(&h).is_some());
        h.insert("x-client-secret", "wrong".parse().unwrap());
        assert!(t.authenticate(&h).is_none());
        h.insert(
            "x-client-secret",
            creds.client_secret.expose().parse().unwrap(),
        );
        t.revoke(&creds.client_id).unwrap();
        assert!(t.authenticate(&h).is_none());
    }
}
