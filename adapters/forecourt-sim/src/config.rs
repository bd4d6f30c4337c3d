//! The simulator's configuration and errors.

use std::collections::BTreeSet;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use spacepos_spacefuel::{Grade, NozzleId, PumpId};

/// How the simulated forecourt is built.
///
/// Pumps are numbered `1..=pumps`, each with nozzles `1..=nozzles_per_pump`;
/// nozzle `n` delivers grade `(n - 1) % grades.len()` (so with three grades
/// and three nozzles every pump offers every grade).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimConfig {
    /// Number of pumps (fuel points), at least 1.
    pub pumps: PumpId,
    /// Nozzles on each pump, at least 1.
    pub nozzles_per_pump: NozzleId,
    /// The grades and their prices; at least one, ids unique, prices above 0.
    pub grades: Vec<Grade>,
    /// ISO 4217 code put on every sale, e.g. `EUR`.
    pub currency: String,
    /// How fast fuel flows, in millilitres per second (above 0); a delivery of
    /// `v` ml lasts `v / flow` seconds of tokio time.
    pub flow_ml_per_s: u64,
    /// Transaction numbers are `<prefix>-<pump>-<counter>`, e.g. `SIM-3-17`.
    pub transaction_prefix: String,
    /// Seeds the automatic customers (nozzle, volume, arrival gaps): the same
    /// seed under paused tokio time gives the same sales.
    pub seed: u64,
    /// `completed_at` of a sale is this instant plus the tokio time elapsed
    /// since the simulator was created; `None`: the wall clock at creation.
    pub started_at: Option<DateTime<Utc>>,
    /// Where the transaction counters and the sale buffer are kept across a
    /// restart of the simulator (JSON, replaced atomically on every change);
    /// `None`: in memory only, numbers start at 1 again in a new simulator.
    pub state_file: Option<PathBuf>,
}

impl Default for SimConfig {
    /// 4 pumps of 3 nozzles (U95 at 179, U98 at 189, diesel at 169 cents a
    /// litre), EUR, 500 ml/s (30 l/min), prefix `SIM`, seed 1, no state file.
    fn default() -> Self {
        let grade = |id: &str, name: &str, price| Grade {
            id: id.to_owned(),
            name: name.to_owned(),
            price_per_litre_minor: price,
        };
        SimConfig {
            pumps: 4,
            nozzles_per_pump: 3,
            grades: vec![
                grade("FUEL-U95", "Unleaded 95", 179),
                grade("FUEL-U98", "Unleaded 98", 189),
                grade("FUEL-DIESEL", "Diesel", 169),
            ],
            currency: "EUR".to_owned(),
            flow_ml_per_s: 500,
            transaction_prefix: "SIM".to_owned(),
            seed: 1,
            started_at: None,
            state_file: None,
        }
    }
}

impl SimConfig {
    /// Every problem of the configuration, naming the field.
    pub fn validate(&self) -> Result<(), SimError> {
        let bad = |field: &str, why: &str| Err(SimError::Config(format!("{field}: {why}")));
        if self.pumps == 0 {
            return bad("pumps", "at least one pump is needed");
        }
        if self.nozzles_per_pump == 0 {
            return bad("nozzles_per_pump", "every pump needs a nozzle");
        }
        if self.grades.is_empty() {
            return bad("grades", "at least one grade is needed");
        }
        let mut ids = BTreeSet::new();
        for g in &self.grades {
            if g.id.is_empty() {
                return bad("grades", "a grade has an empty id");
            }
            if !ids.insert(g.id.as_str()) {
                return bad("grades", &format!("grade {} is listed twice", g.id));
            }
            if g.price_per_litre_minor == 0 {
                return bad("grades", &format!("grade {} has no price", g.id));
            }
        }
        if self.currency.is_empty() {
            return bad("currency", "empty");
        }
        if self.flow_ml_per_s == 0 {
            return bad("flow_ml_per_s", "fuel must flow (above 0)");
        }
        if self.transaction_prefix.is_empty() {
            return bad("transaction_prefix", "empty");
        }
        Ok(())
    }
}

/// The automatic customers of a load test
/// ([`crate::ForecourtSim::start_customers`]).
///
/// One customer at a time per pump: arrive after a gap, wait until the pump is
/// free (idle or payable, not in error or closed), lift a random nozzle, wait
/// for the authorisation (the POS under test gives it), fuel a random volume,
/// hang up. A customer not authorised within `authorise_timeout` hangs up and
/// leaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerConfig {
    /// The pumps that get customers.
    pub pumps: Vec<PumpId>,
    /// The volume each customer wants, in ml (a preset may stop it earlier).
    pub volume_ml: RangeInclusive<u64>,
    /// The gap before each customer arrives, in ms of tokio time.
    pub arrival_gap_ms: RangeInclusive<u64>,
    /// How long a customer waits for the authorisation.
    pub authorise_timeout: Duration,
    /// Customers per pump before that pump's stream ends; `None`: until
    /// stopped.
    pub customers_per_pump: Option<u64>,
}

impl Default for CustomerConfig {
    /// Pumps 1 to 4, 5 to 60 litres, 0 to 30 s apart, 2 min patience, no end.
    fn default() -> Self {
        CustomerConfig {
            pumps: vec![1, 2, 3, 4],
            volume_ml: 5_000..=60_000,
            arrival_gap_ms: 0..=30_000,
            authorise_timeout: Duration::from_secs(120),
            customers_per_pump: None,
        }
    }
}

/// Why the simulator or one of its controls failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    #[error("invalid forecourt simulator config, {0}")]
    Config(String),
    #[error("forecourt simulator state file {path}: {reason}")]
    StateFile { path: PathBuf, reason: String },
    #[error("pump {0} does not exist")]
    UnknownPump(PumpId),
    #[error("pump {pump} has no nozzle {nozzle}")]
    UnknownNozzle { pump: PumpId, nozzle: NozzleId },
    /// The physical event cannot happen in the pump's state (e.g. fuelling a
    /// pump that is not authorised).
    #[error("pump {pump}: {reason}")]
    WrongState { pump: PumpId, reason: String },
}
