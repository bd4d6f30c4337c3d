//! The DatasetApi/OperationsApi suites against the in-memory fakes and against
//! the HTTP adapter talking to the fake ERP server.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use spacepos_core::{ClientInfo, Product, TerminalIdentity};
use spacepos_erp_http::{ErpHttpClient, ErpHttpConfig};
use spacepos_fake_erp::{EntityChange, FakeErp, FakeErpConfig, RejectRule};
use spacepos_sync::{DatasetApi, OperationsApi};
use spacepos_testkit::fakes::{MemoryDatasets, MemoryOperations};
use spacepos_testkit::suites::erp_sync::ErpSyncHarness;

struct Memory {
    datasets: MemoryDatasets,
    operations: MemoryOperations,
}

#[async_trait]
impl ErpSyncHarness for Memory {
    fn datasets(&self) -> Arc<dyn DatasetApi> {
        Arc::new(self.datasets.clone())
    }
    fn operations(&self) -> Arc<dyn OperationsApi> {
        Arc::new(self.operations.clone())
    }
    fn dataset(&self) -> String {
        "products".into()
    }
    async fn update(&self, dataset: &str, id: &str) -> u64 {
        self.datasets
            .update(dataset, id, serde_json::json!({"updated": true}))
    }
    async fn delete(&self, dataset: &str, id: &str) -> u64 {
        self.datasets.delete(dataset, id)
    }
    async fn state(&self, dataset: &str) -> BTreeMap<String, (u64, bool)> {
        self.datasets
            .final_state(dataset)
            .into_iter()
            .map(|(id, e)| (id, (e.version, e.deleted)))
            .collect()
    }
    async fn expire_through(&self, dataset: &str, sequence: u64) {
        self.datasets.expire_through(dataset, sequence);
    }
    async fn reject_kind(&self, kind: &str, error: &str) {
        self.operations.reject_kind(kind, error);
    }
}

async fn memory() -> Memory {
    let datasets = MemoryDatasets::new();
    datasets.add_generated("products", 40, 1000);
    Memory {
        datasets,
        operations: MemoryOperations::new(),
    }
}

struct Http {
    erp: FakeErp,
    client: ErpHttpClient,
}

#[async_trait]
impl ErpSyncHarness for Http {
    fn datasets(&self) -> Arc<dyn DatasetApi> {
        Arc::new(self.client.clone())
    }
    fn operations(&self) -> Arc<dyn OperationsApi> {
        Arc::new(self.client.clone())
    }
    fn dataset(&self) -> String {
        "products".into()
    }
    async fn update(&self, dataset: &str, id: &str) -> u64 {
        let change = EntityChange::Upsert {
            id: id.into(),
            data: serde_json::json!({"updated": true}),
        };
        self.erp.mutate(dataset, vec![change]).expect("mutate")
    }
    async fn delete(&self, dataset: &str, id: &str) -> u64 {
        let change = EntityChange::Delete {
            id: id.into(),
            delete: Default::default(),
        };
        self.erp.mutate(dataset, vec![change]).expect("mutate")
    }
    async fn state(&self, dataset: &str) -> BTreeMap<String, (u64, bool)> {
        self.erp
            .dataset_final_state(dataset)
            .expect("state")
            .into_iter()
            .map(|(id, e)| (id, (e.version, e.deleted)))
            .collect()
    }
    async fn expire_through(&self, dataset: &str, sequence: u64) {
        self.erp
            .expire_changes_through(dataset, sequence)
            .expect("expire");
    }
    async fn reject_kind(&self, kind: &str, error: &str) {
        self.erp.add_reject_rule(RejectRule::by_type(kind, error));
    }
}

async fn http() -> Http {
    let config = FakeErpConfig {
        datasets: vec![spacepos_fake_erp::DatasetSpec::of(
            spacepos_fake_erp::DatasetKind::Products,
            40,
        )],
        ..FakeErpConfig::default()
    };
    let erp = FakeErp::start(config).await.expect("fake ERP");
    let creds = erp.register_terminal(12, 3);
    let identity = TerminalIdentity {
        client_id: creds.client_id.clone(),
        store_number: 12,
        terminal_number: 3,
    };
    let info = ClientInfo {
        product: Product::SpacePos,
        version: "0.1.0".into(),
        os_name: "Linux".into(),
        os_version: "6.1".into(),
        arch: "x86_64".into(),
        hostname: "SUITE".into(),
    };
    let config = ErpHttpConfig::new(url::Url::parse(erp.base_url()).expect("url"), info)
        .with_device(creds, identity);
    Http {
        client: ErpHttpClient::new(config).expect("client"),
        erp,
    }
}

mod memory_erp_sync {
    spacepos_testkit::erp_sync_suite!(super::memory());
}

mod http_adapter_against_the_fake_erp {
    spacepos_testkit::erp_sync_suite!(super::http());
}
