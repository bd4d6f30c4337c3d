//! Onboarding: trade an onboarding code for client credentials, and keep the
//! ERP-held settings (`terminals/me`) in the persisted terminal record.

use std::sync::Arc;
use std::time::Duration;

use spacepos_config::{
    TERMINAL_RECORD_VERSION, TerminalConfigStore, TerminalRecord, TerminalStoreError,
};
use spacepos_core::endpoint::{EndpointKind, check_transport};
use spacepos_core::{Clock, RemoteError};
use tracing::{info, warn};
use url::Url;

use crate::ports::{OnboardError, Onboarded, OnboardingApi, OnboardingRequest};

/// Waits longer than this for `Retry-After` are not made interactively: the
/// operator is told to try again later instead.
const MAX_RETRY_AFTER_WAIT: Duration = Duration::from_secs(60);
/// Attempts of one onboarding call when the ERP asks to retry after a delay.
const MAX_ATTEMPTS: u32 = 3;

/// Why onboarding or a settings refresh did not happen. Nothing was persisted.
#[derive(Debug, thiserror::Error)]
pub enum OnboardingError {
    #[error(
        "this terminal is already onboarded as {client_id} (store {store_number}, terminal {terminal_number}); \
         to replace its credentials run `spacepos onboard --code <code> --force`"
    )]
    AlreadyOnboarded {
        client_id: String,
        store_number: u32,
        terminal_number: u32,
    },
    #[error("the onboarding code is empty: enter the code the ERP issued for this terminal")]
    EmptyCode,
    #[error(transparent)]
    Refused(#[from] OnboardError),
    #[error("the ERP sent {field} = {shown}, which this terminal will not use: {problem}")]
    UnsafeEndpoint {
        field: &'static str,
        shown: String,
        problem: String,
    },
    #[error("this terminal is not onboarded yet: run `spacepos onboard --code <code>`")]
    NotOnboarded,
    #[error(
        "the ERP says this terminal is store {erp_store}/terminal {erp_terminal}, but it was onboarded as \
         {store}/{terminal}; ask the ERP team, or onboard again with --force"
    )]
    IdentityChanged {
        store: u32,
        terminal: u32,
        erp_store: u32,
        erp_terminal: u32,
    },
    #[error(transparent)]
    Remote(#[from] RemoteError),
    #[error(transparent)]
    Store(#[from] TerminalStoreError),
}

/// Result of [`Onboarding::refresh_settings`].
#[derive(Debug, Clone, PartialEq)]
pub struct SettingsRefresh {
    pub record: TerminalRecord,
    /// Whether anything differed from what was stored.
    pub changed: bool,
}

/// The onboarding service.
pub struct Onboarding {
    api: Arc<dyn OnboardingApi>,
    store: Arc<dyn TerminalConfigStore>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for Onboarding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Onboarding").finish_non_exhaustive()
    }
}

impl Onboarding {
    pub fn new(
        api: Arc<dyn OnboardingApi>,
        store: Arc<dyn TerminalConfigStore>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Onboarding { api, store, clock }
    }

    /// Onboard with `request.code` at the ERP reached through `api_endpoint`, and
    /// persist credentials, identity and endpoints in one atomic save.
    ///
    /// Refuses when already onboarded unless `force`. Honours `Retry-After` up to
    /// a minute. Nothing is persisted unless every returned value is usable.
    pub async fn onboard(
        &self,
        request: OnboardingRequest,
        api_endpoint: &Url,
        force: bool,
    ) -> Result<TerminalRecord, OnboardingError> {
        let code = request.code.trim();
        if code.is_empty() {
            return Err(OnboardingError::EmptyCode);
        }
        let request = OnboardingRequest {
            code: code.to_owned(),
            ..request
        };
        if !force && let Some(existing) = self.store.load().await? {
            return Err(OnboardingError::AlreadyOnboarded {
                client_id: existing.client_id,
                store_number: existing.store_number,
                terminal_number: existing.terminal_number,
            });
        }

        let onboarded = self.call_with_retry_after(&request).await?;
        let record = self.record_from(onboarded, api_endpoint)?;
        self.store.save(&record).await?;
        info!(
            client_id = %record.client_id,
            store = record.store_number,
            terminal = record.terminal_number,
            "terminal onboarded"
        );
        Ok(record)
    }

    /// Read `terminals/me` and store what changed (presence settings, company).
    pub async fn refresh_settings(&self) -> Result<SettingsRefresh, OnboardingError> {
        let mut record = self
            .store
            .load()
            .await?
            .ok_or(OnboardingError::NotOnboarded)?;
        let me = self.api.terminal_settings().await?;
        if (me.store_number, me.terminal_number) != (record.store_number, record.terminal_number) {
            return Err(OnboardingError::IdentityChanged {
                store: record.store_number,
                terminal: record.terminal_number,
                erp_store: me.store_number,
                erp_terminal: me.terminal_number,
            });
        }
        let before = record.clone();
        if me.report_presence.is_some() {
            record.report_presence = me.report_presence;
        }
        if me.presence_interval_seconds.is_some() {
            record.presence_interval_seconds = me.presence_interval_seconds;
        }
        if me.company_information.is_some() {
            record.company_information = me.company_information;
        }
        let changed = record != before;
        if changed {
            record.updated_at = self.clock.now();
            self.store.save(&record).await?;
            info!("terminal settings changed at the ERP; stored");
        }
        Ok(SettingsRefresh { record, changed })
    }

    async fn call_with_retry_after(
        &self,
        request: &OnboardingRequest,
    ) -> Result<Onboarded, OnboardingError> {
        let mut attempt = 1;
        loop {
            match self.api.onboard(request).await {
                Err(OnboardError::Remote(e))
                    if attempt < MAX_ATTEMPTS
                        && e.retry_after().is_some_and(|d| d <= MAX_RETRY_AFTER_WAIT) =>
                {
                    let wait = e.retry_after().unwrap_or_default();
                    warn!(
                        host = e.host(),
                        wait_s = wait.as_secs(),
                        "the ERP asked to retry onboarding later; waiting"
                    );
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                other => return Ok(other?),
            }
        }
    }

    fn record_from(
        &self,
        o: Onboarded,
        onboarded_at: &Url,
    ) -> Result<TerminalRecord, OnboardingError> {
        if let Some(url) = &o.api_endpoint {
            check_transport(url, EndpointKind::Http).map_err(|e| {
                OnboardingError::UnsafeEndpoint {
                    field: "apiEndpoint",
                    shown: url.to_string(),
                    problem: e.to_string(),
                }
            })?;
        }
        if let Some(url) = &o.amqp_url {
            check_transport(url.expose(), EndpointKind::Amqp).map_err(|e| {
                OnboardingError::UnsafeEndpoint {
                    field: "amqpUrl",
                    shown: url.redacted(),
                    problem: e.to_string(),
                }
            })?;
        }
        if o.credentials.client_id.trim().is_empty() || o.credentials.client_secret.is_empty() {
            return Err(OnboardingError::Remote(RemoteError::Protocol {
                host: onboarded_at.host_str().unwrap_or_default().to_owned(),
                detail: "the onboarding answer has an empty clientId or clientSecret".into(),
            }));
        }
        let now = self.clock.now();
        Ok(TerminalRecord {
            schema_version: TERMINAL_RECORD_VERSION,
            client_id: o.credentials.client_id,
            client_secret: o.credentials.client_secret,
            store_number: o.store_number,
            terminal_number: o.terminal_number,
            api_endpoint: Some(o.api_endpoint.unwrap_or_else(|| onboarded_at.clone())),
            amqp_url: o.amqp_url,
            company_information: o.company_information,
            report_presence: o.report_presence,
            presence_interval_seconds: o.presence_interval_seconds,
            onboarded_at: now,
            updated_at: now,
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use mockall::predicate::always;
    use spacepos_config::MockTerminalConfigStore;
    use spacepos_core::{ClientInfo, DeviceCredentials, FixedClock, Product, RedactedUrl, Secret};

    use super::*;
    use crate::ports::{MockOnboardingApi, TerminalSettings};

    fn request(code: &str) -> OnboardingRequest {
        OnboardingRequest {
            code: code.into(),
            client: ClientInfo {
                product: Product::SpacePos,
                version: "0.1.0".into(),
                os_name: "Linux".into(),
                os_version: "6.1".into(),
                arch: "x86_64".into(),
                hostname: "TILL-03".into(),
            },
            components: vec![spacepos_core::ComponentId::SpacePos],
        }
    }

    fn onboarded() -> Onboarded {
        Onboarded {
            credentials: DeviceCredentials {
                client_id: "trm_1".into(),
                client_secret: Secret::new("s3cr3t"),
            },
            store_number: 12,
            terminal_number: 3,
            api_endpoint: None,
            amqp_url: Some(RedactedUrl::parse("amqps://pos:pw@mq.example.com:5671/pos").unwrap()),
            report_presence: Some(true),
            presence_interval_seconds: Some(300),
            company_information: None,
        }
    }

    fn erp() -> Url {
        Url::parse("https://erp.example.com").unwrap()
    }

    fn service(api: MockOnboardingApi, store: MockTerminalConfigStore) -> Onboarding {
        let clock = Arc::new(FixedClock::new(
            Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap(),
        ));
        Onboarding::new(Arc::new(api), Arc::new(store), clock)
    }

    #[tokio::test]
    async fn onboarding_persists_everything_in_one_save() {
        let mut api = MockOnboardingApi::new();
        api.expect_onboard()
            .withf(|r| r.code == "K7Q2-9XTM")
            .times(1)
            .return_once(|_| Ok(onboarded()));
        let mut store = MockTerminalConfigStore::new();
        store.expect_load().returning(|| Ok(None));
        store
            .expect_save()
            .withf(|r| {
                r.client_id == "trm_1"
                    && r.client_secret.expose() == "s3cr3t"
                    && r.store_number == 12
                    && r.api_endpoint.as_ref().map(Url::as_str) == Some("https://erp.example.com/")
                    && r.amqp_url.is_some()
            })
            .times(1)
            .returning(|_| Ok(()));
        let rec = service(api, store)
            .onboard(request("  K7Q2-9XTM "), &erp(), false)
            .await
            .unwrap();
        assert_eq!(rec.terminal_number, 3);
    }

    #[tokio::test]
    async fn already_onboarded_is_refused_without_force_and_the_erp_is_not_called() {
        let mut api = MockOnboardingApi::new();
        api.expect_onboard().never();
        let mut store = MockTerminalConfigStore::new();
        let existing = service(MockOnboardingApi::new(), MockTerminalConfigStore::new())
            .record_from(onboarded(), &erp())
            .unwrap();
        store.expect_load().return_once(move || Ok(Some(existing)));
        store.expect_save().never();
        let e = service(api, store)
            .onboard(request("X"), &erp(), false)
            .await
            .unwrap_err();
        assert!(matches!(e, OnboardingError::AlreadyOnboarded { .. }));
        assert!(e.to_string().contains("--force"));
    }

    #[tokio::test]
    async fn refusals_persist_nothing() {
        for (err, needle) in [
            (
                OnboardError::UnknownCode {
                    host: "erp.example.com".into(),
                },
                "does not know this onboarding code",
            ),
            (
                OnboardError::CodeUsed {
                    host: "erp.example.com".into(),
                },
                "already used",
            ),
            (
                OnboardError::Remote(RemoteError::Server {
                    host: "erp.example.com".into(),
                    status: 500,
                    code: None,
                }),
                "HTTP 500",
            ),
        ] {
            let mut api = MockOnboardingApi::new();
            api.expect_onboard().return_once(move |_| Err(err));
            let mut store = MockTerminalConfigStore::new();
            store.expect_load().returning(|| Ok(None));
            store.expect_save().never();
            let e = service(api, store)
                .onboard(request("X"), &erp(), false)
                .await
                .unwrap_err();
            assert!(e.to_string().contains(needle), "{e}");
        }
    }

    #[tokio::test]
    async fn empty_code_is_refused_locally() {
        let mut api = MockOnboardingApi::new();
        api.expect_onboard().never();
        let mut store = MockTerminalConfigStore::new();
        store.expect_load().never();
        let e = service(api, store)
            .onboard(request("   "), &erp(), false)
            .await
            .unwrap_err();
        assert!(matches!(e, OnboardingError::EmptyCode));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_is_honoured() {
        let mut api = MockOnboardingApi::new();
        let mut answers = vec![
            Ok(onboarded()),
            Err(OnboardError::Remote(RemoteError::RetryAfter {
                host: "erp".into(),
                status: 429,
                retry_after: Duration::from_secs(7),
            })),
        ];
        api.expect_onboard()
            .times(2)
            .returning(move |_| answers.pop().unwrap());
        let mut store = MockTerminalConfigStore::new();
        store.expect_load().returning(|| Ok(None));
        store.expect_save().times(1).returning(|_| Ok(()));
        let start = tokio::time::Instant::now();
        service(api, store)
            .onboard(request("X"), &erp(), false)
            .await
            .unwrap();
        assert!(
            start.elapsed() >= Duration::from_secs(7),
            "waited {:?}",
            start.elapsed()
        );
    }

    #[tokio::test(start_paused = true)]
    async fn long_retry_after_is_reported_not_waited() {
        let mut api = MockOnboardingApi::new();
        api.expect_onboard().times(1).returning(|_| {
            Err(OnboardError::Remote(RemoteError::RetryAfter {
                host: "erp".into(),
                status: 503,
                retry_after: Duration::from_secs(600),
            }))
        });
        let mut store = MockTerminalConfigStore::new();
        store.expect_load().returning(|| Ok(None));
        store.expect_save().never();
        let e = service(api, store)
            .onboard(request("X"), &erp(), false)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("retry after 600 s"), "{e}");
    }

    #[tokio::test]
    async fn plain_amqp_to_a_remote_host_from_the_erp_is_refused_without_leaking_the_password() {
        let mut api = MockOnboardingApi::new();
        let mut bad = onboarded();
        bad.amqp_url = Some(RedactedUrl::parse("amqp://pos:hunter2@mq.example.com/pos").unwrap());
        api.expect_onboard().return_once(move |_| Ok(bad));
        let mut store = MockTerminalConfigStore::new();
        store.expect_load().returning(|| Ok(None));
        store.expect_save().never();
        let e = service(api, store)
            .onboard(request("X"), &erp(), false)
            .await
            .unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("amqpUrl") && msg.contains("amqps://"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
    }

    #[tokio::test]
    async fn refresh_settings_stores_only_changes() {
        let base = service(MockOnboardingApi::new(), MockTerminalConfigStore::new())
            .record_from(onboarded(), &erp())
            .unwrap();
        for (interval, expect_save) in [(300, false), (120, true)] {
            let mut api = MockOnboardingApi::new();
            api.expect_terminal_settings().return_once(move || {
                Ok(TerminalSettings {
                    store_number: 12,
                    terminal_number: 3,
                    report_presence: Some(true),
                    presence_interval_seconds: Some(interval),
                    company_information: None,
                })
            });
            let mut store = MockTerminalConfigStore::new();
            let rec = base.clone();
            store.expect_load().return_once(move || Ok(Some(rec)));
            store
                .expect_save()
                .with(always())
                .times(usize::from(expect_save))
                .returning(|_| Ok(()));
            let r = service(api, store).refresh_settings().await.unwrap();
            assert_eq!(r.changed, expect_save);
            assert_eq!(r.record.presence_interval_seconds, Some(interval));
        }
    }

    #[tokio::test]
    async fn refresh_settings_refuses_an_identity_change() {
        let base = service(MockOnboardingApi::new(), MockTerminalConfigStore::new())
            .record_from(onboarded(), &erp())
            .unwrap();
        let mut api = MockOnboardingApi::new();
        api.expect_terminal_settings().return_once(|| {
            Ok(TerminalSettings {
                store_number: 99,
                terminal_number: 3,
                report_presence: None,
                presence_interval_seconds: None,
                company_information: None,
            })
        });
        let mut store = MockTerminalConfigStore::new();
        store.expect_load().return_once(move || Ok(Some(base)));
        store.expect_save().never();
        let e = service(api, store).refresh_settings().await.unwrap_err();
        assert!(matches!(
            e,
            OnboardingError::IdentityChanged { erp_store: 99, .. }
        ));
    }
}
