//! Report queries (SPEC §7): one query per segment and comparison segment that
//! keeps the report's rows whose object belongs to the segment.

use crate::activity::{Activity, Measure, Window};
use crate::catalog::{Aggregate, Catalog, ColumnType, MetricDef, ObjectDef};
use crate::compile::OBJECT_ID;
use crate::error::{CoreError, ValidationErrors};
use crate::model::{SegmentObject, segment_table_name};
use crate::sql::*;
use crate::time::Clock;
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use serde::Serialize;

mod request;

pub use request::{parse_report_request, parse_report_value};

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

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentReportQuery {
    pub segment_id: String,
    /// The query, rendered for the report's run.
    pub query: String,
    /// The same query as an AST, and the run it was rendered for.
    #[serde(skip)]
    ast: Query,
    #[serde(skip)]
    clock: Clock,
}

impl SegmentReportQuery {
    /// The statement that stores the query's rows in `table` (its result
    /// table), in the table's dialect.
    pub fn create_table(&self, table: &TableRef) -> Result<String, CoreError> {
        let s = Statement::CreateOrReplaceTable {
            table: table.clone(),
            query: &self.ast,
        };
        render_statement(table.dialect(), &s, self.clock)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportQueries {
    pub segments: Vec<SegmentReportQuery>,
    pub comparison_segments: Vec<SegmentReportQuery>,
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

/// Everything a report's queries share, resolved against the catalog.
struct Shape<'c> {
    obj: &'c ObjectDef,
    dims: Vec<Column>,
    mets: Vec<Column>,
    sort_key: Ident,
    window: Window,
    joins: Vec<Join>,
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
    let Some(shape) = shape(req, catalog, target, tz, &mut errs) else {
        return Err(errs.into());
    };
    let clock = Clock::At { tz: *tz, now };
    let mut build = |list: &[ReportSegment], key: &str| -> Vec<SegmentReportQuery> {
        let mut out = Vec::new();
        for (i, seg) in list.iter().enumerate() {
            let path = format!("{key}[{i}]");
            let query = segment_query(req, &shape, seg, target).and_then(|ast| {
                let text = target.render(&Statement::Query(&ast), clock);
                text.map(|t| (ast, t)).map_err(|e| e.to_string())
            });
            match query {
                Ok((ast, query)) => out.push(SegmentReportQuery {
                    segment_id: seg.id.clone(),
                    query,
                    ast,
                    clock,
                }),
                Err(e) => errs.push(&path, e),
            }
        }
        out
    };
    let segments = build(&req.segments, "segments");
    let comparison_segments = build(&req.comparison_segments, "comparisonSegments");
    errs.into_result(ReportQueries {
        segments,
        comparison_segments,
    })
    .map_err(CoreError::from)
}

/// The report's columns, sort key, window and activity joins; `None` when
/// the object or the date range cannot be used (the errors say why).
fn shape<'c>(
    req: &ReportRequest,
    catalog: &'c Catalog,
    target: &Target,
    tz: &Tz,
    errs: &mut ValidationErrors,
) -> Option<Shape<'c>> {
    let Some(obj) = catalog.object(req.object) else {
        errs.push(
            "object",
            format!("the catalog has no object \"{}\"", req.object),
        );
        return None;
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
    let sort_key = sort_key(req, &dims, &mets, errs);
    // The activity of aggregate metrics is limited to the report's date range,
    // the same bounds that keep the object rows.
    let window = match Window::days(req.start, req.end) {
        Ok(w) => w,
        Err(m) => {
            errs.push("dateRange.endDate", m);
            return None;
        }
    };
    let oid = Expr::col("o", &Ident::trusted(&obj.id));
    let joins = activity.joins(req.object, &oid, target, &window);
    Some(Shape {
        obj,
        dims,
        mets,
        sort_key,
        window,
        joins,
    })
}

/// The column the rows sort by: the requested one, else the first metric.
/// Every column name must be unique.
fn sort_key(
    req: &ReportRequest,
    dims: &[Column],
    mets: &[Column],
    errs: &mut ValidationErrors,
) -> Ident {
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
    match &req.sort_by {
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
    }
}

/// The report's rows whose object belongs to `seg` (all rows for All Data).
fn segment_query(
    req: &ReportRequest,
    shape: &Shape,
    seg: &ReportSegment,
    target: &Target,
) -> Result<Query, String> {
    let obj = shape.obj;
    let mut filter = shape
        .window
        .bounds(Expr::col("o", &Ident::trusted(&obj.time)));
    if !seg.all_data {
        let seg_object = seg.object.unwrap_or(req.object);
        let member = if seg_object == req.object {
            Some(Expr::col("o", &Ident::trusted(&obj.id)))
        } else {
            obj.links
                .get(seg_object.as_str())
                .map(|c| Expr::col("o", &Ident::trusted(c)))
        };
        let member = member.ok_or_else(|| {
            format!(
                "a {seg_object} segment cannot filter a {} report: no linking id",
                req.object
            )
        })?;
        let members = Select {
            from: Some(FromItem::Table {
                table: target.table(&segment_table_name(&seg.id)),
                alias: "seg".into(),
            }),
            ..Default::default()
        }
        .item(Expr::col("seg", &Ident::trusted(OBJECT_ID)), None);
        filter.push(Expr::InQuery(
            Box::new(member),
            Box::new(Query::select(members)),
        ));
    }
    let mut select = Select {
        from: Some(FromItem::Table {
            table: target.table(&obj.table),
            alias: "o".into(),
        }),
        joins: shape.joins.clone(),
        filter: Some(Expr::and(filter)),
        group_by: shape.dims.iter().map(|d| d.expr.clone()).collect(),
        limit: Some(req.limit),
        offset: Some(req.offset),
        ..Default::default()
    };
    for c in shape.dims.iter().chain(shape.mets.iter()) {
        select = select.item(c.expr.clone(), Some(c.alias.as_str()));
    }
    // Ties break on the dimensions, so pages are stable.
    select
        .order_by
        .push((Expr::Name(shape.sort_key.clone()), req.descending));
    for d in &shape.dims {
        if d.alias != shape.sort_key {
            select.order_by.push((Expr::Name(d.alias.clone()), false));
        }
    }
    Ok(Query::select(select))
}

#[cfg(test)]
mod tests;
