//! The messages the functions receive (docs/messages.md), parsed and validated
//! with paths, so a bad message fails alone with a line naming the problem.

use crate::error::ValidationErrors;
use crate::parse::is_segment_id;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Ids that reach table names, dataset names and cache keys: letters, digits, `-`, `_`.
pub fn is_safe_id(s: &str) -> bool {
    is_segment_id(s)
}

fn req_id(v: &Value, key: &str, errs: &mut ValidationErrors) -> String {
    match v.get(key) {
        Some(Value::String(s)) if is_safe_id(s) => s.clone(),
        Some(Value::String(s)) => {
            errs.push(
                key,
                format!("{s:?} is not an id (letters, digits, - and _)"),
            );
            String::new()
        }
        Some(_) => {
            errs.push(key, "must be a string");
            String::new()
        }
        None => {
            errs.push(key, "is required");
            String::new()
        }
    }
}

fn parse_json(body: &[u8]) -> Result<Value, ValidationErrors> {
    serde_json::from_slice::<Value>(body).map_err(|e| {
        let mut errs = ValidationErrors::default();
        errs.push("$", format!("not valid JSON: {e}"));
        errs
    })
}

/// A create-segment request.
#[derive(Debug, Clone, PartialEq)]
pub enum SegmentCommand {
    /// `segment` is the SPEC §2 JSON, validated by the handler with the catalog.
    Create {
        account_id: String,
        segment: Value,
    },
    Update {
        account_id: String,
        segment: Value,
    },
    Rebuild {
        account_id: String,
        segment_id: String,
    },
    Delete {
        account_id: String,
        segment_id: String,
    },
    ExpireAll {
        account_id: String,
        drop_tables: bool,
    },
    /// Restores revision `revision`'s rules as a new revision and rebuilds (SPEC §11).
    Revert {
        account_id: String,
        segment_id: String,
        revision: i64,
    },
}

impl SegmentCommand {
    pub fn account_id(&self) -> &str {
        match self {
            SegmentCommand::Create { account_id, .. }
            | SegmentCommand::Update { account_id, .. }
            | SegmentCommand::Rebuild { account_id, .. }
            | SegmentCommand::Delete { account_id, .. }
            | SegmentCommand::ExpireAll { account_id, .. }
            | SegmentCommand::Revert { account_id, .. } => account_id,
        }
    }

    pub fn action(&self) -> &'static str {
        match self {
            SegmentCommand::Create { .. } => "create",
            SegmentCommand::Update { .. } => "update",
            SegmentCommand::Rebuild { .. } => "rebuild",
            SegmentCommand::Delete { .. } => "delete",
            SegmentCommand::ExpireAll { .. } => "expire-all",
            SegmentCommand::Revert { .. } => "revert",
        }
    }

    /// The segment this command is about, when there is one.
    pub fn segment_id(&self) -> Option<&str> {
        match self {
            SegmentCommand::Create { segment, .. } | SegmentCommand::Update { segment, .. } => {
                segment.get("id").and_then(Value::as_str)
            }
            SegmentCommand::Rebuild { segment_id, .. }
            | SegmentCommand::Delete { segment_id, .. }
            | SegmentCommand::Revert { segment_id, .. } => Some(segment_id),
            SegmentCommand::ExpireAll { .. } => None,
        }
    }

    pub fn parse(body: &[u8]) -> Result<SegmentCommand, ValidationErrors> {
        let v = parse_json(body)?;
        let mut errs = ValidationErrors::default();
        if !v.is_object() {
            errs.push("$", "a message must be a JSON object");
            return Err(errs);
        }
        let account_id = req_id(&v, "accountId", &mut errs);
        let segment = || match v.get("segment") {
            Some(s @ Value::Object(_)) => Ok(s.clone()),
            Some(_) => Err("must be a segment object"),
            None => Err("is required"),
        };
        let cmd = match v.get("action").and_then(Value::as_str) {
            Some(a @ ("create" | "update")) => match segment() {
                Ok(segment) if a == "create" => SegmentCommand::Create {
                    account_id,
                    segment,
                },
                Ok(segment) => SegmentCommand::Update {
                    account_id,
                    segment,
                },
                Err(m) => {
                    errs.push("segment", m);
                    return Err(errs);
                }
            },
            Some("rebuild") => SegmentCommand::Rebuild {
                segment_id: req_id(&v, "segmentId", &mut errs),
                account_id,
            },
            Some("delete") => SegmentCommand::Delete {
                segment_id: req_id(&v, "segmentId", &mut errs),
                account_id,
            },
            Some("expire-all") => SegmentCommand::ExpireAll {
                account_id,
                drop_tables: match v.get("dropTables") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => {
                        errs.push("dropTables", "must be true or false");
                        false
                    }
                },
            },
            Some("revert") => SegmentCommand::Revert {
                segment_id: req_id(&v, "segmentId", &mut errs),
                revision: match v.get("revision").and_then(Value::as_i64) {
                    Some(r) if r >= 1 => r,
                    _ => {
                        errs.push("revision", "must be a revision number (1, 2, ...)");
                        0
                    }
                },
                account_id,
            },
            Some(other) => {
                errs.push(
                    "action",
                    format!(
                        "unknown action {other:?} (create, update, rebuild, delete, expire-all, revert)"
                    ),
                );
                return Err(errs);
            }
            None => {
                errs.push("action", "is required");
                return Err(errs);
            }
        };
        errs.into_result(cmd)
    }
}

/// What a checked job was for (SPEC §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobAction {
    CreateSegment,
    RebuildSegment,
    /// A scheduled refresh (segment-cronjob); a run like a build (SPEC §11).
    RefreshSegment,
    QueryReport,
    QueryReportWithSegment,
}

impl JobAction {
    pub fn as_str(self) -> &'static str {
        match self {
            JobAction::CreateSegment => "create-segment",
            JobAction::RebuildSegment => "rebuild-segment",
            JobAction::RefreshSegment => "refresh-segment",
            JobAction::QueryReport => "query-report",
            JobAction::QueryReportWithSegment => "query-report-with-segment",
        }
    }

    /// A run of a segment: a build or a refresh. Its check records the run,
    /// clears the segment's caches and notifies the browser.
    pub fn is_segment_build(self) -> bool {
        matches!(
            self,
            JobAction::CreateSegment | JobAction::RebuildSegment | JobAction::RefreshSegment
        )
    }

    /// A run that replaces the segment's status (create, rebuild); a refresh
    /// leaves `"queryStatus"` alone: its table keeps the last good members.
    pub fn sets_segment_status(self) -> bool {
        matches!(self, JobAction::CreateSegment | JobAction::RebuildSegment)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobInput {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result_table: Option<String>,
    /// The revision of the rules a segment run runs (SPEC §11).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<i64>,
}

/// `{"jobId", "accountId", "action", "jobInputData", "startedAt", "attempt"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckJobMessage {
    pub job_id: String,
    pub account_id: String,
    pub action: JobAction,
    #[serde(default)]
    pub job_input_data: JobInput,
    pub started_at: DateTime<Utc>,
    /// Checks so far; absent means 0.
    #[serde(default)]
    pub attempt: u32,
}

impl CheckJobMessage {
    pub fn parse(body: &[u8]) -> Result<CheckJobMessage, ValidationErrors> {
        let v = parse_json(body)?;
        let mut errs = ValidationErrors::default();
        req_id(&v, "jobId", &mut errs);
        req_id(&v, "accountId", &mut errs);
        if let Some(Value::Object(input)) = v.get("jobInputData") {
            for key in ["segmentId", "resultTable"] {
                if let Some(Value::String(s)) = input.get(key)
                    && !is_safe_id(s)
                {
                    errs.push(format!("jobInputData.{key}"), format!("{s:?} is not an id"));
                }
            }
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        let msg: CheckJobMessage = serde_json::from_value(v).map_err(|e| {
            let mut errs = ValidationErrors::default();
            errs.push("$", e.to_string());
            errs
        })?;
        if msg.action.is_segment_build() && msg.job_input_data.segment_id.is_none() {
            let mut errs = ValidationErrors::default();
            errs.push(
                "jobInputData.segmentId",
                format!("is required for {}", msg.action.as_str()),
            );
            return Err(errs);
        }
        Ok(msg)
    }
}

/// `{"accountId", "timeZone", "scheduledAt"}`: refresh one account's segments.
#[derive(Debug, Clone, PartialEq)]
pub struct CronjobMessage {
    pub account_id: String,
    pub time_zone: Tz,
    /// The schedule tick this refresh belongs to; a redelivery has the same one,
    /// so its job ids are the same. Absent: the handler uses the message's send time.
    pub scheduled_at: Option<DateTime<Utc>>,
}

impl CronjobMessage {
    pub fn parse(body: &[u8]) -> Result<CronjobMessage, ValidationErrors> {
        let v = parse_json(body)?;
        let mut errs = ValidationErrors::default();
        let account_id = req_id(&v, "accountId", &mut errs);
        let time_zone = match v.get("timeZone").and_then(Value::as_str) {
            Some(s) => match s.parse::<Tz>() {
                Ok(tz) => Some(tz),
                Err(_) => {
                    errs.push("timeZone", format!("unknown time zone {s:?}"));
                    None
                }
            },
            None => {
                errs.push("timeZone", "is required");
                None
            }
        };
        let scheduled_at = match v.get("scheduledAt") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => match DateTime::parse_from_rfc3339(s) {
                Ok(t) => Some(t.with_timezone(&Utc)),
                Err(_) => {
                    errs.push("scheduledAt", format!("{s:?} is not an RFC 3339 instant"));
                    None
                }
            },
            Some(_) => {
                errs.push("scheduledAt", "must be a string");
                None
            }
        };
        match (errs.is_empty(), time_zone) {
            (true, Some(time_zone)) => Ok(CronjobMessage {
                account_id,
                time_zone,
                scheduled_at,
            }),
            _ => Err(errs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs<T: std::fmt::Debug>(r: Result<T, ValidationErrors>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn segment_commands() {
        let c = SegmentCommand::parse(
            br#"{"action":"rebuild","accountId":"a-1","segmentId":"s-1","extra":1}"#,
        )
        .unwrap();
        assert_eq!(
            c,
            SegmentCommand::Rebuild {
                account_id: "a-1".into(),
                segment_id: "s-1".into()
            }
        );
        assert_eq!(
            errs(SegmentCommand::parse(
                br#"{"action":"drop","accountId":"a"}"#
            )),
            r#"action: unknown action "drop" (create, update, rebuild, delete, expire-all, revert)"#
        );
        assert_eq!(
            errs(SegmentCommand::parse(
                br#"{"action":"delete","accountId":"a*"}"#
            )),
            "accountId: \"a*\" is not an id (letters, digits, - and _)\nsegmentId: is required"
        );
        assert!(errs(SegmentCommand::parse(b"nope")).starts_with("$: not valid JSON"));
        let c =
            SegmentCommand::parse(br#"{"action":"expire-all","accountId":"a","dropTables":true}"#)
                .unwrap();
        assert_eq!(
            c,
            SegmentCommand::ExpireAll {
                account_id: "a".into(),
                drop_tables: true
            }
        );
    }

    #[test]
    fn check_job_messages() {
        let m = CheckJobMessage::parse(br#"{"jobId":"j1","accountId":"a","action":"create-segment","jobInputData":{"segmentId":"s"},"startedAt":"2024-06-15T12:00:00Z"}"#).unwrap();
        assert_eq!(m.attempt, 0);
        assert_eq!(m.job_input_data.segment_id.as_deref(), Some("s"));
        assert_eq!(errs(CheckJobMessage::parse(br#"{"jobId":"j1","accountId":"a","action":"create-segment","startedAt":"2024-06-15T12:00:00Z"}"#)), "jobInputData.segmentId: is required for create-segment");
        assert!(errs(CheckJobMessage::parse(br#"{"jobId":"j1","accountId":"a","action":"nope","startedAt":"2024-06-15T12:00:00Z"}"#)).contains("unknown variant"));
    }

    #[test]
    fn cronjob_messages() {
        let m = CronjobMessage::parse(br#"{"accountId":"a","timeZone":"Europe/Berlin"}"#).unwrap();
        assert_eq!(m.time_zone, chrono_tz::Europe::Berlin);
        assert_eq!(
            errs(CronjobMessage::parse(
                br#"{"accountId":"a","timeZone":"Mars/Base"}"#
            )),
            r#"timeZone: unknown time zone "Mars/Base""#
        );
    }
}
