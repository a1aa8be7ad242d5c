//! Accounts whose events come from a Segment.com warehouse
//! (docs/segment-source.md): before the scheduled run refreshes their
//! segments, their models are refreshed, each statement a tracked job, in
//! order. A model failure means the account's segments are not refreshed
//! (they would read stale tables); the caller logs and skips them.

use crate::App;
use chrono::{DateTime, Utc};
use segments_core::Target;
use segments_core::jobs::{QueryStatus, job_id};
use segments_core::models::{DEFAULT_SESSION_TIMEOUT_MINUTES, SegmentSource};
use segments_infra::ports::{JobRecord, QueryJob};
use serde::Deserialize;
use std::time::{Duration, Instant};

/// The longest the models of one account may take in one scheduled run
/// (the cronjob function has 300 s); a statement still running then is
/// cancelled and the run fails. The next run completes it (a refresh that
/// failed part-way is finished by the next one).
pub const MODELS_BUDGET: Duration = Duration::from_secs(240);

/// `segment-source/{accountId}.json` in the static bucket: the account's
/// events come from Segment's raw tables in `sourceDataset` (same project, or
/// a schema on Postgres). A missing file means no Segment source.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SourceConfig {
    pub source_dataset: String,
    #[serde(default = "default_timeout")]
    pub session_timeout_minutes: u32,
}

fn default_timeout() -> u32 {
    DEFAULT_SESSION_TIMEOUT_MINUTES
}

/// The account's Segment source, if it has one.
pub async fn source_config(app: &App, account: &str) -> Result<Option<SourceConfig>, String> {
    let Some(bucket) = &app.static_bucket else {
        return Ok(None);
    };
    let key = format!("segment-source/{account}.json");
    match app
        .ports
        .objects
        .get(bucket, &key)
        .await
        .map_err(|e| e.to_string())?
    {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{key}: {e}")),
    }
}

/// Runs the account's models when it has a Segment source. `Err` names why
/// its segments must not be refreshed this run.
pub async fn prepare(app: &App, account: &str, tick: DateTime<Utc>) -> Result<(), String> {
    let Some(config) = source_config(app, account).await? else {
        return Ok(());
    };
    let run = run_models(app, account, &config, tick).await?;
    tracing::info!(accountId = %account, action = run.action, jobs = run.jobs.len(), "Segment models refreshed");
    Ok(())
}

/// What a models run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelsRun {
    /// `refresh-models`, or `build-models` when the refresh could not start.
    pub action: &'static str,
    pub jobs: Vec<String>,
}

/// Refreshes the account's models for the run at `tick`: the refresh
/// statements, or a full build when the refresh fails at its first statement
/// (the staging tables do not exist yet: the account's first run).
pub async fn run_models(
    app: &App,
    account: &str,
    config: &SourceConfig,
    tick: DateTime<Utc>,
) -> Result<ModelsRun, String> {
    let target = app.target(account).map_err(|e| e.to_string())?;
    let source = Target::for_dialect(
        target.dialect_kind(),
        target.project(),
        &config.source_dataset,
    )?;
    let models = SegmentSource::new(source, target, config.session_timeout_minutes)
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let refresh = models.refresh().map_err(|e| e.to_string())?;
    match run_statements(app, account, "refresh-models", &refresh, tick, started).await {
        Ok(jobs) => Ok(ModelsRun {
            action: "refresh-models",
            jobs,
        }),
        Err((0, e)) => {
            tracing::warn!(accountId = %account, error = %e, "models refresh could not start (first run?); running a full build");
            let full = models.full_build().map_err(|e| e.to_string())?;
            let jobs = run_statements(app, account, "build-models", &full, tick, started)
                .await
                .map_err(|(i, e)| format!("full build statement {i}: {e}"))?;
            Ok(ModelsRun {
                action: "build-models",
                jobs,
            })
        }
        Err((i, e)) => Err(format!("refresh statement {i}: {e}")),
    }
}

/// Runs `statements` in order, each as a job recorded in the jobs table;
/// stops at the first that fails (its index and error).
async fn run_statements(
    app: &App,
    account: &str,
    action: &str,
    statements: &[String],
    tick: DateTime<Utc>,
    started: Instant,
) -> Result<Vec<String>, (usize, String)> {
    let mut jobs = Vec::new();
    for (i, sql) in statements.iter().enumerate() {
        let id = job_id(action, &[account, &tick.to_rfc3339(), &i.to_string()]);
        let fail = |e: String| (i, e);
        app.ports
            .store
            .start_job(&JobRecord {
                job_id: id.clone(),
                account_id: account.to_string(),
                segment_id: None,
                action: action.to_string(),
                status: QueryStatus::InProgress,
                bytes_billed: None,
                error: None,
                created_at: Utc::now(),
                finished_at: None,
            })
            .await
            .map_err(|e| fail(e.to_string()))?;
        let job = QueryJob {
            job_id: id.clone(),
            sql: sql.clone(),
            dataset: app.dataset(account),
            labels: vec![
                ("app".into(), "segments".into()),
                ("kind".into(), "models".into()),
            ],
            batch: false,
            maximum_bytes_billed: app.maximum_bytes_billed,
        };
        let outcome = async {
            let (mut status, _) = app.ports.warehouse.submit(&job).await?;
            if status.query_status() == Some(QueryStatus::InProgress) {
                let left = MODELS_BUDGET.saturating_sub(started.elapsed());
                status = app.ports.warehouse.wait(&id, left).await?;
            }
            Ok::<_, segments_infra::InfraError>(status)
        }
        .await;
        let (result, bytes, error) = match outcome {
            Ok(status) => match status.query_status() {
                Some(QueryStatus::Done) => (QueryStatus::Done, status.total_bytes_billed, None),
                Some(QueryStatus::InProgress) | None => {
                    let _ = app.ports.warehouse.cancel(&id).await;
                    (
                        QueryStatus::Canceled,
                        None,
                        Some(format!("still running after {}s", MODELS_BUDGET.as_secs())),
                    )
                }
                Some(other) => (
                    other,
                    status.total_bytes_billed,
                    Some(
                        status
                            .error_message
                            .or(status.error_reason)
                            .unwrap_or_else(|| "failed".into()),
                    ),
                ),
            },
            Err(e) => (QueryStatus::Failed, None, Some(e.to_string())),
        };
        if let Err(e) = app
            .ports
            .store
            .finish_job(&id, result, bytes, error.as_deref(), Utc::now())
            .await
        {
            tracing::warn!(jobId = %id, error = %e, "models job end not recorded");
        }
        if let Some(e) = error {
            return Err(fail(e));
        }
        jobs.push(id);
    }
    Ok(jobs)
}
