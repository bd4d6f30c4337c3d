//! Automatic customers for load tests: whole deliveries on many pumps.

use std::ops::AddAssign;
use std::sync::Arc;
use std::time::Duration;

use spacepos_spacefuel::PumpId;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::{CustomerConfig, ForecourtSim, SimError};

/// What the customers of a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CustomerStats {
    /// Customers who came to a free pump and lifted a nozzle.
    pub arrived: u64,
    /// Customers who fuelled (a sale each).
    pub served: u64,
    /// Customers who left without fuel (not authorised in time, pump failed
    /// or closed meanwhile).
    pub gave_up: u64,
    pub volume_ml: u64,
    pub amount_minor: u64,
}

impl AddAssign for CustomerStats {
    fn add_assign(&mut self, o: CustomerStats) {
        self.arrived += o.arrived;
        self.served += o.served;
        self.gave_up += o.gave_up;
        self.volume_ml += o.volume_ml;
        self.amount_minor += o.amount_minor;
    }
}

/// The running customers of [`ForecourtSim::start_customers`]. Dropping it
/// stops them as [`Customers::stop`] does, without waiting.
#[derive(Debug)]
pub struct Customers {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<CustomerStats>>,
}

impl Customers {
    /// Waits until every pump's customers are done (with
    /// `customers_per_pump` set; otherwise until stopped elsewhere).
    pub async fn finished(mut self) -> CustomerStats {
        let mut total = CustomerStats::default();
        for task in std::mem::take(&mut self.tasks) {
            match task.await {
                Ok(stats) => total += stats,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => {}
            }
        }
        total
    }

    /// No new customers; a customer waiting for authorisation hangs up, a
    /// delivery already running finishes by itself. Returns what was done.
    pub async fn stop(self) -> CustomerStats {
        self.stop.cancel();
        self.finished().await
    }
}

impl Drop for Customers {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl ForecourtSim {
    /// Starts one stream of customers per pump of `config` (tokio tasks;
    /// the same seed under paused time gives the same deliveries).
    pub fn start_customers(&self, config: CustomerConfig) -> Result<Customers, SimError> {
        let bad = |why: &str| Err(SimError::Config(format!("customers: {why}")));
        if config.pumps.is_empty() {
            return bad("no pumps");
        }
        if config.volume_ml.is_empty() || *config.volume_ml.start() == 0 {
            return bad("volume_ml must be a non-empty range above 0");
        }
        if config.arrival_gap_ms.is_empty() {
            return bad("arrival_gap_ms is an empty range");
        }
        for &pump in &config.pumps {
            if self.with_pump(pump, |_| ()).is_none() {
                return Err(SimError::UnknownPump(pump));
            }
        }
        let stop = CancellationToken::new();
        let config = Arc::new(config);
        let tasks = config
            .pumps
            .iter()
            .map(|&pump| {
                let seed = self
                    .config()
                    .seed
                    .wrapping_add(u64::from(pump).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                tokio::spawn(customers_of(
                    self.clone(),
                    pump,
                    Arc::clone(&config),
                    fastrand::Rng::with_seed(seed),
                    stop.clone(),
                ))
            })
            .collect();
        Ok(Customers { stop, tasks })
    }
}

async fn customers_of(
    sim: ForecourtSim,
    pump: PumpId,
    config: Arc<CustomerConfig>,
    mut rng: fastrand::Rng,
    stop: CancellationToken,
) -> CustomerStats {
    let mut stats = CustomerStats::default();
    let mut count = 0u64;
    while config.customers_per_pump.is_none_or(|max| count < max) {
        count += 1;
        let gap = Duration::from_millis(rng.u64(config.arrival_gap_ms.clone()));
        tokio::select! {
            biased;
            () = stop.cancelled() => break,
            () = tokio::time::sleep(gap) => {}
        }
        if !sim.wait_pump(pump, &stop, |p| p.is_free()).await {
            break;
        }
        stats.arrived += 1;
        let nozzles = sim.with_pump(pump, |p| p.nozzle_ids()).unwrap_or_default();
        let nozzle = nozzles[rng.usize(..nozzles.len())];
        let volume = rng.u64(config.volume_ml.clone());
        if sim.lift_nozzle(pump, nozzle).is_err() {
            stats.gave_up += 1;
            continue;
        }
        let answered = tokio::time::timeout(
            config.authorise_timeout,
            sim.wait_pump(pump, &stop, |p| !p.is_calling()),
        )
        .await;
        match answered {
            Ok(true) => {}
            Ok(false) => {
                let _ = sim.hang_up(pump);
                break;
            }
            Err(_) => {
                let _ = sim.hang_up(pump);
                stats.gave_up += 1;
                continue;
            }
        }
        // Authorised, or the pump failed or closed while the customer waited.
        match sim.deliver(pump, volume) {
            Ok(delivery) => match delivery.finished().await {
                Some(sale) => {
                    stats.served += 1;
                    stats.volume_ml += sale.volume_ml;
                    stats.amount_minor += sale.amount_minor;
                }
                None => stats.gave_up += 1,
            },
            Err(_) => {
                let _ = sim.hang_up(pump);
                stats.gave_up += 1;
            }
        }
    }
    stats
}
