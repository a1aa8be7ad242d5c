//! Report queries (SPEC §7): one query per segment and comparison segment that
//! keeps the report's rows whose object belongs to the segment.

use crate::catalog::{Aggregate, Catalog, ColumnType, MetricDef, ObjectDef, SourceDef};
use crate::compile::{Measure, OBJECT_ID, link_key};
use crate::error::{CoreError, ValidationErrors};
use crate::model::Number;
use crate::model::{SegmentObject, segment_table_name};
use crate::parse::{is_segment_id, number_of, parse_day};
use crate::sql::*;
use crate::time::{Clock, TimeRef};
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
        let e = Expr::call(
            Func::DateInZone,
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

/// The per-object aggregates of one activity source, joined to the report's
/// objects as `LEFT JOIN (SELECT k, v0, v1, ...) AS m{i} ON m{i}.k = o.id`.
struct SourceJoin<'c> {
    name: &'c str,
    source: &'c SourceDef,
    measures: Vec<Measure>,
}

impl SourceJoin<'_> {
    fn alias(i: usize) -> String {
        format!("m{i}")
    }
}

/// The report's per-object aggregate metrics, grouped by source so each source
/// is read once per query.
#[derive(Default)]
struct Activity<'c> {
    joins: Vec<SourceJoin<'c>>,
}

impl<'c> Activity<'c> {
    /// Adds a measure; returns the column of the joined subquery holding it.
    fn add(&mut self, name: &'c str, source: &'c SourceDef, measure: Measure) -> Expr {
        let si = match self.joins.iter().position(|j| j.name == name) {
            Some(i) => i,
            None => {
                self.joins.push(SourceJoin {
                    name,
                    source,
                    measures: Vec::new(),
                });
                self.joins.len() - 1
            }
        };
        let join = &mut self.joins[si];
        join.measures.push(measure);
        Expr::col(
            SourceJoin::alias(si),
            &Ident::trusted(&format!("v{}", join.measures.len() - 1)),
        )
    }

    /// The LEFT JOINs, each to `SELECT link AS k, agg AS v0, ... FROM source
    /// WHERE link present AND time in [from, until) GROUP BY link`: only the
    /// columns the measures need, and a literal time range so BigQuery prunes
    /// partitions.
    fn joins(
        &self,
        object: SegmentObject,
        oid: &Expr,
        target: &Target,
        from: TimeRef,
        until: TimeRef,
    ) -> Vec<Join> {
        let mut out = Vec::new();
        for (si, j) in self.joins.iter().enumerate() {
            let s = j.source;
            // `add` is only called for sources that link to the object.
            let Some((key, mut filter)) = link_key(s, object, "s") else {
                continue;
            };
            let time = Expr::col("s", &Ident::trusted(&s.time));
            filter.push(time.clone().bin(BinOp::GtEq, Expr::Time(from)));
            filter.push(time.bin(BinOp::Lt, Expr::Time(until)));
            let mut sel = Select {
                from: Some(FromItem::Table {
                    table: target.table(&s.table),
                    alias: "s".into(),
                }),
                filter: Some(Expr::and(filter)),
                group_by: vec![key.clone()],
                ..Default::default()
            }
            .item(key, Some("k"));
            for (mi, m) in j.measures.iter().enumerate() {
                sel = sel.item(m.per_object(), Some(&format!("v{mi}")));
            }
            let alias = SourceJoin::alias(si);
            out.push(Join {
                kind: JoinKind::Left,
                item: FromItem::Subquery {
                    query: Box::new(Query::select(sel)),
                    alias: alias.clone().into(),
                },
                on: Expr::col(alias, &Ident::fixed("k")).eq(oid.clone()),
            });
        }
        out
    }
}

/// A catalog metric aggregated over an activity source, per report row: the
/// sum of the group's objects' values for count and sum metrics (objects
/// without activity add 0); the extreme over the group's activity for min and
/// max; for avg, the group's activity total over its row count (NULL when the
/// group has no activity, like avg/min/max of a single object).
fn aggregate_metric<'c>(
    catalog: &'c Catalog,
    object: SegmentObject,
    def: &'c MetricDef,
    activity: &mut Activity<'c>,
) -> Result<Expr, String> {
    let (Some(src), Some(aggregate)) = (def.source.as_deref(), def.aggregate) else {
        return Err("the catalog gives this metric neither a row nor a source".into());
    };
    let Some(source) = catalog.sources.get(src) else {
        return Err(format!("the catalog has no source {src:?}"));
    };
    if source.link(object).is_none() {
        return Err(format!("{} rows do not link to {object}", source.table));
    }
    let column = def.column.as_deref().map(Ident::trusted);
    let filter: Vec<(Ident, String)> = def
        .filter
        .iter()
        .map(|(k, v)| (Ident::trusted(k), v.clone()))
        .collect();
    let mut add = |aggregate: Aggregate| {
        activity.add(
            src,
            source,
            Measure {
                aggregate,
                column: column.clone(),
                filter: filter.clone(),
            },
        )
    };
    let outer = |func: AggFunc, arg: Expr| Expr::agg(func, false, arg);
    Ok(match aggregate {
        Aggregate::Count | Aggregate::CountDistinct | Aggregate::Sum => {
            let v = add(aggregate);
            outer(AggFunc::Sum, v.coalesce(Expr::Int(0)))
        }
        Aggregate::Min => outer(AggFunc::Min, add(Aggregate::Min)),
        Aggregate::Max => outer(AggFunc::Max, add(Aggregate::Max)),
        Aggregate::Avg => {
            let total = add(Aggregate::Sum);
            let rows = add(Aggregate::Count);
            Expr::call(
                Func::SafeDivide,
                vec![outer(AggFunc::Sum, total), outer(AggFunc::Sum, rows)],
            )
        }
    })
}

/// A report metric: `count` (or the table's name) counts the objects; a
/// catalog metric is a row value (summed) or an aggregate over the objects'
/// activity inside the date range; a numeric column is summed.
fn metric<'c>(
    catalog: &'c Catalog,
    object: SegmentObject,
    obj: &'c ObjectDef,
    name: &str,
    activity: &mut Activity<'c>,
) -> Result<Column, String> {
    let alias = Ident::new(name).ok_or_else(|| format!("{name:?} is not a valid metric name"))?;
    let oid = Ident::trusted(&obj.id);
    if name == "count" || name == obj.table {
        let e = Expr::agg(AggFunc::Count, true, Expr::col("o", &oid));
        return Ok(Column { expr: e, alias });
    }
    let sum_of = |c: &str| Expr::agg(AggFunc::Sum, false, Expr::col("o", &Ident::trusted(c)));
    if let Some(def) = obj.metrics.get(name) {
        let expr = match def.row.as_deref() {
            Some(row) => sum_of(row),
            None => aggregate_metric(catalog, object, def, activity)
                .map_err(|e| format!("metric {name:?}: {e}"))?,
        };
        return Ok(Column { expr, alias });
    }
    match obj.columns.get(name) {
        Some(t) if t.is_numeric() => Ok(Column {
            expr: sum_of(name),
            alias,
        }),
        _ => {
            let known: Vec<&str> = obj.metrics.keys().map(String::as_str).collect();
            Err(format!(
                "unknown metric {name:?} for a {} report (use \"count\", \"{}\", a numeric field or a catalog metric: {})",
                obj.table,
                obj.table,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        }
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
    let mut activity = Activity::default();
    for (i, m) in metric_names.iter().enumerate() {
        match metric(catalog, req.object, obj, m, &mut activity) {
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
    // The activity of aggregate metrics is limited to the report's date range,
    // the same bounds that keep the object rows.
    let from = TimeRef::DayStart(req.start);
    let until = TimeRef::DayStart(after_end);
    let activity_joins = activity.joins(
        req.object,
        &Expr::col("o", &Ident::trusted(&obj.id)),
        target,
        from,
        until,
    );
    let build = |list: &[ReportSegment],
                 key: &str,
                 errs: &mut ValidationErrors|
     -> Vec<SegmentReportQuery> {
        let mut out = Vec::new();
        for (i, seg) in list.iter().enumerate() {
            let path = format!("{key}[{i}]");
            let oid = Expr::col("o", &Ident::trusted(&obj.id));
            let mut filter = vec![
                Expr::col("o", &Ident::trusted(&obj.time)).bin(BinOp::GtEq, Expr::Time(from)),
                Expr::col("o", &Ident::trusted(&obj.time)).bin(BinOp::Lt, Expr::Time(until)),
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
                joins: activity_joins.clone(),
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
            let query = Query::select(select);
            let clock = Clock::At { tz: *tz, now };
            match target.render(&Statement::Query(&query), clock) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({
            "object": "user",
            "dateRange": {"startDate": "2024-06-01", "endDate": "2024-06-30"},
            "segments": ["a1"]
        })
    }

    fn with(key: &str, value: Value) -> Value {
        let mut v = base();
        v[key] = value;
        v
    }

    fn errors(v: &Value) -> Vec<String> {
        match parse_report_value(v) {
            Ok(r) => panic!("accepted: {r:?}"),
            Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
        }
    }

    fn ok(v: &Value) -> ReportRequest {
        parse_report_value(v).unwrap_or_else(|e| panic!("refused: {e}"))
    }

    fn seg(id: &str) -> ReportSegment {
        ReportSegment {
            id: id.into(),
            object: None,
            all_data: false,
        }
    }

    #[test]
    fn report_a_single_segment_id_is_a_one_item_list() {
        let r = ok(&with("segments", json!("a1")));
        assert_eq!(r.segments, vec![seg("a1")]);
        let mut v = with("segments", Value::Null);
        v["comparisonSegments"] = json!("b2");
        let r = ok(&v);
        assert_eq!(r.segments, vec![]);
        assert_eq!(r.comparison_segments, vec![seg("b2")]);
        // The single id is still checked, at the path of its one item.
        assert_eq!(
            errors(&with("segments", json!("a b"))),
            vec![r#"segments[0]: "a b" is not a segment id"#]
        );
        assert_eq!(
            errors(&with("segments", json!(5))),
            vec!["segments: must be an array of segment ids"]
        );
    }

    #[test]
    fn report_a_single_dimension_or_metric_name_is_a_one_item_list() {
        let mut v = with("metrics", json!("sessions"));
        v["dimensions"] = json!("country");
        let r = ok(&v);
        assert_eq!(r.metrics, vec!["sessions"]);
        assert_eq!(r.dimensions, vec!["country"]);
        assert_eq!(
            errors(&with("metrics", json!(3))),
            vec!["metrics: must be an array of names"]
        );
    }

    #[test]
    fn report_sort_reads_by_and_direction() {
        let r = ok(&with("sort", json!({"by": "sessions", "direction": "ASC"})));
        assert_eq!(
            (r.sort_by.as_deref(), r.descending),
            (Some("sessions"), false)
        );
        let r = ok(&with("sort", json!({"direction": "desc"})));
        assert_eq!((r.sort_by, r.descending), (None, true));
        let r = ok(&base());
        assert_eq!((r.sort_by, r.descending), (None, true));
        let r = ok(&with("sort", Value::Null));
        assert_eq!((r.sort_by, r.descending), (None, true));
    }

    #[test]
    fn report_sort_of_the_wrong_type_is_an_error_naming_its_path() {
        assert_eq!(
            errors(&with("sort", json!({"by": 5, "direction": 7}))),
            vec![
                "sort.by: must be a string (a dimension or metric name)",
                r#"sort.direction: must be the string "asc" or "desc""#,
            ]
        );
        assert_eq!(
            errors(&with("sort", json!({"by": ["a"], "direction": true}))),
            vec![
                "sort.by: must be a string (a dimension or metric name)",
                r#"sort.direction: must be the string "asc" or "desc""#,
            ]
        );
        assert_eq!(
            errors(&with("sort", json!({"direction": "up"}))),
            vec![r#"sort.direction: "up" is neither asc nor desc"#]
        );
        assert_eq!(
            errors(&with("sort", json!("sessions"))),
            vec![r#"sort: must be an object {"by", "direction"}"#]
        );
    }

    #[test]
    fn report_limit_and_offset_take_whole_numbers_written_as_floats() {
        let mut v = with("limit", json!(5.0));
        v["offset"] = json!(20.0);
        let r = ok(&v);
        assert_eq!((r.limit, r.offset), (5, 20));
        let mut v = with("limit", json!(0));
        v["offset"] = json!(-0.0);
        let r = ok(&v);
        assert_eq!((r.limit, r.offset), (0, 0));
        let r = ok(&with("limit", json!(MAX_LIMIT as f64)));
        assert_eq!(r.limit, MAX_LIMIT);
        let r = ok(&with("offset", json!(MAX_OFFSET)));
        assert_eq!(r.offset, MAX_OFFSET);
        let r = ok(&base());
        assert_eq!((r.limit, r.offset), (DEFAULT_LIMIT, 0));
        let r = ok(&with("limit", json!("7")));
        assert_eq!(r.limit, 7);
    }

    #[test]
    fn report_limit_and_offset_refuse_fractions_negatives_and_absurd_values() {
        let limit_err = format!("limit: must be a whole number from 0 to {MAX_LIMIT}");
        let offset_err = format!("offset: must be a whole number from 0 to {MAX_OFFSET}");
        for bad in [
            json!(5.5),
            json!(-1),
            json!(-1.0),
            json!(MAX_LIMIT + 1),
            json!(MAX_LIMIT as f64 + 1.0),
            json!(1e300),
            json!(u64::MAX),
            json!(i64::MIN),
            json!("5.5"),
            json!("many"),
            json!(true),
            json!([5]),
        ] {
            assert_eq!(
                errors(&with("limit", bad.clone())),
                vec![limit_err.clone()],
                "limit {bad}"
            );
        }
        for bad in [
            json!(0.5),
            json!(-3),
            json!(-2.0),
            json!(MAX_OFFSET + 1),
            json!(1e19),
            json!({"n": 1}),
        ] {
            assert_eq!(
                errors(&with("offset", bad.clone())),
                vec![offset_err.clone()],
                "offset {bad}"
            );
        }
    }

    fn render(v: Value) -> Result<Vec<String>, String> {
        let req = parse_report_value(&v).map_err(|e| e.to_string())?;
        let target = Target::new("p", "d").unwrap();
        let tz = crate::time::parse_time_zone("UTC").unwrap();
        let now = crate::time::parse_now("2024-07-01T00:00:00Z").unwrap();
        let out = render_report(&req, &Catalog::default_catalog(), &target, &tz, now)
            .map_err(|e| e.to_string())?;
        Ok(out.segments.into_iter().map(|q| q.query).collect())
    }

    #[test]
    fn report_aggregate_metrics_join_per_object_activity_inside_the_range() {
        let mut v = with(
            "metrics",
            json!(["count", "sessions", "pageviews", "revenue"]),
        );
        v["dimensions"] = json!(["country"]);
        let q = render(v).unwrap();
        assert_eq!(
            q,
            vec![
                "SELECT o.`country` AS `country`, COUNT(DISTINCT o.`user_id`) AS `count`, SUM(COALESCE(m0.`v0`, 0)) AS `sessions`, SUM(COALESCE(m0.`v1`, 0)) AS `pageviews`, SUM(COALESCE(m1.`v0`, 0)) AS `revenue`
FROM `p.d.users` AS o
LEFT JOIN (
  SELECT s.`user_id` AS `k`, COUNT(*) AS `v0`, SUM(s.`pageviews`) AS `v1`
  FROM `p.d.sessions` AS s
  WHERE s.`user_id` IS NOT NULL AND s.`started_at` >= TIMESTAMP '2024-06-01 00:00:00+00:00' AND s.`started_at` < TIMESTAMP '2024-07-01 00:00:00+00:00'
  GROUP BY s.`user_id`
) AS m0 ON m0.`k` = o.`user_id`
LEFT JOIN (
  SELECT s.`user_id` AS `k`, SUM(IF(s.`event_name` = 'purchase', s.`revenue`, NULL)) AS `v0`
  FROM `p.d.ecommerce_events` AS s
  WHERE s.`user_id` IS NOT NULL AND s.`event_timestamp` >= TIMESTAMP '2024-06-01 00:00:00+00:00' AND s.`event_timestamp` < TIMESTAMP '2024-07-01 00:00:00+00:00'
  GROUP BY s.`user_id`
) AS m1 ON m1.`k` = o.`user_id`
WHERE o.`last_seen_at` >= TIMESTAMP '2024-06-01 00:00:00+00:00' AND o.`last_seen_at` < TIMESTAMP '2024-07-01 00:00:00+00:00' AND o.`user_id` IN (
  SELECT seg.`object_id`
  FROM `p.d.segment_a1` AS seg
)
GROUP BY o.`country`
ORDER BY `count` DESC, `country` ASC
LIMIT 100 OFFSET 0"
            ]
        );
    }

    #[test]
    fn report_avg_min_max_metrics_combine_over_the_groups_activity() {
        let q = render(with("metrics", json!(["avg_session_duration"]))).unwrap();
        assert!(
            q[0].contains("SAFE_DIVIDE(SUM(m0.`v0`), SUM(m0.`v1`)) AS `avg_session_duration`"),
            "{}",
            q[0]
        );
        assert!(
            q[0].contains("SUM(s.`duration_seconds`) AS `v0`, COUNT(s.`duration_seconds`) AS `v1`"),
            "{}",
            q[0]
        );
        let mut v = with("metrics", json!(["max_order_value", "web_conversions"]));
        v["object"] = json!("people");
        let q = render(v).unwrap();
        assert!(
            q[0].contains(
                "MAX(m0.`v0`) AS `max_order_value`, SUM(COALESCE(m1.`v0`, 0)) AS `web_conversions`"
            ),
            "{}",
            q[0]
        );
        assert!(
            q[0].contains("MAX(IF(s.`event_name` = 'purchase', s.`revenue`, NULL)) AS `v0`"),
            "{}",
            q[0]
        );
    }

    #[test]
    fn report_crm_activity_links_through_the_crm_object_columns() {
        let mut v = with("metrics", json!(["sales_conversions", "amount"]));
        v["object"] = json!("crm-contact");
        let q = render(v).unwrap();
        assert!(
            q[0].contains("WHERE s.`crm_object` = 'crm-contact' AND s.`crm_object_id` IS NOT NULL AND s.`converted_at` >= "),
            "{}",
            q[0]
        );
        assert!(q[0].contains("SUM(o.`amount`) AS `amount`"), "{}", q[0]);
    }

    #[test]
    fn report_metrics_of_row_values_and_columns_read_no_activity() {
        let mut v = with(
            "metrics",
            json!(["sessions", "pageviews", "duration_seconds"]),
        );
        v["object"] = json!("session");
        let q = render(v).unwrap();
        assert!(!q[0].contains("JOIN"), "{}", q[0]);
        assert!(
            q[0].starts_with("SELECT COUNT(DISTINCT o.`session_id`) AS `sessions`, SUM(o.`pageviews`) AS `pageviews`, SUM(o.`duration_seconds`) AS `duration_seconds`\n"),
            "{}",
            q[0]
        );
    }

    #[test]
    fn report_unknown_metrics_are_still_refused() {
        let err = render(with("metrics", json!(["sessions", "bogus"]))).unwrap_err();
        assert_eq!(
            err,
            r#"metrics[1]: unknown metric "bogus" for a users report (use "count", "users", a numeric field or a catalog metric: avg_session_duration, duration_seconds, pageviews, revenue, sessions, web_conversions)"#
        );
    }

    #[test]
    fn report_sort_by_an_aggregate_metric() {
        let mut v = with("metrics", json!(["sessions", "pageviews"]));
        v["sort"] = json!({"by": "pageviews", "direction": "asc"});
        let q = render(v).unwrap();
        assert!(
            q[0].ends_with("ORDER BY `pageviews` ASC\nLIMIT 100 OFFSET 0"),
            "{}",
            q[0]
        );
    }
}
