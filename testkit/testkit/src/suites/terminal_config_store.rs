//! Contract suite of [`TerminalConfigStore`]; stamp it with
//! [`crate::terminal_config_store_suite!`].

use chrono::{TimeZone as _, Utc};
use spacepos_config::{
    CompanyInformation, TERMINAL_RECORD_VERSION, TerminalConfigStore, TerminalRecord,
};
use spacepos_core::{RedactedUrl, Secret};

/// A record as onboarding stores it (the values of the contract's example).
pub fn onboarded_record() -> TerminalRecord {
    let at = Utc
        .with_ymd_and_hms(2025, 1, 15, 8, 0, 0)
        .single()
        .unwrap_or_default();
    TerminalRecord {
        schema_version: TERMINAL_RECORD_VERSION,
        client_id: "trm_5f1c2a9e0b7d4e31".into(),
        client_secret: Secret::new("s3cr3t-7f0e1d2c3b4a59687766554433221100"),
        store_number: 12,
        terminal_number: 3,
        api_endpoint: "https://erp.example.com".parse().ok(),
        amqp_url: RedactedUrl::parse("amqps://pos-12-3:pw@mq.example.com:5671/pos").ok(),
        company_information: Some(CompanyInformation {
            name: Some("Northwind Fuel & Food Ltd".into()),
            vat_number: Some("GB123456789".into()),
            address: Some("1 Forecourt Way, Leeds LS1 4AB".into()),
            currency: Some("GBP".into()),
            time_zone: Some("Europe/London".into()),
        }),
        report_presence: Some(true),
        presence_interval_seconds: Some(300),
        onboarded_at: at,
        updated_at: at,
    }
}

/// Clause: "`load` on a store that never saw `save` returns `Ok(None)`."
pub async fn case_load_on_an_empty_store_is_none(store: &dyn TerminalConfigStore) {
    assert_eq!(store.load().await.expect("load"), None);
    assert_eq!(
        store.load().await.expect("load again"),
        None,
        "loading creates nothing"
    );
}

/// Clause: "`save` then `load` returns an equal record, secret included."
pub async fn case_save_then_load_returns_an_equal_record_secret_included(
    store: &dyn TerminalConfigStore,
) {
    let record = onboarded_record();
    store.save(&record).await.expect("save");
    let loaded = store.load().await.expect("load").expect("a record");
    assert_eq!(loaded.client_secret.expose(), record.client_secret.expose());
    assert_eq!(
        loaded.amqp_url.as_ref().map(|u| u.expose().clone()),
        record.amqp_url.as_ref().map(|u| u.expose().clone())
    );
    assert_eq!(loaded, record);
}

/// Clause: "`save` replaces the whole record atomically ... never a mix":
/// fields the new record leaves out do not survive from the old one.
pub async fn case_save_replaces_the_whole_record(store: &dyn TerminalConfigStore) {
    store.save(&onboarded_record()).await.expect("save");
    let mut reonboarded = onboarded_record();
    reonboarded.client_id = "trm_new".into();
    reonboarded.client_secret = Secret::new("another-secret");
    reonboarded.amqp_url = None;
    reonboarded.company_information = None;
    reonboarded.presence_interval_seconds = None;
    store.save(&reonboarded).await.expect("save again");
    assert_eq!(store.load().await.expect("load"), Some(reonboarded));
}

/// Clause: "`save` replaces the whole record": a run-time change (the ERP
/// moved the presence interval) saved as a new record is what `load` returns.
pub async fn case_run_time_changes_are_saved(store: &dyn TerminalConfigStore) {
    store.save(&onboarded_record()).await.expect("save");
    let mut record = store.load().await.expect("load").expect("a record");
    record.presence_interval_seconds = Some(60);
    record.report_presence = Some(false);
    record.updated_at = Utc
        .with_ymd_and_hms(2025, 2, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    store.save(&record).await.expect("save");
    assert_eq!(store.load().await.expect("load"), Some(record));
}

/// Stamp one `#[tokio::test]` per [`TerminalConfigStore`] contract case. The
/// argument is an expression evaluating to a future of a fresh store (any type
/// implementing `TerminalConfigStore`); it is evaluated once per test.
#[macro_export]
macro_rules! terminal_config_store_suite {
    ($factory:expr) => {
        $crate::terminal_config_store_suite!(@cases $factory;
            case_load_on_an_empty_store_is_none,
            case_save_then_load_returns_an_equal_record_secret_included,
            case_save_replaces_the_whole_record,
            case_run_time_changes_are_saved,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let store = $factory.await;
                $crate::suites::terminal_config_store::$case(&store).await;
            }
        )+
    };
}
