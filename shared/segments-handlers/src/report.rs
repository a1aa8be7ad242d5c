//! report-with-segment: validates a report request (at most 4 segments and 4
//! comparison segments, each the account's and built), submits one job per
//! segment that writes a result table, and queues their checks.

use crate::{App, Failure};
use chrono::{DateTime, Utc};
use segments_core::jobs::{QueryStatus, job_id};
use segments_core::messages::{CheckJobMessage, JobAction, JobInput, canonical_uuid, shown};
use segments_core::report::{ReportRequest, ReportSegment, parse_report_value, render_report};
use segments_core::time::parse_time_zone;
use segments_infra::cache::keys;
use segments_infra::ports::{JobRecord, QueryJob};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The longest `reportName`, like a segment's name.
pub const MAX_REPORT_NAME: usize = 200;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentTable {
    pub segment_id: String,
    pub table: String,
    pub job_id: String,
    pub cache_key: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportResponse {
    pub segment_tables: Vec<SegmentTable>,
    pub comparison_segment_tables: Vec<SegmentTable>,
}

pub async fn handle(
    app: &App,
    request: &Value,
    message_id: &str,
    now: DateTime<Utc>,
) -> Result<ReportResponse, Failure> {
    let req = parse_report_value(request)?;
    handle_request(app, req, request, message_id, now).await
}

/// [`handle`] for a request already parsed from `request`.
pub async fn handle_request(
    app: &App,
    mut req: ReportRequest,
    request: &Value,
    message_id: &str,
    now: DateTime<Utc>,
) -> Result<ReportResponse, Failure> {
    // A request that names no segment uses the ones its user applied.
    let applied = with_applied_segments(app, request).await?;
    let request = match &applied {
        Some(v) => {
            req = parse_report_value(v)?;
            v
        }
        None => request,
    };
    if req.segments.is_empty() && req.comparison_segments.is_empty() {
        return Err(Failure::Rejected(
            "segments: name at least one segment (the user applies none to this report)".into(),
        ));
    }
    // Ids canonical at the edge: a UUID, lower-cased (datasets, tables and
    // cache keys are named after them).
    let account = match req.account_id.as_deref() {
        None => return Err(Failure::Rejected("accountId: is required".into())),
        Some(a) => canonical_uuid(a)
            .ok_or_else(|| Failure::Rejected(format!("accountId: {} is not a UUID", shown(a))))?,
    };
    // It travels in every check message (SQS takes 256 KB) and every notification.
    if let Some(name) = &req.report_name {
        let n = name.chars().count();
        if n > MAX_REPORT_NAME {
            return Err(Failure::Rejected(format!(
                "reportName: at most {MAX_REPORT_NAME} characters, got {n}"
            )));
        }
    }
    for s in req
        .segments
        .iter_mut()
        .chain(req.comparison_segments.iter_mut())
    {
        if let Some(id) = canonical_uuid(&s.id) {
            s.id = id;
        }
    }
    let tz_name = match &req.account_time_zone {
        Some(tz) => tz.clone(),
        None => app
            .ports
            .store
            .account_time_zone(&account)
            .await?
            .ok_or_else(|| Failure::Rejected(format!("account {account} does not exist")))?,
    };
    let tz = parse_time_zone(&tz_name)?;
    // Each segment must be the account's and built; its object comes from its rules.
    for list in [&mut req.segments, &mut req.comparison_segments] {
        for s in list.iter_mut() {
            resolve(app, &account, s).await?;
        }
    }
    let target = app.target(&account)?;
    let queries = render_report(&req, &app.catalog, &target, &tz, now)?;
    let request_hash = hex8(&request.to_string());
    let submit = async |list: &[segments_core::report::SegmentReportQuery]| -> Result<Vec<SegmentTable>, Failure> {
        let mut out = Vec::new();
        for q in list {
            let table = format!("report_{}_{}", q.segment_id.replace('-', "_"), request_hash);
            let table_ref = target
                .checked_table(&table)
                .ok_or_else(|| Failure::Rejected(format!("{table} is not a valid table name")))?;
            let id = job_id("report", &[&account, &q.segment_id, &request_hash, message_id]);
            app.ports
                .warehouse
                .submit(&QueryJob {
                    job_id: id.clone(),
                    // Result tables expire (REPORT_TABLE_EXPIRATION_HOURS) instead of piling up.
                    sql: match app.report_table_expiration {
                        Some(ttl) => q.create_expiring_table(&table_ref, expires_at(now, ttl))?,
                        None => q.create_table(&table_ref)?,
                    },
                    dataset: target.dataset().to_string(),
                    labels: vec![("app".into(), "segments".into()), ("kind".into(), "report".into())],
                    batch: false,
                    maximum_bytes_billed: app.maximum_bytes_billed,
                })
                .await?;
            let cache_key = format!("{}{}", keys::report_segment_prefix(&account, &q.segment_id), request_hash);
            let check = CheckJobMessage {
                job_id: id.clone(),
                account_id: account.clone(),
                action: JobAction::QueryReportWithSegment,
                job_input_data: JobInput {
                    segment_id: Some(q.segment_id.clone()),
                    report_name: req.report_name.clone(),
                    cache_key: Some(cache_key.clone()),
                    result_table: Some(table.clone()),
                    ..Default::default()
                },
                started_at: now,
                attempt: 0,
            };
            // Recorded with its account, so its check can prove whose job it is.
            app.ports
                .store
                .start_job(&JobRecord {
                    job_id: id.clone(),
                    account_id: account.clone(),
                    segment_id: Some(q.segment_id.clone()),
                    action: JobAction::QueryReportWithSegment.as_str().into(),
                    status: QueryStatus::InProgress,
                    bytes_billed: None,
                    error: None,
                    created_at: now,
                    finished_at: None,
                })
                .await?;
            app.queue_check(&check, app.schedule.first_delay).await?;
            out.push(SegmentTable {
                segment_id: q.segment_id.clone(),
                table,
                job_id: id,
                cache_key,
            });
        }
        Ok(out)
    };
    let segment_tables = submit(&queries.segments).await?;
    let comparison_segment_tables = submit(&queries.comparison_segments).await?;
    Ok(ReportResponse {
        segment_tables,
        comparison_segment_tables,
    })
}

async fn resolve(app: &App, account: &str, s: &mut ReportSegment) -> Result<(), Failure> {
    let row = app
        .ports
        .store
        .segment(account, &s.id)
        .await?
        .ok_or_else(|| {
            Failure::Rejected(format!(
                "segment {} does not belong to account {account}",
                s.id
            ))
        })?;
    // Whether a segment filters nothing is the store's to say, not the
    // request's: `allData: true` on a custom segment must not drop its filter.
    s.all_data = !row.is_custom;
    if s.all_data {
        return Ok(());
    }
    if !row.status {
        return Err(Failure::Rejected(format!("segment {} is disabled", s.id)));
    }
    if row.query_status != "done" {
        return Err(Failure::Rejected(format!(
            "segment {} is not built (queryStatus {})",
            s.id, row.query_status
        )));
    }
    let (seg, _) = segments_core::stored_segment(crate::create_segment::stored_rules(&row))?;
    s.object = Some(seg.object);
    Ok(())
}

/// A request that names no segment filters by the segments its user applied
/// to the report (`userId`, `reportName`; segment-api's `link-report`).
async fn with_applied_segments(app: &App, request: &Value) -> Result<Option<Value>, Failure> {
    let empty = |k: &str| {
        request
            .get(k)
            .is_none_or(|v| v.is_null() || v.as_array().is_some_and(|a| a.is_empty()))
    };
    let text = |k: &str| request.get(k).and_then(Value::as_str);
    if let (true, true, Some(account), Some(user), Some(report)) = (
        empty("segments"),
        empty("comparisonSegments"),
        text("accountId").and_then(canonical_uuid),
        text("userId"),
        text("reportName"),
    ) {
        let ids = crate::api::reports::applied_segments(app, &account, user, report)
            .await
            .map_err(crate::api::failure)?;
        let mut out = request.clone();
        if let Some(o) = out.as_object_mut() {
            o.insert("segments".into(), serde_json::json!(ids));
            return Ok(Some(out));
        }
    }
    Ok(None)
}

/// When a result table made at `now` expires: whole seconds, `ttl` later.
fn expires_at(now: DateTime<Utc>, ttl: chrono::Duration) -> DateTime<Utc> {
    let at = now + ttl;
    at - chrono::Duration::nanoseconds(i64::from(at.timestamp_subsec_nanos()))
}

fn hex8(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}
