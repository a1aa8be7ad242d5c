//! `test`: validates a segment, renders its SQL and asks the warehouse what a
//! build would scan (BigQuery's `dryRun`), refusing one over the byte cap.
//! Nothing is stored or submitted.

use super::{ApiError, ApiResult, account};
use crate::App;
use chrono::{DateTime, Utc};
use segments_core::time::parse_time_zone;
use segments_core::{check_segment, render_segment};
use segments_infra::InfraError;
use serde_json::{Value, json};

/// The id a segment under test gets when it has none yet (only its table name shows it).
pub const UNSAVED_ID: &str = "00000000-0000-0000-0000-000000000000";

pub async fn test(app: &App, req: &Value, now: DateTime<Utc>) -> ApiResult {
    let (account, tz_name) = account(app, req).await?;
    let mut segment = match req.get("segment") {
        Some(s @ Value::Object(_)) => s.clone(),
        None | Some(Value::Null) => return Err(ApiError::invalid("segment", "is required")),
        Some(_) => return Err(ApiError::invalid("segment", "must be an object")),
    };
    if let Some(o) = segment.as_object_mut() {
        o.entry("id").or_insert(json!(UNSAVED_ID));
    }
    let seg = check_segment(&segment, &app.catalog).map_err(|e| ApiError::nested("segment", e))?;
    if let Some(owner) = &seg.account_id
        && owner != &account
    {
        return Err(ApiError::invalid(
            "segment.accountId",
            format!("{owner} differs from accountId {account}"),
        ));
    }
    let tz =
        parse_time_zone(&tz_name).map_err(|e| ApiError::invalid("accountId", e.to_string()))?;
    let target = app.target(&account)?;
    let rendered = render_segment(&seg, &app.catalog, &target, &tz, now).map_err(|e| match e {
        segments_core::CoreError::Invalid(errs) => ApiError::nested("segment", errs),
        other => ApiError::invalid("segment", other.to_string()),
    })?;
    let cap = app.maximum_bytes_billed;
    let dry_run = match app
        .ports
        .warehouse
        .dry_run(&rendered.create_table_query)
        .await
    {
        Ok(bytes) if bytes > cap => {
            return Err(ApiError {
                status: 422,
                kind: "over-byte-cap",
                errors: vec![super::ErrorItem {
                    path: "segment".into(),
                    message: format!(
                        "a build would scan {bytes} bytes, over the cap of {cap} (BIGQUERY_MAXIMUM_BYTES_BILLED)"
                    ),
                }],
            });
        }
        Ok(bytes) => {
            json!({"supported": true, "totalBytesProcessed": bytes, "maximumBytesBilled": cap})
        }
        Err(InfraError::Unsupported(reason)) => {
            json!({"supported": false, "reason": reason, "maximumBytesBilled": cap})
        }
        // The warehouse refuses the SQL (BigQuery's 400 `invalidQuery`, a
        // permanent refusal): the segment's fault, not an outage.
        Err(e @ InfraError::Refused { .. }) => {
            return Err(ApiError::invalid(
                "segment",
                format!("the warehouse refuses the SQL: {e}"),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    Ok(json!({
        "valid": true,
        "table": rendered.table,
        "createTableQuery": rendered.create_table_query,
        "cronjobQuery": rendered.cronjob_query,
        "dryRun": dry_run,
    }))
}
