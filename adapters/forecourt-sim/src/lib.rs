//! The forecourt simulator: an in-process fuel controller for development,
//! demos, tests and load tests, implementing the SpaceFuel port
//! [`spacepos_spacefuel::ForecourtController`] (IFSF FDC-POS style).
//!
//! It owns a simulated forecourt ([`SimConfig`]): `pumps` pumps of
//! `nozzles_per_pump` nozzles, the grades and their prices, the currency and
//! the flow rate. A nozzle lift makes an idle pump `Calling`;
//! `authorise_fuel_point` (with an optional preset) makes it `Authorised`;
//! the customer fuels and the pump is `Fuelling`, volume and amount growing at
//! `flow_ml_per_s` on tokio time (so tests pause time and run a day of
//! deliveries in milliseconds); the delivery ends at the customer's volume or
//! at the preset, whichever comes first (an amount preset stops at the
//! largest volume whose amount stays within it), and becomes a payable
//! [`FuelSaleTrx`](spacepos_spacefuel::FuelSaleTrx) numbered
//! `<prefix>-<pump>-<counter>`. The pump then shows `Payable` while sales of
//! it wait in the buffer and `Idle` once they are cleared; with
//! [`MAX_UNPAID_SALES_PER_PUMP`](spacepos_spacefuel::MAX_UNPAID_SALES_PER_PUMP)
//! unpaid sales the pump is not authorised. Amounts follow
//! [`Grade::amount_for`](spacepos_spacefuel::Grade::amount_for) (nearest minor
//! unit, halves up). Sales are listed oldest first; a lock by one till
//! refuses the other tills' locks and clears.
//!
//! With a `state_file` the transaction counters and the sale buffer survive
//! a restart of the simulator, so numbers never repeat and no sale is lost.
//! With the same `seed` and paused tokio time, runs are identical.
//!
//! Simulation controls (inherent methods of [`ForecourtSim`], not the port):
//! - customers: [`lift_nozzle`](ForecourtSim::lift_nozzle),
//!   [`deliver`](ForecourtSim::deliver) (returns a [`Delivery`] to await),
//!   [`interrupt_delivery`](ForecourtSim::interrupt_delivery) (ends early with
//!   the volume so far), [`hang_up`](ForecourtSim::hang_up), and
//!   [`start_customers`](ForecourtSim::start_customers): automatic customers
//!   running whole deliveries (lift, wait for the authorisation, fuel, hang
//!   up) on many pumps, for load tests ([`CustomerConfig`], [`Customers`]);
//! - faults: [`set_offline`](ForecourtSim::set_offline) (every port call is
//!   `Offline`, the forecourt goes on and nothing is lost),
//!   [`fail_pump`](ForecourtSim::fail_pump) / [`repair_pump`](ForecourtSim::repair_pump)
//!   (state `Error`), [`set_pump_closed`](ForecourtSim::set_pump_closed)
//!   (state `Locked`);
//! - observation regardless of the offline switch: [`pumps`](ForecourtSim::pumps),
//!   [`sales`](ForecourtSim::sales), [`wait_for_state`](ForecourtSim::wait_for_state).
//!
//! The contract suite `spacepos_testkit::suites::forecourt` runs against it
//! (`tests/forecourt_suite.rs`). It runs in the caller's process and Tokio
//! runtime only.

mod config;
mod customers;
mod persist;
mod sim;

pub use config::{CustomerConfig, SimConfig, SimError};
pub use customers::{CustomerStats, Customers};
pub use sim::{Delivery, ForecourtSim};
