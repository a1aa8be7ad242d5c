//! The handlers' decisions over in-memory fakes of the ports ([`crate::fakes`]):
//! no stack, milliseconds. The stack tests (`tests/flow.rs`, `tests/dlq.rs`)
//! show the same flows against the real services.

mod check_job;
mod create_segment;
mod cronjob;
mod entry;
mod report;

use crate::fakes::{Fakes, segment_row};
use chrono::{DateTime, Utc};
use segments_infra::ports::SegmentRow;
use serde_json::{Value, json};

pub const ACCOUNT: &str = "0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11";
pub const OTHER: &str = "1e7f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d22";
pub const SEG: &str = "7b0c1f0e-3f1a-4a59-9a53-2f1c7d7f3b11";

pub fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2024-06-15T08:00:00Z")
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

/// Fakes with two accounts in UTC.
pub fn fakes() -> Fakes {
    let f = Fakes::default();
    f.store.add_account(ACCOUNT, "UTC");
    f.store.add_account(OTHER, "UTC");
    f
}

pub fn us_sessions_rules() -> Value {
    json!([{"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
        "g0": {"type": "dimension", "key": "country", "condition": "equals", "value": "us"}}])
}

pub fn us_sessions(id: &str) -> Value {
    json!({"id": id, "name": "US sessions", "ruleGroups": us_sessions_rules()})
}

/// A built custom segment of `account`.
pub fn built(account: &str, id: &str) -> SegmentRow {
    segment_row(account, id, &us_sessions_rules())
}
