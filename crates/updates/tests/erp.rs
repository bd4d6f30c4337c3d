//! End to end against the fake ERP over HTTP: the HTTP adapter's
//! `ReleaseApi`, the file staging area, `state.json` on disk and the loopback
//! manifest server, driven by the updates service.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use common::{capture_logs, terminal};
use sha2::Digest as _;
use spacepos_core::{ClientInfo, ComponentId, Product, SystemClock};
use spacepos_erp_http::{ErpHttpClient, ErpHttpConfig};
use spacepos_fake_erp::{
    FakeErp, FakeErpConfig, FaultKind, FaultRule, ReleaseSpec, Route, UpdateKey,
};
use spacepos_fs::{FileArtifactStore, FileStateStore};
use spacepos_manifest::LoopbackManifestServer;
use spacepos_sync::Destination;
use spacepos_testkit::fakes::{MemoryInstaller, MemoryOutbox, MemorySafePoint};
use spacepos_updates::{ReleaseOutcome, UpdatePorts, UpdateSettings, Updates};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const USER_AGENT: &str = "SpacePOS/1.4.2 (Windows 10.0.22631; x86_64)";

struct Till {
    erp: FakeErp,
    dir: tempfile::TempDir,
    outbox: MemoryOutbox,
    updates: Updates,
}

async fn till() -> Till {
    let erp = FakeErp::start(FakeErpConfig::demo()).await.unwrap();
    let creds = erp.register_terminal(12, 3);
    let mut identity = terminal();
    identity.client_id = creds.client_id.clone();
    let info = ClientInfo {
        product: Product::SpacePos,
        version: "1.4.2".into(),
        os_name: "Windows".into(),
        os_version: "10.0.22631".into(),
        arch: "x86_64".into(),
        hostname: "TILL-03".into(),
    };
    let config = ErpHttpConfig::new(url::Url::parse(erp.base_url()).unwrap(), info)
        .with_device(creds, identity.clone());
    let client = ErpHttpClient::new(config).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let outbox = MemoryOutbox::new();
    let keys = erp.update_keys();
    let mut installed = BTreeMap::new();
    installed.insert(ComponentId::SpacePos, "1.4.2".to_owned());
    installed.insert(ComponentId::SpaceFuel, "2.1.0".to_owned());
    // Both forms a configuration may hold: the key line, and Tauri's pubkey.
    let trusted = vec![keys.primary.key_line, keys.rotated.tauri_pubkey];
    let ports = UpdatePorts {
        releases: Arc::new(client),
        artifacts: Arc::new(FileArtifactStore::new(dir.path())),
        safe_point: Arc::new(MemorySafePoint::new()),
        installer: Arc::new(MemoryInstaller::new()),
        encoder: Arc::new(spacepos_amqp::WireTrackingEncoder),
        manifest: Arc::new(LoopbackManifestServer::new()),
        state: Arc::new(FileStateStore::new(dir.path())),
        outbox: Arc::new(outbox.clone()),
        clock: Arc::new(SystemClock),
    };
    let updates = Updates::new(ports, UpdateSettings::new(identity, trusted, installed)).unwrap();
    Till {
        erp,
        dir,
        outbox,
        updates,
    }
}

/// Every file under `dir`, relative, sorted.
fn files(dir: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(base, &p, out);
            } else {
                out.push(p.strip_prefix(base).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[tokio::test]
async fn releases_are_staged_over_http_with_device_headers_and_ready_is_queued_once() {
    let t = till().await;
    let pos = t
        .erp
        .publish_release(ReleaseSpec::new(ComponentId::SpacePos, "1.5.0").with_size(200_000))
        .unwrap();
    t.erp
        .publish_release(
            ReleaseSpec::new(ComponentId::SpaceFuel, "2.2.0").signed_by(UpdateKey::Rotated),
        )
        .unwrap();
    let report = t.updates.check().await.unwrap();
    let mut staged = report.staged();
    staged.sort();
    assert_eq!(
        staged,
        vec![
            (ComponentId::SpacePos, "1.5.0".to_owned()),
            (ComponentId::SpaceFuel, "2.2.0".to_owned())
        ],
        "the rotated key's signature verifies too: {report:?}"
    );
    assert_eq!(
        t.erp.release_check_user_agents(),
        vec![Some(USER_AGENT.to_owned())]
    );
    for r in t.erp.requests_to(Route::Artifact) {
        assert_eq!(
            r.header("x-client-id"),
            Some(t.erp.terminals()[0].client_id.as_str())
        );
        assert!(r.header("x-client-secret").is_some());
        assert_eq!(r.header("user-agent"), Some(USER_AGENT));
        assert!(
            r.header("range").is_some_and(|v| v.starts_with("bytes=0-")),
            "{r:?}"
        );
    }
    let state =
        spacepos_config::decode_state(&std::fs::read(t.dir.path().join("state.json")).unwrap())
            .unwrap()
            .state;
    let record = state.updates.spacepos.staged.unwrap();
    let bytes = std::fs::read(&record.path).unwrap();
    assert!(
        record.path.ends_with("SpacePOS_1.5.0_x64_en-US.msi"),
        "{}",
        record.path
    );
    assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), pos.sha256);
    assert_eq!(bytes.len(), 200_000);

    t.updates.check().await.unwrap();
    let ready: Vec<_> = t
        .outbox
        .entries()
        .into_iter()
        .filter(|e| e.destination == Destination::EventBus && e.kind == "POSComponentReadyEvent")
        .collect();
    assert_eq!(ready.len(), 2, "one per staged release, once");
    assert!(
        ready
            .iter()
            .any(|e| e.payload["Component"] == "SpacePOS" && e.payload["Slot"].is_null())
    );
}

#[tokio::test]
async fn bad_artifacts_from_the_erp_are_refused_and_nothing_is_staged() {
    let t = till().await;
    let logs = capture_logs();
    let cases = [
        (
            ReleaseSpec::new(ComponentId::SpacePos, "1.5.0").tampered(),
            "the signature does not match the artifact",
        ),
        (
            ReleaseSpec::new(ComponentId::SpacePos, "1.5.1").signed_by(UpdateKey::Rogue),
            "not one of the 2 trusted update keys",
        ),
        (
            ReleaseSpec::new(ComponentId::SpacePos, "1.5.2").with_sha256("00".repeat(32)),
            "sha256 mismatch",
        ),
        (
            ReleaseSpec::new(ComponentId::SpacePos, "1.3.0").advertised_as("1.6.0"),
            "signed as version 1.3.0 but is announced as 1.6.0",
        ),
    ];
    for (i, (spec, reason)) in cases.into_iter().enumerate() {
        let release = t.erp.publish_release(spec).unwrap();
        let report = t.updates.check().await.unwrap();
        match &report.outcomes[..] {
            [
                ReleaseOutcome::Rejected {
                    reason: why,
                    version,
                    ..
                },
            ] => {
                assert!(why.contains(reason), "{why}");
                assert_eq!(version, &release.version);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            files(&t.dir.path().join("updates")).is_empty(),
            "nothing left in the staging area"
        );
        let warnings = logs.lines_at("WARN");
        assert_eq!(warnings.len(), i + 1, "{}", logs.text());
        assert!(
            warnings[i].contains(&format!("refused update spacepos {}: ", release.version)),
            "{}",
            warnings[i]
        );
    }
    let artifact_requests = t.erp.requests_to(Route::Artifact).len();

    // An advertised downgrade is not even downloaded.
    t.erp
        .publish_release(ReleaseSpec::new(ComponentId::SpacePos, "1.4.0"))
        .unwrap();
    let report = t.updates.check().await.unwrap();
    assert!(
        matches!(report.outcomes[..], [ReleaseOutcome::Downgrade { .. }]),
        "{report:?}"
    );
    assert_eq!(t.erp.requests_to(Route::Artifact).len(), artifact_requests);
    assert_eq!(logs.lines_at("WARN").len(), 5, "{}", logs.text());
    let state =
        spacepos_config::decode_state(&std::fs::read(t.dir.path().join("state.json")).unwrap())
            .unwrap()
            .state;
    assert_eq!(state.updates.spacepos.staged, None);
    assert_eq!(state.updates.spacepos.rejected.len(), 4);
    assert!(t.outbox.entries().is_empty());
}

#[tokio::test]
async fn a_download_cut_halfway_resumes_with_range() {
    let t = till().await;
    t.erp
        .publish_release(ReleaseSpec::new(ComponentId::SpaceFuel, "2.2.0").with_size(100_000))
        .unwrap();
    // Cut after 30000 bytes, then the ERP drops every download for a while.
    t.erp.add_fault(FaultRule::once(
        Route::Artifact,
        FaultKind::CutBody {
            after_bytes: 30_000,
        },
    ));
    t.erp
        .add_fault(FaultRule::always(Route::Artifact, FaultKind::Drop));
    let report = t.updates.check().await.unwrap();
    assert!(
        matches!(
            report.outcomes[..],
            [ReleaseOutcome::DownloadIncomplete {
                downloaded: 30_000,
                ..
            }]
        ),
        "{report:?}"
    );
    let partial = files(&t.dir.path().join("updates"));
    assert_eq!(partial.len(), 1, "{partial:?}");
    assert!(partial[0].ends_with(".part"), "{partial:?}");
    assert_eq!(
        std::fs::metadata(t.dir.path().join("updates").join(&partial[0]))
            .unwrap()
            .len(),
        30_000
    );

    t.erp.clear_faults();
    t.erp.clear_requests();
    let report = t.updates.check().await.unwrap();
    assert_eq!(
        report.staged(),
        vec![(ComponentId::SpaceFuel, "2.2.0".to_owned())]
    );
    let ranges: Vec<String> = t
        .erp
        .requests_to(Route::Artifact)
        .iter()
        .map(|r| r.header("range").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ranges.len(), 1, "{ranges:?}");
    assert!(ranges[0].starts_with("bytes=30000-"), "{ranges:?}");
    assert_eq!(t.erp.requests_to(Route::Artifact)[0].status, Some(206));
}

#[tokio::test]
async fn a_transfer_cut_within_one_request_continues_in_the_same_check() {
    let t = till().await;
    t.erp
        .publish_release(ReleaseSpec::new(ComponentId::SpacePos, "1.5.0").with_size(80_000))
        .unwrap();
    t.erp.add_fault(FaultRule::once(
        Route::Artifact,
        FaultKind::CutBody {
            after_bytes: 20_000,
        },
    ));
    let report = t.updates.check().await.unwrap();
    assert_eq!(
        report.staged(),
        vec![(ComponentId::SpacePos, "1.5.0".to_owned())]
    );
    let ranges: Vec<String> = t
        .erp
        .requests_to(Route::Artifact)
        .iter()
        .map(|r| r.header("range").unwrap_or_default().to_owned())
        .collect();
    assert_eq!(ranges.len(), 2, "{ranges:?}");
    assert!(ranges[1].starts_with("bytes=20000-"), "{ranges:?}");
}

async fn get(url: &str) -> (u16, String) {
    let rest = url.strip_prefix("http://").unwrap();
    let (addr, path) = rest.split_at(rest.find('/').unwrap());
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\n\r\n")
            .as_bytes(),
    )
    .await
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn the_tauri_manifest_is_served_once_on_loopback() {
    let t = till().await;
    let release = t
        .erp
        .publish_release(
            ReleaseSpec::new(ComponentId::SpacePos, "1.5.0").with_notes("Faster receipt printing"),
        )
        .unwrap();
    t.updates.check().await.unwrap();
    let served = t.updates.serve_manifest().await.unwrap();
    assert!(
        served.url.starts_with("http://127.0.0.1:"),
        "{}",
        served.url
    );
    let (status, body) = get(&served.url).await;
    assert_eq!(status, 200);
    let manifest: serde_json::Value = serde_json::from_str(&body).unwrap();
    let pub_date = release
        .pub_date
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    assert_eq!(
        manifest,
        serde_json::json!({
            "version": "1.5.0",
            "notes": "Faster receipt printing",
            "pub_date": pub_date,
            "platforms": {
                "windows-x86_64-msi": {"url": release.url, "signature": release.signature}
            }
        })
    );
    assert_eq!(get(&served.url).await.0, 404, "served once");
}
