//! `preview`: popular values, sample values and the unique count of one
//! condition's field (the core's preview queries), and `options`: what the
//! segment builder offers for each option type, from the catalog and the
//! warehouse. Both cached for 1 hour.

use super::{ApiError, ApiResult, CACHE_TTL, account, required_str};
use crate::App;
use chrono::{DateTime, Utc};
use segments_core::jobs::job_id;
use segments_core::model::Focus;
use segments_core::preview::preview_queries;
use segments_core::sql::{
    EntryField, Expr, FromItem, Ident, Join, JoinKind, Query, Select, Target, render_query,
};
use segments_core::time::{Clock, parse_time_zone};
use segments_infra::ports::QueryJob;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::time::Duration;

/// How long a preview or option query may run inside the call.
const QUERY_WAIT: Duration = Duration::from_secs(20);
/// Rows an option list holds at most.
pub const MAX_OPTIONS: u64 = 500;

/// `{accountId}_segment_inside_preview_{hash}`: the primary source's
/// `SEGMENT_INSIDE_PREVIEW` key, per account and previewed field.
pub fn preview_key(account: &str, group: &Value) -> String {
    format!(
        "{account}_segment_inside_preview_{}",
        hash16(&group.to_string())
    )
}

/// `{accountId}_segment_option_{optionType}_{segmentObject}`.
pub fn option_key(account: &str, option_type: &str, object: &str) -> String {
    format!("{account}_segment_option_{option_type}_{object}")
}

fn hash16(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn cached(app: &App, key: &str) -> Option<Value> {
    match app.ports.cache.get(key).await {
        Ok(Some(text)) => serde_json::from_str(&text).ok(),
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(error = %e, "cache unavailable");
            None
        }
    }
}

async fn remember(app: &App, key: &str, value: &Value) {
    if let Err(e) = app
        .ports
        .cache
        .put(key, &value.to_string(), CACHE_TTL)
        .await
    {
        tracing::warn!(error = %e, "not cached");
    }
}

/// Runs one read-only query and returns its rows (each cell a JSON string or null).
async fn run(
    app: &App,
    target: &Target,
    sql: String,
    id: String,
    max_rows: usize,
) -> ApiResult<Vec<Vec<Value>>> {
    let w = &app.ports.warehouse;
    w.submit(&QueryJob {
        job_id: id.clone(),
        sql,
        dataset: target.dataset().to_string(),
        labels: vec![
            ("app".into(), "segments".into()),
            ("kind".into(), "preview".into()),
        ],
        batch: false,
        maximum_bytes_billed: app.maximum_bytes_billed,
    })
    .await?;
    let status = w.wait(&id, QUERY_WAIT).await?;
    if status.state != "DONE" {
        let _ = w.cancel(&id).await;
        return Err(ApiError {
            status: 503,
            kind: "unavailable",
            errors: vec![super::ErrorItem {
                path: "$".into(),
                message: format!(
                    "the warehouse did not answer within {}s",
                    QUERY_WAIT.as_secs()
                ),
            }],
        });
    }
    if let Some(m) = status.error_message {
        return Err(ApiError::invalid(
            "$",
            format!("the warehouse refused the query: {m}"),
        ));
    }
    Ok(w.rows(&id, max_rows).await?)
}

fn text(v: &Value) -> Value {
    match v {
        Value::Null => Value::Null,
        Value::String(s) => Value::String(s.clone()),
        other => Value::String(other.to_string()),
    }
}

fn number(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        Value::Number(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

struct Ctx {
    account: String,
    tz: chrono_tz::Tz,
    target: Target,
}

async fn ctx(app: &App, req: &Value) -> ApiResult<Ctx> {
    let (account, tz_name) = account(app, req).await?;
    let tz =
        parse_time_zone(&tz_name).map_err(|e| ApiError::invalid("accountId", e.to_string()))?;
    let target = app.target(&account)?;
    Ok(Ctx {
        account,
        tz,
        target,
    })
}

/// The three preview lists of one field (a rule group with one condition `g0`).
async fn preview_group(
    app: &App,
    c: &Ctx,
    group: &Value,
    path: &str,
    request_id: &str,
    now: DateTime<Utc>,
) -> ApiResult<Value> {
    let q = preview_queries(group, &app.catalog, &c.target, &c.tz, now).map_err(|e| match e {
        segments_core::CoreError::Invalid(errs) => {
            // The core names the group `ruleGroups[0]`; the caller sent it as `path`.
            let errs = segments_core::ValidationErrors(
                errs.0
                    .into_iter()
                    .map(|mut e| {
                        e.path = e
                            .path
                            .replacen("ruleGroups[0]", "", 1)
                            .trim_start_matches('.')
                            .to_string();
                        e
                    })
                    .collect(),
            );
            ApiError::nested(path, errs)
        }
        other => ApiError::invalid(path, other.to_string()),
    })?;
    let h = hash16(&group.to_string());
    let id = |kind: &str| job_id("preview", &[&c.account, &h, kind, request_id]);
    let popular = run(app, &c.target, q.popular_values, id("popular"), 100).await?;
    let sample = run(app, &c.target, q.sample_values, id("sample"), 100).await?;
    let unique = run(app, &c.target, q.unique_count, id("unique"), 1).await?;
    Ok(json!({
        "popularValues": popular.iter().map(|r| json!({
            "value": r.first().map(text).unwrap_or(Value::Null),
            "count": r.get(1).map(number).unwrap_or(0),
        })).collect::<Vec<_>>(),
        "sampleValues": sample.iter().map(|r| r.first().map(text).unwrap_or(Value::Null)).collect::<Vec<_>>(),
        "uniqueCount": unique.first().and_then(|r| r.first()).map(number).unwrap_or(0),
    }))
}

pub async fn preview(app: &App, req: &Value, request_id: &str, now: DateTime<Utc>) -> ApiResult {
    let c = ctx(app, req).await?;
    let group = match req.get("group") {
        Some(g @ Value::Object(_)) => g,
        None | Some(Value::Null) => return Err(ApiError::invalid("group", "is required")),
        Some(_) => return Err(ApiError::invalid("group", "must be an object")),
    };
    let key = preview_key(&c.account, group);
    if let Some(v) = cached(app, &key).await {
        return Ok(json!({"preview": v, "cached": true, "cacheKey": key}));
    }
    let v = preview_group(app, &c, group, "group", request_id, now).await?;
    remember(app, &key, &v).await;
    Ok(json!({"preview": v, "cached": false, "cacheKey": key}))
}

/// The option types of the primary source's `SEGMENT_VARIABLE_OPTION`.
pub const OPTION_TYPES: &[&str] = &[
    "checklist",
    "other-field",
    "pipeline-status",
    "intent",
    "metric",
    "conversion",
    "ecommerce",
    "event-name",
    "event-variable",
    "sales-conversion",
];

/// Distinct `key`s of a key/value array column: custom property names of an
/// object, or event property names. The dialect says how entries are read.
fn keys_query(c: &Ctx, table: &str, column: &str) -> Option<String> {
    let column = Ident::new(column)?;
    let select = Select {
        distinct: true,
        from: Some(FromItem::Table {
            table: c.target.checked_table(table)?,
            alias: "o".into(),
        }),
        joins: vec![Join {
            kind: JoinKind::Cross,
            item: FromItem::Entries {
                array: Expr::col("o", &column),
                alias: "c".into(),
            },
            on: Expr::Bool(true),
        }],
        filter: Some(Expr::Entry("c".into(), EntryField::Key).is_not_null()),
        order_by: vec![(Expr::Name(Ident::new("value")?), false)],
        limit: Some(MAX_OPTIONS),
        ..Default::default()
    }
    .item(Expr::Entry("c".into(), EntryField::Key), Some("value"));
    render_query(
        c.target.dialect(),
        &Query::select(select),
        Clock::Placeholders,
    )
    .ok()
}

/// The most frequent values of an event focus' selector (event names,
/// conversion ids): `[{value, count}]` as a preview's popular values.
fn selector_query(app: &App, c: &Ctx, focus: Focus) -> Option<String> {
    let (sel, source) = app.catalog.event_focus(focus)?;
    let selector = Expr::col("o", &Ident::new(&sel.selector)?);
    let select = Select {
        from: Some(FromItem::Table {
            table: c.target.checked_table(&source.table)?,
            alias: "o".into(),
        }),
        filter: Some(selector.clone().is_not_null()),
        group_by: vec![selector.clone()],
        order_by: vec![
            (Expr::Name(Ident::new("count")?), true),
            (Expr::Name(Ident::new("value")?), false),
        ],
        limit: Some(TOP_VALUES),
        ..Default::default()
    }
    .item(selector, Some("value"))
    .item(Expr::CountStar, Some("count"));
    render_query(
        c.target.dialect(),
        &Query::select(select),
        Clock::Placeholders,
    )
    .ok()
}

/// Values an event option lists (the preview's popular values).
const TOP_VALUES: u64 = 20;

pub async fn options(app: &App, req: &Value, request_id: &str, now: DateTime<Utc>) -> ApiResult {
    let c = ctx(app, req).await?;
    let option_type = required_str(req, "optionType")?;
    if !OPTION_TYPES.contains(&option_type) {
        return Err(ApiError::invalid(
            "optionType",
            format!(
                "unknown option type {option_type:?}; one of {}",
                OPTION_TYPES.join(", ")
            ),
        ));
    }
    let object = match req.get("segmentObject") {
        None | Some(Value::Null) => "session",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(ApiError::invalid("segmentObject", "must be a string")),
    };
    let Some(obj) = app.catalog.objects.get(object) else {
        return Err(ApiError::invalid(
            "segmentObject",
            format!("unknown object {object:?}"),
        ));
    };
    let key = option_key(&c.account, option_type, object);
    if let Some(v) = cached(app, &key).await {
        return Ok(json!({"options": v, "cached": true, "cacheKey": key}));
    }
    // The warehouse's values of one field, as the preview lists them.
    let values = async |group: Value| -> ApiResult<Value> {
        let p = preview_group(app, &c, &group, "optionType", request_id, now).await?;
        Ok(p["popularValues"].clone())
    };
    let keys = async |table: &str, column: &str| -> ApiResult<Value> {
        let sql = keys_query(&c, table, column).ok_or_else(|| {
            ApiError::invalid("segmentObject", "the catalog names no valid column")
        })?;
        let id = job_id("options", &[&c.account, option_type, object, request_id]);
        let rows = run(app, &c.target, sql, id, MAX_OPTIONS as usize).await?;
        Ok(Value::Array(
            rows.iter()
                .map(|r| json!({"value": r.first().map(text).unwrap_or(Value::Null)}))
                .collect(),
        ))
    };
    let v = match option_type {
        // The catalog: the object's fields and their types, its metrics.
        "checklist" => Value::Array(
            obj.columns
                .iter()
                .map(|(k, t)| json!({"value": k, "type": t}))
                .collect(),
        ),
        "metric" => Value::Array(obj.metrics.keys().map(|k| json!({"value": k})).collect()),
        // The warehouse.
        "other-field" => match &obj.custom {
            Some(col) => keys(&obj.table, col).await?,
            None => json!([]),
        },
        "event-variable" => {
            let Some((_, source)) = app.catalog.event_focus(Focus::OtherEvent) else {
                return Ok(json!({"options": [], "cached": false, "cacheKey": key}));
            };
            match &source.properties {
                Some(col) => keys(&source.table, col).await?,
                None => json!([]),
            }
        }
        "pipeline-status" => {
            let crm = if object.starts_with("crm-") {
                object
            } else {
                "crm-opportunity"
            };
            values(json!({"segmentObject": crm, "conditionFocus": "property",
                "g0": {"type": "dimension", "key": "stage"}}))
            .await?
        }
        "intent" => {
            values(
                json!({"segmentObject": "revealed-company", "conditionFocus": "property",
                "g0": {"type": "multi-value", "key": "intent_topics"}}),
            )
            .await?
        }
        focus_type => {
            let focus = match focus_type {
                "conversion" => Focus::WebConversionEvent,
                "ecommerce" => Focus::EcommerceEvent,
                "sales-conversion" => Focus::SalesConversionEvent,
                _ => Focus::OtherEvent,
            };
            let sql = selector_query(app, &c, focus).ok_or_else(|| {
                ApiError::invalid("optionType", "the catalog names no source for it")
            })?;
            let id = job_id("options", &[&c.account, option_type, object, request_id]);
            let rows = run(app, &c.target, sql, id, TOP_VALUES as usize).await?;
            Value::Array(
                rows.iter()
                    .map(|r| {
                        json!({
                            "value": r.first().map(text).unwrap_or(Value::Null),
                            "count": r.get(1).map(number).unwrap_or(0),
                        })
                    })
                    .collect(),
            )
        }
    };
    remember(app, &key, &v).await;
    Ok(json!({"options": v, "cached": false, "cacheKey": key}))
}
