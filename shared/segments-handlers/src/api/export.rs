//! `export`: a report's rows as CSV, one column per segment and metric named
//! `S1:Name - metric`, `S2:Name - metric` (S1.. in the request's order),
//! written to the static bucket under `exports/{accountId}/`, answered with a
//! presigned URL that works for `expiresIn` seconds.
//!
//! The request names the report's result tables as report-with-segment
//! answered them (`segmentTables`), with the report's `dimensions` and
//! `metrics` (the tables' columns, in that order).

use super::{ApiError, ApiResult, account};
use crate::App;
use segments_core::sql::is_identifier;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::time::Duration;

/// Rows read from each result table at most.
pub const MAX_EXPORT_ROWS: usize = 100_000;
/// The URL's lifetime when the request sets none, and the longest S3 allows.
pub const DEFAULT_EXPIRES_IN: u64 = 900;
pub const MAX_EXPIRES_IN: u64 = 604_800;

fn names(req: &Value, key: &str) -> ApiResult<Vec<String>> {
    match req.get(key) {
        None | Some(Value::Null) => Ok(vec![]),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v.as_str() {
                Some(s) if is_identifier(s) => Ok(s.to_string()),
                _ => Err(ApiError::invalid(
                    &format!("{key}[{i}]"),
                    "must be a column name",
                )),
            })
            .collect(),
        Some(_) => Err(ApiError::invalid(key, "must be an array of column names")),
    }
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn cell(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

pub async fn export(app: &App, req: &Value) -> ApiResult {
    let (account, _) = account(app, req).await?;
    let bucket = app.static_bucket.clone().ok_or_else(|| {
        ApiError::invalid(
            "$",
            "STATIC_BUCKET is not configured: exports have nowhere to go",
        )
    })?;
    let dimensions = names(req, "dimensions")?;
    let metrics = names(req, "metrics")?;
    if metrics.is_empty() {
        return Err(ApiError::invalid("metrics", "name at least one metric"));
    }
    let expires_in = match req.get("expiresIn") {
        None | Some(Value::Null) => DEFAULT_EXPIRES_IN,
        Some(v) => match v.as_u64() {
            Some(n) if (1..=MAX_EXPIRES_IN).contains(&n) => n,
            _ => {
                return Err(ApiError::invalid(
                    "expiresIn",
                    format!("must be a whole number of seconds from 1 to {MAX_EXPIRES_IN}"),
                ));
            }
        },
    };
    let tables = match req.get("segmentTables") {
        Some(Value::Array(t)) if !t.is_empty() && t.len() <= 8 => t,
        None | Some(Value::Null) => return Err(ApiError::invalid("segmentTables", "is required")),
        Some(_) => {
            return Err(ApiError::invalid(
                "segmentTables",
                "must list 1 to 8 result tables of report-with-segment",
            ));
        }
    };
    let dataset = app.dataset(&account);
    let width = dimensions.len() + metrics.len();
    // Rows keyed by their dimension values, in the order first seen.
    let mut order: Vec<Vec<String>> = Vec::new();
    let mut values: HashMap<Vec<String>, Vec<Vec<String>>> = HashMap::new();
    let mut segment_names = Vec::new();
    for (i, t) in tables.iter().enumerate() {
        let path = format!("segmentTables[{i}]");
        let segment_id = t
            .get("segmentId")
            .and_then(Value::as_str)
            .and_then(segments_core::messages::canonical_uuid)
            .ok_or_else(|| {
                ApiError::invalid(&format!("{path}.segmentId"), "must be a segment id (UUID)")
            })?;
        let table = t
            .get("table")
            .and_then(Value::as_str)
            .filter(|s| s.starts_with("report_") && is_identifier(s))
            .ok_or_else(|| {
                ApiError::invalid(
                    &format!("{path}.table"),
                    "must be a report result table (report_...)",
                )
            })?;
        let seg = app
            .ports
            .store
            .segment(&account, &segment_id)
            .await?
            .ok_or_else(|| {
                ApiError::not_found(
                    &format!("{path}.segmentId"),
                    format!("segment {segment_id} does not belong to account {account}"),
                )
            })?;
        // A report table belongs to its segment: `report_{segment}_{hash}`.
        if !table.starts_with(&format!("report_{}_", segment_id.replace('-', "_"))) {
            return Err(ApiError::invalid(
                &format!("{path}.table"),
                format!("{table} is not a result table of segment {segment_id}"),
            ));
        }
        segment_names.push(seg.name);
        let rows = app
            .ports
            .warehouse
            .table_rows(&dataset, table, MAX_EXPORT_ROWS)
            .await
            .map_err(|e| match e.reason() {
                // BigQuery's 404 `notFound`, Postgres' undefined_table.
                Some("notFound" | "404" | "42P01") => {
                    ApiError::not_found(&format!("{path}.table"), format!("{table}: {e}"))
                }
                _ => e.into(),
            })?;
        for r in rows {
            if r.len() != width {
                return Err(ApiError::invalid(
                    &format!("{path}.table"),
                    format!("{table} has {} columns; the request names {width}", r.len()),
                ));
            }
            let key: Vec<String> = r[..dimensions.len()]
                .iter()
                .map(|v| cell(Some(v)))
                .collect();
            let entry = values.entry(key.clone()).or_insert_with(|| {
                order.push(key);
                vec![Vec::new(); tables.len()]
            });
            entry[i] = r[dimensions.len()..]
                .iter()
                .map(|v| cell(Some(v)))
                .collect();
        }
    }
    let mut header: Vec<String> = dimensions.clone();
    for m in &metrics {
        for (i, name) in segment_names.iter().enumerate() {
            header.push(format!("S{}:{name} - {m}", i + 1));
        }
    }
    let mut csv = String::new();
    let line = |fields: &[String], csv: &mut String| {
        let l: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        csv.push_str(&l.join(","));
        csv.push_str("\r\n");
    };
    line(&header, &mut csv);
    for key in &order {
        let per_segment = &values[key];
        let mut fields = key.clone();
        for mi in 0..metrics.len() {
            for seg in per_segment {
                fields.push(seg.get(mi).cloned().unwrap_or_default());
            }
        }
        line(&fields, &mut csv);
    }
    let digest: String = Sha256::digest(req.to_string().as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect();
    let key = format!("exports/{account}/{digest}.csv");
    app.ports
        .objects
        .put(
            &bucket,
            &key,
            csv.clone().into_bytes(),
            "text/csv; charset=utf-8",
        )
        .await?;
    let url = app
        .ports
        .objects
        .presigned_get(&bucket, &key, Duration::from_secs(expires_in))
        .await?;
    Ok(json!({
        "bucket": bucket,
        "key": key,
        "url": url,
        "expiresIn": expires_in,
        "rows": order.len(),
        "columns": header,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }
}
