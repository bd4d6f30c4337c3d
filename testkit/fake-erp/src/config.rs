//! What the fake ERP starts with: seed, datasets, onboarding codes, staff, company.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use spacepos_core::Secret;
use spacepos_erp_wire::rest::CompanyInformation;

/// The kinds of dataset the fake can generate, each with plausible `data`.
///
/// | kind | id prefix | `data` |
/// | --- | --- | --- |
/// | `products` | `P-` | `{name, sku, priceMinor, taxRateId, barcode}` |
/// | `prices` | `PR-` | `{productId, storeNumber, priceMinor}` |
/// | `tax_rates` | `T-` | `{name, rateBasisPoints}` |
/// | `payment_methods` | `PM-` | `{name, kind, opensDrawer, enabled}` |
/// | `staff` | `S-` | `{name, staffCode, role}` |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetKind {
    Products,
    Prices,
    TaxRates,
    PaymentMethods,
    Staff,
}

impl DatasetKind {
    /// The id prefix, before the dash and the zero-padded number.
    pub fn id_prefix(self) -> &'static str {
        match self {
            DatasetKind::Products => "P",
            DatasetKind::Prices => "PR",
            DatasetKind::TaxRates => "T",
            DatasetKind::PaymentMethods => "PM",
            DatasetKind::Staff => "S",
        }
    }

    /// The dataset name the ERP usually gives this kind (`products`, `tax_rates`, ...).
    pub fn default_name(self) -> &'static str {
        match self {
            DatasetKind::Products => "products",
            DatasetKind::Prices => "prices",
            DatasetKind::TaxRates => "tax_rates",
            DatasetKind::PaymentMethods => "payment_methods",
            DatasetKind::Staff => "staff",
        }
    }
}

/// One dataset the fake serves: `size` entities generated from the seed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetSpec {
    pub name: String,
    pub kind: DatasetKind,
    /// Number of generated entities (ids `1..=size`). Any size works: entities are
    /// generated on the fly, never held in memory.
    pub size: u64,
}

impl DatasetSpec {
    pub fn new(name: impl Into<String>, kind: DatasetKind, size: u64) -> Self {
        Self {
            name: name.into(),
            kind,
            size,
        }
    }

    /// A dataset of `kind` under its usual name.
    pub fn of(kind: DatasetKind, size: u64) -> Self {
        Self::new(kind.default_name(), kind, size)
    }
}

/// An onboarding code the ERP issued for one till slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnboardingCodeSpec {
    pub code: String,
    pub store_number: u32,
    pub terminal_number: u32,
}

impl OnboardingCodeSpec {
    pub fn new(code: impl Into<String>, store_number: u32, terminal_number: u32) -> Self {
        Self {
            code: code.into(),
            store_number,
            terminal_number,
        }
    }
}

/// A staff account that may log in at a till (contract section 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StaffAccount {
    pub staff_code: String,
    pub pin: Secret,
    pub store_staff_id: String,
}

impl StaffAccount {
    pub fn new(
        staff_code: impl Into<String>,
        pin: impl Into<String>,
        store_staff_id: impl Into<String>,
    ) -> Self {
        Self {
            staff_code: staff_code.into(),
            pin: Secret::new(pin.into()),
            store_staff_id: store_staff_id.into(),
        }
    }
}

/// Configuration of a [`crate::FakeErp`]. `Default` is a small neutral setup
/// (five datasets, no onboarding code, no staff); [`FakeErpConfig::demo`] is the
/// one `spacepos demo` and `spacepos erp-sim` use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FakeErpConfig {
    /// Seed of every generated entity, artifact and random change.
    pub seed: u64,
    pub datasets: Vec<DatasetSpec>,
    pub onboarding_codes: Vec<OnboardingCodeSpec>,
    pub staff: Vec<StaffAccount>,
    /// `companyInformation` given to every new terminal.
    pub company_information: CompanyInformation,
    /// `amqpUrl` given at onboarding (`None` = the ERP has no broker for the terminal).
    pub amqp_url: Option<String>,
    /// `reportPresence` given to every new terminal.
    pub report_presence: bool,
    /// `presenceIntervalSeconds` given to every new terminal.
    pub presence_interval_seconds: u32,
    /// Lifetime of access tokens issued by `login` and `refresh` (`expiresIn`).
    pub token_lifetime_seconds: u64,
    /// How many requests the recorder keeps (the oldest are dropped first).
    pub max_recorded_requests: usize,
}

impl Default for FakeErpConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            datasets: vec![
                DatasetSpec::of(DatasetKind::Products, 100),
                DatasetSpec::of(DatasetKind::Prices, 100),
                DatasetSpec::of(DatasetKind::TaxRates, 3),
                DatasetSpec::of(DatasetKind::PaymentMethods, 4),
                DatasetSpec::of(DatasetKind::Staff, 5),
            ],
            onboarding_codes: Vec::new(),
            staff: Vec::new(),
            company_information: northwind(),
            amqp_url: None,
            report_presence: true,
            presence_interval_seconds: 300,
            token_lifetime_seconds: 3600,
            max_recorded_requests: 200_000,
        }
    }
}

impl FakeErpConfig {
    /// Small realistic demo data: five datasets of 4 to 300 entities, three
    /// onboarding codes for store 12 (`DEMO-1201`, `DEMO-1202`, `DEMO-1203` for
    /// terminals 1, 2, 3) and three staff accounts (`0042`/`1234` = `S-0042`,
    /// `0007`/`2468` = `S-0007`, `0100`/`9999` = `S-0100`).
    pub fn demo() -> Self {
        Self {
            seed: 20_261_124,
            datasets: vec![
                DatasetSpec::of(DatasetKind::Products, 300),
                DatasetSpec::of(DatasetKind::Prices, 300),
                DatasetSpec::of(DatasetKind::TaxRates, 4),
                DatasetSpec::of(DatasetKind::PaymentMethods, 6),
                DatasetSpec::of(DatasetKind::Staff, 50),
            ],
            onboarding_codes: (1..=3)
                .map(|t| OnboardingCodeSpec::new(format!("DEMO-120{t}"), 12, t))
                .collect(),
            staff: vec![
                StaffAccount::new("0042", "1234", "S-0042"),
                StaffAccount::new("0007", "2468", "S-0007"),
                StaffAccount::new("0100", "9999", "S-0100"),
            ],
            ..Self::default()
        }
    }

    pub(crate) fn token_lifetime(&self) -> Duration {
        Duration::from_secs(self.token_lifetime_seconds)
    }
}

/// The company of the contract's example.
fn northwind() -> CompanyInformation {
    CompanyInformation {
        name: Some("Northwind Fuel & Food Ltd".into()),
        vat_number: Some("GB123456789".into()),
        address: Some("1 Forecourt Way, Leeds LS1 4AB".into()),
        currency: Some("GBP".into()),
        time_zone: Some("Europe/London".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_as_camel_case_json() {
        let demo = FakeErpConfig::demo();
        let json = serde_json::to_value(&demo).unwrap();
        assert_eq!(json["onboardingCodes"][0]["code"], "DEMO-1201");
        assert_eq!(json["datasets"][2]["kind"], "tax_rates");
        let back: FakeErpConfig = serde_json::from_value(json).unwrap();
        assert_eq!(back, demo);
        let partial: FakeErpConfig = serde_json::from_str(r#"{"seed": 7}"#).unwrap();
        assert_eq!(partial.seed, 7);
        assert_eq!(partial.datasets, FakeErpConfig::default().datasets);
    }
}
