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

/// A UUID (`8-4-4-4-12` hex digits) in canonical lower case, or `None`.
/// Postgres reads `0D6F…` and `0d6f…` as the same id; dataset and table names,
/// cache keys and Pusher channels do not, so ids are made canonical here, at
/// the edge, once.
pub fn canonical_uuid(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let is_uuid = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    is_uuid.then(|| s.to_ascii_lowercase())
}

/// An id in canonical form: a UUID lower-cased, anything else as it is.
fn canonical_id(s: String) -> String {
    canonical_uuid(&s).unwrap_or(s)
}

/// A bad value quoted for an error, cut to 64 characters: a 200 KB id must
/// not make a 200 KB error or log line.
pub fn shown(s: &str) -> String {
    match s.char_indices().nth(64) {
        None => format!("{s:?}"),
        Some((at, _)) => format!("{:?}... ({} bytes)", &s[..at], s.len()),
    }
}

/// `accountId`: a UUID, returned lower-cased.
fn req_account(v: &Value, errs: &mut ValidationErrors) -> String {
    match v.get("accountId") {
        Some(Value::String(s)) => canonical_uuid(s).unwrap_or_else(|| {
            errs.push("accountId", format!("{} is not a UUID", shown(s)));
            String::new()
        }),
        Some(_) => {
            errs.push("accountId", "must be a string");
            String::new()
        }
        None => {
            errs.push("accountId", "is required");
            String::new()
        }
    }
}

fn req_id(v: &Value, key: &str, errs: &mut ValidationErrors) -> String {
    match v.get(key) {
        Some(Value::String(s)) if is_safe_id(s) => canonical_id(s.clone()),
        Some(Value::String(s)) => {
            errs.push(
                key,
                format!("{} is not an id (letters, digits, - and _)", shown(s)),
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
        /// Drop the table before rebuilding it (`dropTable`; what expire-all
        /// with `dropTables` fans out, one segment per message).
        drop_table: bool,
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
        let account_id = req_account(&v, &mut errs);
        let segment = || match v.get("segment") {
            Some(Value::Object(o)) => {
                // The segment's own ids, canonical like the message's.
                let mut o = o.clone();
                for key in ["id", "accountId"] {
                    if let Some(Value::String(id)) = o.get(key)
                        && let Some(c) = canonical_uuid(id)
                    {
                        o.insert(key.into(), Value::String(c));
                    }
                }
                Ok(Value::Object(o))
            }
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
                drop_table: match v.get("dropTable") {
                    None | Some(Value::Null) => false,
                    Some(Value::Bool(b)) => *b,
                    Some(_) => {
                        errs.push("dropTable", "must be true or false");
                        false
                    }
                },
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

/// A typed body from JSON, its error naming the field's path, not "line 1
/// column 80": `action: unknown variant ...`.
pub fn decode<T: serde::de::DeserializeOwned>(v: Value) -> Result<T, ValidationErrors> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let mut errs = ValidationErrors::default();
        let path = e.path().to_string();
        errs.push(
            if path == "." { "$".into() } else { path },
            e.inner().to_string(),
        );
        errs
    })
}

impl CheckJobMessage {
    pub fn parse(body: &[u8]) -> Result<CheckJobMessage, ValidationErrors> {
        let v = parse_json(body)?;
        let mut errs = ValidationErrors::default();
        req_id(&v, "jobId", &mut errs);
        let account_id = req_account(&v, &mut errs);
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
        let mut msg: CheckJobMessage = decode(v)?;
        msg.account_id = account_id;
        msg.job_input_data.segment_id = msg.job_input_data.segment_id.map(canonical_id);
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
        let account_id = req_account(&v, &mut errs);
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
            br#"{"action":"rebuild","accountId":"0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11","segmentId":"s-1","extra":1}"#,
        )
        .unwrap();
        assert_eq!(
            c,
            SegmentCommand::Rebuild {
                account_id: LOWER.into(),
                segment_id: "s-1".into(),
                drop_table: false
            }
        );
        let c = SegmentCommand::parse(
            br#"{"action":"rebuild","accountId":"0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11","segmentId":"s-1","dropTable":true}"#,
        )
        .unwrap();
        assert!(matches!(
            c,
            SegmentCommand::Rebuild {
                drop_table: true,
                ..
            }
        ));
        assert_eq!(
            errs(SegmentCommand::parse(
                br#"{"action":"drop","accountId":"0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11"}"#
            )),
            r#"action: unknown action "drop" (create, update, rebuild, delete, expire-all, revert)"#
        );
        assert_eq!(
            errs(SegmentCommand::parse(
                br#"{"action":"delete","accountId":"a*"}"#
            )),
            "accountId: \"a*\" is not a UUID\nsegmentId: is required"
        );
        assert!(errs(SegmentCommand::parse(b"nope")).starts_with("$: not valid JSON"));
        let c =
            SegmentCommand::parse(br#"{"action":"expire-all","accountId":"0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11","dropTables":true}"#)
                .unwrap();
        assert_eq!(
            c,
            SegmentCommand::ExpireAll {
                account_id: LOWER.into(),
                drop_tables: true
            }
        );
    }

    #[test]
    fn check_job_messages() {
        let m = CheckJobMessage::parse(br#"{"jobId":"j1","accountId":"0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11","action":"create-segment","jobInputData":{"segmentId":"s"},"startedAt":"2024-06-15T12:00:00Z"}"#).unwrap();
        assert_eq!(m.attempt, 0);
        assert_eq!(m.job_input_data.segment_id.as_deref(), Some("s"));
        assert_eq!(errs(CheckJobMessage::parse(br#"{"jobId":"j1","accountId":"0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11","action":"create-segment","startedAt":"2024-06-15T12:00:00Z"}"#)), "jobInputData.segmentId: is required for create-segment");
        assert!(errs(CheckJobMessage::parse(br#"{"jobId":"j1","accountId":"0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11","action":"nope","startedAt":"2024-06-15T12:00:00Z"}"#)).starts_with("action: unknown variant `nope`"));
        assert!(errs(CheckJobMessage::parse(br#"{"jobId":"j1","accountId":"0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11","action":"query-report","startedAt":"2024-06-15T12:00:00Z","attempt":-1}"#)).starts_with("attempt: invalid value"));
    }

    #[test]
    fn cronjob_messages() {
        let m = CronjobMessage::parse(
            br#"{"accountId":"0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11","timeZone":"Europe/Berlin"}"#,
        )
        .unwrap();
        assert_eq!(m.time_zone, chrono_tz::Europe::Berlin);
        assert_eq!(
            errs(CronjobMessage::parse(
                br#"{"accountId":"0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11","timeZone":"Mars/Base"}"#
            )),
            r#"timeZone: unknown time zone "Mars/Base""#
        );
    }

    const UPPER: &str = "0D6F4B52-6A2C-4C1E-9A8E-3B1F2F0C9D11";
    const LOWER: &str = "0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11";
    const SEG_UPPER: &str = "7B0C1F0E-3F1A-4A59-9A53-2F1C7D7F3B11";
    const SEG_LOWER: &str = "7b0c1f0e-3f1a-4a59-9a53-2f1c7d7f3b11";

    #[test]
    fn given_upper_case_uuids_when_parsed_then_every_id_is_canonical_lower_case() {
        let c = SegmentCommand::parse(
            format!(r#"{{"action":"delete","accountId":"{UPPER}","segmentId":"{SEG_UPPER}"}}"#)
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(
            c,
            SegmentCommand::Delete {
                account_id: LOWER.into(),
                segment_id: SEG_LOWER.into()
            }
        );
        let c = SegmentCommand::parse(
            format!(r#"{{"action":"create","accountId":"{UPPER}","segment":{{"id":"{SEG_UPPER}","accountId":"{UPPER}"}}}}"#)
                .as_bytes(),
        )
        .unwrap();
        assert_eq!((c.account_id(), c.segment_id()), (LOWER, Some(SEG_LOWER)));
        let SegmentCommand::Create { segment, .. } = c else {
            panic!("{c:?}")
        };
        assert_eq!(segment["accountId"], LOWER);
        let m = CheckJobMessage::parse(format!(r#"{{"jobId":"j1","accountId":"{UPPER}","action":"create-segment","jobInputData":{{"segmentId":"{SEG_UPPER}"}},"startedAt":"2024-06-15T12:00:00Z"}}"#).as_bytes()).unwrap();
        assert_eq!(
            (
                m.account_id.as_str(),
                m.job_input_data.segment_id.as_deref()
            ),
            (LOWER, Some(SEG_LOWER))
        );
        let m = CronjobMessage::parse(
            format!(r#"{{"accountId":"{UPPER}","timeZone":"UTC"}}"#).as_bytes(),
        )
        .unwrap();
        assert_eq!(m.account_id, LOWER);
    }

    #[test]
    fn given_an_account_id_that_is_not_a_uuid_when_parsed_then_refused() {
        // `_` for `-` names the same dataset as the real account.
        let underscored = LOWER.replace('-', "_");
        for body in [
            format!(r#"{{"action":"expire-all","accountId":"{underscored}"}}"#),
            r#"{"action":"expire-all","accountId":"acme"}"#.to_string(),
        ] {
            let e = errs(SegmentCommand::parse(body.as_bytes()));
            assert!(
                e.starts_with("accountId: ") && e.ends_with("is not a UUID"),
                "{e}"
            );
        }
        let e = errs(CheckJobMessage::parse(format!(r#"{{"jobId":"j1","accountId":"{underscored}","action":"query-report","startedAt":"2024-06-15T12:00:00Z"}}"#).as_bytes()));
        assert!(e.starts_with("accountId: "), "{e}");
        let e = errs(CronjobMessage::parse(
            br#"{"accountId":"a","timeZone":"UTC"}"#,
        ));
        assert!(e.starts_with("accountId: "), "{e}");
    }

    #[test]
    fn given_a_200_kb_id_when_refused_then_the_error_quotes_at_most_64_characters() {
        let long = "x*".repeat(100_000);
        for body in [
            format!(r#"{{"action":"expire-all","accountId":"{long}"}}"#),
            format!(r#"{{"action":"delete","accountId":"{LOWER}","segmentId":"{long}"}}"#),
        ] {
            let e = errs(SegmentCommand::parse(body.as_bytes()));
            assert!(
                e.len() < 200 && e.contains("(200000 bytes)"),
                "{}",
                &e[..e.len().min(300)]
            );
        }
    }
}
