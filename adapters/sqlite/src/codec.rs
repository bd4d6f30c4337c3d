//! How values are written to and read from the database.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use crate::error::Fail;

/// RFC 3339 UTC with nanoseconds and `Z`: fixed width, so times sort as text,
/// and a value reads back equal to what was written.
pub(crate) fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Nanos, true)
}

pub(crate) fn parse_time(column: &str, s: &str) -> Result<DateTime<Utc>, Fail> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Fail::Decode(format!("{column} {s:?} is not an RFC 3339 time: {e}")))
}

pub(crate) fn parse_opt_time(column: &str, s: Option<&str>) -> Result<Option<DateTime<Utc>>, Fail> {
    s.map(|s| parse_time(column, s)).transpose()
}

pub(crate) fn json(value: &Value) -> String {
    // Serializing a `Value` cannot fail (its map keys are strings).
    value.to_string()
}

pub(crate) fn parse_json(column: &str, s: &str) -> Result<Value, Fail> {
    serde_json::from_str(s).map_err(|e| Fail::Decode(format!("{column} is not valid JSON: {e}")))
}

/// A `u64` of the ports as an SQLite INTEGER; `what` names it in the error
/// (a closure: this runs once per row of bulk writes).
pub(crate) fn int(value: u64, what: impl FnOnce() -> String) -> Result<i64, Fail> {
    i64::try_from(value).map_err(|_| {
        Fail::Conflict(format!(
            "{} {value} is beyond what the local store can hold (at most {})",
            what(),
            i64::MAX
        ))
    })
}

/// An SQLite INTEGER as a `u64` of the ports.
pub(crate) fn uint(column: &str, value: i64) -> Result<u64, Fail> {
    u64::try_from(value).map_err(|_| Fail::Decode(format!("{column} is negative ({value})")))
}

/// A `limit` of the ports as an SQLite LIMIT.
pub(crate) fn limit(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
