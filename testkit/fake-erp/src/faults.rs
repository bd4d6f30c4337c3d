//! Fault switches: rules that make the next matching requests fail in a chosen way.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A route of the contract, as fault rules and recorded requests name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Route {
    /// Every contract request (not the admin API), including unknown paths.
    Any,
    Onboard,
    TerminalsMe,
    Datasets,
    Snapshot,
    Changes,
    Operations,
    Releases,
    Artifact,
    Login,
    Refresh,
    Jwks,
}

impl Route {
    /// The route of a request, `None` for a path the contract does not have.
    /// The method is not checked: a wrong method still belongs to the route.
    pub fn classify(path: &str) -> Option<Route> {
        let rest = path.strip_prefix("/api/pos/")?;
        let segments: Vec<&str> = rest.split('/').collect();
        Some(match segments.as_slice() {
            ["terminals", "onboard"] => Route::Onboard,
            ["terminals", "me"] => Route::TerminalsMe,
            ["datasets"] => Route::Datasets,
            ["datasets", _, "snapshot"] => Route::Snapshot,
            ["datasets", _, "changes"] => Route::Changes,
            ["operations"] => Route::Operations,
            ["releases", "pending"] => Route::Releases,
            ["releases", _, _, _] => Route::Artifact,
            ["auth", "login"] => Route::Login,
            ["auth", "refresh"] => Route::Refresh,
            ["auth", "jwks"] => Route::Jwks,
            _ => return None,
        })
    }

    fn matches(self, route: Option<Route>) -> bool {
        self == Route::Any || Some(self) == route
    }
}

/// What a fault does to a matching request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "FaultKindJson", into = "FaultKindJson")]
pub enum FaultKind {
    /// Answer this status with a contract error body, without doing the work.
    Status(u16),
    /// `401 invalid_client`, whatever the credentials.
    Unauthorized,
    /// Answer `status` (429 or 503) with `Retry-After: seconds`, without doing the work.
    RetryAfter { status: u16, seconds: u64 },
    /// Wait, then answer normally.
    Delay(Duration),
    /// Close the TCP connection without any answer, without doing the work.
    Drop,
    /// Do the work (accept operations, consume the onboarding code, ...), then
    /// close the connection without an answer.
    ApplyThenDrop,
    /// Answer normally but close the connection after `after_bytes` bytes of
    /// the body (the headers, Content-Length included, are sent in full).
    CutBody { after_bytes: u64 },
    /// Answer normally but stop sending after `after_bytes` bytes of the body and
    /// keep the connection open and silent (for progress timeouts).
    StallBody { after_bytes: u64 },
}

impl FaultKind {
    /// A short label, as recorded in [`crate::RecordedRequest::fault`].
    pub fn label(&self) -> String {
        match self {
            FaultKind::Status(s) => format!("status({s})"),
            FaultKind::Unauthorized => "unauthorized".into(),
            FaultKind::RetryAfter { status, seconds } => {
                format!("retryAfter({status}, {seconds}s)")
            }
            FaultKind::Delay(d) => format!("delay({} ms)", d.as_millis()),
            FaultKind::Drop => "drop".into(),
            FaultKind::ApplyThenDrop => "applyThenDrop".into(),
            FaultKind::CutBody { after_bytes } => format!("cutBody({after_bytes})"),
            FaultKind::StallBody { after_bytes } => format!("stallBody({after_bytes})"),
        }
    }
}

/// The admin API's JSON form of [`FaultKind`]: `{"type": "status", "status": 503}`,
/// `{"type": "retryAfter", "status": 429, "seconds": 5}`, `{"type": "delay", "millis": 1500}`,
/// `{"type": "cutBody", "afterBytes": 1000}`, `{"type": "drop"}`, ...
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
enum FaultKindJson {
    Status { status: u16 },
    Unauthorized,
    RetryAfter { status: u16, seconds: u64 },
    Delay { millis: u64 },
    Drop,
    ApplyThenDrop,
    CutBody { after_bytes: u64 },
    StallBody { after_bytes: u64 },
}

impl TryFrom<FaultKindJson> for FaultKind {
    type Error = String;

    fn try_from(j: FaultKindJson) -> Result<Self, String> {
        let check = |s: u16| {
            if (200..=599).contains(&s) {
                Ok(s)
            } else {
                Err(format!("{s} is not an HTTP status from 200 to 599"))
            }
        };
        Ok(match j {
            FaultKindJson::Status { status } => FaultKind::Status(check(status)?),
            FaultKindJson::Unauthorized => FaultKind::Unauthorized,
            FaultKindJson::RetryAfter { status, seconds } => FaultKind::RetryAfter {
                status: check(status)?,
                seconds,
            },
            FaultKindJson::Delay { millis } => FaultKind::Delay(Duration::from_millis(millis)),
            FaultKindJson::Drop => FaultKind::Drop,
            FaultKindJson::ApplyThenDrop => FaultKind::ApplyThenDrop,
            FaultKindJson::CutBody { after_bytes } => FaultKind::CutBody { after_bytes },
            FaultKindJson::StallBody { after_bytes } => FaultKind::StallBody { after_bytes },
        })
    }
}

impl From<FaultKind> for FaultKindJson {
    fn from(k: FaultKind) -> Self {
        match k {
            FaultKind::Status(status) => FaultKindJson::Status { status },
            FaultKind::Unauthorized => FaultKindJson::Unauthorized,
            FaultKind::RetryAfter { status, seconds } => {
                FaultKindJson::RetryAfter { status, seconds }
            }
            FaultKind::Delay(d) => FaultKindJson::Delay {
                millis: u64::try_from(d.as_millis()).unwrap_or(u64::MAX),
            },
            FaultKind::Drop => FaultKindJson::Drop,
            FaultKind::ApplyThenDrop => FaultKindJson::ApplyThenDrop,
            FaultKind::CutBody { after_bytes } => FaultKindJson::CutBody { after_bytes },
            FaultKind::StallBody { after_bytes } => FaultKindJson::StallBody { after_bytes },
        }
    }
}

/// A fault switch: the next `times` requests of `route` get `kind`
/// (`times: None` = until the faults are cleared).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultRule {
    pub route: Route,
    pub kind: FaultKind,
    #[serde(default)]
    pub times: Option<u32>,
}

impl FaultRule {
    /// `kind` for the next request of `route` only.
    pub fn once(route: Route, kind: FaultKind) -> Self {
        Self {
            route,
            kind,
            times: Some(1),
        }
    }

    /// `kind` for the next `n` requests of `route`.
    pub fn times(route: Route, kind: FaultKind, n: u32) -> Self {
        Self {
            route,
            kind,
            times: Some(n),
        }
    }

    /// `kind` for every request of `route` until the faults are cleared.
    pub fn always(route: Route, kind: FaultKind) -> Self {
        Self {
            route,
            kind,
            times: None,
        }
    }
}

/// The active rules, first added = first matched.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    rules: Vec<FaultRule>,
}

impl Faults {
    pub(crate) fn add(&mut self, rule: FaultRule) {
        if rule.times != Some(0) {
            self.rules.push(rule);
        }
    }

    pub(crate) fn clear(&mut self) {
        self.rules.clear();
    }

    pub(crate) fn list(&self) -> Vec<FaultRule> {
        self.rules.clone()
    }

    /// The fault for a request of `route`, consuming one use of its rule.
    pub(crate) fn take(&mut self, route: Option<Route>) -> Option<FaultKind> {
        let index = self.rules.iter().position(|r| r.route.matches(route))?;
        let rule = &mut self.rules[index];
        let kind = rule.kind.clone();
        if let Some(n) = rule.times.as_mut() {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.rules.remove(index);
            }
        }
        Some(kind)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classify_paths() {
        assert_eq!(
            Route::classify("/api/pos/datasets/products/snapshot"),
            Some(Route::Snapshot)
        );
        assert_eq!(
            Route::classify("/api/pos/releases/spacepos/1.5.0/a.msi"),
            Some(Route::Artifact)
        );
        assert_eq!(
            Route::classify("/api/pos/releases/pending"),
            Some(Route::Releases)
        );
        assert_eq!(Route::classify("/api/pos/nope"), None);
        assert_eq!(Route::classify("/"), None);
    }

    #[test]
    fn rules_count_down_and_match_any() {
        let mut f = Faults::default();
        f.add(FaultRule::times(
            Route::Operations,
            FaultKind::Status(503),
            2,
        ));
        f.add(FaultRule::always(Route::Any, FaultKind::Drop));
        assert_eq!(
            f.take(Some(Route::Operations)),
            Some(FaultKind::Status(503))
        );
        assert_eq!(f.take(Some(Route::Login)), Some(FaultKind::Drop));
        assert_eq!(
            f.take(Some(Route::Operations)),
            Some(FaultKind::Status(503))
        );
        assert_eq!(f.take(Some(Route::Operations)), Some(FaultKind::Drop));
        assert_eq!(f.take(None), Some(FaultKind::Drop));
        f.clear();
        assert_eq!(f.take(Some(Route::Operations)), None);
    }

    #[test]
    fn json_form() {
        let rule: FaultRule = serde_json::from_value(json!({
            "route": "artifact", "kind": {"type": "cutBody", "afterBytes": 10}, "times": 1
        }))
        .unwrap();
        assert_eq!(
            rule,
            FaultRule::once(Route::Artifact, FaultKind::CutBody { after_bytes: 10 })
        );
        let delay = serde_json::to_value(FaultRule::always(
            Route::Any,
            FaultKind::Delay(Duration::from_millis(5)),
        ));
        assert_eq!(
            delay.unwrap(),
            json!({"route": "any", "kind": {"type": "delay", "millis": 5}, "times": null})
        );
        assert!(
            serde_json::from_value::<FaultKind>(json!({"type": "status", "status": 42})).is_err()
        );
    }
}
