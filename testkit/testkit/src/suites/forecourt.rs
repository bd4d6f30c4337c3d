//! Contract suite of [`ForecourtController`]; stamp it with [`crate::forecourt_suite!`].
//!
//! A fuel controller cannot be tested through its port alone: deliveries need
//! customers and faults need a forecourt. So each case takes the controller
//! and a [`ForecourtDriver`], which causes the physical events (a nozzle
//! lifted, fuel delivered, the controller cut off, a pump failing). The
//! simulator's rig calls its simulation controls; a real controller's rig
//! would drive a pump simulator or a test forecourt.
//!
//! What the rig must give each case: at least two pumps, every pump idle
//! with at least one nozzle, the sale buffer empty. The cases deliver up to
//! 20 litres at a time, and 1,000 deliveries of 1 litre in
//! [`case_transaction_ids_are_unique_across_1000_deliveries`]: a rig on real
//! time wants a fast flow; the simulator runs on paused tokio time. The
//! factory of [`crate::forecourt_suite!`] returns `(controller, driver)`.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use spacepos_spacefuel::{
    ControllerError, ForecourtController, FuelSaleTrx, Grade, MAX_UNPAID_SALES_PER_PUMP, NozzleId,
    Preset, Pump, PumpId, PumpState, SaleState,
};

/// The physical side of the forecourt under test. Every method panics when it
/// cannot cause its event (the case fails there, with the rig's message).
#[async_trait]
pub trait ForecourtDriver: Send + Sync {
    /// A customer lifts `nozzle` of `pump`.
    async fn lift_nozzle(&self, pump: PumpId, nozzle: NozzleId);
    /// The customer starts fuelling on the authorised pump whose nozzle is
    /// lifted, wanting `volume_ml` (the preset may stop it earlier); returns
    /// once fuel flows. The delivery then ends by itself.
    async fn start_delivery(&self, pump: PumpId, volume_ml: u64);
    /// Waits until the delivery of `pump` has ended and the nozzle is hung up.
    async fn wait_delivery_end(&self, pump: PumpId);
    /// The customer stops the running delivery of `pump` now and hangs up.
    async fn interrupt_delivery(&self, pump: PumpId);
    /// Cuts the POS off the controller (`true`) or reconnects it; the
    /// controller keeps its sales.
    async fn set_offline(&self, offline: bool);
    /// `pump` fails (e.g. a pulser fault).
    async fn fail_pump(&self, pump: PumpId, reason: &str);
    /// The forecourt operator closes (`true`) or reopens `pump`.
    async fn close_pump(&self, pump: PumpId, closed: bool);
}

const TILL_A: &str = "till-A";
const TILL_B: &str = "till-B";
/// How long a case waits for something the forecourt does by itself.
const PATIENCE: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(50);

async fn pumps(fc: &dyn ForecourtController) -> Vec<Pump> {
    fc.fp_states().await.expect("fp_states")
}

async fn state_of(fc: &dyn ForecourtController, pump: PumpId) -> PumpState {
    pumps(fc)
        .await
        .into_iter()
        .find(|p| p.id == pump)
        .unwrap_or_else(|| panic!("pump {pump} is not listed by fp_states"))
        .state
}

/// Polls `fp_states` until the pump's state satisfies `until`.
async fn eventually(
    fc: &dyn ForecourtController,
    pump: PumpId,
    what: &str,
    until: impl Fn(&PumpState) -> bool,
) -> PumpState {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let state = state_of(fc, pump).await;
        if until(&state) {
            return state;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "pump {pump} never became {what}; it is {state:?}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// The first two pumps and their first nozzles, with the nozzles' grades.
async fn two_pumps(fc: &dyn ForecourtController) -> [(PumpId, NozzleId, Grade); 2] {
    let listed = pumps(fc).await;
    assert!(
        listed.len() >= 2,
        "the rig must give at least two pumps: {listed:?}"
    );
    let grades = fc.grades().await.expect("grades");
    let first = |p: &Pump| {
        let nozzle = p.nozzles.first().expect("a nozzle");
        let grade = grades
            .iter()
            .find(|g| g.id == nozzle.grade)
            .unwrap_or_else(|| panic!("grade {} is not in grades()", nozzle.grade))
            .clone();
        (p.id, nozzle.id, grade)
    };
    [first(&listed[0]), first(&listed[1])]
}

async fn sale_ids(fc: &dyn ForecourtController) -> HashSet<String> {
    fc.fuel_sale_trxs()
        .await
        .expect("fuel_sale_trxs")
        .into_iter()
        .map(|s| s.transaction_id)
        .collect()
}

/// Waits for the one sale of `pump` not in `before`.
async fn new_sale(
    fc: &dyn ForecourtController,
    before: &HashSet<String>,
    pump: PumpId,
) -> FuelSaleTrx {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let mut new: Vec<FuelSaleTrx> = fc
            .fuel_sale_trxs()
            .await
            .expect("fuel_sale_trxs")
            .into_iter()
            .filter(|s| !before.contains(&s.transaction_id))
            .collect();
        if !new.is_empty() {
            assert_eq!(new.len(), 1, "one delivery, one sale: {new:?}");
            let sale = new.remove(0);
            assert_eq!(sale.pump, pump, "{sale:?}");
            return sale;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no sale of pump {pump} appeared"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Lift, authorise (with `preset`), start fuelling `volume_ml`.
async fn start(
    fc: &dyn ForecourtController,
    drv: &dyn ForecourtDriver,
    (pump, nozzle): (PumpId, NozzleId),
    preset: Option<Preset>,
    volume_ml: u64,
) {
    drv.lift_nozzle(pump, nozzle).await;
    fc.authorise_fuel_point(pump, preset)
        .await
        .expect("authorise");
    drv.start_delivery(pump, volume_ml).await;
}

/// A whole delivery; returns its sale.
async fn delivery(
    fc: &dyn ForecourtController,
    drv: &dyn ForecourtDriver,
    at: (PumpId, NozzleId),
    preset: Option<Preset>,
    volume_ml: u64,
) -> FuelSaleTrx {
    let before = sale_ids(fc).await;
    start(fc, drv, at, preset, volume_ml).await;
    drv.wait_delivery_end(at.0).await;
    new_sale(fc, &before, at.0).await
}

/// Samples the pump while it fuels, checking each sample, until the delivery ends.
async fn watch_fuelling(
    fc: &dyn ForecourtController,
    drv: &dyn ForecourtDriver,
    pump: PumpId,
    check: impl Fn(NozzleId, u64, u64),
) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while let PumpState::Fuelling {
        nozzle,
        volume_ml,
        amount_minor,
    } = state_of(fc, pump).await
    {
        check(nozzle, volume_ml, amount_minor);
        assert!(tokio::time::Instant::now() < deadline, "endless delivery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drv.wait_delivery_end(pump).await;
}

/// About 10 litres whose exact amount is a half minor unit (or the nearest
/// above), so that the amount checks the rounding, not only the price.
fn volume_that_rounds_up(grade: &Grade) -> u64 {
    let rest = |v: u64| (u128::from(v) * u128::from(grade.price_per_litre_minor)) % 1000;
    (10_000..11_000)
        .find(|&v| rest(v) == 500)
        .or_else(|| (10_000..11_000).find(|&v| rest(v) > 500))
        .unwrap_or(10_000)
}

fn assert_refused<T: std::fmt::Debug>(r: Result<T, ControllerError>, what: &str) {
    assert!(
        matches!(r, Err(ControllerError::Refused(_))),
        "{what} should be refused: {r:?}"
    );
}

/// Clause: "`fp_states` lists every pump with its state": at start every
/// pump is idle, has nozzles whose grades `grades` lists; no sale waits.
pub async fn case_every_pump_is_idle_at_start(
    fc: &dyn ForecourtController,
    _drv: &dyn ForecourtDriver,
) {
    let listed = pumps(fc).await;
    let grades = fc.grades().await.expect("grades");
    assert!(!grades.is_empty(), "no grades");
    assert!(listed.len() >= 2, "the rig must give two pumps: {listed:?}");
    let ids: HashSet<PumpId> = listed.iter().map(|p| p.id).collect();
    assert_eq!(ids.len(), listed.len(), "pump ids repeat: {listed:?}");
    for p in &listed {
        assert_eq!(p.state, PumpState::Idle, "{p:?}");
        assert!(!p.nozzles.is_empty(), "{p:?}");
        for n in &p.nozzles {
            assert!(
                grades.iter().any(|g| g.id == n.grade),
                "pump {} nozzle {} delivers {}, not in {grades:?}",
                p.id,
                n.id,
                n.grade
            );
        }
    }
    assert!(sale_ids(fc).await.is_empty(), "sales at start");
}

/// Clause: "`authorise_fuel_point` moves a calling or idle pump to
/// authorised (with an optional preset)".
pub async fn case_calling_and_idle_pumps_are_authorised(
    fc: &dyn ForecourtController,
    drv: &dyn ForecourtDriver,
) {
    let [(p1, n1, _), (p2, _, _)] = two_pumps(fc).await;
    drv.lift_nozzle(p1, n1).await;
    eventually(fc, p1, "calling", |s| {
        *s == PumpState::Calling { nozzle: n1 }
    })
    .await;
    fc.authorise_fuel_point(p1, None)
        .await
        .expect("authorise calling");
    assert_eq!(
        state_of(fc, p1).await,
        PumpState::Authorised { preset: None }
    );
    let preset = Preset::Volume { ml: 10_000 };
    fc.authorise_fuel_point(p2, Some(preset))
        .await
        .expect("authorise idle");
    assert_eq!(
        state_of(fc, p2).await,
        PumpState::Authorised {
            preset: Some(preset)
        }
    );
}

/// Clauses: "A delivery that ends becomes a `FuelSaleTrx` in state
/// `Payable`, listed by `fuel_sale_trxs` until it is cleared" and "Its amount
/// is `Grade::amount_for` its volume"; the pump is `Payable` while its sale
/// waits, idle again once it is cleared.
pub async fn case_a_finished_delivery_is_payable_until_cleared(
    fc: &dyn ForecourtController,
    drv: &dyn ForecourtDriver,
) {
    let [(p1, n1, grade), _] = two_pumps(fc).await;
    let volume = volume_that_rounds_up(&grade);
    let sale = delivery(fc, drv, (p1, n1), None, volume).await;
    assert_eq!(sale.pump, p1);
    assert_eq!(sale.nozzle, n1);
    assert_eq!(sale.grade, grade.id);
    assert_eq!(sale.volume_ml, volume);
    assert_eq!(sale.amount_minor, grade.amount_for(volume), "{sale:?}");
    assert!(!sale.currency.is_empty(), "{sale:?}");
    assert!(!sale.transaction_id.is_empty(), "{sale:?}");
    assert_eq!(sale.state, SaleState::Payable);
    eventually(fc, p1, "payable", |s| *s == PumpState::Payable).await;
    // Listed again and again until cleared.
    for _ in 0..2 {
        let listed = fc.fuel_sale_trxs().await.expect("list");
        assert_eq!(listed, vec![sale.clone()]);
    }
    fc.clear_fuel_sale_trx(&sale.transaction_id, TILL_A)
        .await
        .expect("clear");
    assert!(sale_ids(fc).await.is_empty(), "cleared sale still listed");
    eventually(fc, p1, "idle", |s| *s == PumpState::Idle).await;
}

/// Clause: "a preset is never exceeded" (volume), while fuelling or after.
pub async fn case_a_volume_preset_is_never_exceeded(
    fc: &dyn ForecourtController,
    drv: &dyn ForecourtDriver,
) {
    let [(p1, n1, grade), _] = two_pumps(fc).await;
    let before = sale_ids(fc).await;
    start(
        fc,
        drv,
        (p1, n1),
        Some(Preset::Volume { ml: 5_000 }),
        20_000,
    )
    .await;
    watch_fuelling(fc, drv, p1, |nozzle, volume, amount| {
        assert_eq!(nozzle, n1);
        assert!(
            volume <= 5_000,
            "fuelling {volume} ml with a 5,000 ml preset"
        );
        assert_eq!(amount, grade.amount_for(volume));
    })
    .await;
    let sale = new_sale(fc, &before, p1).await;
    assert!(
        sale.volume_ml > 0 && sale.volume_ml <= 5_000,
        "{sale:?} with a 5,000 ml preset"
    );
    assert_eq!(sale.amount_minor, grade.amount_for(sale.volume_ml));
}

/// Clause: "a preset is never exceeded" (amount), while fuelling or after.
pub async fn case_an_amount_preset_is_never_exceeded(
    fc: &dyn ForecourtController,
    drv: &dyn ForecourtDriver,
) {
    let [(p1, n1, grade), _] = two_pumps(fc).await;
    // An amount that no whole number of ml need hit exactly.
    let limit = grade.amount_for(7_777) + 1;
    let before = sale_ids(fc).await;
    start(
        fc,
        drv,
        (p1, n1),
        Some(Preset::Amount { minor: limit }),
        20_000,
    )
    .await;
    watch_fuelling(fc, drv, p1, |_, volume, amount| {
        assert!(
            amount <= limit,
            "fuelling {amount} with a preset of {limit}"
        );
        assert_eq!(amount, grade.amount_for(volume));
    })
    .await;
    let sale = new_sale(fc, &before, p1).await;
    assert!(
        sale.amount_minor > 0 && sale.amount_minor <= limit,
        "{sale:?} with a preset of {limit}"
    );
    assert!(sale.volume_ml < 20_000, "{sale:?}");
    assert_eq!(sale.amount_minor, grade.amount_for(sale.volume_ml));
}

/// Clause: "it is refused with `MAX_UNPAID_SALES_PER_PUMP` unpaid sales on
/// the pump"; other pumps are not affected, and paying one lifts the refusal.
pub async fn case_a_third_authorisation_with_two_unpaid_sales_is_refused(
    fc: &dyn ForecourtController,
    drv: &dyn ForecourtDriver,
) {
    let [(p1, n1, _), (p2, _, _)] = two_pumps(fc).await;
    let mut sales = Vec::new();
    for _ in 0..MAX_UNPAID_SALES_PER_PUMP {
        sales.push(delivery(fc, drv, (p1, n1), None, 2_000).await);
    }
    drv.lift_nozzle(p1, n1).await;
    assert_refused(
        fc.authorise_fuel_point(p1, None).await,
        "a third authorisation",
    );
    assert!(
        !matches!(state_of(fc, p1).await, PumpState::Authorised { .. }),
        "refused but authorised"
    );
    fc.authorise_fuel_point(p2, None)
        .await
        .expect("another pump is not affected");
    fc.lock_fuel_sale_trx(&sales[0].transaction_id, TILL_A)
        .await
        .expect("lock");
    assert_refused(
        fc.authorise_fuel_point(p1, None).await,
        "a third authorisation while a locked sale waits",
    );
    fc.clear_fuel_sale_trx(&sales[0].transaction_id, TILL_A)
        .await
        .expect("clear");
    fc.authorise_fuel_point(p1, None)
        .await
        .expect("one paid: authorised again");
}

/// Clause: "`lock_fuel_sale_trx` locks a payable sale for one till;
/// `clear_fuel_sale_trx` removes a sale locked by that till ...; a sale
/// locked by another till is refused", and a cleared sale is unknown.
pub async fn case_a_sale_locked_by_one_till_is_cleared_by_that_till_only(
    fc: &dyn ForecourtController,
    drv: &dyn ForecourtDriver,
) {
    let [(p1, n1, _), _] = two_pumps(fc).await;
    let sale = delivery(fc, drv, (p1, n1), None, 3_000).await;
    let id = sale.transaction_id.as_str();
    fc.lock_fuel_sale_trx(id, TILL_A).await.expect("lock by A");
    let locked = SaleState::Locked {
        by: TILL_A.to_owned(),
    };
    let listed = fc.fuel_sale_trxs().await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].state, locked);
    assert_refused(fc.lock_fuel_sale_trx(id, TILL_B).await, "a lock by B");
    assert_refused(fc.clear_fuel_sale_trx(id, TILL_B).await, "a clear by B");
    let listed = fc.fuel_sale_trxs().await.expect("list");
    assert_eq!(listed.len(), 1, "B's refusals changed nothing");
    assert_eq!(listed[0].state, locked);
    fc.clear_fuel_sale_trx(id, TILL_A)
        .await
        .expect("clear by A");
    assert!(sale_ids(fc).await.is_empty(), "cleared sale still listed");
    assert_eq!(
        fc.clear_fuel_sale_trx(id, TILL_A).await,
        Err(ControllerError::UnknownSale(id.to_owned())),
        "a cleared sale is gone"
    );
    assert_eq!(
        fc.lock_fuel_sale_trx(id, TILL_A).await,
        Err(ControllerError::UnknownSale(id.to_owned()))
    );
}

/// Clause: "`clear_fuel_sale_trx` removes a sale locked by that till (or a
/// payable one)".
pub async fn case_a_payable_sale_is_cleared_without_a_lock(
    fc: &dyn ForecourtController,
    drv: &dyn ForecourtDriver,
) {
    let [(p1, n1, _), _] = two_pumps(fc).await;
    let sale = delivery(fc, drv, (p1, n1), None, 1_500).await;
    fc.clear_fuel_sale_trx(&sale.transaction_id, TILL_B)
        .await
        .expect("clear payable");
    assert!(sale_ids(fc).await.is_empty());
}

/// Clause: "Locking or clearing a sale that is not in the buffer ... is
/// `UnknownSale`; a pump that does not exist is `UnknownPump`."
pub async fn case_unknown_sales_and_pumps_are_unknown(
    fc: &dyn ForecourtController,
    _drv: &dyn ForecourtDriver,
) {
    let missing = "NO-SUCH-SALE-42";
    assert_eq!(
        fc.clear_fuel_sale_trx(missing, TILL_A).await,
        Err(ControllerError::UnknownSale(missing.to_owned()))
    );
    assert_eq!(
        fc.lock_fuel_sale_trx(missing, TILL_A).await,
        Err(ControllerError::UnknownSale(missing.to_owned()))
    );
    let ids: HashSet<PumpId> = pumps(fc).await.iter().map(|p| p.id).collect();
    let absent = (1..=PumpId::MAX)
        .rev()
        .find(|id| !ids.contains(id))
        .expect("a free pump number");
    assert_eq!(
        fc.authorise_fuel_point(absent, None).await,
        Err(ControllerError::UnknownPump(absent))
    );
}

/// Clause: "While offline every call is `Offline`; nothing is lost: sales
/// finished before are listed again once it is back" (with their locks).
pub async fn case_offline_every_call_is_offline_and_nothing_is_lost(
    fc: &dyn ForecourtController,
    drv: &dyn ForecourtDriver,
) {
    let [(p1, n1, _), (p2, n2, _)] = two_pumps(fc).await;
    let first = delivery(fc, drv, (p1, n1), None, 2_500).await;
    let second = delivery(fc, drv, (p2, n2), None, 3_500).await;
    fc.lock_fuel_sale_trx(&second.transaction_id, TILL_A)
        .await
        .expect("lock");
    let before = fc.fuel_sale_trxs().await.expect("list");
    assert_eq!(before.len(), 2);

    drv.set_offline(true).await;
    let offline = |what: &str, e: Option<ControllerError>| {
        assert!(
            matches!(e, Some(ControllerError::Offline(_))),
            "{what} while offline: {e:?}"
        );
    };
    offline("fp_states", fc.fp_states().await.err());
    offline("grades", fc.grades().await.err());
    offline(
        "authorise_fuel_point",
        fc.authorise_fuel_point(p1, None).await.err(),
    );
    offline("fuel_sale_trxs", fc.fuel_sale_trxs().await.err());
    offline(
        "lock_fuel_sale_trx",
        fc.lock_fuel_sale_trx(&first.transaction_id, TILL_A)
            .await
            .err(),
    );
    offline(
        "clear_fuel_sale_trx",
        fc.clear_fuel_sale_trx(&second.transaction_id, TILL_A)
            .await
            .err(),
    );
    offline(
        "clear of an unknown sale",
        fc.clear_fuel_sale_trx("NO-SUCH-SALE", TILL_A).await.err(),
    );

    drv.set_offline(false).await;
    let after = fc.fuel_sale_trxs().await.expect("list when back");
    assert_eq!(after, before, "the sales, as they were");
    fc.clear_fuel_sale_trx(&first.transaction_id, TILL_B)
        .await
        .expect("clear after");
    fc.clear_fuel_sale_trx(&second.transaction_id, TILL_A)
        .await
        .expect("clear after");
}

/// Clause: "it is refused ... when the pump is ... in error".
pub async fn case_a_pump_in_error_is_not_authorised(
    fc: &dyn ForecourtController,
    drv: &dyn ForecourtDriver,
) {
    let [(p1, _, _), (p2, _, _)] = two_pumps(fc).await;
    drv.fail_pump(p1, "pulser fault").await;
    eventually(fc, p1, "in error", |s| matches!(s, PumpState::Error { .. })).await;
    assert_refused(
        fc.authorise_fuel_point(p1, None).await,
        "authorising a pump in error",
    );
    assert!(matches!(state_of(fc, p1).await, PumpState::Error { .. }));
    fc.authorise_fuel_point(p2, None)
        .await
        .expect("another pump is not affected");
}

/// Clause: "it is refused ... when the pump is locked".
pub async fn case_a_closed_pump_is_not_authorised(
    fc: &dyn ForecourtController,
    drv: &dyn ForecourtDriver,
) {
    let [(p1, _, _), _] = two_pumps(fc).await;
    drv.close_pump(p1, true).await;
    eventually(fc, p1, "locked", |s| *s == PumpState::Locked).await;
    assert_refused(
        fc.authorise_fuel_point(p1, None).await,
        "authorising a locked pump",
    );
    drv.close_pump(p1, false).await;
    eventually(fc, p1, "idle", |s| *s == PumpState::Idle).await;
    fc.authorise_fuel_point(p1, None)
        .await
        .expect("reopened: authorised");
}

/// Clause: "A delivery that ends becomes a `FuelSaleTrx`": one stopped early
/// is a sale of the volume delivered until then.
pub async fn case_an_interrupted_delivery_is_a_sale_of_the_volume_delivered(
    fc: &dyn ForecourtController,
    drv: &dyn ForecourtDriver,
) {
    let [(p1, n1, grade), _] = two_pumps(fc).await;
    let before = sale_ids(fc).await;
    start(fc, drv, (p1, n1), None, 20_000).await;
    let seen = match eventually(
        fc,
        p1,
        "fuelling a litre",
        |s| matches!(s, PumpState::Fuelling { volume_ml, .. } if *volume_ml >= 1_000),
    )
    .await
    {
        PumpState::Fuelling { volume_ml, .. } => volume_ml,
        other => unreachable!("{other:?}"),
    };
    drv.interrupt_delivery(p1).await;
    let sale = new_sale(fc, &before, p1).await;
    assert!(
        sale.volume_ml >= seen && sale.volume_ml < 20_000,
        "interrupted after {seen} ml of 20,000: {sale:?}"
    );
    assert_eq!(sale.amount_minor, grade.amount_for(sale.volume_ml));
    assert_eq!(sale.state, SaleState::Payable);
    eventually(fc, p1, "payable", |s| *s == PumpState::Payable).await;
}

/// Clause: "`FuelSaleTrx::transaction_id`: the controller's transaction
/// number, unique per controller": 1,000 deliveries on every pump, paid as
/// they come, give 1,000 different numbers.
pub async fn case_transaction_ids_are_unique_across_1000_deliveries(
    fc: &dyn ForecourtController,
    drv: &dyn ForecourtDriver,
) {
    const DELIVERIES: usize = 1_000;
    let at: Vec<(PumpId, NozzleId)> = pumps(fc)
        .await
        .iter()
        .map(|p| (p.id, p.nozzles[0].id))
        .collect();
    let mut seen = HashSet::new();
    while seen.len() < DELIVERIES {
        let round = &at[..at.len().min(DELIVERIES - seen.len())];
        for &(pump, nozzle) in round {
            start(fc, drv, (pump, nozzle), None, 1_000).await;
        }
        for &(pump, _) in round {
            drv.wait_delivery_end(pump).await;
        }
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut paid = 0;
        while paid < round.len() {
            for sale in fc.fuel_sale_trxs().await.expect("list") {
                assert!(
                    seen.insert(sale.transaction_id.clone()),
                    "transaction number {} repeats after {} deliveries",
                    sale.transaction_id,
                    seen.len()
                );
                fc.clear_fuel_sale_trx(&sale.transaction_id, TILL_A)
                    .await
                    .expect("clear");
                paid += 1;
            }
            if paid < round.len() {
                assert!(tokio::time::Instant::now() < deadline, "sales missing");
                tokio::time::sleep(POLL).await;
            }
        }
        assert_eq!(paid, round.len(), "one sale per delivery");
    }
    assert_eq!(seen.len(), DELIVERIES);
    assert!(sale_ids(fc).await.is_empty());
}

/// Stamps one `#[tokio::test]` per case. The factory is an expression that
/// evaluates to a future of `(controller, driver)`, evaluated once per test.
#[macro_export]
macro_rules! forecourt_suite {
    ($factory:expr) => {
        $crate::forecourt_suite!(@cases $factory;
            case_every_pump_is_idle_at_start,
            case_calling_and_idle_pumps_are_authorised,
            case_a_finished_delivery_is_payable_until_cleared,
            case_a_volume_preset_is_never_exceeded,
            case_an_amount_preset_is_never_exceeded,
            case_a_third_authorisation_with_two_unpaid_sales_is_refused,
            case_a_sale_locked_by_one_till_is_cleared_by_that_till_only,
            case_a_payable_sale_is_cleared_without_a_lock,
            case_unknown_sales_and_pumps_are_unknown,
            case_offline_every_call_is_offline_and_nothing_is_lost,
            case_a_pump_in_error_is_not_authorised,
            case_a_closed_pump_is_not_authorised,
            case_an_interrupted_delivery_is_a_sale_of_the_volume_delivered,
            case_transaction_ids_are_unique_across_1000_deliveries,
        );
    };
    (@cases $factory:expr; $($case:ident),+ $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let (controller, driver) = $factory.await;
                $crate::suites::forecourt::$case(&controller, &driver).await;
            }
        )+
    };
}
