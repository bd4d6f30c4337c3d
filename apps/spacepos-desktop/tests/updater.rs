//! The manifest of `spacepos-updates` against tauri-plugin-updater's own
//! parsing, and the desktop glue end to end under Tauri's mock runtime: the
//! one-shot loopback manifest (`spacepos-manifest`), a check, the trusted key
//! that signed the release, the device headers on the download.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::Cursor;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{TimeZone as _, Utc};
use serde_json::Value;
use spacepos_core::{ComponentId, DeviceCredentials, Secret, TerminalIdentity};
use spacepos_desktop::updater::{self, DeviceHeaders, SelfUpdate, SelfUpdateError};
use spacepos_manifest::LoopbackManifestServer;
use spacepos_updates::{ManifestServer as _, StagedRelease, TAURI_WINDOWS_X64_MSI, tauri_manifest};
use tauri::test::{MockRuntime, mock_builder, mock_context, noop_assets};
use tauri_plugin_updater::{Error as UpdaterError, RemoteRelease};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use url::Url;

const ARTIFACT_PATH: &str = "/api/pos/releases/spacepos/1.5.0/SpacePOS_1.5.0_x64_en-US.msi";
const SECRET: &str = "s3cr3t-client-value";

/// An update key pair, as the ERP's release pipeline holds it.
struct Signer(minisign::KeyPair);

impl Signer {
    fn new() -> Self {
        Signer(minisign::KeyPair::generate_unencrypted_keypair().unwrap())
    }

    /// Tauri's `pubkey` form: base64 of the `.pub` text.
    fn tauri_pubkey(&self) -> String {
        STANDARD.encode(self.0.pk.to_box().unwrap().into_string())
    }

    /// The key line (`RW...`), another form `updates.trusted_keys` takes.
    fn key_line(&self) -> String {
        self.0.pk.to_base64()
    }

    /// The ERP's `signature` field: base64 of the `.sig` text, its trusted
    /// comment carrying `version:` as `tauri signer` writes it.
    fn sign(&self, bytes: &[u8], version: &str) -> String {
        let sig = minisign::sign(
            Some(&self.0.pk),
            &self.0.sk,
            Cursor::new(bytes),
            Some(&format!(
                "timestamp:1795168800\tfile:SpacePOS_{version}_x64_en-US.msi\tversion:{version}"
            )),
            Some("signature from tauri secret key"),
        )
        .unwrap();
        STANDARD.encode(sig.into_string())
    }
}

/// SpacePOS 1.5.0 as `Updates` stages it.
fn staged(url: &str, signature: &str) -> StagedRelease {
    let at = Utc
        .with_ymd_and_hms(2026, 11, 20, 10, 0, 0)
        .single()
        .unwrap();
    StagedRelease {
        component: ComponentId::SpacePos,
        version: "1.5.0".into(),
        previous_version: Some("1.4.2".into()),
        sha256: "ab".repeat(32),
        path: "/var/lib/spacepos/updates/spacepos/1.5.0-abab/SpacePOS_1.5.0_x64_en-US.msi".into(),
        size: 48_211_968,
        url: url.into(),
        signature: signature.into(),
        notes: Some("Faster receipts".into()),
        pub_date: Some(at),
        staged_at: at,
        slot: None,
    }
}

fn manifest(url: &str, signature: &str) -> Value {
    tauri_manifest(&staged(url, signature), TAURI_WINDOWS_X64_MSI, url)
}

fn parse(json: Value) -> Result<RemoteRelease, serde_json::Error> {
    serde_json::from_value(json)
}

#[test]
fn the_staged_manifest_is_accepted_by_the_updaters_own_parsing() {
    let signature = Signer::new().sign(b"msi bytes", "1.5.0");
    let url =
        "https://erp.example.com/api/pos/releases/spacepos/1.5.0/SpacePOS_1.5.0_x64_en-US.msi";
    // As `Updates::serve_manifest` puts it on the wire.
    let bytes = serde_json::to_vec(&manifest(url, &signature)).unwrap();
    let release: RemoteRelease = serde_json::from_slice(&bytes).unwrap();

    assert_eq!(release.version, "1.5.0".parse().unwrap());
    assert_eq!(
        release
            .download_url(TAURI_WINDOWS_X64_MSI)
            .unwrap()
            .as_str(),
        url
    );
    assert_eq!(
        release.signature(TAURI_WINDOWS_X64_MSI).unwrap(),
        &signature
    );
    assert_eq!(release.notes.as_deref(), Some("Faster receipts"));
    let date = release.pub_date.unwrap();
    assert_eq!(
        date.unix_timestamp(),
        Utc.with_ymd_and_hms(2026, 11, 20, 10, 0, 0)
            .unwrap()
            .timestamp()
    );
    // Only the platform the manifest names.
    assert!(matches!(
        release.download_url("linux-x86_64"),
        Err(UpdaterError::TargetNotFound(t)) if t == "linux-x86_64"
    ));
}

#[test]
fn a_manifest_without_signature_or_with_a_bad_version_is_refused() {
    let good = manifest("https://erp.example.com/a.msi", "c2ln");
    assert!(parse(good.clone()).is_ok(), "the control parses");

    let mut no_signature = good.clone();
    no_signature["platforms"][TAURI_WINDOWS_X64_MSI]
        .as_object_mut()
        .unwrap()
        .remove("signature");
    let err = parse(no_signature).unwrap_err().to_string();
    assert!(err.contains("signature"), "{err}");

    let mut no_url = good.clone();
    no_url["platforms"][TAURI_WINDOWS_X64_MSI]
        .as_object_mut()
        .unwrap()
        .remove("url");
    assert!(parse(no_url).is_err());

    for version in [
        Value::from("1.5"),
        Value::from("latest"),
        Value::from(""),
        Value::from(150),
    ] {
        let mut bad = good.clone();
        bad["version"] = version.clone();
        assert!(parse(bad).is_err(), "version {version} must be refused");
    }
    let mut no_version = good.clone();
    no_version.as_object_mut().unwrap().remove("version");
    assert!(parse(no_version).is_err());

    let mut bad_date = good;
    bad_date["pub_date"] = "20 Nov 2026".into();
    assert!(parse(bad_date).is_err());
}

/// A mock app running `version`, with the updater plugin configured as the
/// desktop app configures it.
fn app(version: &str) -> tauri::App<MockRuntime> {
    let mut context = mock_context(noop_assets());
    context
        .config_mut()
        .plugins
        .0
        .insert("updater".into(), updater::plugin_config());
    context.package_info_mut().version = version.parse().unwrap();
    mock_builder()
        .plugin(updater::plugin())
        .build(context)
        .unwrap()
}

fn device(erp: &str) -> DeviceHeaders {
    DeviceHeaders {
        erp: Url::parse(erp).unwrap(),
        credentials: DeviceCredentials {
            client_id: "pos-0012-01".into(),
            client_secret: Secret::new(SECRET),
        },
        terminal: TerminalIdentity {
            client_id: "pos-0012-01".into(),
            store_number: 12,
            terminal_number: 1,
        },
    }
}

async fn serve(json: &Value) -> spacepos_updates::ServedManifest {
    LoopbackManifestServer::new()
        .serve_once(serde_json::to_vec(json).unwrap())
        .await
        .unwrap()
}

#[test]
fn the_loopback_manifest_offers_the_update_once() {
    let app = app("1.4.2");
    let signer = Signer::new();
    let signature = signer.sign(b"msi bytes", "1.5.0");
    let url = format!("https://erp.example.com{ARTIFACT_PATH}");
    tauri::async_runtime::block_on(async {
        let served = serve(&manifest(&url, &signature)).await;
        let glue = SelfUpdate::new(
            &served,
            device("https://erp.example.com/"),
            &[signer.tauri_pubkey()],
        )
        .unwrap();
        let updater = glue.updater(app.handle()).unwrap();

        let update = updater
            .check()
            .await
            .unwrap()
            .expect("1.5.0 is newer than 1.4.2");
        assert_eq!(update.version, "1.5.0");
        assert_eq!(update.current_version, "1.4.2");
        assert_eq!(update.target, TAURI_WINDOWS_X64_MSI);
        assert_eq!(update.download_url.as_str(), url);
        assert_eq!(update.signature, signature);
        assert_eq!(update.body.as_deref(), Some("Faster receipts"));

        // One shot: the manifest answers 404 now, which the updater reports
        // as no release found.
        let again = updater.check().await;
        assert!(
            matches!(again, Err(UpdaterError::ReleaseNotFound)),
            "{:?}",
            again.err()
        );
    });
}

#[test]
fn a_staged_version_not_newer_than_the_running_one_is_no_update() {
    let app = app("1.5.0");
    let signer = Signer::new();
    tauri::async_runtime::block_on(async {
        let served = serve(&manifest(
            "https://erp.example.com/a.msi",
            &signer.sign(b"x", "1.5.0"),
        ))
        .await;
        let glue = SelfUpdate::new(
            &served,
            device("https://erp.example.com/"),
            &[signer.key_line()],
        )
        .unwrap();
        assert!(glue.check(app.handle()).await.unwrap().is_none());
    });
}

/// A stand-in for the ERP's artifact endpoint: serves `body` at
/// [`ARTIFACT_PATH`] and records every request head.
async fn artifact_server(body: Vec<u8>) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let heads = Arc::new(Mutex::new(Vec::new()));
    let seen = heads.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut chunk = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&chunk[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head).to_lowercase();
            let found = head.starts_with(&format!("get {} ", ARTIFACT_PATH.to_lowercase()));
            seen.lock().unwrap().push(head);
            let (status, bytes) = if found {
                ("200 OK", &body[..])
            } else {
                ("404 Not Found", &b""[..])
            };
            let mut response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                bytes.len()
            )
            .into_bytes();
            response.extend_from_slice(bytes);
            let _ = stream.write_all(&response).await;
            let _ = stream.shutdown().await;
        }
    });
    (base, heads)
}

#[test]
fn an_update_signed_by_a_rotated_key_downloads_verified_with_the_device_headers() {
    let app = app("1.4.2");
    let (old, new) = (Signer::new(), Signer::new());
    let artifact = b"MSI: SpacePOS 1.5.0".to_vec();
    let signature = new.sign(&artifact, "1.5.0");
    tauri::async_runtime::block_on(async {
        let (erp, heads) = artifact_server(artifact.clone()).await;
        let url = format!("{erp}{ARTIFACT_PATH}");
        let served = serve(&manifest(&url, &signature)).await;
        // The old key first: the release is signed with the second one.
        let glue = SelfUpdate::new(
            &served,
            device(&format!("{erp}/")),
            &[old.tauri_pubkey(), new.key_line()],
        )
        .unwrap();

        let update = glue.check(app.handle()).await.unwrap().expect("an update");
        assert_eq!(update.version, "1.5.0");
        update
            .verify(&artifact)
            .expect("bound to the key that signed it");
        let unbound = glue
            .updater(app.handle())
            .unwrap()
            .restore_update(update.raw_json.clone())
            .unwrap()
            .unwrap();
        assert!(
            unbound.verify(&artifact).is_err(),
            "the first key alone would refuse it"
        );

        let downloaded = update.download(|_, _| {}, || {}).await.unwrap();
        assert_eq!(downloaded, artifact);
        let heads = heads.lock().unwrap().clone();
        assert_eq!(heads.len(), 1, "{heads:?}");
        assert!(
            heads[0].contains("\r\nx-client-id: pos-0012-01\r\n"),
            "{}",
            heads[0]
        );
        assert!(heads[0].contains(&format!("\r\nx-client-secret: {SECRET}\r\n")));
        assert!(heads[0].contains("\r\nx-terminal: 12/1\r\n"));

        // A tampered artifact is refused by the bound key.
        assert!(update.verify(b"MSI: something else").is_err());
    });
}

#[test]
fn device_headers_stay_off_a_download_on_another_origin() {
    let app = app("1.4.2");
    let signer = Signer::new();
    let artifact = b"MSI: SpacePOS 1.5.0".to_vec();
    let signature = signer.sign(&artifact, "1.5.0");
    tauri::async_runtime::block_on(async {
        let (mirror, heads) = artifact_server(artifact.clone()).await;
        let served = serve(&manifest(&format!("{mirror}{ARTIFACT_PATH}"), &signature)).await;
        let glue = SelfUpdate::new(
            &served,
            device("https://erp.example.com/"),
            &[signer.tauri_pubkey()],
        )
        .unwrap();

        let update = glue.check(app.handle()).await.unwrap().expect("an update");
        assert!(update.headers.get("x-client-secret").is_none());
        assert_eq!(update.download(|_, _| {}, || {}).await.unwrap(), artifact);
        let heads = heads.lock().unwrap().clone();
        assert!(!heads[0].contains("x-client"), "{}", heads[0]);
        assert!(!heads[0].contains(SECRET));
    });
}

/// The error of a check that must fail (`Update` has no `Debug`, so no `unwrap_err`).
fn refused(
    result: Result<Option<tauri_plugin_updater::Update>, SelfUpdateError>,
) -> SelfUpdateError {
    match result {
        Err(e) => e,
        Ok(update) => panic!("accepted: {:?}", update.map(|u| u.version)),
    }
}

#[test]
fn an_update_signed_by_an_untrusted_key_is_refused_before_any_download() {
    let app = app("1.4.2");
    let (trusted, rogue) = (Signer::new(), Signer::new());
    tauri::async_runtime::block_on(async {
        let served = serve(&manifest(
            "https://erp.example.com/a.msi",
            &rogue.sign(b"x", "1.5.0"),
        ))
        .await;
        let glue = SelfUpdate::new(
            &served,
            device("https://erp.example.com/"),
            &[trusted.tauri_pubkey()],
        )
        .unwrap();
        let err = refused(glue.check(app.handle()).await);
        assert!(
            matches!(err, SelfUpdateError::UntrustedKey { trusted: 1, .. }),
            "{err}"
        );
    });
}

#[test]
fn a_download_url_breaking_the_tls_rule_is_refused() {
    let app = app("1.4.2");
    let signer = Signer::new();
    tauri::async_runtime::block_on(async {
        let served = serve(&manifest(
            "http://erp.example.com/a.msi",
            &signer.sign(b"x", "1.5.0"),
        ))
        .await;
        let glue = SelfUpdate::new(
            &served,
            device("http://erp.example.com/"),
            &[signer.tauri_pubkey()],
        )
        .unwrap();
        let err = refused(glue.check(app.handle()).await);
        assert!(matches!(err, SelfUpdateError::DownloadUrl(_)), "{err}");
    });
}
