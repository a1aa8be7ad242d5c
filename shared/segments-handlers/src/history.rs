//! What follows a finished run of a segment (SPEC §11): its membership changes
//! published (when a queue is configured, exactly once per run), a size alert
//! when a rule change moved the population by more than the configured share,
//! and the read side (`history` action).

use crate::App;
use segments_core::history::{population_points, size_alert};
use segments_core::messages::CheckJobMessage;
use serde_json::json;

/// The Pusher event of a size alert, on `channel-{accountId}`.
pub const SIZE_ALERT_EVENT: &str = "PUSHER_SEGMENT_SIZE_ALERT";

/// Publishes a finished run's changes to the membership queue, split in parts
/// under 256 KB, each part once. Safe to call again for the same run (a check
/// delivered twice, a function that died between parts): the outbox row in
/// Postgres says which parts are out, and the FIFO queue drops a part sent a
/// second time within 5 minutes (its deduplication id is `runId/part`).
/// Returns how many parts this call sent.
pub async fn publish_changes(app: &App, msg: &CheckJobMessage) -> Result<usize, crate::Failure> {
    use segments_core::history::{DELTA_PART_BYTES, DeltaRun, delta_messages, run_changes_sql};
    use segments_core::jobs::job_id;
    use segments_infra::ports::QueryJob;
    let Some(url) = &app.membership_queue_url else {
        return Ok(0);
    };
    if !app.runs_with_history() {
        // No history tables on a Postgres warehouse (docs/history.md, limits).
        return Ok(0);
    }
    let Some(segment_id) = msg.job_input_data.segment_id.as_deref() else {
        return Ok(0);
    };
    let run_id = &msg.job_id;
    let target = app.target(&msg.account_id)?;
    // One read job per run (a fixed id): reading again reuses its result.
    let id = job_id("read-changes", &[run_id]);
    let job = QueryJob {
        job_id: id.clone(),
        sql: run_changes_sql(&target, segment_id, run_id)?,
        dataset: target.dataset().to_string(),
        labels: vec![("app".into(), "segments".into())],
        batch: false,
        maximum_bytes_billed: app.maximum_bytes_billed,
    };
    let warehouse = &app.ports.warehouse;
    warehouse.submit(&job).await?;
    let status = warehouse
        .wait(&id, std::time::Duration::from_secs(20))
        .await?;
    if status.state != "DONE" || status.error_reason.is_some() {
        return Err(crate::Failure::Retry(format!(
            "the changes of run {run_id} could not be read: {} {}",
            status.error_reason.unwrap_or(status.state),
            status.error_message.unwrap_or_default()
        )));
    }
    let rows: Vec<(String, String)> = warehouse
        .rows(&id, MAX_CHANGES)
        .await?
        .into_iter()
        .filter_map(|r| {
            Some((
                r.first()?.as_str()?.to_string(),
                r.get(1)?.as_str()?.to_string(),
            ))
        })
        .collect();
    let run = DeltaRun {
        account_id: &msg.account_id,
        segment_id,
        run_id,
        revision: msg.job_input_data.revision.unwrap_or(0),
    };
    let parts = delta_messages(&run, &rows, DELTA_PART_BYTES);
    let history = &app.ports.history;
    let sent = history
        .outbox_claim(run_id, &msg.account_id, segment_id, parts.len() as i64)
        .await?
        .max(0) as usize;
    for (i, body) in parts.iter().enumerate().skip(sent) {
        let part = i + 1;
        app.ports
            .queue
            .send_fifo(url, body, segment_id, &format!("{run_id}/{part}"))
            .await?;
        history.outbox_sent(run_id, part as i64).await?;
    }
    let now = parts.len().saturating_sub(sent);
    if now > 0 {
        tracing::info!(
            parts = parts.len(),
            sentNow = now,
            changes = rows.len(),
            "membership changes published"
        );
    }
    Ok(now)
}

/// The most changes one run publishes: what one page of query results holds.
pub const MAX_CHANGES: usize = 5_000_000;

/// Reads the run's result (its population row and the one before it) and
/// raises a size alert when due. Never fails the check.
pub async fn after_run(app: &App, msg: &CheckJobMessage) {
    let segment_id = msg.job_input_data.segment_id.as_deref().unwrap_or_default();
    let rows = match app.ports.warehouse.rows(&msg.job_id, 2).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!(error = %e, "run finished; its population row could not be read");
            return;
        }
    };
    let Some((current, previous)) = population_points(&msg.job_id, &rows) else {
        tracing::warn!("run finished without its population row");
        return;
    };
    tracing::info!(
        revision = current.revision,
        population = current.population,
        "run recorded"
    );
    let Some(alert) = size_alert(&current, previous.as_ref(), app.size_alert_share) else {
        return;
    };
    tracing::warn!(
        segmentId = %segment_id,
        previousRevision = alert.previous.revision,
        previousPopulation = alert.previous.population,
        revision = alert.current.revision,
        population = alert.current.population,
        change = alert.change,
        share = app.size_alert_share,
        "segment size moved after a rule change"
    );
    let payload = json!({
        "segmentId": segment_id,
        "jobId": msg.job_id,
        "previous": alert.previous,
        "current": alert.current,
        // null when the previous population was 0.
        "change": alert.change.is_finite().then_some(alert.change),
        "share": app.size_alert_share,
    });
    let channel = format!("channel-{}", msg.account_id);
    if let Err(e) = app
        .ports
        .notifier
        .trigger(&channel, SIZE_ALERT_EVENT, &payload)
        .await
    {
        tracing::error!(error = %e, "size alert not delivered");
    }
}

/// A segment's history as the `history` action answers it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentHistory {
    pub segment_id: String,
    /// Rule revisions, oldest first.
    pub revisions: Vec<segments_infra::ports::RevisionRow>,
    /// Builds and refreshes, newest first (status, error, bytes, revision).
    pub runs: Vec<segments_infra::ports::RunRecord>,
    /// Population per run, newest first.
    pub population: Vec<segments_core::history::PopulationRow>,
}

/// How many runs and population rows the `history` action returns.
pub const HISTORY_LIMIT: u64 = 500;

/// `{"action": "history", "accountId", "segmentId"}` (direct invoke of
/// create-segment): the segment's revisions, runs and population series. A
/// segment of another account is refused. `request_id` names the read job.
pub async fn read(
    app: &App,
    account_id: &str,
    segment_id: &str,
    request_id: &str,
) -> Result<SegmentHistory, crate::Failure> {
    use segments_core::jobs::job_id;
    use segments_infra::ports::QueryJob;
    app.ports
        .store
        .segment(account_id, segment_id)
        .await?
        .ok_or_else(|| {
            crate::Failure::Rejected(format!(
                "segment {segment_id} does not belong to account {account_id}"
            ))
        })?;
    let history = &app.ports.history;
    let revisions = history.revisions(account_id, segment_id).await?;
    let runs = history
        .runs(account_id, segment_id, HISTORY_LIMIT as i64)
        .await?;
    if !app.runs_with_history() {
        // A Postgres warehouse has no history tables (docs/history.md, limits).
        return Ok(SegmentHistory {
            segment_id: segment_id.to_string(),
            revisions,
            runs,
            population: vec![],
        });
    }
    let target = app.target(account_id)?;
    let sql = segments_core::history::population_series_sql(&target, segment_id, HISTORY_LIMIT)?;
    let id = job_id("read-history", &[segment_id, request_id]);
    let job = QueryJob {
        job_id: id.clone(),
        sql,
        dataset: target.dataset().to_string(),
        labels: vec![("app".into(), "segments".into())],
        batch: false,
        maximum_bytes_billed: app.maximum_bytes_billed,
    };
    let population = match app.ports.warehouse.submit(&job).await {
        Ok(_) => {
            let status = app
                .ports
                .warehouse
                .wait(&id, std::time::Duration::from_secs(20))
                .await?;
            if status.error_reason.as_deref() == Some("notFound") {
                // No run has written the history tables of this account yet.
                vec![]
            } else if let Some(reason) = status.error_reason {
                return Err(crate::Failure::Retry(format!(
                    "population series: {reason}: {}",
                    status.error_message.unwrap_or_default()
                )));
            } else {
                let rows = app
                    .ports
                    .warehouse
                    .rows(&id, HISTORY_LIMIT as usize)
                    .await?;
                segments_core::history::population_rows(&rows)
            }
        }
        Err(e) => return Err(e.into()),
    };
    Ok(SegmentHistory {
        segment_id: segment_id.to_string(),
        revisions,
        runs,
        population,
    })
}
