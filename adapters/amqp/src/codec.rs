//! [`WireDecoder`]: the consumed events' wire format (PascalCase JSON, through
//! `spacepos-erp-wire`) mapped to the domain's [`BusEvent`].

use serde::de::DeserializeOwned;
use spacepos_erp_wire::events::{
    DatasetChangedIntegrationEvent, IntegrationEvent, PosPresenceIntervalUpdatedIntegrationEvent,
    PosReleasePublishedIntegrationEvent,
};
use spacepos_sync::{BusEvent, DatasetEvent, Delivery, Entity, EventDecoder, Undecodable};

/// Decodes the events a terminal consumes (contract section 7). Implements
/// [`EventDecoder`] for the sync domain's inbox.
#[derive(Debug, Clone, Copy, Default)]
pub struct WireDecoder;

fn parse<T: DeserializeOwned>(d: &Delivery) -> Result<T, Undecodable> {
    serde_json::from_slice(&d.body).map_err(|e| {
        // serde_json's message names the field and position, never the content.
        Undecodable(format!("not a valid {} body: {e}", d.event_type))
    })
}

impl EventDecoder for WireDecoder {
    fn decode(&self, d: &Delivery) -> Result<BusEvent, Undecodable> {
        match d.event_type.as_str() {
            DatasetChangedIntegrationEvent::NAME => {
                let e: DatasetChangedIntegrationEvent = parse(d)?;
                if e.dataset.trim().is_empty() {
                    return Err(Undecodable(
                        "a DatasetChangedIntegrationEvent without a Dataset".into(),
                    ));
                }
                if e.sequence == 0 {
                    return Err(Undecodable(
                        "a DatasetChangedIntegrationEvent with Sequence 0".into(),
                    ));
                }
                // The ERP is .NET: sequences and versions are `long`; beyond that is not a real event.
                let limit = i64::MAX as u64;
                if e.sequence > limit || e.items.iter().any(|i| i.version > limit) {
                    return Err(Undecodable(
                        "a DatasetChangedIntegrationEvent with a Sequence or Version beyond a 64-bit signed integer"
                            .into(),
                    ));
                }
                Ok(BusEvent::DatasetChanged(DatasetEvent {
                    event_id: e.id,
                    dataset: e.dataset,
                    sequence: e.sequence,
                    items: e
                        .items
                        .into_iter()
                        .map(|i| Entity {
                            id: i.id,
                            version: i.version,
                            deleted: i.deleted,
                            data: i.data,
                        })
                        .collect(),
                }))
            }
            PosPresenceIntervalUpdatedIntegrationEvent::NAME => {
                let e: PosPresenceIntervalUpdatedIntegrationEvent = parse(d)?;
                Ok(BusEvent::PresenceIntervalUpdated {
                    event_id: e.id,
                    client_id: e.client_id,
                    store_number: e.store_number,
                    interval_seconds: e.presence_interval_seconds,
                    report_presence: e.report_presence,
                })
            }
            PosReleasePublishedIntegrationEvent::NAME => {
                let e: PosReleasePublishedIntegrationEvent = parse(d)?;
                Ok(BusEvent::ReleasePublished {
                    event_id: e.id,
                    component: e.component.parse().ok(),
                    version: e.version,
                    store_number: e.store_number,
                })
            }
            other => Err(Undecodable(format!(
                "{other:?} is not an event this terminal consumes"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use spacepos_sync::DeliveryTag;

    use super::*;

    fn delivery(event_type: &str, body: &str) -> Delivery {
        Delivery {
            tag: DeliveryTag {
                connection: 1,
                tag: 1,
            },
            event_type: event_type.into(),
            message_id: None,
            body: body.as_bytes().to_vec(),
            redelivered: false,
        }
    }

    fn example(name: &str) -> String {
        let path = format!(
            "{}/../../docs/contract/examples/{name}.json",
            env!("CARGO_MANIFEST_DIR")
        );
        std::fs::read_to_string(path).expect("example")
    }

    #[test]
    fn every_consumed_example_decodes() {
        for name in spacepos_erp_wire::events::CONSUMED_EVENTS {
            let event = WireDecoder.decode(&delivery(name, &example(name)));
            assert!(event.is_ok(), "{name}: {event:?}");
        }
        match WireDecoder.decode(&delivery(
            "DatasetChangedIntegrationEvent",
            &example("DatasetChangedIntegrationEvent"),
        )) {
            Ok(BusEvent::DatasetChanged(e)) => {
                assert_eq!(
                    (e.dataset.as_str(), e.sequence, e.items.len()),
                    ("prices", 5531, 1)
                );
                assert_eq!(e.items[0].version, 31);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn poison_is_undecodable_with_a_reason_and_without_the_body() {
        let secret_body = r#"{"Id": "not-a-guid", "ClientSecret": "hunter2"}"#;
        let e = WireDecoder
            .decode(&delivery("DatasetChangedIntegrationEvent", secret_body))
            .unwrap_err();
        assert!(e.0.contains("DatasetChangedIntegrationEvent"), "{e}");
        assert!(!e.0.contains("hunter2"), "{e}");
        assert!(
            WireDecoder
                .decode(&delivery("DatasetChangedIntegrationEvent", "{not json"))
                .is_err()
        );
        assert!(
            WireDecoder
                .decode(&delivery("SomethingElse", "{}"))
                .unwrap_err()
                .0
                .contains("not an event")
        );
        let no_dataset = example("DatasetChangedIntegrationEvent").replace("\"prices\"", "\"\"");
        assert!(
            WireDecoder
                .decode(&delivery("DatasetChangedIntegrationEvent", &no_dataset))
                .is_err()
        );
    }
}

#[cfg(test)]
mod range_tests {
    use spacepos_sync::DeliveryTag;

    use super::*;

    #[test]
    fn numbers_beyond_a_signed_64_bit_integer_are_undecodable() {
        let base: serde_json::Value = serde_json::from_str(include_str!(
            "../../../docs/contract/examples/DatasetChangedIntegrationEvent.json"
        ))
        .unwrap();
        for field in ["Sequence", "Version"] {
            let mut v = base.clone();
            if field == "Sequence" {
                v["Sequence"] = serde_json::json!(1u64 << 63);
            } else {
                v["Items"][0]["Version"] = serde_json::json!(1u64 << 63);
            }
            let d = Delivery {
                tag: DeliveryTag {
                    connection: 1,
                    tag: 1,
                },
                event_type: "DatasetChangedIntegrationEvent".into(),
                message_id: None,
                body: serde_json::to_vec(&v).unwrap(),
                redelivered: false,
            };
            let r = WireDecoder.decode(&d);
            assert!(r.is_err(), "{field}: {r:?}");
        }
    }
}
