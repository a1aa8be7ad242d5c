//! Lambda entry points: an event is either an SQS batch (each message handled
//! on its own, failures reported per message) or a direct invoke / schedule.

use crate::{App, Failure, check_job, create_segment, cronjob, report};
use aws_lambda_events::sqs::{SqsEvent, SqsMessage};
use chrono::{DateTime, TimeZone, Utc};
use lambda_runtime::{Error, LambdaEvent};
use segments_core::messages::{CheckJobMessage, CronjobMessage, SegmentCommand};
use segments_infra::lambda::{body, for_each_message};
use serde_json::Value;
use tracing::Instrument;

/// Messages of one batch handled at once.
const BATCH_CONCURRENCY: usize = 4;

fn is_sqs(payload: &Value) -> bool {
    payload.get("Records").is_some_and(Value::is_array)
}

async fn sqs_batch<F, Fut>(payload: Value, handle: F) -> Result<Value, Error>
where
    F: Fn(SqsMessage) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let event: SqsEvent = serde_json::from_value(payload)?;
    let response = for_each_message(event, BATCH_CONCURRENCY, handle).await;
    Ok(serde_json::to_value(response)?)
}

fn fail(e: Failure) -> String {
    e.to_string()
}

fn account_of(bytes: &[u8]) -> String {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|v| v.get("accountId").and_then(Value::as_str).map(String::from))
        .unwrap_or_default()
}

pub async fn create_segment(app: &App, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, ctx) = event.into_parts();
    if is_sqs(&payload) {
        return sqs_batch(payload, |m| async move {
            let id = m.message_id.clone().unwrap_or_default();
            let cmd = SegmentCommand::parse(body(&m)).map_err(|e| format!("invalid create-segment message: {e}"))?;
            let span = tracing::info_span!("create-segment", accountId = %cmd.account_id(), segmentId = cmd.segment_id().unwrap_or(""), action = cmd.action());
            let out = create_segment::handle(app, &cmd, &id, Utc::now()).instrument(span).await.map_err(fail)?;
            tracing::info!(outcome = %serde_json::to_string(&out).unwrap_or_default(), "done");
            Ok(())
        })
        .await;
    }
    if payload.get("action").and_then(Value::as_str) == Some("history") {
        // A read: the segment's revisions, runs and population series (SPEC §11).
        let field = |k: &str| payload.get(k).and_then(Value::as_str).unwrap_or_default();
        let (account, segment) = (field("accountId"), field("segmentId"));
        let span = tracing::info_span!("create-segment", accountId = %account, segmentId = %segment, action = "history");
        let out = crate::history::read(app, account, segment, &ctx.request_id)
            .instrument(span)
            .await
            .map_err(fail)?;
        return Ok(serde_json::to_value(out)?);
    }
    let cmd = SegmentCommand::parse(payload.to_string().as_bytes())
        .map_err(|e| format!("invalid request: {e}"))?;
    let span = tracing::info_span!("create-segment", accountId = %cmd.account_id(), segmentId = cmd.segment_id().unwrap_or(""), action = cmd.action());
    let out = create_segment::handle(app, &cmd, &ctx.request_id, Utc::now())
        .instrument(span)
        .await
        .map_err(fail)?;
    Ok(serde_json::to_value(out)?)
}

pub async fn check_job(app: &App, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, _) = event.into_parts();
    if !is_sqs(&payload) {
        return Err("check-bigquery-job takes SQS events".into());
    }
    sqs_batch(payload, |m| async move {
        let bytes = body(&m);
        let msg = CheckJobMessage::parse(bytes).map_err(|e| format!("invalid check message (account {:?}): {e}", account_of(bytes)))?;
        let span = tracing::info_span!("check-bigquery-job", accountId = %msg.account_id, segmentId = msg.job_input_data.segment_id.as_deref().unwrap_or(""), jobId = %msg.job_id, attempt = msg.attempt);
        let out = check_job::handle(app, &msg, Utc::now()).instrument(span.clone()).await.map_err(fail)?;
        span.in_scope(|| tracing::info!(outcome = %serde_json::to_string(&out).unwrap_or_default(), "checked"));
        Ok(())
    })
    .await
}

/// The SQS `SentTimestamp` attribute (ms since the epoch).
fn sent_at(m: &SqsMessage) -> DateTime<Utc> {
    m.attributes
        .get("SentTimestamp")
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .unwrap_or_else(Utc::now)
}

pub async fn cronjob(app: &App, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, _) = event.into_parts();
    if is_sqs(&payload) {
        return sqs_batch(payload, |m| async move {
            let msg = CronjobMessage::parse(body(&m))
                .map_err(|e| format!("invalid cronjob message: {e}"))?;
            let span = tracing::info_span!("segment-cronjob", accountId = %msg.account_id);
            let out = cronjob::refresh_account(app, &msg, sent_at(&m), Utc::now())
                .instrument(span.clone())
                .await
                .map_err(fail)?;
            span.in_scope(|| {
                tracing::info!(
                    submitted = out.submitted.len(),
                    skipped = out.skipped.len(),
                    scheduleReport = out.schedule_report,
                    "refreshed"
                )
            });
            Ok(())
        })
        .await;
    }
    // The EventBridge schedule: its `time` is the tick.
    let tick = payload
        .get("time")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(Utc::now);
    let out = cronjob::fan_out(app, tick).await.map_err(fail)?;
    tracing::info!(accounts = out.accounts, "fanned out");
    Ok(serde_json::to_value(out)?)
}

pub async fn report(app: &App, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, ctx) = event.into_parts();
    if is_sqs(&payload) {
        return sqs_batch(payload, |m| async move {
            let id = m.message_id.clone().unwrap_or_default();
            let request: Value = serde_json::from_slice(body(&m))
                .map_err(|e| format!("invalid report request: not JSON: {e}"))?;
            let span =
                tracing::info_span!("report-with-segment", accountId = %account_of(body(&m)));
            let out = report::handle(app, &request, &id, Utc::now())
                .instrument(span)
                .await
                .map_err(fail)?;
            tracing::info!(outcome = %serde_json::to_string(&out).unwrap_or_default(), "submitted");
            Ok(())
        })
        .await;
    }
    let span = tracing::info_span!("report-with-segment", accountId = %account_of(payload.to_string().as_bytes()));
    let out = report::handle(app, &payload, &ctx.request_id, Utc::now())
        .instrument(span)
        .await
        .map_err(fail)?;
    Ok(serde_json::to_value(out)?)
}

/// What every `main.rs` does: one crypto provider, JSON logs, the adapters
/// built once per container, then every event to `handler`.
pub async fn serve<F, Fut>(handler: F) -> Result<(), Error>
where
    F: Fn(&'static App, LambdaEvent<Value>) -> Fut,
    Fut: std::future::Future<Output = Result<Value, Error>>,
{
    segments_infra::telemetry::install_crypto_provider();
    segments_infra::telemetry::init_json_logs();
    // Lives as long as the container.
    let app: &'static App = Box::leak(Box::new(App::from_env().await?));
    lambda_runtime::run(lambda_runtime::service_fn(move |event| handler(app, event))).await
}
