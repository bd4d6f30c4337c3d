//! The updates ports' suites: `ReleaseApi` against the in-memory fake and the
//! HTTP adapter talking to the fake ERP; `ArtifactStore` against the
//! in-memory fake and the file store; `TrackingEncoder` against the testkit
//! encoder and the AMQP adapter's.

use std::sync::Arc;

use async_trait::async_trait;
use spacepos_core::{ClientInfo, ComponentId, Product, TerminalIdentity};
use spacepos_erp_http::{ErpHttpClient, ErpHttpConfig};
use spacepos_fake_erp::{FakeErp, FakeErpConfig, FaultKind, FaultRule, ReleaseSpec, Route};
use spacepos_testkit::fakes::{MemoryRelease, MemoryReleaseApi};
use spacepos_testkit::suites::release_api::ReleaseHarness;
use spacepos_updates::{PendingRelease, ReleaseApi, ReleaseComponent};

struct Memory(MemoryReleaseApi);

#[async_trait]
impl ReleaseHarness for Memory {
    fn api(&self) -> Arc<dyn ReleaseApi> {
        Arc::new(self.0.clone())
    }
    async fn publish(&self, c: ComponentId, version: &str, bytes: Vec<u8>) -> PendingRelease {
        self.0
            .publish(MemoryRelease::new(c, version).with_bytes(bytes))
    }
    async fn withdraw_all(&self) {
        self.0.withdraw_all();
    }
    async fn cut_next_transfer(&self, after_bytes: u64) {
        self.0.cut_next_transfer(after_bytes, false);
    }
}

async fn memory() -> Memory {
    Memory(MemoryReleaseApi::new())
}

struct Http {
    erp: FakeErp,
    client: ErpHttpClient,
}

#[async_trait]
impl ReleaseHarness for Http {
    fn api(&self) -> Arc<dyn ReleaseApi> {
        Arc::new(self.client.clone())
    }
    async fn publish(&self, c: ComponentId, version: &str, bytes: Vec<u8>) -> PendingRelease {
        let r = self
            .erp
            .publish_release(ReleaseSpec::new(c, version).with_bytes(bytes))
            .expect("publish");
        PendingRelease {
            component: ReleaseComponent::Known(c),
            version: r.version,
            notes: r.notes,
            pub_date: r.pub_date,
            url: r.url,
            signature: r.signature,
            sha256: r.sha256,
            size: r.size,
            allow_downgrade: r.allow_downgrade,
        }
    }
    async fn withdraw_all(&self) {
        self.erp.withdraw_releases(None);
    }
    async fn cut_next_transfer(&self, after_bytes: u64) {
        self.erp.add_fault(FaultRule::once(
            Route::Artifact,
            FaultKind::CutBody { after_bytes },
        ));
    }
}

async fn http() -> Http {
    let erp = FakeErp::start(FakeErpConfig::demo())
        .await
        .expect("fake ERP");
    let creds = erp.register_terminal(12, 3);
    let identity = TerminalIdentity {
        client_id: creds.client_id.clone(),
        store_number: 12,
        terminal_number: 3,
    };
    let info = ClientInfo {
        product: Product::SpacePos,
        version: "1.4.2".into(),
        os_name: "Windows".into(),
        os_version: "10.0.22631".into(),
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

mod memory_release_api {
    spacepos_testkit::release_api_suite!(super::memory());
}

mod http_release_api_against_the_fake_erp {
    spacepos_testkit::release_api_suite!(super::http());
}

mod memory_artifact_store {
    spacepos_testkit::artifact_store_suite!(async {
        spacepos_testkit::fakes::MemoryArtifactStore::new()
    });
}

mod file_artifact_store {
    use async_trait::async_trait;
    use spacepos_fs::FileArtifactStore;
    use spacepos_testkit::suites::{Guarded, Reopen};
    use spacepos_updates::ArtifactStore;

    struct Dir(tempfile::TempDir);

    #[async_trait]
    impl Reopen<dyn ArtifactStore> for Dir {
        async fn reopen(&self) -> Box<dyn ArtifactStore> {
            Box::new(FileArtifactStore::new(self.0.path()))
        }
    }

    async fn store() -> Guarded<FileArtifactStore, Dir> {
        let dir = tempfile::tempdir().expect("temp dir");
        Guarded::new(FileArtifactStore::new(dir.path()), Dir(dir))
    }

    spacepos_testkit::artifact_store_suite!(store());
}

mod amqp_tracking_encoder {
    spacepos_testkit::tracking_encoder_suite!(async { spacepos_amqp::WireTrackingEncoder });
}
