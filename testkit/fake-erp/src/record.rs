//! The request recorder: every contract request, in arrival order, bounded.

use std::collections::VecDeque;

use axum::http::request::Parts;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;

use crate::faults::Route;

/// Bodies smaller than this are parsed and kept as JSON in the record.
pub const RECORDED_JSON_LIMIT: usize = 64 * 1024;

/// One request the fake received (admin requests are not recorded).
///
/// Headers are kept as received, secrets included: the record is test data held
/// in memory (and served by the loopback-only admin API), never a log.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedRequest {
    /// Position in arrival order, from 1; survives [`crate::FakeErp::clear_requests`].
    pub seq: u64,
    pub at: DateTime<Utc>,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// All headers in order, names lower case, values lossily decoded as UTF-8.
    pub headers: Vec<(String, String)>,
    pub body_size: usize,
    /// The body parsed as JSON, when it is JSON and under 64 KiB.
    pub body_json: Option<Value>,
    /// The contract route, `None` for a path the contract does not have.
    pub route: Option<Route>,
    /// The status answered; `None` while in flight or when the connection was
    /// closed without an answer.
    pub status: Option<u16>,
    /// The fault injected into this request, if any (e.g. `"drop"`, `"status(503)"`).
    pub fault: Option<String>,
}

impl RecordedRequest {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
pub(crate) struct Recorder {
    limit: usize,
    next_seq: u64,
    items: VecDeque<RecordedRequest>,
}

impl Recorder {
    pub(crate) fn new(limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            next_seq: 1,
            items: VecDeque::new(),
        }
    }

    pub(crate) fn record(&mut self, parts: &Parts, body: &[u8], route: Option<Route>) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        let body_json = if !body.is_empty() && body.len() < RECORDED_JSON_LIMIT {
            serde_json::from_slice(body).ok()
        } else {
            None
        };
        let headers = parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        if self.items.len() >= self.limit {
            self.items.pop_front();
        }
        self.items.push_back(RecordedRequest {
            seq,
            at: Utc::now(),
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            query: parts.uri.query().map(str::to_owned),
            headers,
            body_size: body.len(),
            body_json,
            route,
            status: None,
            fault: None,
        });
        seq
    }

    fn get_mut(&mut self, seq: u64) -> Option<&mut RecordedRequest> {
        let first = self.items.front()?.seq;
        let index = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.items.get_mut(index).filter(|r| r.seq == seq)
    }

    pub(crate) fn set_status(&mut self, seq: u64, status: u16) {
        if let Some(r) = self.get_mut(seq) {
            r.status = Some(status);
        }
    }

    pub(crate) fn set_fault(&mut self, seq: u64, fault: String) {
        if let Some(r) = self.get_mut(seq) {
            r.fault = Some(fault);
        }
    }

    pub(crate) fn all(&self) -> Vec<RecordedRequest> {
        self.items.iter().cloned().collect()
    }

    pub(crate) fn clear(&mut self) {
        self.items.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn parts(path: &str) -> Parts {
        Request::builder()
            .uri(path)
            .header("X-Client-Id", "trm_1")
            .body(())
            .unwrap()
            .into_parts()
            .0
    }

    #[test]
    fn bounded_and_ordered() {
        let mut r = Recorder::new(2);
        let a = r.record(&parts("/a"), b"{\"x\":1}", None);
        let b = r.record(&parts("/b?q=1"), b"", None);
        let c = r.record(&parts("/c"), b"not json", None);
        assert_eq!((a, b, c), (1, 2, 3));
        let all = r.all();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].path, "/b");
        assert_eq!(all[0].query.as_deref(), Some("q=1"));
        assert_eq!(all[0].header("x-client-id"), Some("trm_1"));
        assert_eq!(all[1].body_json, None);
        r.set_status(3, 200);
        r.set_status(1, 500); // dropped already: ignored
        assert_eq!(r.all()[1].status, Some(200));
    }
}
