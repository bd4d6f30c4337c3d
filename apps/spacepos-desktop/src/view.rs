//! The UI's DTOs (`UI-CONTRACT.md`): what the window is given, translated
//! from the node's status. No rule is decided here that the runtime has not
//! decided already; this is naming and shaping only.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use spacepos_core::ComponentId;
use spacepos_node::NodeError;
use spacepos_node::status::{StaffStatus, Status};
use spacepos_spacefuel::{PumpState, ServiceState};
use spacepos_sync::QueuedOperation;
use spacepos_updates::{ComponentView, DownloadProgress};

/// Everything the window shows, pushed whole on every change.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct View {
    pub onboarded: bool,
    /// The ERP URL the configuration presets (the URL field is hidden then).
    pub api_preset: Option<String>,
    pub terminal: Option<TerminalDto>,
    pub erp: LinkDto,
    pub broker: LinkDto,
    pub last_sync: Option<LastSyncDto>,
    pub queue: QueueDto,
    pub parked: Vec<ParkedDto>,
    pub datasets: Vec<DatasetDto>,
    pub presence: Option<PresenceDto>,
    pub staff: StaffDto,
    pub updates: Vec<UpdateDto>,
    pub updates_note: Option<String>,
    pub spacefuel: Option<SpaceFuelDto>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TerminalDto {
    pub client_id: String,
    pub store_number: u32,
    pub terminal_number: u32,
    pub company: Option<String>,
    pub api_endpoint: Option<String>,
}

/// The ERP or the broker: `online`, `offline`, `unknown`, `none` (no broker
/// configured), `credentials-refused` (ERP only).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkDto {
    pub state: &'static str,
    pub detail: Option<String>,
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LastSyncDto {
    pub at: DateTime<Utc>,
    pub ok: bool,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueDto {
    pub pending: u64,
    pub oldest_pending_age_seconds: Option<i64>,
    pub parked: u64,
    pub done: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ParkedDto {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub created_at: DateTime<Utc>,
    pub attempts: u32,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DatasetDto {
    pub name: String,
    pub entities: u64,
    pub sequence: Option<u64>,
    pub last_applied_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceDto {
    pub on: bool,
    pub interval_seconds: u64,
    pub last_beat_at: Option<String>,
    pub next_beat_at: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StaffDto {
    /// `nobody`, `logged-in`, `expired`, `unknown`.
    pub state: &'static str,
    pub store_staff_id: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
    pub detail: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateDto {
    /// `spacepos` or `spacefuel` (what the commands take).
    pub component: String,
    pub name: &'static str,
    pub installed: Option<String>,
    pub offered: Option<String>,
    pub staged: Option<String>,
    pub notes: Option<String>,
    pub download: Option<DownloadDto>,
    pub snoozes_left: u32,
    pub snoozed_until: Option<DateTime<Utc>>,
    pub waiting_for: Option<String>,
    pub applying: Option<String>,
    pub last_rejected: Option<String>,
    pub can_install: bool,
    pub can_snooze: bool,
    /// Why "Install now" is not offered for a staged update.
    pub install_note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DownloadDto {
    pub bytes: u64,
    pub total: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpaceFuelDto {
    pub active_slot: Option<String>,
    pub active_version: Option<String>,
    pub blue: Option<String>,
    pub green: Option<String>,
    pub switch: Option<String>,
    /// `running`, `starting`, `stopped`, `failed`, `not-installed`, `unknown`.
    pub service: &'static str,
    pub service_detail: Option<String>,
    pub ready: Option<bool>,
    pub pumps: Vec<PumpDto>,
    pub unpaid_sales: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PumpDto {
    pub id: u8,
    pub state: &'static str,
    pub detail: Option<String>,
}

/// A failed command, as the window shows it (`UI-CONTRACT.md`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDto {
    /// `unknown-code`, `used-code`, `unreachable`, `refused`, `invalid`,
    /// `not-onboarded`, `config`, `storage`, `internal`.
    pub kind: &'static str,
    pub message: String,
}

impl ErrorDto {
    pub fn new(kind: &'static str, message: impl Into<String>) -> Self {
        ErrorDto {
            kind,
            message: message.into(),
        }
    }
}

impl From<NodeError> for ErrorDto {
    fn from(e: NodeError) -> Self {
        use spacepos_node::Kind;
        let kind = e.reason.unwrap_or(match e.kind {
            Kind::Internal => "internal",
            Kind::Usage => "invalid",
            Kind::Config => "config",
            Kind::NotOnboarded => "not-onboarded",
            Kind::Refused => "refused",
            Kind::Unreachable => "unreachable",
            Kind::Storage => "storage",
        });
        ErrorDto::new(kind, e.message)
    }
}

/// What the view is made of besides [`Status`]: the live update service's
/// list, downloads in progress, the parked operations.
#[derive(Debug, Default)]
pub struct Extras {
    pub api_preset: Option<String>,
    /// `None`: this node does not check for updates (the reason is in `updates_note`).
    pub updates: Option<Vec<ComponentView>>,
    pub updates_note: Option<String>,
    pub downloads: Vec<DownloadProgress>,
    pub parked: Vec<QueuedOperation>,
    /// This build can install SpacePOS itself (Windows, the MSI).
    pub installs_spacepos: bool,
}

impl View {
    pub fn build(status: &Status, extras: Extras, now: DateTime<Utc>) -> View {
        let store = status.store.as_ref();
        let fact = |f: Option<&Value>| f.cloned();
        let (erp, last_sync) = erp_link(
            fact(store.and_then(|s| s.last_send.as_ref())),
            fact(store.and_then(|s| s.last_ingest.as_ref())),
            store.is_some_and(|s| s.reonboarding_needed),
        );
        View {
            onboarded: status.terminal.is_some(),
            api_preset: extras.api_preset,
            terminal: status.terminal.as_ref().map(|t| TerminalDto {
                client_id: t.client_id.clone(),
                store_number: t.store_number,
                terminal_number: t.terminal_number,
                company: t.company.clone(),
                api_endpoint: t.api_endpoint.clone(),
            }),
            erp,
            broker: broker_link(
                status
                    .terminal
                    .as_ref()
                    .is_some_and(|t| t.amqp_url.is_some()),
                store.and_then(|s| s.bus.as_ref()),
            ),
            last_sync,
            queue: store
                .map(|s| QueueDto {
                    pending: s.outbox.pending,
                    oldest_pending_age_seconds: s.outbox.oldest_pending_age_seconds,
                    parked: s.outbox.parked,
                    done: s.outbox.done,
                })
                .unwrap_or_default(),
            parked: extras
                .parked
                .iter()
                .map(|op| ParkedDto {
                    id: op.id.to_string(),
                    kind: op.kind.clone(),
                    created_at: op.created_at,
                    attempts: op.attempts,
                    last_error: op.last_error.clone(),
                })
                .collect(),
            datasets: store
                .map(|s| {
                    s.datasets
                        .iter()
                        .map(|d| DatasetDto {
                            name: d.name.clone(),
                            entities: d.entities,
                            sequence: d.sequence,
                            last_applied_at: d.last_applied_at,
                        })
                        .collect()
                })
                .unwrap_or_default(),
            presence: store.and_then(|s| s.presence.as_ref()).map(presence),
            staff: staff(&status.staff),
            updates: extras
                .updates
                .as_deref()
                .unwrap_or_default()
                .iter()
                .filter_map(|v| {
                    let mut v = v.clone();
                    if v.component == ComponentId::SpaceFuel {
                        // The till does not run SpaceFuel: its version is the active slot's.
                        v.installed = status.spacefuel.active_version.clone();
                        v.installed.as_ref()?;
                    }
                    Some(update(&v, &extras.downloads, extras.installs_spacepos))
                })
                .collect(),
            updates_note: extras.updates_note,
            spacefuel: spacefuel(status),
            updated_at: now,
        }
    }

    /// The same view without its timestamp: what decides whether to push.
    pub fn same_as(&self, other: &View) -> bool {
        let mut a = self.clone();
        a.updated_at = other.updated_at;
        a == *other
    }
}

fn at(v: &Value) -> Option<DateTime<Utc>> {
    v["at"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The ERP is what the latest of the send and ingest loops found when they
/// talked to it. A send loop with nothing to send records "ok" without a
/// request: that says nothing about the ERP, so it does not count.
fn erp_link(
    send: Option<Value>,
    ingest: Option<Value>,
    refused: bool,
) -> (LinkDto, Option<LastSyncDto>) {
    let talked =
        |v: &Value| v["ok"].as_bool() != Some(true) || v["detail"]["sent"].as_u64() != Some(0);
    let latest = [send.filter(talked), ingest]
        .into_iter()
        .flatten()
        .filter_map(|v| at(&v).map(|t| (t, v)))
        .max_by_key(|(t, _)| *t);
    let last_sync = latest.as_ref().map(|(t, v)| LastSyncDto {
        at: *t,
        ok: v["ok"].as_bool().unwrap_or(false),
        detail: v["error"].as_str().map(str::to_owned),
    });
    let link = if refused {
        LinkDto {
            state: "credentials-refused",
            detail: Some("the ERP refused this terminal's credentials: onboard again".into()),
            at: latest.as_ref().map(|(t, _)| *t),
        }
    } else {
        match &latest {
            None => LinkDto {
                state: "unknown",
                detail: None,
                at: None,
            },
            Some((t, v)) if v["ok"].as_bool() == Some(true) => LinkDto {
                state: "online",
                detail: None,
                at: Some(*t),
            },
            Some((t, v)) => LinkDto {
                state: "offline",
                detail: v["error"].as_str().map(str::to_owned),
                at: Some(*t),
            },
        }
    };
    (link, last_sync)
}

fn broker_link(configured: bool, bus: Option<&Value>) -> LinkDto {
    match bus {
        _ if !configured => LinkDto {
            state: "none",
            detail: Some("no event bus configured: datasets are caught up on a timer".into()),
            at: None,
        },
        None => LinkDto {
            state: "unknown",
            detail: None,
            at: None,
        },
        Some(b) => LinkDto {
            state: if b["connected"].as_bool() == Some(true) {
                "online"
            } else {
                "offline"
            },
            detail: b["error"].as_str().map(str::to_owned),
            at: at(b),
        },
    }
}

fn presence(p: &Value) -> PresenceDto {
    let text = |k: &str| p[k].as_str().map(str::to_owned);
    PresenceDto {
        on: p["on"].as_bool() == Some(true),
        interval_seconds: p["intervalSeconds"].as_u64().unwrap_or(0),
        last_beat_at: text("lastBeatAt"),
        next_beat_at: text("nextBeatAt"),
        error: text("error"),
    }
}

fn staff(s: &StaffStatus) -> StaffDto {
    let dto =
        |state, id: Option<&String>, at: Option<DateTime<Utc>>, detail: Option<String>| StaffDto {
            state,
            store_staff_id: id.cloned(),
            expires_at: at,
            detail,
        };
    match s {
        StaffStatus::NotOnboarded | StaffStatus::NobodyLoggedIn => dto("nobody", None, None, None),
        StaffStatus::LoggedIn {
            store_staff_id,
            expires_at,
        } => dto("logged-in", Some(store_staff_id), Some(*expires_at), None),
        StaffStatus::Expired {
            store_staff_id,
            expired_at,
            reason,
        } => dto(
            "expired",
            Some(store_staff_id),
            Some(*expired_at),
            Some(reason.clone()),
        ),
        StaffStatus::Unknown { error } => dto("unknown", None, None, Some(error.clone())),
    }
}

fn update(v: &ComponentView, downloads: &[DownloadProgress], installs_spacepos: bool) -> UpdateDto {
    let staged = v.staged.as_ref().map(|s| s.version.clone());
    let download = downloads
        .iter()
        .find(|d| {
            d.component == v.component
                && staged.as_deref() != Some(d.version.as_str())
                && d.total.is_none_or(|t| d.downloaded < t)
        })
        .map(|d| DownloadDto {
            bytes: d.downloaded,
            total: d.total,
        });
    let idle = staged.is_some() && v.applying.is_none();
    let can_install = idle && v.component == ComponentId::SpacePos && installs_spacepos;
    let install_note = match v.component {
        _ if !idle || can_install => None,
        ComponentId::SpaceFuel => Some(
            "The SpaceFuel service installs it at a quiet moment on the forecourt (no pump busy, no unpaid sale)."
                .to_owned(),
        ),
        ComponentId::SpacePos => Some(
            "This build stages SpacePOS updates; the Windows package (MSI) installs them.".to_owned(),
        ),
    };
    UpdateDto {
        component: v.component.to_string(),
        name: match v.component {
            ComponentId::SpacePos => "SpacePOS",
            ComponentId::SpaceFuel => "SpaceFuel",
        },
        installed: v.installed.clone(),
        offered: v.offered.clone(),
        notes: v.staged.as_ref().and_then(|s| s.notes.clone()),
        staged,
        download,
        snoozes_left: v.snoozes_left,
        snoozed_until: v.snoozed_until,
        waiting_for: v.waiting_for.clone(),
        applying: v.applying.clone(),
        last_rejected: v
            .last_rejected
            .as_ref()
            .map(|(version, reason)| format!("{version}: {reason}")),
        // SpaceFuel is applied by its service at a quiet moment; SpacePOS by
        // this app where it can install its package (Windows).
        can_install,
        can_snooze: idle && v.snoozes_left > 0,
        install_note,
    }
}

fn spacefuel(status: &Status) -> Option<SpaceFuelDto> {
    let sf = &status.spacefuel;
    if sf.active_slot.is_none() && sf.blue.is_none() && sf.green.is_none() {
        return None;
    }
    let (service, service_detail) = match &sf.service {
        Some(ServiceState::Running { .. }) => ("running", None),
        Some(ServiceState::Starting { .. }) => ("starting", None),
        Some(ServiceState::Stopped) => ("stopped", None),
        Some(ServiceState::Failed { reason }) => ("failed", Some(reason.clone())),
        Some(ServiceState::NotInstalled) => ("not-installed", None),
        None => ("unknown", None),
    };
    let health = sf.health.as_ref();
    Some(SpaceFuelDto {
        active_slot: sf.active_slot.clone(),
        active_version: sf.active_version.clone(),
        blue: sf.blue.clone(),
        green: sf.green.clone(),
        switch: sf.switch.clone(),
        service,
        // Pumps come from the service's last report; say how old it is when
        // the service does not run now.
        service_detail: service_detail.or_else(|| match health {
            Some(h) if service != "running" => Some(format!(
                "pumps as last reported at {} UTC",
                h.at.format("%H:%M:%S")
            )),
            Some(h) => h.detail.clone(),
            None => None,
        }),
        ready: health.filter(|_| service == "running").map(|h| h.ready),
        pumps: health
            .map(|h| {
                h.pumps
                    .iter()
                    .map(|p| {
                        let (state, detail) = pump(&p.state);
                        PumpDto {
                            id: p.id,
                            state,
                            detail,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default(),
        unpaid_sales: health.map(|h| h.sales.len()).unwrap_or(0),
    })
}

fn pump(s: &PumpState) -> (&'static str, Option<String>) {
    match s {
        PumpState::Idle => ("idle", None),
        PumpState::Calling { nozzle } => ("calling", Some(format!("nozzle {nozzle} lifted"))),
        PumpState::Authorised { .. } => ("authorised", None),
        PumpState::Fuelling {
            volume_ml,
            amount_minor,
            ..
        } => (
            "fuelling",
            Some(format!(
                "{}.{:02} l, {}.{:02}",
                volume_ml / 1000,
                (volume_ml % 1000) / 10,
                amount_minor / 100,
                amount_minor % 100
            )),
        ),
        PumpState::Payable => ("payable", None),
        PumpState::Locked => ("locked", None),
        PumpState::Error { reason } => ("error", Some(reason.clone())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(at: &str, ok: bool, sent: u64, error: Option<&str>) -> Value {
        json!({"at": at, "ok": ok, "error": error, "detail": {"sent": sent, "done": sent, "parked": 0}})
    }

    #[test]
    fn the_erp_is_what_the_loops_found_when_they_talked_to_it() {
        let down = json!({"at": "2026-11-26T10:00:05Z", "ok": false, "error": "cannot reach erp", "detail": {}});
        // An idle send loop's "ok" after a failed ingest proves nothing.
        let idle = report("2026-11-26T10:00:09Z", true, 0, None);
        let (link, _) = erp_link(Some(idle), Some(down.clone()), false);
        assert_eq!(link.state, "offline");
        // A send that delivered something later does.
        let sent = report("2026-11-26T10:00:09Z", true, 3, None);
        let (link, last) = erp_link(Some(sent), Some(down.clone()), false);
        assert_eq!(link.state, "online");
        assert!(last.is_some_and(|l| l.ok));
        // A failed send counts even with nothing sent.
        let failed = report("2026-11-26T10:00:09Z", false, 0, Some("HTTP 503"));
        let ok_ingest =
            json!({"at": "2026-11-26T10:00:01Z", "ok": true, "error": null, "detail": {}});
        let (link, _) = erp_link(Some(failed), Some(ok_ingest), false);
        assert_eq!(
            (link.state, link.detail.as_deref()),
            ("offline", Some("HTTP 503"))
        );
        // Nothing recorded yet; refused credentials win over everything.
        assert_eq!(erp_link(None, None, false).0.state, "unknown");
        assert_eq!(
            erp_link(None, Some(down), true).0.state,
            "credentials-refused"
        );
    }

    #[test]
    fn pumps_are_named_and_fuelling_shows_volume_and_amount() {
        let fuelling = PumpState::Fuelling {
            nozzle: 1,
            volume_ml: 12_405,
            amount_minor: 2356,
        };
        assert_eq!(pump(&fuelling), ("fuelling", Some("12.40 l, 23.56".into())));
        assert_eq!(pump(&PumpState::Idle), ("idle", None));
        assert_eq!(
            pump(&PumpState::Error {
                reason: "offline".into()
            }),
            ("error", Some("offline".into()))
        );
    }

    fn offered(staged: bool, left: u32) -> ComponentView {
        ComponentView {
            component: ComponentId::SpacePos,
            installed: Some("0.1.0".into()),
            offered: Some("0.9.0".into()),
            staged: staged.then(|| spacepos_updates::StagedView {
                version: "0.9.0".into(),
                staged_at: Utc::now(),
                notes: Some("Faster receipts".into()),
                size: 4096,
            }),
            snoozes_used: 3 - left,
            snoozes_left: left,
            snoozed_until: None,
            due_at: None,
            waiting_for: None,
            applying: None,
            last_rejected: None,
        }
    }

    #[test]
    fn a_download_shows_its_progress_until_the_release_is_staged() {
        let progress = DownloadProgress {
            component: ComponentId::SpacePos,
            version: "0.9.0".into(),
            downloaded: 1024,
            total: Some(4096),
        };
        let dto = update(&offered(false, 3), std::slice::from_ref(&progress), true);
        assert_eq!(
            dto.download,
            Some(DownloadDto {
                bytes: 1024,
                total: Some(4096)
            })
        );
        assert!(!dto.can_install && !dto.can_snooze, "nothing staged yet");
        let dto = update(&offered(true, 3), &[progress], true);
        assert_eq!(dto.download, None, "staged: the download is over");
        assert!(dto.can_install && dto.can_snooze);
        assert_eq!(dto.notes.as_deref(), Some("Faster receipts"));
    }

    #[test]
    fn snooze_and_install_follow_what_is_left_and_what_this_build_can_do() {
        let none_left = update(&offered(true, 0), &[], true);
        assert!(!none_left.can_snooze && none_left.can_install);
        let linux = update(&offered(true, 2), &[], false);
        assert!(linux.can_snooze && !linux.can_install);
        assert!(
            linux.install_note.is_some_and(|n| n.contains("MSI")),
            "says why"
        );
        assert_eq!(update(&offered(true, 2), &[], true).install_note, None);
        let mut fuel = offered(true, 2);
        fuel.component = ComponentId::SpaceFuel;
        assert!(
            !update(&fuel, &[], true).can_install,
            "SpaceFuel installs at its service"
        );
    }
}
