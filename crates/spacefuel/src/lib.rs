//! SpaceFuel, the forecourt extension: its blue/green installation and its
//! forecourt model.
//!
//! Owns the two slots `extensions/spacefuel/{blue,green}` (staging a verified
//! artifact into the inactive slot, switching at a safe point with every step
//! journaled in `state.json`, a health check within a grace period, automatic
//! rollback, and recovery after a crash at any step), and the forecourt
//! (pumps, nozzles, grades, pump states, authorisation with presets, the sale
//! buffer; every finished delivery written to the shared store as a
//! `fuel.sale.completed` outbox operation, with an id derived from the
//! controller's transaction number, before anyone can clear it).
//!
//! Ports declared here: [`ServiceManager`] (the Windows SCM or a process
//! supervisor: `spacepos-windows-scm`), [`SlotFs`] (`spacepos-fs`),
//! [`ForecourtController`] (the forecourt simulator, and future real
//! controllers) and [`HealthProbe`].

mod forecourt;
mod installer;
mod sales;
mod slots;
mod switch;

pub use forecourt::{
    ControllerError, FUEL_SALE_NAMESPACE, ForecourtController, FuelSaleTrx, Grade,
    MAX_UNPAID_SALES_PER_PUMP, Nozzle, NozzleId, Preset, Pump, PumpId, PumpState, SaleState,
};
pub use slots::{
    HEALTH_FILE, HealthProbe, HealthReport, SLOT_MANIFEST_FILE, ServiceError, ServiceManager,
    ServiceState, SlotError, SlotFs, SlotManifest,
};

pub use installer::{ForecourtSafePoint, REPORT_STALE_AFTER, SpaceFuelInstaller, forecourt_busy};
pub use sales::{FUEL_SALE_COMPLETED, FuelSaleError, FuelSales, SalesPass, fuel_sale_operation};
pub use switch::{
    Recovery, SwitchError, SwitchObserver, SwitchOutcome, SwitchPoint, SwitchPorts, SwitchSettings,
    Switcher,
};

#[cfg(any(test, feature = "mocks"))]
pub use forecourt::MockForecourtController;
#[cfg(any(test, feature = "mocks"))]
pub use slots::{MockHealthProbe, MockServiceManager, MockSlotFs};
