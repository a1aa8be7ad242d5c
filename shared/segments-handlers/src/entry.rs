//! Lambda entry points: an event is either an SQS batch (each body decoded
//! into the function's message and handled on its own; a permanent failure goes
//! to the dead-letter queue at once, a transient one is redelivered: see
//! [`crate::sqs`]) or a direct invoke / schedule.

use crate::sqs::{self, Delivery, Message, ReportMessage};
use crate::{App, Failure, check_job, create_segment, cronjob, report};
use aws_lambda_events::sqs::SqsEvent;
use chrono::{DateTime, Utc};
use lambda_runtime::{Error, LambdaEvent};
use segments_core::messages::{CheckJobMessage, CronjobMessage, SegmentCommand};
use serde_json::Value;
use std::future::Future;
use tracing::Instrument;

/// Messages of one batch handled at once.
const BATCH_CONCURRENCY: usize = 4;

fn is_sqs(payload: &Value) -> bool {
    payload.get("Records").is_some_and(Value::is_array)
}

async fn sqs_batch<T, F, Fut>(app: &App, payload: Value, handle: F) -> Result<Value, Error>
where
    T: Message,
    F: Fn(Delivery<T>) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let event: SqsEvent = serde_json::from_value(payload)?;
    let response = sqs::for_each(app, event, BATCH_CONCURRENCY, handle).await;
    Ok(serde_json::to_value(response)?)
}

/// A direct invoke's failure, as the Lambda error it answers with.
fn fail(e: Failure) -> Error {
    tracing::error!(failureClass = %e.class(), reason = %sqs::truncate(e.reason(), sqs::MAX_REASON), "request failed");
    e.to_string().into()
}

/// A direct invoke's payload decoded as `T`.
fn decode<T: Message>(payload: &Value) -> Result<T, Error> {
    T::decode(payload.to_string().as_bytes())
        .map_err(|e| fail(Failure::Rejected(format!("invalid request: {e}"))))
}

pub async fn create_segment(app: &App, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, ctx) = event.into_parts();
    if is_sqs(&payload) {
        return sqs_batch(app, payload, |d: Delivery<SegmentCommand>| async move {
            let out = create_segment::handle(app, &d.body, &d.message_id, Utc::now()).await?;
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
    let cmd: SegmentCommand = decode(&payload)?;
    let out = create_segment::handle(app, &cmd, &ctx.request_id, Utc::now())
        .instrument(cmd.span())
        .await
        .map_err(fail)?;
    Ok(serde_json::to_value(out)?)
}

pub async fn check_job(app: &App, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, _) = event.into_parts();
    if !is_sqs(&payload) {
        return Err("check-bigquery-job takes SQS events".into());
    }
    sqs_batch(app, payload, |d: Delivery<CheckJobMessage>| async move {
        let out = check_job::handle(app, &d.body, Utc::now()).await?;
        tracing::info!(outcome = %serde_json::to_string(&out).unwrap_or_default(), "checked");
        Ok(())
    })
    .await
}

pub async fn cronjob(app: &App, event: LambdaEvent<Value>) -> Result<Value, Error> {
    let (payload, _) = event.into_parts();
    if is_sqs(&payload) {
        return sqs_batch(app, payload, |d: Delivery<CronjobMessage>| async move {
            let out = cronjob::refresh_account(app, &d.body, d.sent_at, Utc::now()).await?;
            tracing::info!(
                submitted = out.submitted.len(),
                skipped = out.skipped.len(),
                scheduleReport = out.schedule_report,
                "refreshed"
            );
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
        return sqs_batch(app, payload, |d: Delivery<ReportMessage>| async move {
            let ReportMessage { json, request } = d.body;
            let out =
                report::handle_request(app, request, &json, &d.message_id, Utc::now()).await?;
            tracing::info!(outcome = %serde_json::to_string(&out).unwrap_or_default(), "submitted");
            Ok(())
        })
        .await;
    }
    let msg: ReportMessage = decode(&payload)?;
    let span = msg.span();
    let out = report::handle_request(app, msg.request, &msg.json, &ctx.request_id, Utc::now())
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
