//! Decisions of the scheduled refresh: which segments to skip because a trigger
//! they use is missing or disabled, and when to hand off to the schedule-report queue.

use crate::model::{Conditions, FieldType, MetricField, Segment, SegmentObject};
use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

/// One entry of `server-side-trigger/{accountId}.json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TriggerRule {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub enabled: bool,
}

/// Parses the trigger file; a missing file is an empty list (the caller's job).
pub fn parse_trigger_file(bytes: &[u8]) -> Result<Vec<TriggerRule>, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("server-side trigger file: {e}"))
}

/// The trigger ids a segment's `trigger` conditions count.
pub fn trigger_ids(seg: &Segment) -> Vec<&str> {
    let mut ids: Vec<&str> = seg
        .rule_groups
        .iter()
        .filter_map(|g| match &g.conditions {
            Conditions::Metric(conds) => Some(conds),
            _ => None,
        })
        .flatten()
        .filter_map(|c| match &c.field {
            MetricField::Count {
                kind: FieldType::Trigger,
                id,
            } => Some(id.as_str()),
            _ => None,
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// Why a segment must not refresh now, if it must not.
pub fn skip_reason(seg: &Segment, triggers: &[TriggerRule]) -> Option<String> {
    for id in trigger_ids(seg) {
        match triggers.iter().find(|t| t.id == id) {
            None => {
                return Some(format!(
                    "uses trigger {id:?}, which the account's trigger file does not list"
                ));
            }
            Some(t) if !t.enabled => {
                return Some(format!("uses trigger {id:?}, which is disabled"));
            }
            Some(_) => {}
        }
    }
    None
}

/// People and company segments feed scheduled reports, which go out in the
/// morning: hand off when the account's local hour is before noon.
pub fn wants_schedule_report(objects: &[SegmentObject], tz: &Tz, now: DateTime<Utc>) -> bool {
    let morning = now.with_timezone(tz).hour() < 12;
    morning
        && objects
            .iter()
            .any(|o| matches!(o, SegmentObject::People | SegmentObject::RevealedCompany))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_segment;
    use serde_json::json;

    fn seg_with_trigger(id: &str) -> Segment {
        parse_segment(&json!({"id": "s", "ruleGroups": [{"mainOperator": "include", "segmentObject": "session",
            "conditionFocus": "metric", "g0": {"type": "trigger", "id": id, "condition": "greater-than", "value": 0}}]}))
        .unwrap()
    }

    #[test]
    fn skips_segments_whose_trigger_is_missing_or_disabled() {
        let triggers = parse_trigger_file(br#"[{"id":"t1","name":"Buy","enabled":true},{"id":"t2","name":"Old","enabled":false}]"#).unwrap();
        assert_eq!(skip_reason(&seg_with_trigger("t1"), &triggers), None);
        assert!(
            skip_reason(&seg_with_trigger("t2"), &triggers)
                .unwrap()
                .contains("disabled")
        );
        assert!(
            skip_reason(&seg_with_trigger("t3"), &triggers)
                .unwrap()
                .contains("does not list")
        );
        assert!(skip_reason(&seg_with_trigger("t1"), &[]).is_some());
        assert!(parse_trigger_file(b"{").is_err());
    }

    #[test]
    fn schedule_report_only_in_the_local_morning_for_people_or_companies() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert!(wants_schedule_report(
            &[SegmentObject::People],
            &ny,
            at("2024-06-15T15:00:00Z")
        )); // 11:00 local
        assert!(!wants_schedule_report(
            &[SegmentObject::People],
            &ny,
            at("2024-06-15T16:00:00Z")
        )); // 12:00 local
        assert!(!wants_schedule_report(
            &[SegmentObject::Session],
            &ny,
            at("2024-06-15T12:00:00Z")
        ));
        assert!(wants_schedule_report(
            &[SegmentObject::RevealedCompany],
            &ny,
            at("2024-06-15T12:00:00Z")
        ));
    }
}
