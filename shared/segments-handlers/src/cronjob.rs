//! segment-cronjob: on the schedule, one message per account with refreshable
//! segments; per account, every eligible segment refreshed by a run (SPEC §11)
//! rendered from its stored rules for this tick in the account's zone, submitted
//! as a BATCH job whose id is fixed by the segment and the schedule tick (a
//! redelivery submits nothing twice), recorded in `segment_jobs` and followed by
//! check-bigquery-job like a build.

use crate::create_segment::stored_rules;
use crate::{App, Failure};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use segments_core::cronjob::{parse_trigger_file, skip_reason, trigger_ids, wants_schedule_report};
use segments_core::history::{Run, render_run};
use segments_core::jobs::{QueryStatus, job_id};
use segments_core::messages::{CheckJobMessage, CronjobMessage, JobAction, JobInput};
use segments_core::{COMPILER_VERSION, render_refresh, stored_query_version, stored_segment};
use segments_infra::error::ErrorClass;
use segments_infra::ports::{JobRecord, QueryJob};
use serde::Serialize;
use serde_json::json;

/// Jobs submitted at once per account.
pub const SUBMIT_CONCURRENCY: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FanOut {
    pub accounts: usize,
}

/// The schedule's tick: one message per account that has eligible segments.
pub async fn fan_out(app: &App, tick: DateTime<Utc>) -> Result<FanOut, Failure> {
    let url = app
        .cronjob_queue_url
        .as_deref()
        .ok_or_else(|| Failure::Rejected("CRONJOB_QUEUE_URL is not set".into()))?;
    let accounts = app
        .ports
        .store
        .accounts_to_refresh(app.bytes_threshold)
        .await?;
    let bodies: Vec<String> = accounts
        .iter()
        .map(|(account, tz)| {
            json!({"accountId": account, "timeZone": tz, "scheduledAt": tick.to_rfc3339()})
                .to_string()
        })
        .collect();
    app.ports.queue.send_batch(url, &bodies).await?;
    Ok(FanOut {
        accounts: bodies.len(),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Refreshed {
    pub submitted: Vec<String>,
    pub skipped: Vec<(String, String)>,
    pub failed: Vec<(String, String)>,
    pub schedule_report: bool,
}

/// Refreshes one account. `sent_at` stands in for `scheduledAt` when the message has none.
pub async fn refresh_account(
    app: &App,
    msg: &CronjobMessage,
    sent_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Refreshed, Failure> {
    let account = &msg.account_id;
    let tick = msg.scheduled_at.unwrap_or(sent_at);
    let segments = app
        .ports
        .store
        .eligible_for_refresh(account, app.bytes_threshold)
        .await?;
    if let Err(reason) = crate::segment_models::prepare(app, account, tick).await {
        tracing::error!(accountId = %account, error = %reason, "Segment models failed: this account's segments are not refreshed this run (they would read stale tables)");
        let skipped = segments
            .iter()
            .map(|row| (row.id.clone(), format!("Segment models failed: {reason}")))
            .collect();
        return Ok(Refreshed {
            submitted: vec![],
            skipped,
            failed: vec![],
            schedule_report: false,
        });
    }
    let triggers = match &app.static_bucket {
        Some(bucket) => match app
            .ports
            .objects
            .get(bucket, &format!("server-side-trigger/{account}.json"))
            .await?
        {
            Some(bytes) => parse_trigger_file(&bytes),
            None => Ok(vec![]),
        },
        None => Ok(vec![]),
    };
    // A malformed file skips only the segments that use triggers.
    let (triggers, trigger_file_error) = match triggers {
        Ok(t) => (t, None),
        Err(e) => {
            tracing::error!(error = %crate::sqs::truncate(&e, 300), "the account's trigger file is malformed: segments using triggers are skipped");
            (vec![], Some(e))
        }
    };
    let mut out = Refreshed {
        submitted: vec![],
        skipped: vec![],
        failed: vec![],
        schedule_report: false,
    };
    let mut objects = Vec::new();
    let mut jobs = Vec::new();
    let target = app.target(account)?;
    // Rules stored before revisions were recorded run as revision 0.
    let revisions = app.ports.history.latest_revisions(account).await?;
    for row in &segments {
        let seg = match stored_segment(stored_rules(row)) {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::error!(segmentId = %row.id, error = %e, "stored segment does not parse; skipped");
                out.skipped
                    .push((row.id.clone(), format!("stored rules do not parse: {e}")));
                continue;
            }
        };
        objects.push(seg.object);
        let reason = match &trigger_file_error {
            Some(e) if !trigger_ids(&seg).is_empty() => Some(format!(
                "uses triggers, and the account's {}",
                crate::sqs::truncate(e, 300)
            )),
            _ => skip_reason(&seg, &triggers),
        };
        if let Some(reason) = reason {
            tracing::info!(segmentId = %row.id, reason = %reason, "segment skipped");
            out.skipped.push((row.id.clone(), reason));
            continue;
        }
        // The refresh is rendered from the rules for this run, so a compiler fix
        // reaches every stored segment; the stored query is for people to read.
        let stored = row.query.as_deref().map_or(1, stored_query_version);
        if stored != COMPILER_VERSION {
            tracing::info!(segmentId = %row.id, storedVersion = stored, "stored query is from an earlier compiler");
        }
        let id = job_id("refresh-segment", &[&row.id, &tick.to_rfc3339()]);
        let revision = revisions.get(&row.id).copied().unwrap_or(0);
        // The run with history (SPEC §11) renders for BigQuery; a Postgres
        // warehouse gets the plain refresh (docs/history.md, limits).
        let sql = if app.runs_with_history() {
            let run = Run {
                run_id: &id,
                revision,
            };
            render_run(&seg, &app.catalog, &target, &msg.time_zone, now, run).map(|r| r.sql)
        } else {
            render_refresh(&seg, &app.catalog, &target, &msg.time_zone, now)
        };
        match sql {
            Ok(sql) => jobs.push((
                row.id.clone(),
                revision,
                QueryJob {
                    job_id: id,
                    sql,
                    dataset: target.dataset().to_string(),
                    labels: vec![
                        ("app".into(), "segments".into()),
                        ("kind".into(), "refresh".into()),
                    ],
                    batch: true,
                    maximum_bytes_billed: app.maximum_bytes_billed,
                },
            )),
            Err(e) => out.skipped.push((row.id.clone(), e.to_string())),
        }
    }
    let results: Vec<(String, Result<(), Failure>)> = futures_util::stream::iter(jobs)
        .map(|(segment_id, revision, job)| async move {
            let r = track(app, account, &segment_id, revision, &job, now).await;
            (job.job_id, r)
        })
        .buffer_unordered(SUBMIT_CONCURRENCY)
        .collect()
        .await;
    let mut any_transient = false;
    for (id, r) in results {
        match r {
            Ok(()) => out.submitted.push(id),
            Err(e) => {
                tracing::error!(jobId = %id, failureClass = %e.class(), error = %e.reason(), "refresh not submitted");
                any_transient |= e.class() == ErrorClass::Transient;
                out.failed.push((id, e.reason().to_string()));
            }
        }
    }
    out.submitted.sort();
    if wants_schedule_report(&objects, &msg.time_zone, now)
        && let Some(url) = &app.schedule_report_queue_url
    {
        let body = json!({"accountId": account, "timeZone": msg.time_zone.name()}).to_string();
        app.ports.queue.send(url, &body, 0).await?;
        out.schedule_report = true;
    }
    if let Some((id, first)) = out.failed.first() {
        let reason = format!(
            "{} refresh jobs not submitted; first {id}: {first}",
            out.failed.len()
        );
        // An outage: retry the whole message (submitted ids are fixed, so
        // nothing runs twice). Only refusals: a retry would be refused again.
        return Err(if any_transient {
            Failure::Retry(reason)
        } else {
            Failure::Rejected(reason)
        });
    }
    Ok(out)
}

/// Submits one refresh run, records it in `segment_jobs` with its revision and
/// queues its check: a refresh that fails or hangs is seen, and cancelled past
/// the deadline, exactly like a build. Every step is safe to repeat.
async fn track(
    app: &App,
    account: &str,
    segment_id: &str,
    revision: i64,
    job: &QueryJob,
    now: DateTime<Utc>,
) -> Result<(), Failure> {
    let (_, duplicate) = app.ports.warehouse.submit(job).await?;
    if duplicate {
        tracing::info!(jobId = %job.job_id, "refresh already submitted (redelivered message)");
    }
    app.ports
        .store
        .start_job(&JobRecord {
            job_id: job.job_id.clone(),
            account_id: account.to_string(),
            segment_id: Some(segment_id.to_string()),
            action: JobAction::RefreshSegment.as_str().into(),
            status: QueryStatus::InProgress,
            bytes_billed: None,
            error: None,
            created_at: now,
            finished_at: None,
        })
        .await?;
    app.ports
        .history
        .set_job_revision(&job.job_id, revision)
        .await?;
    let check = CheckJobMessage {
        job_id: job.job_id.clone(),
        account_id: account.to_string(),
        action: JobAction::RefreshSegment,
        job_input_data: JobInput {
            segment_id: Some(segment_id.to_string()),
            revision: Some(revision),
            ..Default::default()
        },
        started_at: now,
        attempt: 0,
    };
    app.queue_check(&check, app.schedule.first_delay).await
}
