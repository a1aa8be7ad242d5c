//! The report request (SPEC §7) read from JSON, every error with its path.

use super::{DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, MAX_SEGMENTS, ReportRequest, ReportSegment};
use crate::error::ValidationErrors;
use crate::model::{Number, SegmentObject};
use crate::parse::{is_segment_id, number_of, parse_day};
use chrono::NaiveDate;
use serde_json::Value;

pub fn parse_report_request(bytes: &[u8]) -> Result<ReportRequest, ValidationErrors> {
    let mut errs = ValidationErrors::default();
    let v: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            errs.push("$", format!("not valid JSON: {e}"));
            return Err(errs);
        }
    };
    parse_report_value(&v)
}

fn opt_str(v: &Value, key: &str, errs: &mut ValidationErrors) -> Option<String> {
    v.as_object()
        .and_then(|o| crate::parse::opt_string(o, key, key, errs))
}

fn names(v: &Value, key: &str, errs: &mut ValidationErrors) -> Vec<String> {
    match v.get(key) {
        None | Some(Value::Null) => vec![],
        // A single name where a list is expected is a one-item list (SPEC §3).
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match item {
                Value::String(s) => Some(s.clone()),
                _ => {
                    errs.push(format!("{key}[{i}]"), "must be a string");
                    None
                }
            })
            .collect(),
        Some(_) => {
            errs.push(key, "must be an array of names");
            vec![]
        }
    }
}

fn segment_list(v: &Value, key: &str, errs: &mut ValidationErrors) -> Vec<ReportSegment> {
    let items = match v.get(key) {
        None | Some(Value::Null) => return vec![],
        Some(Value::Array(items)) => items.as_slice(),
        // A single id where a list is expected is a one-item list (SPEC §3).
        Some(one @ Value::String(_)) => std::slice::from_ref(one),
        Some(_) => {
            errs.push(key, "must be an array of segment ids");
            return vec![];
        }
    };
    if items.len() > MAX_SEGMENTS {
        errs.push(
            key,
            format!(
                "at most {MAX_SEGMENTS} segments per report, got {}",
                items.len()
            ),
        );
    }
    let mut out: Vec<ReportSegment> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("{key}[{i}]");
        let (id, object, all_data) = match item {
            Value::String(s) => (s.clone(), None, false),
            Value::Object(o) => {
                let id = o
                    .get("id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let object = match o.get("object") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(s)) => match SegmentObject::from_wire(s) {
                        Some(x) => Some(x),
                        None => {
                            errs.push(
                                format!("{path}.object"),
                                format!("unknown segment object {s:?}"),
                            );
                            continue;
                        }
                    },
                    Some(_) => {
                        errs.push(format!("{path}.object"), "must be a string");
                        continue;
                    }
                };
                let all_data = o.get("allData").and_then(Value::as_bool).unwrap_or(false);
                (id, object, all_data)
            }
            _ => {
                errs.push(&path, "must be a segment id or {\"id\", \"object\"}");
                continue;
            }
        };
        if !is_segment_id(&id) {
            errs.push(&path, format!("{id:?} is not a segment id"));
            continue;
        }
        if out.iter().any(|s| s.id == id) {
            errs.push(&path, format!("segment {id} is listed twice"));
            continue;
        }
        out.push(ReportSegment {
            id,
            object,
            all_data,
        });
    }
    out
}

pub fn parse_report_value(v: &Value) -> Result<ReportRequest, ValidationErrors> {
    let mut errs = ValidationErrors::default();
    if !v.is_object() {
        errs.push("$", "a report request must be a JSON object");
        return Err(errs);
    }
    let object = match v.get("object").and_then(Value::as_str) {
        Some(s) => SegmentObject::from_wire(s).or_else(|| {
            errs.push("object", format!("unknown object {s:?}"));
            None
        }),
        None => {
            errs.push("object", "is required");
            None
        }
    };
    let day = |key: &str, errs: &mut ValidationErrors| -> Option<NaiveDate> {
        match v
            .get("dateRange")
            .and_then(|d| d.get(key))
            .and_then(Value::as_str)
        {
            Some(s) => parse_day(s).or_else(|| {
                errs.push(
                    format!("dateRange.{key}"),
                    format!("{s:?} is not a date (YYYY-MM-DD)"),
                );
                None
            }),
            None => {
                errs.push(format!("dateRange.{key}"), "is required");
                None
            }
        }
    };
    let start = day("startDate", &mut errs);
    let end = day("endDate", &mut errs);
    if let (Some(s), Some(e)) = (start, end)
        && s > e
    {
        errs.push("dateRange.endDate", format!("{e} is before startDate {s}"));
    }
    let segments = segment_list(v, "segments", &mut errs);
    let comparison_segments = segment_list(v, "comparisonSegments", &mut errs);
    if segments.is_empty() && comparison_segments.is_empty() && errs.is_empty() {
        errs.push("segments", "name at least one segment");
    }
    let whole = |key: &str, default: u64, max: u64, errs: &mut ValidationErrors| -> u64 {
        match v.get(key) {
            None | Some(Value::Null) => default,
            Some(x) => match whole_number(x, max) {
                Some(n) => n,
                None => {
                    errs.push(key, format!("must be a whole number from 0 to {max}"));
                    default
                }
            },
        }
    };
    let limit = whole("limit", DEFAULT_LIMIT, MAX_LIMIT, &mut errs);
    let offset = whole("offset", 0, MAX_OFFSET, &mut errs);
    let (sort_by, descending) = sort_of(v.get("sort"), &mut errs);
    let req = ReportRequest {
        account_id: opt_str(v, "accountId", &mut errs),
        account_time_zone: opt_str(v, "accountTimeZone", &mut errs),
        report_name: opt_str(v, "reportName", &mut errs),
        object: object.unwrap_or(SegmentObject::Session),
        start: start.unwrap_or_default(),
        end: end.unwrap_or_default(),
        dimensions: names(v, "dimensions", &mut errs),
        metrics: names(v, "metrics", &mut errs),
        segments,
        comparison_segments,
        sort_by,
        descending,
        limit,
        offset,
    };
    errs.into_result(req)
}

/// `x` as a whole number from 0 to `max`: an integer, an integral float (`5.0`),
/// or a numeric string; fractions, negatives and larger values are refused.
fn whole_number(x: &Value, max: u64) -> Option<u64> {
    match number_of(x)? {
        Number::Int(n) => u64::try_from(n).ok().filter(|n| *n <= max),
        // The bounds are checked on the float, so the cast cannot saturate.
        Number::Float(f) if f.fract() == 0.0 && (0.0..=max as f64).contains(&f) => Some(f as u64),
        Number::Float(_) => None,
    }
}

/// `sort`: `{"by": name, "direction": "asc" | "desc"}`; both optional, newest
/// first (descending) by default. Wrong types are errors, never ignored.
fn sort_of(sort: Option<&Value>, errs: &mut ValidationErrors) -> (Option<String>, bool) {
    let s = match sort {
        None | Some(Value::Null) => return (None, true),
        Some(Value::Object(s)) => s,
        Some(_) => {
            errs.push("sort", "must be an object {\"by\", \"direction\"}");
            return (None, true);
        }
    };
    let by = match s.get("by") {
        None | Some(Value::Null) => None,
        Some(Value::String(b)) => Some(b.clone()),
        Some(_) => {
            errs.push("sort.by", "must be a string (a dimension or metric name)");
            None
        }
    };
    let descending = match s.get("direction") {
        None | Some(Value::Null) => true,
        Some(Value::String(d)) if d.eq_ignore_ascii_case("desc") => true,
        Some(Value::String(d)) if d.eq_ignore_ascii_case("asc") => false,
        Some(Value::String(d)) => {
            errs.push("sort.direction", format!("{d:?} is neither asc nor desc"));
            true
        }
        Some(_) => {
            errs.push("sort.direction", "must be the string \"asc\" or \"desc\"");
            true
        }
    };
    (by, descending)
}
