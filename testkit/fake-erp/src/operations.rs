//! Outbound operations (contract section 4): idempotent acceptance with programmable rejections.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use spacepos_erp_wire::rest::{Operation, OperationResult, OperationStatus};
use uuid::Uuid;

/// Which operations a [`RejectRule`] rejects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", untagged)]
pub enum RejectMatch {
    /// Operations whose `type` is this.
    Type {
        #[serde(rename = "type")]
        kind: String,
    },
    /// The operation with this id.
    Id { id: Uuid },
    /// Operations whose `payload` has `value` at JSON pointer `pointer` (e.g. `/grade`).
    Payload { pointer: String, value: Value },
}

/// A rule that answers `rejected` with `error` for matching operations. Rules are
/// evaluated on every attempt; nothing is remembered about rejected ids, so an
/// operation rejected once is accepted later if the rule is gone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RejectRule {
    #[serde(flatten)]
    pub matcher: RejectMatch,
    /// The error code given in the result, e.g. `unknown_grade`.
    pub error: String,
}

impl RejectRule {
    pub fn by_type(kind: impl Into<String>, error: impl Into<String>) -> Self {
        Self {
            matcher: RejectMatch::Type { kind: kind.into() },
            error: error.into(),
        }
    }

    pub fn by_id(id: Uuid, error: impl Into<String>) -> Self {
        Self {
            matcher: RejectMatch::Id { id },
            error: error.into(),
        }
    }

    pub fn by_payload(pointer: impl Into<String>, value: Value, error: impl Into<String>) -> Self {
        Self {
            matcher: RejectMatch::Payload {
                pointer: pointer.into(),
                value,
            },
            error: error.into(),
        }
    }

    fn matches(&self, op: &Operation) -> bool {
        match &self.matcher {
            RejectMatch::Type { kind } => &op.kind == kind,
            RejectMatch::Id { id } => &op.id == id,
            RejectMatch::Payload { pointer, value } => op.payload.pointer(pointer) == Some(value),
        }
    }
}

/// An operation the fake accepted, with who sent it and when.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AcceptedOperation {
    pub client_id: String,
    pub accepted_at: DateTime<Utc>,
    pub operation: Operation,
}

#[derive(Debug, Default)]
pub(crate) struct Operations {
    accepted: Vec<AcceptedOperation>,
    ids: HashSet<Uuid>,
    duplicate_answers: u64,
    rejected_answers: u64,
    rules: Vec<RejectRule>,
}

impl Operations {
    /// Answers one batch, in order. An id repeated inside the batch is `duplicate` the second time.
    pub(crate) fn submit(&mut self, client_id: &str, ops: Vec<Operation>) -> Vec<OperationResult> {
        let now = Utc::now();
        let mut results = Vec::with_capacity(ops.len());
        for op in ops {
            let id = op.id;
            let (status, error) = if self.ids.contains(&id) {
                self.duplicate_answers += 1;
                (OperationStatus::Duplicate, None)
            } else if let Some(rule) = self.rules.iter().find(|r| r.matches(&op)) {
                self.rejected_answers += 1;
                (OperationStatus::Rejected, Some(rule.error.clone()))
            } else {
                self.ids.insert(id);
                self.accepted.push(AcceptedOperation {
                    client_id: client_id.to_owned(),
                    accepted_at: now,
                    operation: op,
                });
                (OperationStatus::Accepted, None)
            };
            results.push(OperationResult { id, status, error });
        }
        results
    }

    pub(crate) fn add_rule(&mut self, rule: RejectRule) {
        self.rules.push(rule);
    }

    pub(crate) fn clear_rules(&mut self) {
        self.rules.clear();
    }

    pub(crate) fn accepted(&self) -> Vec<AcceptedOperation> {
        self.accepted.clone()
    }

    pub(crate) fn accepted_count(&self) -> usize {
        self.accepted.len()
    }

    pub(crate) fn duplicate_answers(&self) -> u64 {
        self.duplicate_answers
    }

    pub(crate) fn rejected_answers(&self) -> u64 {
        self.rejected_answers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn op(kind: &str, payload: Value) -> Operation {
        Operation {
            id: Uuid::new_v4(),
            kind: kind.into(),
            occurred_at: Utc::now(),
            store_staff_id: None,
            payload,
        }
    }

    #[test]
    fn idempotent_and_rules_are_not_remembered() {
        let mut o = Operations::default();
        let a = op("sale.completed", json!({}));
        let b = op("fuel.sale.completed", json!({"grade": "FUEL-X"}));
        o.add_rule(RejectRule::by_payload(
            "/grade",
            json!("FUEL-X"),
            "unknown_grade",
        ));
        let r = o.submit("c", vec![a.clone(), b.clone(), a.clone()]);
        let statuses: Vec<_> = r.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            [
                OperationStatus::Accepted,
                OperationStatus::Rejected,
                OperationStatus::Duplicate
            ]
        );
        assert_eq!(r[1].error.as_deref(), Some("unknown_grade"));
        o.clear_rules();
        let r = o.submit("c", vec![b.clone()]);
        assert_eq!(r[0].status, OperationStatus::Accepted);
        assert_eq!(o.accepted_count(), 2);
        assert_eq!(o.duplicate_answers(), 1);
        assert_eq!(o.rejected_answers(), 1);
    }

    #[test]
    fn rule_json_forms() {
        let t: RejectRule =
            serde_json::from_value(json!({"type": "sale.completed", "error": "x"})).unwrap();
        assert_eq!(t, RejectRule::by_type("sale.completed", "x"));
        let p: RejectRule =
            serde_json::from_value(json!({"pointer": "/pump", "value": 4, "error": "y"})).unwrap();
        assert_eq!(p, RejectRule::by_payload("/pump", json!(4), "y"));
        let id = Uuid::new_v4();
        let i: RejectRule = serde_json::from_value(json!({"id": id, "error": "z"})).unwrap();
        assert_eq!(i, RejectRule::by_id(id, "z"));
    }
}
