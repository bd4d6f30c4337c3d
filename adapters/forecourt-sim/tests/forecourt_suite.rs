//! The `ForecourtController` contract suite against the simulator, on paused
//! tokio time: in memory, and with a state file.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use spacepos_forecourt_sim::{Delivery, ForecourtSim, SimConfig};
use spacepos_spacefuel::{NozzleId, PumpId};
use spacepos_testkit::suites::forecourt::ForecourtDriver;
use tempfile::TempDir;

/// The simulator's test rig: its simulation controls behind the suite's
/// driver.
#[derive(Debug)]
struct SimRig {
    sim: ForecourtSim,
    deliveries: Mutex<HashMap<PumpId, Delivery>>,
    _dir: Option<TempDir>,
}

#[async_trait]
impl ForecourtDriver for SimRig {
    async fn lift_nozzle(&self, pump: PumpId, nozzle: NozzleId) {
        self.sim.lift_nozzle(pump, nozzle).expect("lift nozzle");
    }

    async fn start_delivery(&self, pump: PumpId, volume_ml: u64) {
        let delivery = self.sim.deliver(pump, volume_ml).expect("deliver");
        self.deliveries
            .lock()
            .expect("deliveries")
            .insert(pump, delivery);
    }

    async fn wait_delivery_end(&self, pump: PumpId) {
        let delivery = self
            .deliveries
            .lock()
            .expect("deliveries")
            .remove(&pump)
            .unwrap_or_else(|| panic!("no delivery was started on pump {pump}"));
        delivery.finished().await;
    }

    async fn interrupt_delivery(&self, pump: PumpId) {
        self.sim.interrupt_delivery(pump).expect("interrupt");
        self.deliveries.lock().expect("deliveries").remove(&pump);
    }

    async fn set_offline(&self, offline: bool) {
        self.sim.set_offline(offline);
    }

    async fn fail_pump(&self, pump: PumpId, reason: &str) {
        self.sim.fail_pump(pump, reason).expect("fail pump");
    }

    async fn close_pump(&self, pump: PumpId, closed: bool) {
        self.sim.set_pump_closed(pump, closed).expect("close pump");
    }
}

async fn rig(with_state_file: bool) -> (ForecourtSim, SimRig) {
    tokio::time::pause();
    let dir = with_state_file.then(|| tempfile::tempdir().expect("temp dir"));
    let started_at: DateTime<Utc> = "2025-06-01T06:00:00Z".parse().expect("time");
    let sim = ForecourtSim::new(SimConfig {
        started_at: Some(started_at),
        state_file: dir.as_ref().map(|d| d.path().join("forecourt.json")),
        ..SimConfig::default()
    })
    .expect("simulator");
    let rig = SimRig {
        sim: sim.clone(),
        deliveries: Mutex::default(),
        _dir: dir,
    };
    (sim, rig)
}

mod in_memory {
    spacepos_testkit::forecourt_suite!(super::rig(false));
}

mod with_state_file {
    spacepos_testkit::forecourt_suite!(super::rig(true));
}
