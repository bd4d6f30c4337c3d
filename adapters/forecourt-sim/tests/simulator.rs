//! What the simulator does beyond the port's contract: flow on tokio time,
//! exact presets, restarts with a state file, faults, automatic customers and
//! determinism.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use spacepos_forecourt_sim::{CustomerConfig, ForecourtSim, SimConfig, SimError};
use spacepos_spacefuel::{
    ControllerError, ForecourtController, FuelSaleTrx, Grade, Preset, PumpState, SaleState,
};

fn start() -> DateTime<Utc> {
    "2025-06-01T06:00:00Z".parse().expect("time")
}

fn config() -> SimConfig {
    SimConfig {
        started_at: Some(start()),
        ..SimConfig::default()
    }
}

fn sim() -> ForecourtSim {
    tokio::time::pause();
    ForecourtSim::new(config()).expect("simulator")
}

fn grade(price: u64) -> Grade {
    Grade {
        id: "G".into(),
        name: "G".into(),
        price_per_litre_minor: price,
    }
}

/// Lift, authorise, fuel `volume_ml` to the end on pump `pump`, nozzle 1.
async fn fuel(sim: &ForecourtSim, pump: u8, preset: Option<Preset>, volume_ml: u64) -> FuelSaleTrx {
    sim.lift_nozzle(pump, 1).expect("lift");
    sim.authorise_fuel_point(pump, preset)
        .await
        .expect("authorise");
    sim.deliver(pump, volume_ml)
        .expect("deliver")
        .finished()
        .await
        .expect("a sale")
}

#[test]
fn amounts_round_to_the_nearest_minor_unit_halves_up() {
    assert_eq!(grade(199).amount_for(1), 0, "0.199");
    assert_eq!(grade(198).amount_for(250), 50, "49.5 rounds up");
    assert_eq!(grade(250).amount_for(2), 1, "0.5 rounds up");
    assert_eq!(grade(167).amount_for(3), 1, "0.501");
    assert_eq!(grade(179).amount_for(2_497), 447, "446.963");
    assert_eq!(grade(179).amount_for(40_000), 7_160);
    assert_eq!(grade(179).amount_for(0), 0);
}

#[test]
fn invalid_configs_name_the_field() {
    type Spoil = fn(&mut SimConfig);
    let cases: [(&str, Spoil); 6] = [
        ("pumps", |c| c.pumps = 0),
        ("nozzles_per_pump", |c| c.nozzles_per_pump = 0),
        ("grades", |c| c.grades.clear()),
        ("grades", |c| c.grades[1].id = c.grades[0].id.clone()),
        ("flow_ml_per_s", |c| c.flow_ml_per_s = 0),
        ("currency", |c| c.currency.clear()),
    ];
    for (field, spoil) in cases {
        let mut c = SimConfig::default();
        spoil(&mut c);
        match ForecourtSim::new(c) {
            Err(SimError::Config(msg)) => assert!(msg.starts_with(field), "{field}: {msg}"),
            other => panic!("{field}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn nozzles_cycle_through_the_grades() {
    let sim = sim();
    let pumps = sim.fp_states().await.expect("states");
    assert_eq!(pumps.len(), 4);
    let grades: Vec<&str> = pumps[2].nozzles.iter().map(|n| n.grade.as_str()).collect();
    assert_eq!(grades, ["FUEL-U95", "FUEL-U98", "FUEL-DIESEL"]);
}

#[tokio::test]
async fn volume_and_amount_grow_at_the_flow_rate_on_tokio_time() {
    let sim = sim();
    sim.lift_nozzle(1, 2).expect("lift");
    sim.authorise_fuel_point(1, None).await.expect("authorise");
    let began = tokio::time::Instant::now();
    let delivery = sim.deliver(1, 10_000).expect("deliver");
    assert_eq!(delivery.target_ml(), 10_000);
    tokio::time::advance(Duration::from_secs(3)).await;
    // 500 ml/s; nozzle 2 is U98 at 189.
    assert_eq!(
        sim.pumps()[0].state,
        PumpState::Fuelling {
            nozzle: 2,
            volume_ml: 1_500,
            amount_minor: 284,
        }
    );
    let sale = delivery.finished().await.expect("sale");
    // 10 l at 500 ml/s (tokio's timer wakes on the next millisecond).
    let took = began.elapsed();
    assert!(
        took >= Duration::from_secs(20) && took < Duration::from_millis(20_010),
        "{took:?}"
    );
    assert_eq!(sale.volume_ml, 10_000);
    assert_eq!(sale.amount_minor, 1_890);
    assert_eq!(sale.grade, "FUEL-U98");
    assert_eq!(sale.transaction_id, "SIM-1-1");
    assert_eq!(sale.currency, "EUR");
    assert_eq!(sale.completed_at, start() + chrono::Duration::seconds(20));
    assert_eq!(sim.pumps()[0].state, PumpState::Payable);
}

#[tokio::test]
async fn an_amount_preset_stops_at_the_largest_volume_within_it() {
    let sim = sim();
    // 10.00 at 1.79 a litre: 5,589 ml is 10.0043 -> 10.00; 5,590 ml is 10.01.
    let sale = fuel(&sim, 1, Some(Preset::Amount { minor: 1_000 }), 40_000).await;
    assert_eq!((sale.volume_ml, sale.amount_minor), (5_589, 1_000));
    let sale = fuel(&sim, 2, Some(Preset::Volume { ml: 7_000 }), 40_000).await;
    assert_eq!((sale.volume_ml, sale.amount_minor), (7_000, 1_253));
}

#[tokio::test]
async fn a_zero_preset_and_physical_events_out_of_turn_are_refused() {
    let sim = sim();
    assert!(matches!(
        sim.authorise_fuel_point(1, Some(Preset::Amount { minor: 0 }))
            .await,
        Err(ControllerError::Refused(_))
    ));
    assert!(matches!(
        sim.deliver(1, 1_000),
        Err(SimError::WrongState { pump: 1, .. })
    ));
    assert_eq!(
        sim.lift_nozzle(1, 9),
        Err(SimError::UnknownNozzle { pump: 1, nozzle: 9 })
    );
    assert_eq!(sim.lift_nozzle(9, 1), Err(SimError::UnknownPump(9)));
    sim.authorise_fuel_point(1, None)
        .await
        .expect("pre-authorise");
    assert!(
        matches!(sim.deliver(1, 1_000), Err(SimError::WrongState { .. })),
        "no nozzle lifted"
    );
    sim.lift_nozzle(1, 1).expect("lift after the authorisation");
    assert!(matches!(
        sim.lift_nozzle(1, 2),
        Err(SimError::WrongState { .. })
    ));
    let delivery = sim.deliver(1, 1_000).expect("deliver");
    assert!(
        matches!(
            sim.authorise_fuel_point(1, None).await,
            Err(ControllerError::Refused(_))
        ),
        "authorising a fuelling pump"
    );
    assert!(delivery.finished().await.is_some());
}

#[tokio::test]
async fn a_customer_hanging_up_before_fuel_flows_leaves_no_sale() {
    let sim = sim();
    sim.lift_nozzle(1, 1).expect("lift");
    sim.hang_up(1).expect("hang up");
    assert_eq!(sim.pumps()[0].state, PumpState::Idle);
    sim.lift_nozzle(1, 1).expect("lift");
    sim.authorise_fuel_point(1, None).await.expect("authorise");
    let delivery = sim.deliver(1, 5_000).expect("deliver");
    assert_eq!(sim.interrupt_delivery(1), Ok(None), "nothing flowed yet");
    assert_eq!(delivery.finished().await, None);
    assert!(sim.sales().is_empty());
    assert_eq!(sim.pumps()[0].state, PumpState::Idle);
}

#[tokio::test]
async fn a_pump_failing_mid_delivery_keeps_the_volume_delivered() {
    let sim = sim();
    sim.lift_nozzle(3, 1).expect("lift");
    sim.authorise_fuel_point(3, None).await.expect("authorise");
    let delivery = sim.deliver(3, 30_000).expect("deliver");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let cut = sim.fail_pump(3, "pulser fault").expect("fail");
    let sale = delivery.finished().await.expect("sale");
    assert_eq!(cut, Some(sale.clone()));
    assert_eq!(sale.volume_ml, 1_000);
    assert_eq!(
        sim.pumps()[2].state,
        PumpState::Error {
            reason: "pulser fault".into()
        }
    );
    sim.repair_pump(3).expect("repair");
    assert_eq!(sim.pumps()[2].state, PumpState::Payable, "its sale waits");
}

#[tokio::test]
async fn a_delivery_ending_while_offline_is_listed_when_back() {
    let sim = sim();
    sim.lift_nozzle(2, 1).expect("lift");
    sim.authorise_fuel_point(2, None).await.expect("authorise");
    let delivery = sim.deliver(2, 4_000).expect("deliver");
    sim.set_offline(true);
    assert!(sim.is_offline());
    let sale = delivery.finished().await.expect("sale");
    assert_eq!(sim.sales(), vec![sale.clone()], "kept while offline");
    assert!(matches!(
        sim.fuel_sale_trxs().await,
        Err(ControllerError::Offline(_))
    ));
    sim.set_offline(false);
    assert_eq!(sim.fuel_sale_trxs().await.expect("list"), vec![sale]);
}

#[tokio::test]
async fn transaction_numbers_and_sales_survive_a_restart_with_a_state_file() {
    tokio::time::pause();
    let dir = tempfile::tempdir().expect("temp dir");
    let with_file = || SimConfig {
        state_file: Some(dir.path().join("forecourt.json")),
        ..config()
    };
    let mut ids = HashSet::new();
    let waiting;
    {
        let sim = ForecourtSim::new(with_file()).expect("simulator");
        for _ in 0..3 {
            let sale = fuel(&sim, 1, None, 1_000).await;
            ids.insert(sale.transaction_id.clone());
            sim.clear_fuel_sale_trx(&sale.transaction_id, "till-A")
                .await
                .expect("clear");
        }
        let sale = fuel(&sim, 1, None, 2_000).await;
        sim.lock_fuel_sale_trx(&sale.transaction_id, "till-A")
            .await
            .expect("lock");
        ids.insert(sale.transaction_id.clone());
        waiting = FuelSaleTrx {
            state: SaleState::Locked {
                by: "till-A".into(),
            },
            ..sale
        };
    }
    let sim = ForecourtSim::new(with_file()).expect("restarted simulator");
    assert_eq!(
        sim.fuel_sale_trxs().await.expect("list"),
        vec![waiting.clone()],
        "the unpaid sale, still locked"
    );
    assert_eq!(sim.pumps()[0].state, PumpState::Payable);
    let next = fuel(&sim, 1, None, 1_000).await;
    assert_eq!(next.transaction_id, "SIM-1-5");
    assert!(ids.insert(next.transaction_id), "a number repeated");
    assert!(
        matches!(
            sim.authorise_fuel_point(1, None).await,
            Err(ControllerError::Refused(_))
        ),
        "two unpaid sales across the restart"
    );

    // Without the state file numbers start over: the file is what keeps them.
    let fresh = ForecourtSim::new(config()).expect("simulator");
    assert_eq!(fuel(&fresh, 1, None, 1_000).await.transaction_id, "SIM-1-1");
}

#[tokio::test]
async fn a_damaged_state_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("forecourt.json");
    std::fs::write(&path, b"{ not json").expect("write");
    match ForecourtSim::new(SimConfig {
        state_file: Some(path.clone()),
        ..config()
    }) {
        Err(e @ SimError::StateFile { .. }) => {
            assert!(e.to_string().contains(&path.display().to_string()), "{e}");
        }
        other => panic!("{other:?}"),
    }
}

/// A POS that authorises every calling pump (alternately with an amount
/// preset) and pays every sale, every 250 ms; the sales it paid, in order.
fn run_pos(sim: &ForecourtSim) -> (tokio::task::JoinHandle<()>, Arc<Mutex<Vec<FuelSaleTrx>>>) {
    let paid = Arc::new(Mutex::new(Vec::new()));
    let (sim, record) = (sim.clone(), Arc::clone(&paid));
    let task = tokio::spawn(async move {
        let mut n = 0u64;
        loop {
            for pump in sim.fp_states().await.expect("states") {
                if matches!(pump.state, PumpState::Calling { .. }) {
                    n += 1;
                    let preset = n
                        .is_multiple_of(2)
                        .then_some(Preset::Amount { minor: 2_500 });
                    sim.authorise_fuel_point(pump.id, preset)
                        .await
                        .expect("authorise");
                }
            }
            for sale in sim.fuel_sale_trxs().await.expect("sales") {
                sim.lock_fuel_sale_trx(&sale.transaction_id, "till-1")
                    .await
                    .expect("lock");
                sim.clear_fuel_sale_trx(&sale.transaction_id, "till-1")
                    .await
                    .expect("clear");
                record.lock().expect("paid").push(sale);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    (task, paid)
}

/// A load run: `pumps` pumps, `per_pump` customers each, a POS paying; all
/// the sales, in the order they were paid.
async fn load_run(seed: u64, pumps: u8, per_pump: u64) -> (Vec<FuelSaleTrx>, u64) {
    let sim = ForecourtSim::new(SimConfig {
        pumps,
        seed,
        ..config()
    })
    .expect("simulator");
    let (pos, paid) = run_pos(&sim);
    let customers = sim
        .start_customers(CustomerConfig {
            pumps: (1..=pumps).collect(),
            customers_per_pump: Some(per_pump),
            ..CustomerConfig::default()
        })
        .expect("customers");
    let stats = customers.finished().await;
    // Let the POS pay the last sales.
    tokio::time::sleep(Duration::from_secs(1)).await;
    pos.abort();
    assert!(sim.sales().is_empty(), "unpaid: {:?}", sim.sales());
    let paid = paid.lock().expect("paid").clone();
    assert_eq!(stats.arrived, u64::from(pumps) * per_pump);
    assert_eq!(stats.served, paid.len() as u64);
    assert_eq!(
        stats.volume_ml,
        paid.iter().map(|s| s.volume_ml).sum::<u64>()
    );
    assert_eq!(
        stats.amount_minor,
        paid.iter().map(|s| s.amount_minor).sum::<u64>()
    );
    (paid, stats.gave_up)
}

#[tokio::test(start_paused = true)]
async fn automatic_customers_run_whole_deliveries_on_many_pumps() {
    let (paid, gave_up) = load_run(7, 12, 25).await;
    assert_eq!(gave_up, 0, "the POS authorises everyone in time");
    assert_eq!(paid.len(), 300);
    let ids: HashSet<&str> = paid.iter().map(|s| s.transaction_id.as_str()).collect();
    assert_eq!(ids.len(), 300, "transaction numbers repeat");
    for sale in &paid {
        assert!((5_000..=60_000).contains(&sale.volume_ml) || sale.amount_minor <= 2_500);
        assert!(sale.amount_minor > 0);
    }
    assert!(
        paid.iter().any(|s| s.amount_minor == 2_500),
        "some customers stopped at the preset"
    );
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_gives_the_same_sales() {
    let first = load_run(42, 6, 10).await;
    let again = load_run(42, 6, 10).await;
    assert_eq!(first, again);
    let other = load_run(43, 6, 10).await;
    assert_ne!(first.0, other.0, "another seed, other customers");
}

#[tokio::test(start_paused = true)]
async fn customers_not_authorised_in_time_give_up() {
    let sim = ForecourtSim::new(config()).expect("simulator");
    let customers = sim
        .start_customers(CustomerConfig {
            pumps: vec![1, 2],
            customers_per_pump: Some(2),
            authorise_timeout: Duration::from_secs(30),
            ..CustomerConfig::default()
        })
        .expect("customers");
    let stats = customers.finished().await;
    assert_eq!((stats.arrived, stats.served, stats.gave_up), (4, 0, 4));
    assert!(sim.pumps().iter().all(|p| p.state == PumpState::Idle));
}

#[tokio::test(start_paused = true)]
async fn stopping_customers_hangs_up_the_waiting_ones() {
    let sim = ForecourtSim::new(config()).expect("simulator");
    let customers = sim
        .start_customers(CustomerConfig {
            pumps: vec![1],
            arrival_gap_ms: 0..=0,
            ..CustomerConfig::default()
        })
        .expect("customers");
    sim.wait_for_state(1, |s| matches!(s, PumpState::Calling { .. }))
        .await
        .expect("a customer calls");
    let stats = customers.stop().await;
    assert_eq!((stats.arrived, stats.served), (1, 0));
    assert_eq!(sim.pumps()[0].state, PumpState::Idle);
    assert_eq!(
        sim.start_customers(CustomerConfig {
            pumps: vec![9],
            ..CustomerConfig::default()
        })
        .err(),
        Some(SimError::UnknownPump(9))
    );
}
