//! Applying a staged update: the "applying" record comes first, outcomes are
//! recorded and reported once (also across a restart), the start-up
//! reconciliation judges an MSI installation by the running version, release
//! events trigger a check at once, and the one-shot Tauri manifest.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::{Node, terminal};
use serde_json::json;
use spacepos_config::{StateStore, UpdateResult};
use spacepos_core::ComponentId;
use spacepos_testkit::fakes::{MemoryRelease, MemoryStateStore, ScriptedInstall};
use spacepos_updates::{
    ApplyOutcome, ComponentInstaller, InstallError, InstallOutcome, ReleaseOutcome, StagedRelease,
    UpdatePorts, Updates,
};
use tokio::sync::mpsc;
use tokio::time::sleep;
use tokio_util::sync::CancellationToken;

async fn staged(node: &Node, component: ComponentId, version: &str) -> Updates {
    node.erp.publish(MemoryRelease::new(component, version));
    let updates = node.updates();
    assert_eq!(updates.check().await.unwrap().staged().len(), 1);
    updates
}

/// An installer that looks at state.json while it runs.
struct Probe {
    state: MemoryStateStore,
    seen: Arc<Mutex<Option<spacepos_config::ApplyingRecord>>>,
}

#[async_trait]
impl ComponentInstaller for Probe {
    async fn install(&self, _: &StagedRelease) -> Result<InstallOutcome, InstallError> {
        let state = self.state.load().await.unwrap().state;
        *self.seen.lock().unwrap() = state.updates.spacefuel.applying.clone();
        Ok(InstallOutcome::Applied)
    }
}

#[tokio::test]
async fn applying_is_recorded_with_the_previous_version_before_the_installer_runs() {
    let node = Node::new();
    node.erp
        .publish(MemoryRelease::new(ComponentId::SpaceFuel, "2.2.0"));
    let seen = Arc::new(Mutex::new(None));
    let ports = UpdatePorts {
        installer: Arc::new(Probe {
            state: node.state.clone(),
            seen: seen.clone(),
        }),
        ..node.ports()
    };
    let updates = Updates::new(ports, node.settings("1.4.2", "2.1.0")).unwrap();
    updates.check().await.unwrap();
    let report = updates.apply(ComponentId::SpaceFuel).await.unwrap();
    assert_eq!(report.outcome, ApplyOutcome::Applied);
    let record = seen
        .lock()
        .unwrap()
        .clone()
        .expect("applying was recorded first");
    assert_eq!(record.version, "2.2.0");
    assert_eq!(record.previous_version.as_deref(), Some("2.1.0"));
    assert_eq!(record.outcome, None);
    // Afterwards: nothing staged, nothing applying, the artifact is gone.
    let state = node.state.snapshot().unwrap();
    assert_eq!(state.updates.spacefuel.staged, None);
    assert_eq!(state.updates.spacefuel.applying, None);
    assert!(node.artifacts.keys().is_empty());
    let view = &updates.list().await.unwrap()[1];
    assert_eq!(view.installed.as_deref(), Some("2.2.0"));
}

#[tokio::test]
async fn ready_and_applied_are_each_written_to_the_outbox_exactly_once() {
    let node = Node::new();
    let updates = staged(&node, ComponentId::SpaceFuel, "2.2.0").await;
    updates.check().await.unwrap();
    node.updates().reconcile_at_start().await.unwrap();
    let ready = node.events("POSComponentReadyEvent");
    assert_eq!(ready.len(), 1);
    let r = &ready[0];
    assert_eq!(
        r.payload["Id"],
        json!(r.id.to_string()),
        "the outbox id is the event Id"
    );
    assert_eq!(r.payload["Component"], "SpaceFuel");
    assert_eq!(r.payload["Version"], "2.2.0");
    assert_eq!(r.payload["ClientId"], terminal().client_id.as_str());
    assert_eq!(r.payload["StoreNumber"], 12);
    assert_eq!(r.payload["TerminalNumber"], 3);

    updates.apply(ComponentId::SpaceFuel).await.unwrap();
    node.updates_running("1.4.2", "2.2.0")
        .reconcile_at_start()
        .await
        .unwrap();
    updates.check().await.unwrap();
    let applied = node.events("POSComponentAppliedEvent");
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].payload["Result"], "Applied");
    assert_eq!(applied[0].payload["Error"], json!(null));
    assert_eq!(node.events("POSComponentReadyEvent").len(), 1);
}

#[tokio::test]
async fn a_ready_event_kept_out_of_the_outbox_by_a_failure_is_written_at_the_next_start() {
    let node = Node::new();
    node.erp
        .publish(MemoryRelease::new(ComponentId::SpacePos, "1.5.0"));
    node.outbox.set_unavailable(Some("disk full"));
    assert!(node.updates().check().await.is_err());
    let staged = node
        .state
        .snapshot()
        .unwrap()
        .updates
        .spacepos
        .staged
        .unwrap();
    assert!(!staged.ready_queued, "staged, Ready not yet queued");
    node.outbox.set_unavailable(None);
    node.updates().reconcile_at_start().await.unwrap();
    node.updates().reconcile_at_start().await.unwrap();
    let ready = node.events("POSComponentReadyEvent");
    assert_eq!(ready.len(), 1);
    assert_eq!(ready[0].id, staged.ready_event_id);
}

#[tokio::test]
async fn a_rollback_is_reported_with_its_error_and_the_artifact_is_not_offered_again() {
    let node = Node::new();
    let updates = staged(&node, ComponentId::SpaceFuel, "2.2.0").await;
    node.installer
        .script(ScriptedInstall::Outcome(InstallOutcome::RolledBack {
            error: "health check failed: service did not report ready within 60 s".into(),
        }));
    let report = updates.apply(ComponentId::SpaceFuel).await.unwrap();
    assert!(
        matches!(report.outcome, ApplyOutcome::RolledBack { .. }),
        "{report:?}"
    );
    let applied = node.events("POSComponentAppliedEvent");
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].payload["Result"], "RolledBack");
    assert_eq!(applied[0].payload["PreviousVersion"], "2.1.0");
    assert_eq!(
        applied[0].payload["Error"],
        "health check failed: service did not report ready within 60 s"
    );
    let report = updates.check().await.unwrap();
    assert!(matches!(
        report.outcomes[0],
        ReleaseOutcome::PreviouslyRejected { .. }
    ));
    assert_eq!(node.installer.installs().len(), 1);
}

#[tokio::test]
async fn an_installer_error_is_reported_as_failed() {
    let node = Node::new();
    let updates = staged(&node, ComponentId::SpacePos, "1.5.0").await;
    node.installer
        .script(ScriptedInstall::Fail("msiexec exited with 1603".into()));
    let report = updates.apply(ComponentId::SpacePos).await.unwrap();
    assert_eq!(
        report.outcome,
        ApplyOutcome::Failed {
            error: "msiexec exited with 1603".into()
        }
    );
    let applied = node.events("POSComponentAppliedEvent");
    assert_eq!(applied[0].payload["Result"], "Failed");
    assert_eq!(applied[0].payload["Error"], "msiexec exited with 1603");
}

#[tokio::test]
async fn an_msi_installation_is_judged_at_the_next_start_by_the_running_version() {
    let node = Node::new();
    let updates = staged(&node, ComponentId::SpacePos, "1.5.0").await;
    node.installer
        .script(ScriptedInstall::Outcome(InstallOutcome::RestartPending));
    let report = updates.apply(ComponentId::SpacePos).await.unwrap();
    assert_eq!(report.outcome, ApplyOutcome::RestartPending);
    assert!(
        node.events("POSComponentAppliedEvent").is_empty(),
        "not known yet"
    );
    let applying = node
        .state
        .snapshot()
        .unwrap()
        .updates
        .spacepos
        .applying
        .unwrap();
    assert_eq!(applying.previous_version.as_deref(), Some("1.4.2"));

    // The app restarts as 1.5.0.
    let after = node.updates_running("1.5.0", "2.1.0");
    let reports = after.reconcile_at_start().await.unwrap();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].outcome, ApplyOutcome::Applied);
    let applied = node.events("POSComponentAppliedEvent");
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].payload["Result"], "Applied");
    assert_eq!(applied[0].payload["Version"], "1.5.0");
    assert_eq!(applied[0].payload["PreviousVersion"], "1.4.2");
    let state = node.state.snapshot().unwrap();
    assert_eq!(state.updates.spacepos.applying, None);
    assert_eq!(state.updates.spacepos.staged, None);
    // A second start reports nothing more.
    assert!(
        node.updates_running("1.5.0", "2.1.0")
            .reconcile_at_start()
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(node.events("POSComponentAppliedEvent").len(), 1);
}

#[tokio::test]
async fn the_previous_version_still_running_after_the_restart_is_a_failure() {
    let node = Node::new();
    let updates = staged(&node, ComponentId::SpacePos, "1.5.0").await;
    node.installer
        .script(ScriptedInstall::Outcome(InstallOutcome::RestartPending));
    updates.apply(ComponentId::SpacePos).await.unwrap();
    let reports = node.updates().reconcile_at_start().await.unwrap();
    let ApplyOutcome::Failed { error } = &reports[0].outcome else {
        panic!("{reports:?}");
    };
    assert!(
        error.contains("the update to 1.5.0 did not take effect: 1.4.2 is still running"),
        "{error}"
    );
    let applied = node.events("POSComponentAppliedEvent");
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].payload["Result"], "Failed");
    assert_eq!(applied[0].payload["Error"], error.as_str());
    let state = node.state.snapshot().unwrap();
    assert!(
        state
            .updates
            .spacepos
            .is_rejected("1.5.0", &state_sha(&node))
    );
}

fn state_sha(node: &Node) -> String {
    node.state.snapshot().unwrap().updates.spacepos.rejected[0]
        .sha256
        .clone()
}

#[tokio::test]
async fn an_outcome_recorded_before_a_crash_is_reported_at_the_next_start() {
    let node = Node::new();
    let updates = staged(&node, ComponentId::SpaceFuel, "2.2.0").await;
    node.outbox.set_unavailable(Some("disk full"));
    assert!(updates.apply(ComponentId::SpaceFuel).await.is_err());
    let applying = node
        .state
        .snapshot()
        .unwrap()
        .updates
        .spacefuel
        .applying
        .unwrap();
    assert_eq!(
        applying.outcome.map(|o| o.result),
        Some(UpdateResult::Applied)
    );
    node.outbox.set_unavailable(None);
    node.updates_running("1.4.2", "2.2.0")
        .reconcile_at_start()
        .await
        .unwrap();
    let applied = node.events("POSComponentAppliedEvent");
    assert_eq!(applied.len(), 1);
    assert_eq!(applied[0].id, applying.applied_event_id);
    assert_eq!(node.installer.installs().len(), 1, "not installed twice");
}

#[tokio::test(start_paused = true)]
async fn a_release_event_checks_at_once_and_the_timer_checks_every_interval() {
    let node = Node::new();
    node.safe_point.set_busy(Some("a pump is fuelling"));
    let updates = node.updates();
    let shutdown = CancellationToken::new();
    let (events, events_rx) = mpsc::channel(4);
    let task = tokio::spawn(updates.clone().run(shutdown.clone(), events_rx));
    sleep(Duration::from_secs(1)).await;
    assert_eq!(node.erp.pending_calls(), 1, "a check at start");

    node.erp
        .publish(MemoryRelease::new(ComponentId::SpacePos, "1.5.0"));
    events.send(()).await.unwrap();
    sleep(Duration::from_secs(1)).await;
    assert_eq!(node.erp.pending_calls(), 2, "at once on the event");
    assert_eq!(node.events("POSComponentReadyEvent").len(), 1);

    sleep(Duration::from_secs(3600)).await;
    assert_eq!(node.erp.pending_calls(), 3, "then every check_interval");
    assert!(node.installer.installs().is_empty(), "a pump is fuelling");
    shutdown.cancel();
    task.await.unwrap();
}

#[tokio::test]
async fn the_manifest_of_a_staged_spacepos_release_is_served_once() {
    let node = Node::new();
    let updates = node.updates();
    assert!(updates.serve_manifest().await.is_err(), "nothing staged");
    node.erp
        .publish(MemoryRelease::new(ComponentId::SpacePos, "1.5.0").with_notes("Faster receipts"));
    updates.check().await.unwrap();
    let staged = node
        .state
        .snapshot()
        .unwrap()
        .updates
        .spacepos
        .staged
        .unwrap();
    let served = updates.serve_manifest().await.unwrap();
    let body = node.manifests.fetch(&served.url).expect("first request");
    let manifest: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        manifest,
        json!({
            "version": "1.5.0",
            "notes": "Faster receipts",
            "pub_date": staged.pub_date.unwrap().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "platforms": {"windows-x86_64-msi": {"url": staged.url, "signature": staged.signature}}
        })
    );
    assert_eq!(
        node.manifests.fetch(&served.url),
        None,
        "second request: 404"
    );
}
