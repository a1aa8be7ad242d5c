//! Report queries (SPEC §7): one query per segment and comparison segment that
//! keeps the report's rows whose object belongs to the segment.

use crate::catalog::{Catalog, ColumnType, ObjectDef};
use crate::compile::OBJECT_ID;
use crate::error::{CoreError, ValidationErrors};
use crate::model::Number;
use crate::model::{SegmentObject, segment_table_name};
use crate::parse::{is_segment_id, number_of, parse_day};
use crate::sql::*;
use crate::time::{TimeRef, substitute};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::Value;

pub const MAX_SEGMENTS: usize = 4;
pub const MAX_LIMIT: u64 = 10_000;
pub const DEFAULT_LIMIT: u64 = 100;
pub const MAX_OFFSET: u64 = 1_000_000;

/// A segment named by a report. Plain ids are segments of the report's object;
/// `{"id", "object"}` names another object (membership through the linking id);
/// `{"id", "allData": true}` is the account's "All Data" segment (no filter).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSegment {
    pub id: String,
    pub object: Option<SegmentObject>,
    pub all_data: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReportRequest {
    pub account_id: Option<String>,
    pub account_time_zone: Option<String>,
    pub report_name: Option<String>,
    pub object: SegmentObject,
    pub start: NaiveDate,
    pub end: NaiveDate,
    pub dimensions: Vec<String>,
    pub metrics: Vec<String>,
    pub segments: Vec<ReportSegment>,
    pub comparison_segments: Vec<ReportSegment>,
    pub sort_by: Option<String>,
    pub descending: bool,
    pub limit: u64,
    pub offset: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentReportQuery {
    pub segment_id: String,
    pub query: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportQueries {
    pub segments: Vec<SegmentReportQuery>,
    pub comparison_segments: Vec<SegmentReportQuery>,
}

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
    match v.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errs.push(key, "must be a string");
            None
        }
    }
}

fn names(v: &Value, key: &str, errs: &mut ValidationErrors) -> Vec<String> {
    match v.get(key) {
        None | Some(Value::Null) => vec![],
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
        Some(Value::Array(items)) => items,
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
            Some(x) => match number_of(x) {
                Some(Number::Int(n)) if n >= 0 && (n as u64) <= max => n as u64,
                _ => {
                    errs.push(key, format!("must be a whole number from 0 to {max}"));
                    default
                }
            },
        }
    };
    let limit = whole("limit", DEFAULT_LIMIT, MAX_LIMIT, &mut errs);
    let offset = whole("offset", 0, MAX_OFFSET, &mut errs);
    let sort = v.get("sort");
    let sort_by = sort
        .and_then(|s| s.get("by"))
        .and_then(Value::as_str)
        .map(str::to_string);
    let descending = match sort
        .and_then(|s| s.get("direction"))
        .and_then(Value::as_str)
    {
        None => true,
        Some(d) if d.eq_ignore_ascii_case("desc") => true,
        Some(d) if d.eq_ignore_ascii_case("asc") => false,
        Some(d) => {
            errs.push("sort.direction", format!("{d:?} is neither asc nor desc"));
            true
        }
    };
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

/// A report column: how it is computed and what it is called.
struct Column {
    expr: Expr,
    alias: Ident,
}

fn dimension(obj: &ObjectDef, name: &str, tz: &Tz) -> Result<Column, String> {
    let alias =
        Ident::new(name).ok_or_else(|| format!("{name:?} is not a valid dimension name"))?;
    if name == "date" && !obj.columns.contains_key("date") {
        // The report's day, in the account's zone.
        let e = Expr::func(
            "DATE",
            vec![
                Expr::col("o", &Ident::trusted(&obj.time)),
                Expr::str(tz.name()),
            ],
        );
        return Ok(Column { expr: e, alias });
    }
    match obj.column_type(name) {
        Some(ColumnType::StringArray) => Err(format!(
            "{name:?} is a multi-value field and cannot be a dimension"
        )),
        Some(_) => Ok(Column {
            expr: Expr::col("o", &alias),
            alias,
        }),
        None => Err(format!("unknown dimension {name:?} of {}", obj.table)),
    }
}

fn metric(obj: &ObjectDef, name: &str) -> Result<Column, String> {
    let alias = Ident::new(name).ok_or_else(|| format!("{name:?} is not a valid metric name"))?;
    let oid = Ident::trusted(&obj.id);
    if name == "count" || name == obj.table {
        let e = Expr::Agg {
            func: "COUNT",
            distinct: true,
            arg: Box::new(Expr::col("o", &oid)),
        };
        return Ok(Column { expr: e, alias });
    }
    let col = match obj.metrics.get(name).and_then(|m| m.row.as_deref()) {
        Some(row) => Some(row),
        None => obj
            .columns
            .get_key_value(name)
            .filter(|(_, t)| t.is_numeric())
            .map(|(k, _)| k.as_str()),
    };
    match col {
        Some(c) => Ok(Column {
            expr: Expr::Agg {
                func: "SUM",
                distinct: false,
                arg: Box::new(Expr::col("o", &Ident::trusted(c))),
            },
            alias,
        }),
        None => Err(format!(
            "unknown metric {name:?} for a {} report (use \"count\", \"{}\" or a numeric field)",
            obj.table, obj.table
        )),
    }
}

/// Renders one query per segment; each is ready to run (no placeholders).
pub fn render_report(
    req: &ReportRequest,
    catalog: &Catalog,
    target: &Target,
    tz: &Tz,
    now: DateTime<Utc>,
) -> Result<ReportQueries, CoreError> {
    let mut errs = ValidationErrors::default();
    let Some(obj) = catalog.object(req.object) else {
        errs.push(
            "object",
            format!("the catalog has no object \"{}\"", req.object),
        );
        return Err(errs.into());
    };
    let mut dims = Vec::new();
    for (i, d) in req.dimensions.iter().enumerate() {
        match dimension(obj, d, tz) {
            Ok(c) => dims.push(c),
            Err(e) => errs.push(format!("dimensions[{i}]"), e),
        }
    }
    let metric_names: Vec<String> = if req.metrics.is_empty() {
        vec!["count".to_string()]
    } else {
        req.metrics.clone()
    };
    let mut mets = Vec::new();
    for (i, m) in metric_names.iter().enumerate() {
        match metric(obj, m) {
            Ok(c) => mets.push(c),
            Err(e) => errs.push(format!("metrics[{i}]"), e),
        }
    }
    let all_names: Vec<&str> = dims
        .iter()
        .chain(mets.iter())
        .map(|c| c.alias.as_str())
        .collect();
    for (i, n) in all_names.iter().enumerate() {
        if all_names[..i].contains(n) {
            errs.push("metrics", format!("column {n:?} is requested twice"));
        }
    }
    let sort_key = match &req.sort_by {
        Some(by) if all_names.contains(&by.as_str()) => Ident::trusted(by),
        Some(by) => {
            errs.push(
                "sort.by",
                format!("{by:?} is not one of the report's dimensions or metrics"),
            );
            Ident::trusted("count")
        }
        None => mets
            .first()
            .map(|m| m.alias.clone())
            .unwrap_or_else(|| Ident::trusted("count")),
    };
    let Some(after_end) = req.end.succ_opt() else {
        errs.push("dateRange.endDate", "is out of range");
        return Err(errs.into());
    };
    let build = |list: &[ReportSegment],
                 key: &str,
                 errs: &mut ValidationErrors|
     -> Vec<SegmentReportQuery> {
        let mut out = Vec::new();
        for (i, seg) in list.iter().enumerate() {
            let path = format!("{key}[{i}]");
            let oid = Expr::col("o", &Ident::trusted(&obj.id));
            let mut filter = vec![
                Expr::col("o", &Ident::trusted(&obj.time))
                    .bin(BinOp::GtEq, Expr::Time(TimeRef::DayStart(req.start))),
                Expr::col("o", &Ident::trusted(&obj.time))
                    .bin(BinOp::Lt, Expr::Time(TimeRef::DayStart(after_end))),
            ];
            if !seg.all_data {
                let seg_object = seg.object.unwrap_or(req.object);
                let member = if seg_object == req.object {
                    Some(oid.clone())
                } else {
                    obj.links
                        .get(seg_object.as_str())
                        .map(|c| Expr::col("o", &Ident::trusted(c)))
                };
                let Some(member) = member else {
                    errs.push(
                        &path,
                        format!(
                            "a {seg_object} segment cannot filter a {} report: no linking id",
                            req.object
                        ),
                    );
                    continue;
                };
                let seg_table = target.table(&segment_table_name(&seg.id));
                filter.push(Expr::InQuery(
                    Box::new(member),
                    Box::new(Query::select(
                        Select {
                            from: Some(FromItem::Table {
                                table: seg_table,
                                alias: "seg".into(),
                            }),
                            ..Default::default()
                        }
                        .item(Expr::col("seg", &Ident::trusted(OBJECT_ID)), None),
                    )),
                ));
            }
            let mut select = Select {
                from: Some(FromItem::Table {
                    table: target.table(&obj.table),
                    alias: "o".into(),
                }),
                filter: Some(Expr::and(filter)),
                group_by: dims.iter().map(|d| d.expr.clone()).collect(),
                limit: Some(req.limit),
                offset: Some(req.offset),
                ..Default::default()
            };
            for c in dims.iter().chain(mets.iter()) {
                select = select.item(c.expr.clone(), Some(c.alias.as_str()));
            }
            // Ties break on the dimensions, so pages are stable.
            select
                .order_by
                .push((Expr::Name(sort_key.clone()), req.descending));
            for d in &dims {
                if d.alias != sort_key {
                    select.order_by.push((Expr::Name(d.alias.clone()), false));
                }
            }
            let text = render_query(&Query::select(select));
            match substitute(&text, tz, now) {
                Ok(query) => out.push(SegmentReportQuery {
                    segment_id: seg.id.clone(),
                    query,
                }),
                Err(e) => errs.push(&path, e.to_string()),
            }
        }
        out
    };
    let segments = build(&req.segments, "segments", &mut errs);
    let comparison_segments = build(&req.comparison_segments, "comparisonSegments", &mut errs);
    errs.into_result(ReportQueries {
        segments,
        comparison_segments,
    })
    .map_err(CoreError::from)
}
