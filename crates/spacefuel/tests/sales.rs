//! Fuel sales reach the outbox before they are cleared, once each.
#![allow(clippy::unwrap_used)] // test code

use std::sync::{Arc, Mutex};

use chrono::{TimeZone, Utc};
use spacepos_spacefuel::{
    FUEL_SALE_COMPLETED, FuelSaleError, FuelSaleTrx, FuelSales, MockForecourtController, SaleState,
};
use spacepos_sync::Destination;
use spacepos_testkit::fakes::MemoryOutbox;

fn sale(n: u32, state: SaleState) -> FuelSaleTrx {
    FuelSaleTrx {
        transaction_id: format!("FDC-4-{n}"),
        pump: 4,
        nozzle: 1,
        grade: "FUEL-U95".into(),
        volume_ml: 32_150,
        amount_minor: 4_691,
        currency: "GBP".into(),
        completed_at: Utc.with_ymd_and_hms(2026, 11, 24, 8, 16, 40).unwrap(),
        state,
    }
}

/// A controller whose buffer holds `sales` until they are cleared.
fn controller(sales: Vec<FuelSaleTrx>) -> (MockForecourtController, Arc<Mutex<Vec<FuelSaleTrx>>>) {
    let buffer = Arc::new(Mutex::new(sales));
    let mut c = MockForecourtController::new();
    let b = buffer.clone();
    c.expect_fuel_sale_trxs()
        .returning(move || Ok(b.lock().unwrap().clone()));
    let b = buffer.clone();
    c.expect_clear_fuel_sale_trx().returning(move |id, _| {
        b.lock().unwrap().retain(|s| s.transaction_id != id);
        Ok(())
    });
    (c, buffer)
}

#[tokio::test]
async fn a_sale_is_written_with_the_contracts_payload_and_an_id_from_its_transaction_number() {
    let (c, _) = controller(vec![sale(771, SaleState::Payable)]);
    let outbox = Arc::new(MemoryOutbox::new());
    let sales = FuelSales::new(Arc::new(c), outbox.clone());
    sales.record().await.unwrap();
    let entries = outbox.entries();
    assert_eq!(entries.len(), 1);
    let op = &entries[0];
    assert_eq!(op.id, sale(771, SaleState::Payable).operation_id());
    assert_eq!(op.kind, FUEL_SALE_COMPLETED);
    assert_eq!(op.destination, Destination::ErpOperations);
    assert_eq!(
        op.payload,
        serde_json::json!({"pump": 4, "nozzle": 1, "grade": "FUEL-U95", "volumeMl": 32150,
            "amountMinor": 4691, "currency": "GBP", "fdcTransactionId": "FDC-4-771"})
    );
    // The same transaction number always gives the same id; another gives another.
    assert_eq!(
        sale(771, SaleState::Payable).operation_id(),
        sale(771, SaleState::Locked { by: "t".into() }).operation_id()
    );
    assert_ne!(
        sale(771, SaleState::Payable).operation_id(),
        sale(772, SaleState::Payable).operation_id()
    );
}

#[tokio::test]
async fn writing_again_after_a_crash_before_the_clear_does_not_double_the_sale() {
    let (c, buffer) = controller(vec![
        sale(1, SaleState::Payable),
        sale(
            2,
            SaleState::Locked {
                by: "till-1".into(),
            },
        ),
    ]);
    let outbox = Arc::new(MemoryOutbox::new());
    let c = Arc::new(c);
    // The first process writes the sales, then "dies" before clearing.
    FuelSales::new(c.clone(), outbox.clone())
        .record()
        .await
        .unwrap();
    // The next one finds them in the buffer again, writes again, settles.
    let pass = FuelSales::new(c.clone(), outbox.clone())
        .pass(Some("spacefuel"))
        .await
        .unwrap();
    assert_eq!(pass.recorded, 2);
    assert_eq!(
        pass.cleared, 1,
        "a sale a till has locked is not cleared by SpaceFuel"
    );
    assert_eq!(outbox.entries().len(), 2, "two sales, each once");
    assert_eq!(buffer.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn a_sale_the_store_cannot_take_is_not_cleared() {
    let (c, buffer) = controller(vec![sale(9, SaleState::Payable)]);
    let outbox = Arc::new(MemoryOutbox::new());
    outbox.set_unavailable(Some("disk full"));
    let sales = FuelSales::new(Arc::new(c), outbox.clone());
    let err = sales.pass(Some("spacefuel")).await.unwrap_err();
    assert!(matches!(err, FuelSaleError::Store(_)), "{err}");
    let err = sales
        .settle(&sale(9, SaleState::Payable), "till-1")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not cleared"), "{err}");
    assert_eq!(
        buffer.lock().unwrap().len(),
        1,
        "still in the controller's buffer"
    );
    outbox.set_unavailable(None);
    sales
        .settle(&sale(9, SaleState::Payable), "till-1")
        .await
        .unwrap();
    assert_eq!(outbox.entries().len(), 1);
    assert!(buffer.lock().unwrap().is_empty());
}
