//! Contract section 5: pending releases, artifacts with Range, minisign signatures.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};
use spacepos_core::ComponentId;
use spacepos_erp_wire::rest::{PendingReleases, Release};
use spacepos_fake_erp::{ReleaseSpec, UpdateKey};

use crate::common::{Device, USER_AGENT, demo, error_of};

/// What a terminal does before staging, the way Tauri's updater does it: the
/// signature must verify with one of the trusted keys (each given as Tauri's
/// `pubkey`, base64 of the `.pub` file), its trusted comment must name the
/// announced version, and the sha256 must match.
fn verify_like_a_terminal(trusted: &[&str], release: &Release, bytes: &[u8]) -> Result<(), String> {
    let sig_text = String::from_utf8(
        STANDARD
            .decode(&release.signature)
            .map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let signature = minisign_verify::Signature::decode(&sig_text).map_err(|e| e.to_string())?;
    let verified = trusted.iter().any(|key| {
        let pub_file = String::from_utf8(STANDARD.decode(key).unwrap()).unwrap();
        let pk = minisign_verify::PublicKey::decode(&pub_file).unwrap();
        pk.verify(bytes, &signature, true).is_ok()
    });
    if !verified {
        return Err("signature".into());
    }
    let signed_version = signature
        .trusted_comment()
        .split('\t')
        .find_map(|f| f.strip_prefix("version:"));
    if signed_version.is_some_and(|v| v != release.version) {
        return Err("version".into());
    }
    if hex::encode(Sha256::digest(bytes)) != release.sha256 {
        return Err("sha256".into());
    }
    Ok(())
}

async fn download(device: &Device, release: &Release) -> Vec<u8> {
    let resp = device
        .client
        .get(&release.url)
        .header("X-Client-Id", &device.creds.client_id)
        .header("X-Client-Secret", device.creds.client_secret.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.content_length(), release.size);
    resp.bytes().await.unwrap().to_vec()
}

#[tokio::test]
async fn pending_lists_the_last_release_of_each_component_and_records_the_user_agent() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let none: PendingReleases = device.get_json("/api/pos/releases/pending").await;
    assert!(none.releases.is_empty());
    erp.publish_release(ReleaseSpec::new(ComponentId::SpacePos, "1.5.0"))
        .unwrap();
    let pos = erp
        .publish_release(ReleaseSpec::new(ComponentId::SpacePos, "1.5.1").with_notes("Fixes"))
        .unwrap();
    let fuel = erp
        .publish_release(
            ReleaseSpec::new(ComponentId::SpaceFuel, "2.2.0")
                .with_size(1000)
                .allow_downgrade(),
        )
        .unwrap();
    let pending: PendingReleases = device.get_json("/api/pos/releases/pending").await;
    assert_eq!(pending.releases, vec![pos.clone(), fuel.clone()]);
    assert_eq!(
        pos.url,
        format!(
            "{}/api/pos/releases/spacepos/1.5.1/SpacePOS_1.5.1_x64_en-US.msi",
            erp.base_url()
        )
    );
    assert_eq!(
        fuel.url,
        format!(
            "{}/api/pos/releases/spacefuel/2.2.0/spacefuel-2.2.0-x86_64-windows.zip",
            erp.base_url()
        )
    );
    assert_eq!(
        (pos.notes.as_deref(), pos.size, fuel.allow_downgrade),
        (Some("Fixes"), Some(64 * 1024), true)
    );
    assert!(pos.pub_date.is_some());
    assert_eq!(
        erp.release_check_user_agents(),
        vec![Some(USER_AGENT.to_owned()); 2]
    );

    let event = erp.release_published_event(&pos).unwrap();
    assert_eq!(
        (event.component.as_str(), event.version.as_str()),
        ("SpacePOS", "1.5.1")
    );

    erp.withdraw_releases(Some(ComponentId::SpacePos));
    let pending: PendingReleases = device.get_json("/api/pos/releases/pending").await;
    assert_eq!(pending.releases, vec![fuel]);
    // A withdrawn release's artifact is still served.
    assert_eq!(download(&device, &pos).await.len(), 64 * 1024);
}

#[tokio::test]
async fn artifacts_verify_like_tauri_with_primary_or_rotated_keys_only() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let keys = erp.update_keys();
    let trusted = [
        keys.primary.tauri_pubkey.as_str(),
        keys.rotated.tauri_pubkey.as_str(),
    ];

    let bytes = b"MSI payload, version 1.5.0".to_vec();
    let primary = erp
        .publish_release(ReleaseSpec::new(ComponentId::SpacePos, "1.5.0").with_bytes(bytes.clone()))
        .unwrap();
    let got = download(&device, &primary).await;
    assert_eq!(got, bytes);
    assert_eq!(verify_like_a_terminal(&trusted, &primary, &got), Ok(()));
    assert_eq!(
        verify_like_a_terminal(&[keys.rotated.tauri_pubkey.as_str()], &primary, &got),
        Err("signature".into())
    );
    // The key line form works with minisign-verify too.
    let pk = minisign_verify::PublicKey::from_base64(&keys.primary.key_line).unwrap();
    let sig_text = String::from_utf8(STANDARD.decode(&primary.signature).unwrap()).unwrap();
    let sig = minisign_verify::Signature::decode(&sig_text).unwrap();
    pk.verify(&got, &sig, false).unwrap();
    let comment = sig.trusted_comment();
    assert!(comment.starts_with("timestamp:"), "{comment}");
    assert!(
        comment.ends_with("\tfile:SpacePOS_1.5.0_x64_en-US.msi\tversion:1.5.0"),
        "{comment}"
    );

    let rotated = erp
        .publish_release(
            ReleaseSpec::new(ComponentId::SpaceFuel, "2.2.0")
                .with_size(300_000)
                .signed_by(UpdateKey::Rotated),
        )
        .unwrap();
    let got = download(&device, &rotated).await;
    assert_eq!(verify_like_a_terminal(&trusted, &rotated, &got), Ok(()));

    let rogue = erp
        .publish_release(
            ReleaseSpec::new(ComponentId::SpaceFuel, "9.9.9").signed_by(UpdateKey::Rogue),
        )
        .unwrap();
    let got = download(&device, &rogue).await;
    assert_eq!(
        verify_like_a_terminal(&trusted, &rogue, &got),
        Err("signature".into())
    );
}

#[tokio::test]
async fn relabelled_and_tampered_artifacts_fail_verification() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let keys = erp.update_keys();
    let trusted = [keys.primary.tauri_pubkey.as_str()];

    // An old signed build announced as newer: the signature is genuine, the version is not.
    let relabelled = erp
        .publish_release(ReleaseSpec::new(ComponentId::SpacePos, "1.4.0").advertised_as("1.6.0"))
        .unwrap();
    assert_eq!(relabelled.version, "1.6.0");
    assert!(
        relabelled
            .url
            .contains("/spacepos/1.6.0/SpacePOS_1.4.0_x64_en-US.msi"),
        "{}",
        relabelled.url
    );
    let got = download(&device, &relabelled).await;
    assert_eq!(
        verify_like_a_terminal(&trusted, &relabelled, &got),
        Err("version".into())
    );

    let tampered = erp
        .publish_release(ReleaseSpec::new(ComponentId::SpacePos, "1.7.0").tampered())
        .unwrap();
    let got = download(&device, &tampered).await;
    assert_eq!(got.len(), 64 * 1024);
    assert_eq!(
        verify_like_a_terminal(&trusted, &tampered, &got),
        Err("signature".into())
    );
    assert_ne!(hex::encode(Sha256::digest(&got)), tampered.sha256);

    let wrong_digest = erp
        .publish_release(
            ReleaseSpec::new(ComponentId::SpacePos, "1.8.0").with_sha256("00".repeat(32)),
        )
        .unwrap();
    let got = download(&device, &wrong_digest).await;
    assert_eq!(
        verify_like_a_terminal(&trusted, &wrong_digest, &got),
        Err("sha256".into())
    );
}

#[tokio::test]
async fn artifact_downloads_resume_with_range() {
    let erp = demo().await;
    let device = Device::register(&erp, 12, 1);
    let release = erp
        .publish_release(ReleaseSpec::new(ComponentId::SpaceFuel, "2.3.0").with_size(100_000))
        .unwrap();
    let whole = download(&device, &release).await;
    let path = release.url.strip_prefix(erp.base_url()).unwrap().to_owned();

    let resp = device
        .get(&path)
        .header("Range", "bytes=40000-")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(resp.headers()["content-range"], "bytes 40000-99999/100000");
    assert_eq!(resp.headers()["accept-ranges"], "bytes");
    assert_eq!(resp.content_length(), Some(60_000));
    let tail = resp.bytes().await.unwrap();
    assert_eq!(&tail[..], &whole[40_000..]);

    let resp = device
        .get(&path)
        .header("Range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(&resp.bytes().await.unwrap()[..], &whole[10..20]);

    let resp = device
        .get(&path)
        .header("Range", "bytes=100000-")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-range"], "bytes */100000");
    assert_eq!(error_of(resp).await, (416, "range_not_satisfiable".into()));

    let resp = device
        .get("/api/pos/releases/spacefuel/2.3.0/other.zip")
        .send()
        .await
        .unwrap();
    assert_eq!(error_of(resp).await, (404, "release_not_found".into()));
    // Downloads carry the device headers too.
    let resp = device.client.get(&release.url).send().await.unwrap();
    assert_eq!(resp.status(), 401);
}
