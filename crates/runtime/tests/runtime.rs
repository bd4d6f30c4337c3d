//! The runtime's loops together, on the in-memory fakes, with paused time.

#![allow(clippy::unwrap_used)] // test code

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use spacepos_amqp::WireDecoder;
use spacepos_config::{ConfigStateStore, keys};
use spacepos_core::RemoteError;
use spacepos_runtime::{BusPorts, Runtime, RuntimeSettings, SyncPorts};
use spacepos_sync::{Destination, LocalStore, NewOperation, OperationState, Outbox};
use spacepos_testkit::fakes::{
    MemoryBus, MemoryConfigState, MemoryDatasets, MemoryLocalStore, MemoryOperations, MemoryOutbox,
    OperationsFault,
};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

struct Node {
    datasets: MemoryDatasets,
    operations: MemoryOperations,
    store: MemoryLocalStore,
    outbox: MemoryOutbox,
    state: MemoryConfigState,
    bus: MemoryBus,
}

impl Node {
    fn new() -> Node {
        let datasets = MemoryDatasets::new();
        datasets.add_generated("products", 20, 100);
        Node {
            datasets,
            operations: MemoryOperations::new(),
            store: MemoryLocalStore::new(),
            outbox: MemoryOutbox::new(),
            state: MemoryConfigState::new(),
            bus: MemoryBus::new(),
        }
    }

    fn runtime(&self, settings: RuntimeSettings) -> Runtime {
        Runtime::new(
            SyncPorts {
                datasets: Arc::new(self.datasets.clone()),
                operations: Arc::new(self.operations.clone()),
                store: Arc::new(self.store.clone()),
                outbox: Arc::new(self.outbox.clone()),
                config_state: Arc::new(self.state.clone()),
                onboarding: None,
                clock: Arc::new(spacepos_testkit::fakes::TokioClock::starting_at(
                    chrono::Utc::now(),
                )),
                bus: Some(BusPorts {
                    subscriber: Arc::new(self.bus.clone()),
                    publisher: Arc::new(self.bus.clone()),
                    decoder: Arc::new(WireDecoder),
                }),
                presence: None,
                updates: None,
            },
            settings,
        )
    }

    /// Publish the ERP's event of change `sequence` on the bus.
    fn publish_event(&self, sequence: u64) {
        let e = self.datasets.event("products", sequence).unwrap();
        let wire = spacepos_erp_wire::events::DatasetChangedIntegrationEvent {
            id: e.event_id,
            creation_date: Utc::now(),
            dataset: e.dataset,
            sequence: e.sequence,
            store_number: None,
            items: e
                .items
                .into_iter()
                .map(|i| spacepos_erp_wire::events::DatasetChangedItem {
                    id: i.id,
                    version: i.version,
                    deleted: i.deleted,
                    data: i.data,
                })
                .collect(),
        };
        self.bus.erp_publish(
            "DatasetChangedIntegrationEvent",
            &e.event_id.to_string(),
            &serde_json::to_vec(&wire).unwrap(),
        );
    }
}

pub(crate) const SETTINGS: RuntimeSettings = RuntimeSettings {
    ingest_enabled: true,
    send_enabled: true,
    ingest_every: Duration::from_secs(600),
    send_every: Duration::from_secs(5),
    retry: Duration::from_secs(60),
};

fn sale() -> NewOperation {
    NewOperation {
        id: Uuid::new_v4(),
        destination: Destination::ErpOperations,
        kind: "sale.completed".into(),
        occurred_at: Utc::now(),
        store_staff_id: None,
        payload: serde_json::json!({"totalMinor": 100}),
    }
}

#[tokio::test(start_paused = true)]
async fn a_gap_in_live_events_triggers_a_catch_up_without_waiting_for_the_ingest_timer() {
    let node = Node::new();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(node.runtime(SETTINGS).run(shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        node.store
            .checkpoint("products")
            .await
            .unwrap()
            .last_sequence,
        Some(100),
        "seeded at start"
    );

    node.datasets
        .update("products", "PRODUCTS-0000001", serde_json::json!({"p": 1}));
    node.datasets
        .update("products", "PRODUCTS-0000002", serde_json::json!({"p": 2}));
    node.datasets
        .update("products", "PRODUCTS-0000003", serde_json::json!({"p": 3}));
    node.publish_event(103); // 101 and 102 never arrive
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        node.store
            .checkpoint("products")
            .await
            .unwrap()
            .last_sequence,
        Some(103),
        "caught up within seconds, not 600 s"
    );
    let local = node.store.entities("products", None, 100).await.unwrap();
    assert_eq!(
        local,
        node.datasets
            .final_state("products")
            .into_values()
            .collect::<Vec<_>>()
    );
    assert!(
        node.state
            .get(keys::LAST_EVENT_APPLIED_AT)
            .await
            .unwrap()
            .is_some()
    );
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn queued_operations_go_out_every_send_frequency_and_survive_an_outage() {
    let node = Node::new();
    node.operations
        .fault_next([OperationsFault::Fail(RemoteError::Server {
            host: "erp".into(),
            status: 503,
            code: None,
        })]);
    node.outbox.enqueue(&[sale(), sale()]).await.unwrap();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(node.runtime(SETTINGS).run(shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(
        node.operations.accepted().is_empty(),
        "the first push failed; the retry waits ~60 s"
    );
    assert_eq!(node.outbox.stats().await.unwrap().pending, 2);
    tokio::time::sleep(Duration::from_secs(80)).await;
    assert_eq!(node.operations.accepted().len(), 2);
    node.outbox.enqueue(&[sale()]).await.unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        node.operations.accepted().len(),
        3,
        "picked up within send_frequency"
    );
    let done = node
        .outbox
        .list(Some(OperationState::Done), 10)
        .await
        .unwrap();
    assert_eq!(done.len(), 3);
    shutdown.cancel();
    task.await.unwrap().unwrap();
    let last = node.state.get(keys::LAST_SEND).await.unwrap().unwrap();
    assert_eq!(last["ok"], true, "{last}");
}

#[tokio::test(start_paused = true)]
async fn a_401_stops_device_calls_and_is_recorded_for_status() {
    let node = Node::new();
    node.operations
        .fault_next([OperationsFault::Fail(RemoteError::Unauthorized {
            host: "erp".into(),
        })]);
    node.outbox.enqueue(&[sale()]).await.unwrap();
    let shutdown = CancellationToken::new();
    let runtime = node.runtime(RuntimeSettings {
        ingest_enabled: false,
        ..SETTINGS
    });
    let gate = runtime.gate();
    let task = tokio::spawn(runtime.run(shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(300)).await;
    assert!(gate.is_closed());
    assert_eq!(node.operations.batches().len(), 1, "no call after the 401");
    assert_eq!(
        node.state.get(keys::REONBOARDING_NEEDED).await.unwrap(),
        Some(serde_json::json!(true))
    );
    assert_eq!(
        node.outbox.stats().await.unwrap().pending,
        1,
        "kept for after re-onboarding"
    );
    shutdown.cancel();
    task.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn shutdown_stops_every_loop_and_records_the_bus_as_stopped() {
    let node = Node::new();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(node.runtime(SETTINGS).run(shutdown.clone()));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let bus = node.state.get(keys::BUS).await.unwrap().unwrap();
    assert_eq!(bus["connected"], true, "{bus}");
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("stops promptly")
        .unwrap()
        .unwrap();
    let bus = node.state.get(keys::BUS).await.unwrap().unwrap();
    assert_eq!(bus["connected"], false, "{bus}");
}

// ---- presence through the runtime ----------------------------------------

mod presence {
    use std::sync::Arc;
    use std::time::Duration;

    use async_trait::async_trait;
    use spacepos_amqp::{WireDecoder, WirePresenceEncoder};
    use spacepos_auth::{Onboarding, OnboardingApi, OnboardingRequest};
    use spacepos_config::{ConfigStateStore, TerminalConfigStore, keys};
    use spacepos_core::{ClientInfo, ComponentId, Product, SystemClock};
    use spacepos_erp_wire::events::PosPresenceEvent;
    use spacepos_presence::{
        ComponentReport, ComponentState, ComponentStatusSource, PresenceControl, PresenceSettings,
        StaffSessionSource,
    };
    use spacepos_runtime::{BusPorts, PresencePorts, Runtime, SyncPorts};
    use spacepos_testkit::fakes::{
        MemoryBus, MemoryConfigState, MemoryDatasets, MemoryErp, MemoryLocalStore,
        MemoryOperations, MemoryOutbox, MemoryTerminalStore,
    };
    use tokio_util::sync::CancellationToken;
    use uuid::Uuid;

    struct Till;

    #[async_trait]
    impl ComponentStatusSource for Till {
        async fn components(&self) -> Vec<ComponentReport> {
            vec![ComponentReport {
                component: ComponentId::SpacePos,
                version: "0.1.0".into(),
                state: ComponentState::Running,
                active_slot: None,
                detail: None,
            }]
        }
    }

    #[async_trait]
    impl StaffSessionSource for Till {
        async fn current_staff_id(&self) -> Option<String> {
            None
        }
    }

    struct Onboarded {
        erp: MemoryErp,
        record: spacepos_config::TerminalRecord,
        terminals: MemoryTerminalStore,
        onboarding: Arc<Onboarding>,
    }

    async fn onboarded() -> Onboarded {
        let erp = MemoryErp::new();
        let code = erp.issue_code(12, 3);
        let terminals = MemoryTerminalStore::new();
        let info = ClientInfo {
            product: Product::SpacePos,
            version: "0.1.0".into(),
            os_name: "Linux".into(),
            os_version: "6".into(),
            arch: "x86_64".into(),
            hostname: "t".into(),
        };
        let anonymous: Arc<dyn OnboardingApi> = Arc::new(erp.anonymous());
        let onboard = Onboarding::new(
            anonymous,
            Arc::new(terminals.clone()),
            Arc::new(SystemClock),
        );
        let url = url::Url::parse("https://erp.example.com").unwrap();
        let request = OnboardingRequest {
            code,
            client: info,
            components: vec![ComponentId::SpacePos],
        };
        let record = onboard.onboard(request, &url, false).await.unwrap();
        let device: Arc<dyn OnboardingApi> = Arc::new(erp.device(record.credentials()));
        let onboarding = Arc::new(Onboarding::new(
            device,
            Arc::new(terminals.clone()),
            Arc::new(SystemClock),
        ));
        Onboarded {
            erp,
            record,
            terminals,
            onboarding,
        }
    }

    fn runtime(
        o: &Onboarded,
        bus: &MemoryBus,
        state: &MemoryConfigState,
        interval: u32,
    ) -> Runtime {
        let datasets = MemoryDatasets::new();
        datasets.add_generated("products", 5, 1);
        let store = MemoryLocalStore::new();
        Runtime::new(
            SyncPorts {
                datasets: Arc::new(datasets),
                operations: Arc::new(MemoryOperations::new()),
                store: Arc::new(store),
                outbox: Arc::new(MemoryOutbox::new()),
                config_state: Arc::new(state.clone()),
                onboarding: Some(o.onboarding.clone()),
                clock: Arc::new(spacepos_testkit::fakes::TokioClock::starting_at(
                    chrono::Utc::now(),
                )),
                bus: Some(BusPorts {
                    subscriber: Arc::new(bus.clone()),
                    publisher: Arc::new(bus.clone()),
                    decoder: Arc::new(WireDecoder),
                }),
                presence: Some(PresencePorts {
                    identity: o.record.identity(),
                    secret: o.record.client_secret.clone(),
                    instance_id: Uuid::from_u128(1),
                    components: Arc::new(Till),
                    staff: Arc::new(Till),
                    encoder: Arc::new(WirePresenceEncoder),
                    control: PresenceControl::new(PresenceSettings::new(true, interval)),
                    terminal_store: Arc::new(o.terminals.clone()),
                }),
                updates: None,
            },
            super::SETTINGS,
        )
    }

    fn beats(bus: &MemoryBus) -> Vec<PosPresenceEvent> {
        bus.published()
            .iter()
            .filter(|m| m.event_type.as_deref() == Some("POSPresenceEvent"))
            .map(|m| serde_json::from_slice(&m.body).unwrap())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn beats_go_out_on_the_bus_and_status_sees_them() {
        let o = onboarded().await;
        // The ERP's value wins: the runtime reads terminals/me at start.
        o.erp.set_presence(&o.record.client_id, 60, true);
        let (bus, state) = (MemoryBus::new(), MemoryConfigState::new());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(runtime(&o, &bus, &state, 60).run(shutdown.clone()));
        tokio::time::sleep(Duration::from_secs(300)).await;
        let sent = beats(&bus);
        assert!(sent.len() >= 4, "{}", sent.len());
        assert_eq!(sent[0].client_id, o.record.client_id);
        assert_eq!(sent[0].interval_seconds, 60);
        let recorded = state.get(keys::PRESENCE).await.unwrap().unwrap();
        assert_eq!(recorded["on"], true, "{recorded}");
        assert!(
            recorded["lastBeatAt"].is_string() && recorded["nextBeatAt"].is_string(),
            "{recorded}"
        );
        shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn an_interval_event_on_the_bus_changes_the_beat() {
        let o = onboarded().await;
        let (bus, state) = (MemoryBus::new(), MemoryConfigState::new());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(runtime(&o, &bus, &state, 600).run(shutdown.clone()));
        tokio::time::sleep(Duration::from_secs(5)).await;
        let event = serde_json::json!({"Id": Uuid::new_v4(), "CreationDate": "2026-11-25T09:00:00Z",
            "ClientId": o.record.client_id, "StoreNumber": 12, "PresenceIntervalSeconds": 30, "ReportPresence": true});
        bus.erp_publish(
            "POSPresenceIntervalUpdatedIntegrationEvent",
            "e1",
            event.to_string().as_bytes(),
        );
        tokio::time::sleep(Duration::from_secs(200)).await;
        let sent = beats(&bus);
        assert!(
            sent.len() >= 5,
            "beats every ~30 s after the event: {}",
            sent.len()
        );
        assert_eq!(sent.last().unwrap().interval_seconds, 30);
        let stored = o.terminals.load().await.unwrap().unwrap();
        assert_eq!(stored.presence_interval_seconds, Some(30));
        shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_release_announcement_is_recorded_for_the_nodes_other_processes() {
        use spacepos_config::{ConfigStateStore, keys};
        let o = onboarded().await;
        let (bus, state) = (MemoryBus::new(), MemoryConfigState::new());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(runtime(&o, &bus, &state, 600).run(shutdown.clone()));
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(state.get(keys::RELEASE_PUBLISHED).await.unwrap(), None);
        let event = serde_json::json!({"Id": Uuid::new_v4(), "CreationDate": "2026-11-25T09:00:00Z",
            "Component": "SpaceFuel", "Version": "2.2.0", "StoreNumber": null});
        bus.erp_publish(
            "POSReleasePublishedIntegrationEvent",
            "r1",
            event.to_string().as_bytes(),
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
        let note = state.get(keys::RELEASE_PUBLISHED).await.unwrap().unwrap();
        assert_eq!(note["component"], "spacefuel", "{note}");
        assert_eq!(note["version"], "2.2.0", "{note}");
        assert!(note["at"].is_string(), "{note}");
        shutdown.cancel();
        task.await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn a_change_made_while_the_bus_was_down_is_read_from_terminals_me_after_the_reconnect() {
        let o = onboarded().await;
        let (bus, state) = (MemoryBus::new(), MemoryConfigState::new());
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(runtime(&o, &bus, &state, 600).run(shutdown.clone()));
        tokio::time::sleep(Duration::from_secs(5)).await;
        bus.set_down(true);
        tokio::time::sleep(Duration::from_secs(5)).await;
        // The ERP changes the interval while the terminal cannot hear events.
        o.erp.set_presence(&o.record.client_id, 45, true);
        tokio::time::sleep(Duration::from_secs(5)).await;
        bus.set_down(false);
        tokio::time::sleep(Duration::from_secs(5)).await;
        let stored = o.terminals.load().await.unwrap().unwrap();
        assert_eq!(
            stored.presence_interval_seconds,
            Some(45),
            "read from terminals/me after the reconnect"
        );
        let n = beats(&bus).len();
        tokio::time::sleep(Duration::from_secs(200)).await;
        let after = beats(&bus);
        assert!(after.len() - n >= 3, "beats every ~45 s now");
        assert_eq!(after.last().unwrap().interval_seconds, 45);
        shutdown.cancel();
        task.await.unwrap().unwrap();
    }
}
