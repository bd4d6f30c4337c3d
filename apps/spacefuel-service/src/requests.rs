//! The till's requests to the forecourt: authorise a pump, lock a fuel sale
//! while taking payment, clear it once paid. The fuel controller is served by
//! the worker, so a till (another process on the same machine) hands it a
//! request file in `extensions/spacefuel/requests/` and waits for the answer
//! in `extensions/spacefuel/responses/`; both are written atomically (a
//! temporary name, then a rename). A request not picked up within its timeout
//! is withdrawn by the asker; one older than [`REQUEST_TTL`] is refused by the
//! worker, so a late worker never acts on a payment the till gave up on.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use spacepos_spacefuel::{ControllerError, ForecourtController, FuelSales, Preset, PumpId};
use tracing::{info, warn};
use uuid::Uuid;

/// A request older than this is refused, not executed.
pub(crate) const REQUEST_TTL: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "action")]
pub(crate) enum Action {
    /// `AuthoriseFuelPoint`, with an optional preset.
    Authorise {
        pump: PumpId,
        preset: Option<Preset>,
    },
    /// `LockFuelSaleTrx`: the till takes payment for this sale.
    Lock { transaction_id: String },
    /// `ClearFuelSaleTrx`: paid; stored in the outbox first, then cleared.
    Clear { transaction_id: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Request {
    pub(crate) id: Uuid,
    pub(crate) till: String,
    pub(crate) at: DateTime<Utc>,
    #[serde(flatten)]
    pub(crate) action: Action,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Response {
    pub(crate) id: Uuid,
    pub(crate) ok: bool,
    pub(crate) error: Option<String>,
}

fn dirs(ext: &Path) -> (PathBuf, PathBuf) {
    (ext.join("requests"), ext.join("responses"))
}

fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, dir.join(name))
}

/// Hand `action` to the worker and wait up to `timeout` for its answer.
pub(crate) async fn ask(
    ext: &Path,
    till: &str,
    action: Action,
    timeout: Duration,
) -> Result<Response, String> {
    let (requests, responses) = dirs(ext);
    let request = Request {
        id: Uuid::new_v4(),
        till: till.to_owned(),
        at: Utc::now(),
        action,
    };
    let name = format!("{}.json", request.id);
    let bytes = serde_json::to_vec(&request).map_err(|e| e.to_string())?;
    write_atomic(&requests, &name, &bytes)
        .map_err(|e| format!("cannot write the request to {}: {e}", requests.display()))?;
    let answer = responses.join(&name);
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Ok(bytes) = std::fs::read(&answer) {
            let _ = std::fs::remove_file(&answer);
            return serde_json::from_slice(&bytes)
                .map_err(|e| format!("the answer {} is unreadable: {e}", answer.display()));
        }
        if tokio::time::Instant::now() >= deadline {
            // Withdraw it; if the worker took it meanwhile, its answer says what happened.
            if std::fs::remove_file(requests.join(&name)).is_ok() {
                return Err(format!(
                    "SpaceFuel did not answer within {} s (is `spacefuel-service run` running?); \
                     the request was withdrawn and nothing was done",
                    timeout.as_secs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            if let Ok(bytes) = std::fs::read(&answer) {
                let _ = std::fs::remove_file(&answer);
                return serde_json::from_slice(&bytes).map_err(|e| e.to_string());
            }
            return Err("SpaceFuel took the request but did not answer in time".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The worker's side: execute the waiting requests, oldest first.
pub(crate) async fn serve(ext: &Path, controller: &dyn ForecourtController, sales: &FuelSales) {
    let (requests, responses) = dirs(ext);
    let Ok(entries) = std::fs::read_dir(&requests) else {
        return;
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json")
                && !p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    files.sort_by_key(|p| std::fs::metadata(p).and_then(|m| m.modified()).ok());
    for path in files {
        // Taking the file is the claim: a withdrawn request is gone.
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        if std::fs::remove_file(&path).is_err() {
            continue;
        }
        let Ok(request) = serde_json::from_slice::<Request>(&bytes) else {
            warn!(file = %path.display(), "an unreadable till request was dropped");
            continue;
        };
        let result = execute(&request, controller, sales).await;
        match &result {
            Ok(()) => info!(till = %request.till, action = ?request.action, "till request done"),
            Err(e) => {
                warn!(till = %request.till, action = ?request.action, error = %e, "till request refused")
            }
        }
        let response = Response {
            id: request.id,
            ok: result.is_ok(),
            error: result.err(),
        };
        if let Ok(bytes) = serde_json::to_vec(&response)
            && let Err(e) = write_atomic(&responses, &format!("{}.json", request.id), &bytes)
        {
            warn!(error = %e, "cannot answer a till request");
        }
    }
}

async fn execute(
    request: &Request,
    controller: &dyn ForecourtController,
    sales: &FuelSales,
) -> Result<(), String> {
    let age = (Utc::now() - request.at).to_std().unwrap_or_default();
    if age > REQUEST_TTL {
        return Err(format!(
            "the request is {} s old: refused, the till has given up on it",
            age.as_secs()
        ));
    }
    match &request.action {
        Action::Authorise { pump, preset } => controller
            .authorise_fuel_point(*pump, *preset)
            .await
            .map_err(|e| e.to_string()),
        Action::Lock { transaction_id } => controller
            .lock_fuel_sale_trx(transaction_id, &request.till)
            .await
            .map_err(|e| e.to_string()),
        Action::Clear { transaction_id } => {
            let all = controller
                .fuel_sale_trxs()
                .await
                .map_err(|e| e.to_string())?;
            let Some(sale) = all.iter().find(|s| &s.transaction_id == transaction_id) else {
                return Err(ControllerError::UnknownSale(transaction_id.clone()).to_string());
            };
            sales
                .settle(sale, &request.till)
                .await
                .map_err(|e| e.to_string())
        }
    }
}
