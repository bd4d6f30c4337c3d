//! The simulated forecourt: pumps, deliveries on tokio time, the sale buffer,
//! and the [`ForecourtController`] implementation.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use spacepos_spacefuel::{
    ControllerError, ForecourtController, FuelSaleTrx, Grade, MAX_UNPAID_SALES_PER_PUMP, Nozzle,
    NozzleId, Preset, Pump, PumpId, PumpState, SaleState,
};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::persist::{self, Saved};
use crate::{SimConfig, SimError};

/// The forecourt simulator; cheap to clone (every clone is the same
/// forecourt). See the crate docs.
#[derive(Debug, Clone)]
pub struct ForecourtSim {
    pub(crate) inner: Arc<Inner>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    config: SimConfig,
    /// The wall-clock instant that `origin` stands for.
    started_at: DateTime<Utc>,
    origin: Instant,
    world: Mutex<World>,
    /// Bumped on every change, for the waiters.
    changed: watch::Sender<u64>,
}

#[derive(Debug)]
struct World {
    offline: bool,
    pumps: Vec<SimPump>,
    /// Payable and locked sales, oldest first.
    sales: Vec<FuelSaleTrx>,
    /// The last transaction counter used, per pump.
    counters: BTreeMap<PumpId, u64>,
}

#[derive(Debug)]
pub(crate) struct SimPump {
    id: PumpId,
    nozzles: Vec<Nozzle>,
    error: Option<String>,
    closed: bool,
    phase: Phase,
}

#[derive(Debug)]
enum Phase {
    Idle,
    Calling {
        nozzle: NozzleId,
    },
    /// Authorised, with the nozzle the customer holds (none yet when
    /// authorised before the lift).
    Authorised {
        preset: Option<Preset>,
        nozzle: Option<NozzleId>,
    },
    Fuelling(Fuelling),
}

#[derive(Debug)]
struct Fuelling {
    nozzle: NozzleId,
    grade: Grade,
    started: Instant,
    /// Where the delivery stops by itself: the customer's volume, capped by
    /// the preset.
    target_ml: u64,
    done: Option<oneshot::Sender<Option<FuelSaleTrx>>>,
}

impl Fuelling {
    fn volume_at(&self, now: Instant, flow_ml_per_s: u64) -> u64 {
        let nanos = now.saturating_duration_since(self.started).as_nanos();
        let ml = nanos * u128::from(flow_ml_per_s) / 1_000_000_000;
        u64::try_from(ml).unwrap_or(u64::MAX).min(self.target_ml)
    }

    fn end(&self, flow_ml_per_s: u64) -> Instant {
        let flow = u128::from(flow_ml_per_s);
        let nanos = (u128::from(self.target_ml) * 1_000_000_000).div_ceil(flow);
        self.started + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

impl SimPump {
    /// Whether a new customer can start here: nothing going on (sales may
    /// wait) or authorised ahead of the lift, and neither failed nor closed.
    pub(crate) fn is_free(&self) -> bool {
        self.error.is_none()
            && !self.closed
            && matches!(
                self.phase,
                Phase::Idle | Phase::Authorised { nozzle: None, .. }
            )
    }

    pub(crate) fn is_calling(&self) -> bool {
        matches!(self.phase, Phase::Calling { .. })
    }

    pub(crate) fn nozzle_ids(&self) -> Vec<NozzleId> {
        self.nozzles.iter().map(|n| n.id).collect()
    }
}

/// The largest volume whose amount ([`Grade::amount_for`]) stays within
/// `amount_minor`.
pub(crate) fn max_volume_for_amount(grade: &Grade, amount_minor: u64) -> u64 {
    if grade.price_per_litre_minor == 0 {
        return u64::MAX;
    }
    // amount_for(v) <= A  <=>  v * price + 500 < (A + 1) * 1000
    //                     <=>  v * price <= 1000 * A + 499
    let limit = u128::from(amount_minor) * 1000 + 499;
    u64::try_from(limit / u128::from(grade.price_per_litre_minor)).unwrap_or(u64::MAX)
}

fn preset_limit(grade: &Grade, preset: Option<Preset>) -> u64 {
    match preset {
        None => u64::MAX,
        Some(Preset::Volume { ml }) => ml,
        Some(Preset::Amount { minor }) => max_volume_for_amount(grade, minor),
    }
}

/// A delivery started by [`ForecourtSim::deliver`].
#[derive(Debug)]
pub struct Delivery {
    pump: PumpId,
    target_ml: u64,
    done: oneshot::Receiver<Option<FuelSaleTrx>>,
}

impl Delivery {
    pub fn pump(&self) -> PumpId {
        self.pump
    }

    /// The volume at which it stops by itself (the customer's volume capped
    /// by the preset), unless interrupted.
    pub fn target_ml(&self) -> u64 {
        self.target_ml
    }

    /// Waits for the end of the delivery: its sale, or `None` when it ended
    /// before any fuel flowed (or the simulator was dropped).
    pub async fn finished(self) -> Option<FuelSaleTrx> {
        self.done.await.ok().flatten()
    }
}

impl ForecourtSim {
    /// A forecourt of idle pumps (and the sales of the state file, if any).
    /// Needs a Tokio runtime to run deliveries (they are tokio tasks).
    pub fn new(config: SimConfig) -> Result<ForecourtSim, SimError> {
        config.validate()?;
        let saved = match &config.state_file {
            Some(path) => persist::load(path)?.unwrap_or_default(),
            None => Saved::default(),
        };
        let grades = &config.grades;
        let pumps = (1..=config.pumps)
            .map(|id| SimPump {
                id,
                nozzles: (1..=config.nozzles_per_pump)
                    .map(|n| Nozzle {
                        id: n,
                        grade: grades[usize::from(n - 1) % grades.len()].id.clone(),
                    })
                    .collect(),
                error: None,
                closed: false,
                phase: Phase::Idle,
            })
            .collect();
        let world = World {
            offline: false,
            pumps,
            sales: saved.sales,
            counters: saved.counters,
        };
        Ok(ForecourtSim {
            inner: Arc::new(Inner {
                started_at: config.started_at.unwrap_or_else(Utc::now),
                origin: Instant::now(),
                config,
                world: Mutex::new(world),
                changed: watch::Sender::new(0),
            }),
        })
    }

    pub fn config(&self) -> &SimConfig {
        &self.inner.config
    }

    /// Every port call fails with [`ControllerError::Offline`] while set.
    /// The forecourt goes on: deliveries run and end, sales are kept.
    pub fn set_offline(&self, offline: bool) {
        let mut w = self.inner.enter();
        w.offline = offline;
        self.inner.commit(&w, false);
    }

    pub fn is_offline(&self) -> bool {
        self.inner.enter().offline
    }

    /// A customer lifts `nozzle`: an idle (or payable) pump calls; a pump
    /// authorised ahead of the lift stays authorised for that nozzle.
    pub fn lift_nozzle(&self, pump: PumpId, nozzle: NozzleId) -> Result<(), SimError> {
        let mut w = self.inner.enter();
        let p = w.pump_mut(pump)?;
        if !p.nozzles.iter().any(|n| n.id == nozzle) {
            return Err(SimError::UnknownNozzle { pump, nozzle });
        }
        let wrong = |reason: &str| {
            Err(SimError::WrongState {
                pump,
                reason: reason.to_owned(),
            })
        };
        if p.error.is_some() {
            return wrong("the pump is in error");
        }
        if p.closed {
            return wrong("the pump is closed");
        }
        p.phase = match p.phase {
            Phase::Idle => Phase::Calling { nozzle },
            Phase::Authorised {
                preset,
                nozzle: None,
            } => Phase::Authorised {
                preset,
                nozzle: Some(nozzle),
            },
            Phase::Calling { .. } | Phase::Authorised { .. } => {
                return wrong("a nozzle is already lifted");
            }
            Phase::Fuelling(_) => return wrong("a delivery is running"),
        };
        self.inner.commit(&w, false);
        Ok(())
    }

    /// The customer fuels on the authorised pump whose nozzle is lifted,
    /// wanting `volume_ml`: the pump is fuelling at once, volume and amount
    /// grow at the flow rate, and the delivery ends by itself (nozzle hung
    /// up, sale payable, pump payable) at that volume or at the preset,
    /// whichever comes first.
    pub fn deliver(&self, pump: PumpId, volume_ml: u64) -> Result<Delivery, SimError> {
        let inner = &self.inner;
        let mut w = inner.enter();
        let p = w.pump_mut(pump)?;
        let wrong = |reason: &str| {
            Err(SimError::WrongState {
                pump,
                reason: reason.to_owned(),
            })
        };
        if volume_ml == 0 {
            return wrong("a delivery needs a volume above 0");
        }
        let (preset, nozzle) = match p.phase {
            Phase::Authorised {
                preset,
                nozzle: Some(nozzle),
            } => (preset, nozzle),
            Phase::Authorised { nozzle: None, .. } => {
                return wrong("no nozzle is lifted (lift_nozzle first)");
            }
            _ => return wrong("the pump is not authorised"),
        };
        let grade_id = p
            .nozzles
            .iter()
            .find(|n| n.id == nozzle)
            .map(|n| n.grade.clone())
            .unwrap_or_default();
        let Some(grade) = inner.config.grades.iter().find(|g| g.id == grade_id) else {
            return wrong("the nozzle's grade is unknown");
        };
        let target_ml = volume_ml.min(preset_limit(grade, preset));
        let (tx, rx) = oneshot::channel();
        let fuelling = Fuelling {
            nozzle,
            grade: grade.clone(),
            started: Instant::now(),
            target_ml,
            done: Some(tx),
        };
        let end = fuelling.end(inner.config.flow_ml_per_s);
        p.phase = Phase::Fuelling(fuelling);
        if target_ml == 0 {
            // A preset too small for one ml: nothing flows.
            let idx = usize::from(pump - 1);
            inner.end_delivery(&mut w, idx, Instant::now(), 0);
            inner.commit(&w, false);
        } else {
            inner.commit(&w, false);
            let weak: Weak<Inner> = Arc::downgrade(inner);
            tokio::spawn(async move {
                tokio::time::sleep_until(end).await;
                if let Some(inner) = weak.upgrade() {
                    drop(inner.enter());
                }
            });
        }
        Ok(Delivery {
            pump,
            target_ml,
            done: rx,
        })
    }

    /// The delivery running on `pump` ends now (the customer hangs up
    /// early): a sale of the volume delivered so far, or `None` when nothing
    /// flowed yet.
    pub fn interrupt_delivery(&self, pump: PumpId) -> Result<Option<FuelSaleTrx>, SimError> {
        let mut w = self.inner.enter();
        let idx = w.index(pump)?;
        if !matches!(w.pumps[idx].phase, Phase::Fuelling(_)) {
            return Err(SimError::WrongState {
                pump,
                reason: "no delivery is running".to_owned(),
            });
        }
        let sale = self.inner.cut_delivery(&mut w, idx);
        self.inner.commit(&w, sale.is_some());
        Ok(sale)
    }

    /// The customer hangs the nozzle up: a calling pump goes back to idle,
    /// an authorised one stays authorised (for the next lift), a running
    /// delivery ends as with [`ForecourtSim::interrupt_delivery`].
    pub fn hang_up(&self, pump: PumpId) -> Result<Option<FuelSaleTrx>, SimError> {
        let mut w = self.inner.enter();
        let idx = w.index(pump)?;
        let p = &mut w.pumps[idx];
        match p.phase {
            Phase::Calling { .. } => p.phase = Phase::Idle,
            Phase::Authorised {
                preset,
                nozzle: Some(_),
            } => {
                p.phase = Phase::Authorised {
                    preset,
                    nozzle: None,
                }
            }
            Phase::Fuelling(_) => {
                let sale = self.inner.cut_delivery(&mut w, idx);
                self.inner.commit(&w, sale.is_some());
                return Ok(sale);
            }
            Phase::Idle | Phase::Authorised { nozzle: None, .. } => {
                return Err(SimError::WrongState {
                    pump,
                    reason: "no nozzle is lifted".to_owned(),
                });
            }
        }
        self.inner.commit(&w, false);
        Ok(None)
    }

    /// The pump fails: state `Error { reason }` until
    /// [`ForecourtSim::repair_pump`]; a running delivery ends with the volume
    /// delivered so far (returned), a pending authorisation is dropped.
    pub fn fail_pump(
        &self,
        pump: PumpId,
        reason: impl Into<String>,
    ) -> Result<Option<FuelSaleTrx>, SimError> {
        let mut w = self.inner.enter();
        let idx = w.index(pump)?;
        let sale = self.inner.cut_delivery(&mut w, idx);
        let p = &mut w.pumps[idx];
        p.phase = Phase::Idle;
        p.error = Some(reason.into());
        self.inner.commit(&w, sale.is_some());
        Ok(sale)
    }

    /// Clears the pump's error.
    pub fn repair_pump(&self, pump: PumpId) -> Result<(), SimError> {
        let mut w = self.inner.enter();
        w.pump_mut(pump)?.error = None;
        self.inner.commit(&w, false);
        Ok(())
    }

    /// The forecourt operator closes (state `Locked`) or reopens the pump.
    /// Closing drops a call or a pending authorisation; a running delivery
    /// finishes first (the pump shows `Fuelling` until then).
    pub fn set_pump_closed(&self, pump: PumpId, closed: bool) -> Result<(), SimError> {
        let mut w = self.inner.enter();
        let p = w.pump_mut(pump)?;
        p.closed = closed;
        if closed && matches!(p.phase, Phase::Calling { .. } | Phase::Authorised { .. }) {
            p.phase = Phase::Idle;
        }
        self.inner.commit(&w, false);
        Ok(())
    }

    /// The pumps and their states, online or not.
    pub fn pumps(&self) -> Vec<Pump> {
        let w = self.inner.enter();
        self.inner.pumps_view(&w)
    }

    /// The sale buffer, oldest first, online or not.
    pub fn sales(&self) -> Vec<FuelSaleTrx> {
        self.inner.enter().sales.clone()
    }

    /// Waits until the state of `pump` satisfies `until`, and returns it.
    pub async fn wait_for_state(
        &self,
        pump: PumpId,
        until: impl Fn(&PumpState) -> bool,
    ) -> Result<PumpState, SimError> {
        let mut changed = self.inner.changed.subscribe();
        loop {
            {
                let w = self.inner.enter();
                let idx = w.index(pump)?;
                let state = self.inner.view(&w, &w.pumps[idx], Instant::now());
                if until(&state) {
                    return Ok(state);
                }
            }
            if changed.changed().await.is_err() {
                return Err(SimError::UnknownPump(pump));
            }
        }
    }

    /// Waits until `until` holds for the pump (true), or `stop` is
    /// cancelled or the pump does not exist (false).
    pub(crate) async fn wait_pump(
        &self,
        pump: PumpId,
        stop: &CancellationToken,
        until: impl Fn(&SimPump) -> bool,
    ) -> bool {
        let mut changed = self.inner.changed.subscribe();
        loop {
            {
                let w = self.inner.enter();
                match w.index(pump) {
                    Ok(idx) if until(&w.pumps[idx]) => return true,
                    Ok(_) => {}
                    Err(_) => return false,
                }
            }
            tokio::select! {
                biased;
                () = stop.cancelled() => return false,
                r = changed.changed() => if r.is_err() { return false },
            }
        }
    }

    pub(crate) fn with_pump<T>(&self, pump: PumpId, f: impl FnOnce(&SimPump) -> T) -> Option<T> {
        let w = self.inner.enter();
        let idx = w.index(pump).ok()?;
        Some(f(&w.pumps[idx]))
    }
}

impl World {
    fn index(&self, pump: PumpId) -> Result<usize, SimError> {
        let idx = usize::from(pump).wrapping_sub(1);
        if idx < self.pumps.len() {
            Ok(idx)
        } else {
            Err(SimError::UnknownPump(pump))
        }
    }

    fn pump_mut(&mut self, pump: PumpId) -> Result<&mut SimPump, SimError> {
        let idx = self.index(pump)?;
        Ok(&mut self.pumps[idx])
    }

    fn unpaid(&self, pump: PumpId) -> usize {
        self.sales.iter().filter(|s| s.pump == pump).count()
    }

    fn sale_index(&self, transaction_id: &str) -> Result<usize, ControllerError> {
        self.sales
            .iter()
            .position(|s| s.transaction_id == transaction_id)
            .ok_or_else(|| ControllerError::UnknownSale(transaction_id.to_owned()))
    }
}

impl Inner {
    /// The world, with every delivery that reached its end by now finished.
    fn enter(&self) -> MutexGuard<'_, World> {
        let mut w = self.world.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let flow = self.config.flow_ml_per_s;
        let mut ended = false;
        for idx in 0..w.pumps.len() {
            let due = match &w.pumps[idx].phase {
                Phase::Fuelling(f) if f.end(flow) <= now => Some((f.end(flow), f.target_ml)),
                _ => None,
            };
            if let Some((end, volume)) = due {
                self.end_delivery(&mut w, idx, end, volume);
                ended = true;
            }
        }
        if ended {
            self.commit(&w, true);
        }
        w
    }

    /// Ends the running delivery of pump `idx` (if any) now, with the volume
    /// delivered so far.
    fn cut_delivery(&self, w: &mut World, idx: usize) -> Option<FuelSaleTrx> {
        let now = Instant::now();
        let volume = match &w.pumps[idx].phase {
            Phase::Fuelling(f) => f.volume_at(now, self.config.flow_ml_per_s),
            _ => return None,
        };
        self.end_delivery(w, idx, now, volume)
    }

    /// Ends the delivery of pump `idx` at `at` with `volume_ml`: a payable
    /// sale (none for 0 ml), the pump free again.
    fn end_delivery(
        &self,
        w: &mut World,
        idx: usize,
        at: Instant,
        volume_ml: u64,
    ) -> Option<FuelSaleTrx> {
        let pump = &mut w.pumps[idx];
        let Phase::Fuelling(mut f) = std::mem::replace(&mut pump.phase, Phase::Idle) else {
            return None;
        };
        let pump_id = pump.id;
        let sale = (volume_ml > 0).then(|| {
            let counter = w.counters.entry(pump_id).or_insert(0);
            *counter += 1;
            let sale = FuelSaleTrx {
                transaction_id: format!("{}-{pump_id}-{counter}", self.config.transaction_prefix),
                pump: pump_id,
                nozzle: f.nozzle,
                grade: f.grade.id.clone(),
                volume_ml,
                amount_minor: f.grade.amount_for(volume_ml),
                currency: self.config.currency.clone(),
                completed_at: self.wall_clock(at),
                state: SaleState::Payable,
            };
            w.sales.push(sale.clone());
            sale
        });
        if let Some(done) = f.done.take() {
            let _ = done.send(sale.clone());
        }
        sale
    }

    fn wall_clock(&self, at: Instant) -> DateTime<Utc> {
        let elapsed = at.saturating_duration_since(self.origin);
        self.started_at + chrono::Duration::from_std(elapsed).unwrap_or(chrono::Duration::MAX)
    }

    /// Tells the waiters, and saves the counters and sales when they changed.
    fn commit(&self, w: &World, sales_changed: bool) {
        if sales_changed && let Some(path) = &self.config.state_file {
            let saved = Saved {
                version: persist::VERSION,
                counters: w.counters.clone(),
                sales: w.sales.clone(),
            };
            if let Err(e) = persist::save(path, &saved) {
                tracing::warn!(
                    path = %path.display(),
                    error = %e,
                    "cannot save the forecourt simulator state; transaction numbers may repeat after a restart"
                );
            }
        }
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn view(&self, w: &World, p: &SimPump, now: Instant) -> PumpState {
        if let Phase::Fuelling(f) = &p.phase {
            let volume_ml = f.volume_at(now, self.config.flow_ml_per_s);
            return PumpState::Fuelling {
                nozzle: f.nozzle,
                volume_ml,
                amount_minor: f.grade.amount_for(volume_ml),
            };
        }
        if let Some(reason) = &p.error {
            return PumpState::Error {
                reason: reason.clone(),
            };
        }
        if p.closed {
            return PumpState::Locked;
        }
        match &p.phase {
            Phase::Calling { nozzle } => PumpState::Calling { nozzle: *nozzle },
            Phase::Authorised { preset, .. } => PumpState::Authorised { preset: *preset },
            Phase::Idle | Phase::Fuelling(_) if w.unpaid(p.id) > 0 => PumpState::Payable,
            Phase::Idle | Phase::Fuelling(_) => PumpState::Idle,
        }
    }

    fn pumps_view(&self, w: &World) -> Vec<Pump> {
        let now = Instant::now();
        w.pumps
            .iter()
            .map(|p| Pump {
                id: p.id,
                nozzles: p.nozzles.clone(),
                state: self.view(w, p, now),
            })
            .collect()
    }

    fn online(&self) -> Result<MutexGuard<'_, World>, ControllerError> {
        let w = self.enter();
        if w.offline {
            return Err(ControllerError::Offline(
                "the simulated fuel controller is switched offline".to_owned(),
            ));
        }
        Ok(w)
    }
}

/// The port: IFSF FDC-POS calls answered from the simulated forecourt.
#[async_trait]
impl ForecourtController for ForecourtSim {
    async fn fp_states(&self) -> Result<Vec<Pump>, ControllerError> {
        let w = self.inner.online()?;
        Ok(self.inner.pumps_view(&w))
    }

    async fn grades(&self) -> Result<Vec<Grade>, ControllerError> {
        let _w = self.inner.online()?;
        Ok(self.inner.config.grades.clone())
    }

    /// Idle, payable and calling pumps are authorised; an authorised one
    /// takes the new preset. Refused: fuelling, closed, in error, a zero
    /// preset, or [`MAX_UNPAID_SALES_PER_PUMP`] unpaid sales.
    async fn authorise_fuel_point(
        &self,
        pump: PumpId,
        preset: Option<Preset>,
    ) -> Result<(), ControllerError> {
        let mut w = self.inner.online()?;
        let idx = w
            .index(pump)
            .map_err(|_| ControllerError::UnknownPump(pump))?;
        let unpaid = w.unpaid(pump);
        let p = &mut w.pumps[idx];
        let refuse = |why: String| Err(ControllerError::Refused(format!("pump {pump}: {why}")));
        if let Some(reason) = &p.error {
            return refuse(format!("in error ({reason})"));
        }
        if p.closed {
            return refuse("closed by the forecourt operator".to_owned());
        }
        if matches!(p.phase, Phase::Fuelling(_)) {
            return refuse("a delivery is running".to_owned());
        }
        if unpaid >= MAX_UNPAID_SALES_PER_PUMP {
            return refuse(format!(
                "{unpaid} unpaid sales (at most {MAX_UNPAID_SALES_PER_PUMP}): pay one first"
            ));
        }
        if matches!(
            preset,
            Some(Preset::Amount { minor: 0 } | Preset::Volume { ml: 0 })
        ) {
            return refuse("a preset of zero".to_owned());
        }
        let nozzle = match p.phase {
            Phase::Calling { nozzle } => Some(nozzle),
            Phase::Authorised { nozzle, .. } => nozzle,
            _ => None,
        };
        p.phase = Phase::Authorised { preset, nozzle };
        self.inner.commit(&w, false);
        Ok(())
    }

    async fn fuel_sale_trxs(&self) -> Result<Vec<FuelSaleTrx>, ControllerError> {
        Ok(self.inner.online()?.sales.clone())
    }

    /// Locking a sale again for the same till is fine (a retried call).
    async fn lock_fuel_sale_trx(
        &self,
        transaction_id: &str,
        till: &str,
    ) -> Result<(), ControllerError> {
        let mut w = self.inner.online()?;
        let idx = w.sale_index(transaction_id)?;
        let sale = &mut w.sales[idx];
        match &sale.state {
            SaleState::Locked { by } if by != till => {
                return Err(ControllerError::Refused(format!(
                    "fuel sale {transaction_id} is locked by till {by}"
                )));
            }
            _ => {
                sale.state = SaleState::Locked {
                    by: till.to_owned(),
                }
            }
        }
        self.inner.commit(&w, true);
        Ok(())
    }

    async fn clear_fuel_sale_trx(
        &self,
        transaction_id: &str,
        till: &str,
    ) -> Result<(), ControllerError> {
        let mut w = self.inner.online()?;
        let idx = w.sale_index(transaction_id)?;
        if let SaleState::Locked { by } = &w.sales[idx].state
            && by != till
        {
            return Err(ControllerError::Refused(format!(
                "fuel sale {transaction_id} is locked by till {by}"
            )));
        }
        w.sales.remove(idx);
        self.inner.commit(&w, true);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grade(price: u64) -> Grade {
        Grade {
            id: "G".into(),
            name: "G".into(),
            price_per_litre_minor: price,
        }
    }

    #[test]
    fn the_volume_for_an_amount_is_the_largest_within_it() {
        for price in [1, 7, 169, 179, 189, 999, 12_345] {
            let g = grade(price);
            for amount in [0, 1, 2, 49, 50, 1_000, 2_000, 9_999] {
                let v = max_volume_for_amount(&g, amount);
                assert!(g.amount_for(v) <= amount, "price {price} amount {amount}");
                assert!(
                    g.amount_for(v + 1) > amount,
                    "price {price} amount {amount}"
                );
            }
        }
    }
}
