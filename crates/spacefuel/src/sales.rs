//! Fuel sales into the shared store: every finished delivery in the
//! controller's sale buffer becomes a `fuel.sale.completed` outbox operation
//! before anyone may clear it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use spacepos_sync::{Destination, NewOperation, Outbox, StoreError};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::forecourt::{ControllerError, ForecourtController, FuelSaleTrx, SaleState};

/// The operation type of a fuel sale (contract section 4).
pub const FUEL_SALE_COMPLETED: &str = "fuel.sale.completed";

/// Why recording or settling a fuel sale failed.
#[derive(Debug, thiserror::Error)]
pub enum FuelSaleError {
    #[error(transparent)]
    Controller(#[from] ControllerError),
    /// The sale could not be written to the shared store: it was NOT cleared
    /// and stays in the controller's buffer.
    #[error("the fuel sale could not be stored, so it was not cleared: {0}")]
    Store(#[from] StoreError),
}

/// The outbox operation of a finished delivery. Its id is derived from the
/// controller's transaction number and its payload from the sale alone, so
/// writing the same sale again (after a crash) is a no-op, never a second sale.
pub fn fuel_sale_operation(sale: &FuelSaleTrx) -> NewOperation {
    NewOperation {
        id: sale.operation_id(),
        destination: Destination::ErpOperations,
        kind: FUEL_SALE_COMPLETED.to_string(),
        occurred_at: sale.completed_at,
        store_staff_id: None,
        payload: json!({
            "pump": sale.pump,
            "nozzle": sale.nozzle,
            "grade": sale.grade,
            "volumeMl": sale.volume_ml,
            "amountMinor": sale.amount_minor,
            "currency": sale.currency,
            "fdcTransactionId": sale.transaction_id,
        }),
    }
}

/// Records fuel sales, and settles them where SpaceFuel takes the payment
/// itself (an outdoor payment terminal, a site without a till).
pub struct FuelSales {
    controller: Arc<dyn ForecourtController>,
    outbox: Arc<dyn Outbox>,
}

impl std::fmt::Debug for FuelSales {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FuelSales").finish_non_exhaustive()
    }
}

/// What one pass over the sale buffer did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SalesPass {
    /// Sales in the buffer, all of them now in the outbox.
    pub recorded: usize,
    /// Sales cleared from the buffer (auto-settle only).
    pub cleared: usize,
}

impl FuelSales {
    pub fn new(controller: Arc<dyn ForecourtController>, outbox: Arc<dyn Outbox>) -> Self {
        FuelSales { controller, outbox }
    }

    /// Write every sale of the buffer to the outbox (already written ones are
    /// left as they are). Returns the sales seen.
    pub async fn record(&self) -> Result<Vec<FuelSaleTrx>, FuelSaleError> {
        let sales = self.controller.fuel_sale_trxs().await?;
        if !sales.is_empty() {
            let ops: Vec<NewOperation> = sales.iter().map(fuel_sale_operation).collect();
            self.outbox.enqueue(&ops).await?;
        }
        Ok(sales)
    }

    /// Settle a paid sale: make sure it is in the outbox, then clear it from
    /// the controller as `till`. A sale the store could not take is not cleared.
    pub async fn settle(&self, sale: &FuelSaleTrx, till: &str) -> Result<(), FuelSaleError> {
        self.outbox.enqueue(&[fuel_sale_operation(sale)]).await?;
        self.controller
            .clear_fuel_sale_trx(&sale.transaction_id, till)
            .await?;
        Ok(())
    }

    /// One pass: record the buffer; with `auto_settle_as`, clear the payable
    /// sales (not those a till has locked) once recorded.
    pub async fn pass(&self, auto_settle_as: Option<&str>) -> Result<SalesPass, FuelSaleError> {
        let sales = self.record().await?;
        let mut pass = SalesPass {
            recorded: sales.len(),
            cleared: 0,
        };
        if let Some(till) = auto_settle_as {
            for sale in sales.iter().filter(|s| s.state == SaleState::Payable) {
                match self
                    .controller
                    .clear_fuel_sale_trx(&sale.transaction_id, till)
                    .await
                {
                    Ok(()) => pass.cleared += 1,
                    Err(ControllerError::UnknownSale(_)) => {} // cleared meanwhile
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(pass)
    }

    /// Until `shutdown`: a pass every `every`. Errors are logged once per
    /// outage and retried; nothing is cleared that is not stored.
    pub async fn run(
        self,
        shutdown: CancellationToken,
        every: Duration,
        auto_settle_as: Option<String>,
    ) {
        let mut failing: Option<String> = None;
        loop {
            match self.pass(auto_settle_as.as_deref()).await {
                Ok(_) => {
                    if let Some(e) = failing.take() {
                        info!(previous = %e, "fuel sales are recorded again");
                    }
                }
                Err(e) => {
                    let text = e.to_string();
                    if failing.is_none() {
                        warn!(error = %text, "fuel sales cannot be recorded now; retrying every {} ms", every.as_millis());
                    }
                    failing = Some(text);
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}
