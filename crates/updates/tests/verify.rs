//! Acceptance: bad artifacts are refused before anything is staged, with one
//! clear warning each, and never downloaded again; good ones (including one
//! signed by the rotated key) are staged, and a cut download resumes.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Node, capture_logs};
use spacepos_core::ComponentId;
use spacepos_testkit::fakes::{MemoryRelease, ReleaseKey};
use spacepos_updates::{ReleaseOutcome, Updates};

/// Publish `spec`, check once, and expect a refusal whose reason contains
/// `reason`, nothing staged, one warning naming component, version and
/// reason; a second check must not download it again nor warn again.
async fn refused(spec: MemoryRelease, reason: &str) {
    let node = Node::new();
    let logs = capture_logs();
    let release = node.erp.publish(spec);
    let updates = node.updates();
    let report = updates.check().await.unwrap();
    let ReleaseOutcome::Rejected {
        component,
        version,
        reason: why,
    } = &report.outcomes[0]
    else {
        panic!("expected a refusal, got {report:?}");
    };
    assert!(why.contains(reason), "{why}");
    assert_eq!(version, &release.version);
    assert!(
        node.artifacts.keys().is_empty(),
        "the bad artifact is deleted"
    );
    let state = node.state.snapshot().unwrap();
    let records = state.updates.component(*component);
    assert_eq!(records.staged, None, "nothing staged");
    assert_eq!(records.rejected.len(), 1);
    assert!(node.outbox.entries().is_empty(), "no Ready event");
    let warnings = logs.lines_at("WARN");
    assert_eq!(warnings.len(), 1, "{}", logs.text());
    let line = &warnings[0];
    assert!(
        line.contains(&format!("refused update {component} {version}")),
        "{line}"
    );
    assert!(line.contains(reason), "{line}");

    let fetches = node.erp.fetches().len();
    let again = updates.check().await.unwrap();
    assert_eq!(
        again.outcomes,
        vec![ReleaseOutcome::PreviouslyRejected {
            component: *component,
            version: version.clone()
        }]
    );
    assert_eq!(node.erp.fetches().len(), fetches, "not downloaded again");
    // Nor after a restart: the refusal is in state.json.
    let restarted = node.updates().check().await.unwrap();
    assert!(matches!(
        restarted.outcomes[0],
        ReleaseOutcome::PreviouslyRejected { .. }
    ));
    assert_eq!(node.erp.fetches().len(), fetches);
    assert_eq!(logs.lines_at("WARN").len(), 1, "{}", logs.text());
}

#[tokio::test]
async fn a_tampered_artifact_is_refused() {
    refused(
        MemoryRelease::new(ComponentId::SpacePos, "1.5.0").tampered(),
        "the signature does not match the artifact",
    )
    .await;
}

#[tokio::test]
async fn an_artifact_signed_by_an_untrusted_key_is_refused() {
    refused(
        MemoryRelease::new(ComponentId::SpaceFuel, "2.2.0").signed_by(ReleaseKey::Rogue),
        "not one of the 2 trusted update keys",
    )
    .await;
}

#[tokio::test]
async fn a_sha256_mismatch_is_refused() {
    refused(
        MemoryRelease::new(ComponentId::SpacePos, "1.5.0").with_sha256(&"0".repeat(64)),
        "sha256 mismatch",
    )
    .await;
}

#[tokio::test]
async fn an_old_validly_signed_artifact_relabelled_as_newer_is_refused() {
    refused(
        MemoryRelease::new(ComponentId::SpacePos, "1.3.0").advertised_as("1.6.0"),
        "signed as version 1.3.0 but is announced as 1.6.0",
    )
    .await;
}

#[tokio::test]
async fn a_signature_without_a_signed_version_is_refused() {
    refused(
        MemoryRelease::new(ComponentId::SpacePos, "1.5.0").unversioned_signature(),
        "carries no `version:`",
    )
    .await;
}

#[tokio::test]
async fn an_announced_sha256_that_is_not_a_digest_is_refused_before_download() {
    refused(
        MemoryRelease::new(ComponentId::SpacePos, "1.5.0").with_sha256("xyz"),
        "not a hex SHA-256 digest",
    )
    .await;
}

#[tokio::test]
async fn an_advertised_downgrade_is_refused_without_download_unless_allowed() {
    let node = Node::new();
    let logs = capture_logs();
    node.erp
        .publish(MemoryRelease::new(ComponentId::SpacePos, "1.3.9"));
    let updates = node.updates();
    let report = updates.check().await.unwrap();
    assert_eq!(
        report.outcomes,
        vec![ReleaseOutcome::Downgrade {
            component: ComponentId::SpacePos,
            version: "1.3.9".into(),
            installed: "1.4.2".into()
        }]
    );
    assert!(node.erp.fetches().is_empty(), "nothing downloaded");
    updates.check().await.unwrap();
    let warnings = logs.lines_at("WARN");
    assert_eq!(
        warnings.len(),
        1,
        "one line, not one per check: {}",
        logs.text()
    );
    assert!(
        warnings[0].contains("refused update spacepos 1.3.9"),
        "{}",
        warnings[0]
    );
    assert!(
        warnings[0].contains("older than the installed 1.4.2"),
        "{}",
        warnings[0]
    );

    // The same version with allowDowngrade is staged.
    node.erp
        .publish(MemoryRelease::new(ComponentId::SpacePos, "1.3.9").allow_downgrade());
    let report = updates.check().await.unwrap();
    assert_eq!(
        report.staged(),
        vec![(ComponentId::SpacePos, "1.3.9".into())]
    );
}

#[tokio::test]
async fn the_installed_version_and_unknown_components_are_skipped() {
    let node = Node::new();
    node.erp
        .publish(MemoryRelease::new(ComponentId::SpaceFuel, "2.1.0"));
    node.erp.publish(MemoryRelease::named("spacewash", "1.0.0"));
    let report = node.updates().check().await.unwrap();
    assert!(report.outcomes.contains(&ReleaseOutcome::UpToDate {
        component: ComponentId::SpaceFuel,
        version: "2.1.0".into()
    }));
    assert!(report.outcomes.contains(&ReleaseOutcome::UnknownComponent {
        name: "spacewash".into()
    }));
    assert!(node.erp.fetches().is_empty());
}

#[tokio::test]
async fn semver_orders_versions_not_text() {
    let node = Node::new();
    node.erp
        .publish(MemoryRelease::new(ComponentId::SpacePos, "1.10.0"));
    let report = node.updates().check().await.unwrap();
    assert_eq!(
        report.staged(),
        vec![(ComponentId::SpacePos, "1.10.0".into())]
    );
}

#[tokio::test]
async fn an_artifact_signed_by_the_rotated_key_verifies_when_both_keys_are_trusted() {
    let node = Node::new();
    node.erp.publish(
        MemoryRelease::new(ComponentId::SpaceFuel, "2.2.0").signed_by(ReleaseKey::Rotated),
    );
    let report = node.updates().check().await.unwrap();
    assert_eq!(
        report.staged(),
        vec![(ComponentId::SpaceFuel, "2.2.0".into())]
    );

    let mut primary_only = Node::new();
    primary_only.trusted = vec![ReleaseKey::Primary];
    primary_only.erp.publish(
        MemoryRelease::new(ComponentId::SpaceFuel, "2.2.0").signed_by(ReleaseKey::Rotated),
    );
    let report = primary_only.updates().check().await.unwrap();
    assert!(
        matches!(report.outcomes[0], ReleaseOutcome::Rejected { .. }),
        "{report:?}"
    );
}

#[tokio::test]
async fn a_good_artifact_is_staged_verified_with_progress() {
    let node = Node::new();
    let release = node
        .erp
        .publish(MemoryRelease::new(ComponentId::SpacePos, "1.5.0").with_notes("Faster"));
    let mut settings = node.settings("1.4.2", "2.1.0");
    settings.chunk_size = 16 * 1024;
    let updates = Updates::new(node.ports(), settings).unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = seen.clone();
    updates.set_progress(move |p| sink.lock().unwrap().push((p.downloaded, p.total)));
    let report = updates.check().await.unwrap();
    assert_eq!(
        report.staged(),
        vec![(ComponentId::SpacePos, "1.5.0".into())]
    );
    let total = 64 * 1024;
    assert_eq!(
        *seen.lock().unwrap(),
        vec![
            (16384, Some(total)),
            (32768, Some(total)),
            (49152, Some(total)),
            (65536, Some(total))
        ]
    );
    let staged = node
        .state
        .snapshot()
        .unwrap()
        .updates
        .spacepos
        .staged
        .unwrap();
    assert_eq!(staged.version, "1.5.0");
    assert_eq!(staged.sha256, release.sha256);
    assert_eq!(staged.notes.as_deref(), Some("Faster"));
    assert!(
        staged.path.starts_with("memory://updates/spacepos/1.5.0-"),
        "{}",
        staged.path
    );
    let again = updates.check().await.unwrap();
    assert_eq!(
        again.outcomes,
        vec![ReleaseOutcome::AlreadyStaged {
            component: ComponentId::SpacePos,
            version: "1.5.0".into()
        }]
    );
}

#[tokio::test]
async fn a_download_cut_halfway_resumes_at_the_next_check_without_starting_over() {
    let node = Node::new();
    let logs = capture_logs();
    node.erp
        .publish(MemoryRelease::new(ComponentId::SpaceFuel, "2.2.0"));
    node.erp.cut_next_transfer(30_000, true);
    let updates = node.updates();
    let report = updates.check().await.unwrap();
    let ReleaseOutcome::DownloadIncomplete { downloaded, .. } = &report.outcomes[0] else {
        panic!("{report:?}");
    };
    assert_eq!(*downloaded, 30_000);
    assert_eq!(
        node.artifacts.keys().len(),
        1,
        "the partial download is kept"
    );
    assert!(
        logs.text().contains("stopped after 30000 bytes"),
        "{}",
        logs.text()
    );

    node.erp.set_offline(false);
    // Even after a restart.
    let report = node.updates().check().await.unwrap();
    assert_eq!(
        report.staged(),
        vec![(ComponentId::SpaceFuel, "2.2.0".into())]
    );
    let starts: Vec<u64> = node.erp.fetches().iter().map(|f| f.start).collect();
    assert_eq!(
        starts,
        vec![0, 30_000, 30_000],
        "resumed at the stored length"
    );
}

#[tokio::test]
async fn a_server_that_ignores_ranges_restarts_the_download_cleanly() {
    let node = Node::new();
    node.erp
        .publish(MemoryRelease::new(ComponentId::SpacePos, "1.5.0"));
    node.erp.cut_next_transfer(10_000, true);
    let updates = node.updates();
    updates.check().await.unwrap();
    node.erp.set_offline(false);
    node.erp.ignore_range(true);
    let report = updates.check().await.unwrap();
    assert_eq!(
        report.staged(),
        vec![(ComponentId::SpacePos, "1.5.0".into())]
    );
}

#[tokio::test]
async fn a_newer_release_replaces_the_staged_one_and_its_artifact() {
    let node = Node::new();
    node.erp
        .publish(MemoryRelease::new(ComponentId::SpacePos, "1.5.0"));
    let updates = node.updates();
    updates.check().await.unwrap();
    node.erp
        .publish(MemoryRelease::new(ComponentId::SpacePos, "1.5.1"));
    let report = updates.check().await.unwrap();
    assert_eq!(
        report.staged(),
        vec![(ComponentId::SpacePos, "1.5.1".into())]
    );
    let keys = node.artifacts.keys();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0].version, "1.5.1");
    assert_eq!(
        node.events("POSComponentReadyEvent").len(),
        2,
        "one Ready per staged version"
    );
}
