//! The forecourt model (IFSF FDC-POS vocabulary where it fits) and the port of
//! the fuel controller.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A fuel point (pump) number, 1-based as on the forecourt.
pub type PumpId = u8;
/// A nozzle number on its pump, 1-based.
pub type NozzleId = u8;

/// A fuel grade and its price.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Grade {
    /// The grade's product id, e.g. `FUEL-U95`.
    pub id: String,
    pub name: String,
    /// Price per litre, in minor units of the currency.
    pub price_per_litre_minor: u64,
}

impl Grade {
    /// The amount of `volume_ml` of this grade, in minor units: volume (ml)
    /// x price per litre / 1000, rounded to the nearest minor unit, halves up
    /// (1 ml at 199 per litre is 0.199 -> 0; 250 ml at 198 per litre is 49.5 -> 50).
    pub fn amount_for(&self, volume_ml: u64) -> u64 {
        let exact = u128::from(volume_ml) * u128::from(self.price_per_litre_minor);
        u64::try_from((exact + 500) / 1000).unwrap_or(u64::MAX)
    }
}

/// A nozzle and the grade it delivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Nozzle {
    pub id: NozzleId,
    pub grade: String,
}

/// A limit on a delivery set when authorising.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Preset {
    Amount { minor: u64 },
    Volume { ml: u64 },
}

/// The state of a fuel point (`GetFPState`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum PumpState {
    Idle,
    /// A nozzle is lifted: the customer waits for authorisation.
    Calling {
        nozzle: NozzleId,
    },
    Authorised {
        preset: Option<Preset>,
    },
    Fuelling {
        nozzle: NozzleId,
        volume_ml: u64,
        amount_minor: u64,
    },
    /// The delivery ended; its sale waits for payment (the pump may still
    /// have a second sale buffered).
    Payable,
    /// Closed by the forecourt operator.
    Locked,
    Error {
        reason: String,
    },
}

impl PumpState {
    /// Whether a switch of the SpaceFuel service must wait for this pump.
    pub fn is_busy(&self) -> bool {
        matches!(
            self,
            PumpState::Authorised { .. } | PumpState::Fuelling { .. }
        )
    }
}

/// A fuel point as the model knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pump {
    pub id: PumpId,
    pub nozzles: Vec<Nozzle>,
    pub state: PumpState,
}

/// Where a finished delivery's sale stands in the controller's sale buffer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum SaleState {
    /// Waiting for payment.
    Payable,
    /// A till is taking payment for it (`LockFuelSaleTrx`).
    Locked { by: String },
    /// Paid and cleared (`ClearFuelSaleTrx`): gone from the buffer.
    Cleared,
}

/// A finished delivery (`FuelSaleTrx`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FuelSaleTrx {
    /// The controller's transaction number, unique per controller, e.g. `FDC-4-771`.
    pub transaction_id: String,
    pub pump: PumpId,
    pub nozzle: NozzleId,
    pub grade: String,
    pub volume_ml: u64,
    /// [`Grade::amount_for`] the volume, at the grade's price of the delivery.
    pub amount_minor: u64,
    pub currency: String,
    pub completed_at: DateTime<Utc>,
    pub state: SaleState,
}

/// At most this many unpaid sales per pump: a third delivery is not authorised.
pub const MAX_UNPAID_SALES_PER_PUMP: usize = 2;

/// The namespace of fuel sale operation ids (UUID v5 of the controller's
/// transaction number): the same delivery always gives the same id, so a
/// write retried after a crash cannot double the sale.
pub const FUEL_SALE_NAMESPACE: Uuid = Uuid::from_u128(0x5ace_f0e1_0000_4000_8000_5a1e_0000_0001);

impl FuelSaleTrx {
    /// The outbox operation id of this delivery.
    pub fn operation_id(&self) -> Uuid {
        Uuid::new_v5(&FUEL_SALE_NAMESPACE, self.transaction_id.as_bytes())
    }
}

/// Why a controller call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ControllerError {
    /// The controller does not answer (cable, power, network).
    #[error("the fuel controller is offline: {0}")]
    Offline(String),
    /// The request is not allowed in the pump's state (e.g. authorising a pump
    /// with two unpaid sales, clearing a sale locked by another till).
    #[error("refused by the fuel controller: {0}")]
    Refused(String),
    #[error("pump {0} does not exist")]
    UnknownPump(PumpId),
    #[error("fuel sale {0} does not exist")]
    UnknownSale(String),
}

/// The fuel controller (forecourt controller), IFSF FDC-POS style.
///
/// Contract (checked by `spacepos_testkit::suites::forecourt`; every adapter,
/// the simulator and any future real one, must pass it):
/// - `fp_states` lists every pump with its state (`GetFPState`).
/// - `authorise_fuel_point` moves a calling or idle pump to authorised (with an
///   optional preset); it is refused with [`MAX_UNPAID_SALES_PER_PUMP`] unpaid
///   sales on the pump, or when the pump is locked or in error.
/// - A delivery that ends becomes a [`FuelSaleTrx`] in state `Payable`, listed
///   by `fuel_sale_trxs` until it is cleared; a preset is never exceeded. Its
///   amount is [`Grade::amount_for`] its volume.
/// - `lock_fuel_sale_trx` locks a payable sale for one till; `clear_fuel_sale_trx`
///   removes a sale locked by that till (or a payable one); a sale locked by
///   another till is refused. Locking or clearing a sale that is not in the
///   buffer (never was, or already cleared) is [`ControllerError::UnknownSale`];
///   a pump that does not exist is [`ControllerError::UnknownPump`].
/// - While offline every call is [`ControllerError::Offline`]; nothing is lost:
///   sales finished before are listed again once it is back.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ForecourtController: Send + Sync + 'static {
    async fn fp_states(&self) -> Result<Vec<Pump>, ControllerError>;
    async fn grades(&self) -> Result<Vec<Grade>, ControllerError>;
    async fn authorise_fuel_point(
        &self,
        pump: PumpId,
        preset: Option<Preset>,
    ) -> Result<(), ControllerError>;
    async fn fuel_sale_trxs(&self) -> Result<Vec<FuelSaleTrx>, ControllerError>;
    async fn lock_fuel_sale_trx(
        &self,
        transaction_id: &str,
        till: &str,
    ) -> Result<(), ControllerError>;
    async fn clear_fuel_sale_trx(
        &self,
        transaction_id: &str,
        till: &str,
    ) -> Result<(), ControllerError>;
}
