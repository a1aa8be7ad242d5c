//! check-bigquery-job: waits a short while for one job inside the invocation;
//! when it has ended, records the status (forward only), clears the caches and
//! notifies the browser; while it runs, re-queues itself; past the deadline,
//! cancels it. Report jobs end with their rows cached under the report key.

use crate::{App, Failure};
use chrono::{DateTime, Utc};
use segments_core::jobs::{AfterRunning, QueryStatus};
use segments_core::messages::{CheckJobMessage, JobAction};
use segments_infra::ports::{JobStatus, JobTransition};
use serde::Serialize;
use serde_json::json;
use std::time::Duration;

pub const PUSHER_EVENT: &str = "PUSHER_UPDATE_SEGMENT";
pub const REPORT_EVENT: &str = "PUSHER_UPDATE_REPORT";
/// How many result rows a report caches.
pub const REPORT_ROWS: usize = 10_000;
pub const REPORT_TTL: Duration = Duration::from_secs(3600);

/// What one check did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum Checked {
    /// The job ended; `applied` is false for a duplicate delivery or an older build.
    Finished {
        status: String,
        applied: bool,
        notified: bool,
    },
    Requeued {
        delay: u32,
        attempt: u32,
    },
    Canceled {
        notified: bool,
    },
}

/// `now` is when the message arrived; the wait moves the clock forward.
pub async fn handle(
    app: &App,
    msg: &CheckJobMessage,
    now: DateTime<Utc>,
) -> Result<Checked, Failure> {
    // The job must be the account's: a foreign accountId touches nothing.
    // Every job this service submits and checks (builds, reports with
    // segments) is recorded with its account when submitted; only the web
    // app's own `query-report` jobs are not, and those are never cancelled and
    // their rows read only from a table of the account's dataset (below).
    let own_job = app.ports.store.job(&msg.job_id).await?;
    let recorded = match &own_job {
        Some(job) if job.account_id != msg.account_id => {
            return Err(Failure::Rejected(format!(
                "job {} does not belong to account {}",
                msg.job_id, msg.account_id
            )));
        }
        Some(_) => true,
        None if msg.action != JobAction::QueryReport => {
            return Err(Failure::Rejected(format!(
                "job {} is not one of account {}'s {} jobs",
                msg.job_id,
                msg.account_id,
                msg.action.as_str()
            )));
        }
        None => false,
    };
    // A build of a segment deleted meanwhile (delete cancelled it): nothing
    // to record or notify; the check ends here instead of failing.
    if let (Some(job), Some(segment_id)) = (&own_job, &msg.job_input_data.segment_id)
        && msg.action.is_segment_build()
        && job.segment_id.as_deref() == Some(segment_id.as_str())
        && app
            .ports
            .store
            .segment(&msg.account_id, segment_id)
            .await?
            .is_none()
    {
        tracing::info!("the segment was deleted: its build's check ends");
        if job.status == QueryStatus::InProgress {
            app.ports.warehouse.cancel(&msg.job_id).await?;
        }
        return Ok(Checked::Canceled { notified: false });
    }
    if let Some(segment_id) = &msg.job_input_data.segment_id
        && app
            .ports
            .store
            .segment(&msg.account_id, segment_id)
            .await?
            .is_none()
        && msg.action.is_segment_build()
    {
        return Err(Failure::Rejected(format!(
            "segment {segment_id} does not belong to account {}",
            msg.account_id
        )));
    }
    let wait = app.schedule.wait_now(msg.started_at, now);
    let started = std::time::Instant::now();
    let status = app
        .ports
        .warehouse
        .wait(&msg.job_id, Duration::from_secs(wait.into()))
        .await?;
    let after = now + chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
    match status.query_status() {
        Some(QueryStatus::InProgress) => match app.schedule.after_running(msg.started_at, after) {
            AfterRunning::Requeue { delay } => {
                let next = CheckJobMessage {
                    // Counts checks for the logs only; a forged u32::MAX must not wrap.
                    attempt: msg.attempt.saturating_add(1),
                    ..msg.clone()
                };
                app.queue_check(&next, delay).await?;
                Ok(Checked::Requeued {
                    delay,
                    attempt: next.attempt,
                })
            }
            AfterRunning::Cancel if !recorded => Err(Failure::Rejected(format!(
                "job {} is still running past the deadline, but it is not recorded as account {}'s: not cancelled",
                msg.job_id, msg.account_id
            ))),
            AfterRunning::Cancel => {
                tracing::warn!(
                    deadline = app.schedule.deadline,
                    "job still running past the deadline: cancelling"
                );
                app.ports.warehouse.cancel(&msg.job_id).await?;
                let (_, notified) = finish(app, msg, QueryStatus::Canceled, &status, after).await?;
                Ok(Checked::Canceled { notified })
            }
        },
        Some(final_status) => {
            if final_status == QueryStatus::Done && !msg.action.is_segment_build() {
                cache_report(app, msg, recorded).await?;
            }
            let (applied, notified) = finish(app, msg, final_status, &status, after).await?;
            Ok(Checked::Finished {
                status: final_status.as_str().into(),
                applied,
                notified,
            })
        }
        None => Err(Failure::Retry(format!(
            "BigQuery reported an unknown job state {:?}",
            status.state
        ))),
    }
}

/// Records the end, clears caches and notifies. Returns (applied, notified).
async fn finish(
    app: &App,
    msg: &CheckJobMessage,
    status: QueryStatus,
    job: &JobStatus,
    at: DateTime<Utc>,
) -> Result<(bool, bool), Failure> {
    let error = match status {
        QueryStatus::Failed => job.error_message.clone().or(job.error_reason.clone()),
        QueryStatus::Canceled => Some(format!("canceled after {} s", app.schedule.deadline)),
        _ => None,
    };
    if let Some(e) = &error {
        tracing::warn!(queryStatus = status.as_str(), error = %e, "job did not succeed");
    }
    let transition = app
        .ports
        .store
        .finish_job(
            &msg.job_id,
            status,
            job.total_bytes_billed,
            error.as_deref(),
            at,
        )
        .await?;
    if msg.action.is_segment_build() && status == QueryStatus::Done {
        // Also after a duplicate delivery: the outbox sends only what is missing.
        crate::history::publish_changes(app, msg).await?;
    }
    let applied = match transition {
        JobTransition::Applied { segment_updated } => {
            segment_updated || !msg.action.is_segment_build()
        }
        // A duplicate delivery: already recorded and notified.
        JobTransition::AlreadyFinal(_) => false,
        // Reports are not always recorded; builds always are.
        JobTransition::UnknownJob => !msg.action.is_segment_build(),
    };
    if !applied {
        return Ok((false, false));
    }
    let segment_id = msg.job_input_data.segment_id.as_deref();
    // A finished build makes the segment's cached reports stale; a finished
    // report has just been cached and makes nothing stale.
    if msg.action.is_segment_build() {
        app.invalidate(&msg.account_id, segment_id).await;
    }
    let (event, payload) = if msg.action.is_segment_build() {
        (
            PUSHER_EVENT,
            json!({
                "segmentId": segment_id,
                // A refresh that failed leaves the segment done: its table keeps
                // the last good members. The run itself says how it ended.
                "queryStatus": if msg.action.sets_segment_status() { status.as_str() } else { QueryStatus::Done.as_str() },
                "totalBytesBilled": job.total_bytes_billed,
                "buildAt": (status == QueryStatus::Done).then(|| at.to_rfc3339()),
                "jobId": msg.job_id,
                "error": error,
                "run": {
                    "action": msg.action.as_str(),
                    "status": status.as_str(),
                    "revision": msg.job_input_data.revision,
                },
            }),
        )
    } else {
        (
            REPORT_EVENT,
            json!({
                "reportName": msg.job_input_data.report_name,
                "segmentId": segment_id,
                "queryStatus": status.as_str(),
                "cacheKey": msg.job_input_data.cache_key,
                "resultTable": msg.job_input_data.result_table,
                "jobId": msg.job_id,
            }),
        )
    };
    if msg.action.is_segment_build() && status == QueryStatus::Done && app.runs_with_history() {
        // The run's history is written; what follows it never fails the check.
        crate::history::after_run(app, msg).await;
    }
    let channel = format!("channel-{}", msg.account_id);
    let notified = match app.ports.notifier.trigger(&channel, event, &payload).await {
        Ok(()) => true,
        Err(e) => {
            // The status is recorded; the browser will see it on its next load.
            tracing::error!(error = %e, "notification failed");
            false
        }
    };
    Ok((true, notified))
}

/// Caches a finished report's rows under its key. The rows of a job not
/// recorded as the account's are read only from its result table in the
/// account's own dataset, never from the job itself.
async fn cache_report(app: &App, msg: &CheckJobMessage, recorded: bool) -> Result<(), Failure> {
    let Some(key) = &msg.job_input_data.cache_key else {
        return Ok(());
    };
    // Report keys live under the account's prefix only.
    if !key.starts_with(&format!("{}_report_", msg.account_id)) {
        return Err(Failure::Rejected(format!(
            "cache key {key:?} is outside account {}",
            msg.account_id
        )));
    }
    let rows = match &msg.job_input_data.result_table {
        Some(table) => {
            app.ports
                .warehouse
                .table_rows(&app.dataset(&msg.account_id), table, REPORT_ROWS)
                .await?
        }
        None if recorded => app.ports.warehouse.rows(&msg.job_id, REPORT_ROWS).await?,
        None => {
            return Err(Failure::Rejected(format!(
                "job {} is not recorded as account {}'s and names no resultTable: its rows are not read",
                msg.job_id, msg.account_id
            )));
        }
    };
    if let Err(e) = app
        .ports
        .cache
        .put(
            key,
            &serde_json::to_string(&rows).unwrap_or_default(),
            REPORT_TTL,
        )
        .await
    {
        tracing::warn!(error = %e, "report rows not cached");
    }
    Ok(())
}
