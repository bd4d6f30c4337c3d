//! Deterministic, plausible entity data: entity `i` of a dataset is a pure
//! function of (seed, dataset name, kind, i), so a dataset of any size is served
//! without being held in memory.

use serde_json::{Map, Value, json};

use crate::config::DatasetKind;
use crate::util::Rng;

const PRODUCT_ADJ: &[&str] = &[
    "Sparkling",
    "Still",
    "Classic",
    "Premium",
    "Organic",
    "Spicy",
    "Salted",
    "Toasted",
    "Fresh",
    "Chilled",
    "Smoked",
    "Roasted",
    "Crunchy",
    "Creamy",
    "Lemon",
    "Cherry",
];
const PRODUCT_NOUN: &[&str] = &[
    "water",
    "cola",
    "crisps",
    "sandwich",
    "coffee",
    "tea",
    "chocolate bar",
    "energy drink",
    "muffin",
    "wrap",
    "screen wash",
    "engine oil",
    "car air freshener",
    "ice scraper",
    "newspaper",
    "flowers",
];
const PRODUCT_SIZE: &[&str] = &[
    "", " 330ml", " 500ml", " 1l", " 40g", " 150g", " large", " small", " 2-pack",
];
const PRODUCT_CAT: &[&str] = &["DRK", "SNK", "FOD", "CAR", "NWS", "GEN"];
const TAX_NAMES: &[(&str, u64)] = &[("Standard", 2000), ("Reduced", 500), ("Zero", 0)];
const PAYMENT_METHODS: &[(&str, &str, bool)] = &[
    ("Cash", "cash", true),
    ("Card", "card", false),
    ("Voucher", "voucher", true),
    ("Fuel card", "fuel_card", false),
    ("Account", "account", false),
    ("Mobile wallet", "card", false),
];
const FIRST_NAMES: &[&str] = &[
    "Amelia", "Oliver", "Isla", "Jack", "Ava", "Harry", "Mia", "George", "Priya", "Tomasz",
    "Chloe", "Kwame",
];
const LAST_NAMES: &[&str] = &[
    "Smith", "Jones", "Taylor", "Brown", "Patel", "Wilson", "Nowak", "Evans", "Khan", "Walker",
    "Hughes", "Mensah",
];
const ROLES: &[&str] = &["cashier", "cashier", "cashier", "supervisor", "manager"];

/// Width of the zero-padded number of product ids that other datasets reference.
const REF_WIDTH: usize = 7;

/// A valid EAN-13 barcode from 12 random digits.
fn ean13(rng: &mut Rng) -> String {
    let mut digits: Vec<u32> = vec![5, 0];
    for _ in 0..10 {
        digits.push((rng.below(10)) as u32);
    }
    let sum: u32 = digits
        .iter()
        .enumerate()
        .map(|(i, d)| if i % 2 == 0 { *d } else { d * 3 })
        .sum();
    digits.push((10 - sum % 10) % 10);
    digits.iter().map(|d| char::from(b'0' + *d as u8)).collect()
}

/// The `data` of entity `index` of a dataset of `kind`, from `rng`.
pub(crate) fn entity_data(
    kind: DatasetKind,
    index: u64,
    store_number: u32,
    rng: &mut Rng,
) -> Value {
    match kind {
        DatasetKind::Products => {
            let cat = *rng.pick(PRODUCT_CAT);
            let name = format!(
                "{} {}{}",
                rng.pick(PRODUCT_ADJ),
                rng.pick(PRODUCT_NOUN),
                rng.pick(PRODUCT_SIZE)
            );
            let barcode = if rng.chance(8) {
                Value::Null
            } else {
                Value::String(ean13(rng))
            };
            json!({
                "name": name,
                "sku": format!("{cat}-{index:05}"),
                "priceMinor": rng.range(49, 4999),
                "taxRateId": format!("T-{:0REF_WIDTH$}", 1 + rng.below(3)),
                "barcode": barcode,
            })
        }
        DatasetKind::Prices => json!({
            "productId": format!("P-{index:0REF_WIDTH$}"),
            "storeNumber": store_number,
            "priceMinor": rng.range(49, 4999),
        }),
        DatasetKind::TaxRates => {
            let (name, bp) = match TAX_NAMES.get((index as usize).wrapping_sub(1)) {
                Some((n, bp)) => ((*n).to_owned(), *bp),
                None => (format!("Special rate {index}"), rng.range(1, 30) * 100),
            };
            json!({ "name": name, "rateBasisPoints": bp })
        }
        DatasetKind::PaymentMethods => {
            let (name, kind, drawer) = match PAYMENT_METHODS.get((index as usize).wrapping_sub(1)) {
                Some((n, k, d)) => ((*n).to_owned(), *k, *d),
                None => (format!("Tender {index}"), "other", rng.chance(50)),
            };
            json!({ "name": name, "kind": kind, "opensDrawer": drawer, "enabled": true })
        }
        DatasetKind::Staff => json!({
            "name": format!("{} {}", rng.pick(FIRST_NAMES), rng.pick(LAST_NAMES)),
            "staffCode": format!("{:04}", index % 10_000),
            "role": rng.pick(ROLES),
        }),
    }
}

/// Base version of a generated entity (1..=5): the ERP has edited some entities before.
pub(crate) fn base_version(rng: &mut Rng) -> u64 {
    1 + rng.below(5)
}

/// An update of existing `data`: what an ERP user would plausibly edit.
pub(crate) fn tweak(kind: DatasetKind, data: &Value, rng: &mut Rng) -> Value {
    let mut map = match data {
        Value::Object(m) => m.clone(),
        _ => Map::new(),
    };
    match kind {
        DatasetKind::Products | DatasetKind::Prices => {
            map.insert("priceMinor".into(), json!(rng.range(49, 4999)));
        }
        DatasetKind::TaxRates => {
            map.insert("rateBasisPoints".into(), json!(rng.range(0, 30) * 100));
        }
        DatasetKind::PaymentMethods => {
            let enabled = map.get("enabled").and_then(Value::as_bool).unwrap_or(true);
            map.insert("enabled".into(), json!(!enabled));
        }
        DatasetKind::Staff => {
            map.insert("role".into(), json!(rng.pick(ROLES)));
        }
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ean13_has_valid_check_digit() {
        let mut rng = Rng::new(&[1]);
        for _ in 0..100 {
            let code = ean13(&mut rng);
            assert_eq!(code.len(), 13);
            let d: Vec<u32> = code.chars().map(|c| c.to_digit(10).unwrap()).collect();
            let sum: u32 = d
                .iter()
                .enumerate()
                .map(|(i, x)| if i % 2 == 0 { *x } else { x * 3 })
                .sum();
            assert_eq!(sum % 10, 0, "{code}");
        }
    }

    #[test]
    fn products_have_the_contract_fields() {
        let data = entity_data(DatasetKind::Products, 7, 12, &mut Rng::new(&[9]));
        for field in ["name", "sku", "priceMinor", "taxRateId", "barcode"] {
            assert!(data.get(field).is_some(), "{field} missing in {data}");
        }
    }
}
