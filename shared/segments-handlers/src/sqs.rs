//! SQS batches, typed (in the spirit of `aws_lambda_events`' `SqsEventObj<T>`):
//! each body is decoded once into the function's message, handled inside a
//! span of its own (accountId, segmentId, jobId), and its failure settled by
//! class:
//!
//! - **transient** (an outage): reported in `batchItemFailures`, so SQS
//!   redelivers it, and after the queue's maxReceiveCount moves it to the DLQ;
//! - **permanent** (a body that does not decode, invalid rules, a foreign
//!   account, a refused query): sent at once to the queue's dead-letter queue
//!   (`DEAD_LETTER_QUEUE_URL`) with `failureClass` and `failureReason`
//!   attributes, and acknowledged. Without a DLQ URL, or when the DLQ refuses
//!   it, it is reported like a transient one: nothing is ever dropped.
//!
//! One log line per failure says which class, why, and where the message went.

use crate::{App, Failure};
use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use chrono::{DateTime, TimeZone, Utc};
use futures_util::StreamExt;
use segments_core::messages::{CheckJobMessage, CronjobMessage, SegmentCommand};
use segments_core::report::{ReportRequest, parse_report_value};
use segments_infra::error::ErrorClass;
use serde_json::Value;
use std::future::Future;
use tracing::{Instrument, Span};

/// Longest `failureReason` attribute and logged reason; longer ones are cut.
pub const MAX_REASON: usize = 1000;

/// A function's message, decoded from an SQS body.
pub trait Message: Sized {
    /// How logs name it ("create-segment").
    const KIND: &'static str;
    /// The typed message, or why the body is not one (with the field's path).
    fn decode(body: &[u8]) -> Result<Self, String>;
    /// The span its handling runs in.
    fn span(&self) -> Span;
}

/// One received message, decoded.
#[derive(Debug, Clone)]
pub struct Delivery<T> {
    pub message_id: String,
    /// When SQS received it (`SentTimestamp`); now when absent.
    pub sent_at: DateTime<Utc>,
    pub body: T,
}

/// The dead-letter attributes of a permanent failure.
pub const FAILURE_CLASS: &str = "failureClass";
pub const FAILURE_REASON: &str = "failureReason";
pub const SOURCE_MESSAGE_ID: &str = "sourceMessageId";

/// Runs `handle` over every message of `event`, at most `concurrency` at once.
pub async fn for_each<T, F, Fut>(
    app: &App,
    event: SqsEvent,
    concurrency: usize,
    handle: F,
) -> SqsBatchResponse
where
    T: Message,
    F: Fn(Delivery<T>) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let handle = &handle;
    let failed: Vec<Option<String>> = futures_util::stream::iter(event.records)
        .map(|m| async move {
            let retry = one(app, &m, handle).await;
            retry.then(|| m.message_id.clone().unwrap_or_default())
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let mut response = SqsBatchResponse::default();
    for id in failed.into_iter().flatten() {
        let mut failure = BatchItemFailure::default();
        failure.item_identifier = id;
        response.batch_item_failures.push(failure);
    }
    response
}

/// Handles one message; true when SQS must deliver it again.
async fn one<T, F, Fut>(app: &App, m: &SqsMessage, handle: &F) -> bool
where
    T: Message,
    F: Fn(Delivery<T>) -> Fut,
    Fut: Future<Output = Result<(), Failure>>,
{
    let body = m.body.as_deref().unwrap_or("");
    let (span, result) = match T::decode(body.as_bytes()) {
        Ok(msg) => {
            let span = msg.span();
            let delivery = Delivery {
                message_id: m.message_id.clone().unwrap_or_default(),
                sent_at: sent_at(m),
                body: msg,
            };
            let result = handle(delivery).instrument(span.clone()).await;
            (span, result)
        }
        Err(e) => (
            tracing::info_span!("message", function = T::KIND, accountId = %account_hint(body)),
            Err(Failure::Rejected(format!(
                "invalid {} message: {e}",
                T::KIND
            ))),
        ),
    };
    match result {
        Ok(()) => false,
        Err(failure) => settle(app, m, &failure).instrument(span).await,
    }
}

/// Routes a failure by class and logs it once; true when SQS must redeliver.
async fn settle(app: &App, m: &SqsMessage, failure: &Failure) -> bool {
    let id = m.message_id.as_deref().unwrap_or("");
    let class = failure.class();
    let reason = truncate(failure.reason(), MAX_REASON);
    let receives = m
        .attributes
        .get("ApproximateReceiveCount")
        .map(String::as_str)
        .unwrap_or("");
    if class == ErrorClass::Transient {
        tracing::warn!(messageId = id, failureClass = %class, reason = %reason, receiveCount = receives,
            "message failed: SQS will deliver it again");
        return true;
    }
    let Some(dlq) = &app.dead_letter_queue_url else {
        tracing::error!(messageId = id, failureClass = %class, reason = %reason, receiveCount = receives,
            "message rejected: no DEAD_LETTER_QUEUE_URL, so SQS moves it to the DLQ after maxReceiveCount");
        return true;
    };
    let attributes = [
        (FAILURE_CLASS, class.as_str()),
        (FAILURE_REASON, reason.as_str()),
        (SOURCE_MESSAGE_ID, id),
    ];
    let body = m.body.as_deref().unwrap_or("");
    match app
        .ports
        .queue
        .send_with_attributes(dlq, body, 0, &attributes)
        .await
    {
        Ok(()) => {
            tracing::error!(messageId = id, failureClass = %class, reason = %reason, receiveCount = receives,
                "message rejected: sent to the dead-letter queue");
            false
        }
        Err(e) => {
            tracing::error!(messageId = id, failureClass = %class, reason = %reason, receiveCount = receives,
                dlqError = %e, "message rejected: the dead-letter queue did not take it, so SQS delivers it again");
            true
        }
    }
}

/// The SQS `SentTimestamp` attribute (ms since the epoch), or now.
fn sent_at(m: &SqsMessage) -> DateTime<Utc> {
    m.attributes
        .get("SentTimestamp")
        .and_then(|t| t.parse::<i64>().ok())
        .and_then(|ms| Utc.timestamp_millis_opt(ms).single())
        .unwrap_or_else(Utc::now)
}

/// At most `max` characters of `text`, with a note of how much was cut.
pub fn truncate(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => text.to_string(),
        Some((at, _)) => format!("{}... ({} more bytes)", &text[..at], text.len() - at),
    }
}

/// The `accountId` of a body that did not decode, for the log line (cut short).
pub fn account_hint(body: &str) -> String {
    serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| {
            v.get("accountId")
                .and_then(Value::as_str)
                .map(|a| truncate(a, 64))
        })
        .unwrap_or_default()
}

fn one_line(e: impl std::fmt::Display) -> String {
    e.to_string().replace('\n', "; ")
}

impl Message for SegmentCommand {
    const KIND: &'static str = "create-segment";
    fn decode(body: &[u8]) -> Result<Self, String> {
        SegmentCommand::parse(body).map_err(one_line)
    }
    fn span(&self) -> Span {
        tracing::info_span!("create-segment", accountId = %self.account_id(),
            segmentId = %truncate(self.segment_id().unwrap_or(""), 64), action = self.action())
    }
}

impl Message for CheckJobMessage {
    const KIND: &'static str = "check-bigquery-job";
    fn decode(body: &[u8]) -> Result<Self, String> {
        CheckJobMessage::parse(body).map_err(one_line)
    }
    fn span(&self) -> Span {
        tracing::info_span!("check-bigquery-job", accountId = %self.account_id,
            segmentId = self.job_input_data.segment_id.as_deref().unwrap_or(""),
            jobId = %self.job_id, attempt = self.attempt)
    }
}

impl Message for CronjobMessage {
    const KIND: &'static str = "segment-cronjob";
    fn decode(body: &[u8]) -> Result<Self, String> {
        CronjobMessage::parse(body).map_err(one_line)
    }
    fn span(&self) -> Span {
        tracing::info_span!("segment-cronjob", accountId = %self.account_id)
    }
}

/// A report request: the parsed request and the JSON it came from (its hash
/// names the result tables and cache keys).
#[derive(Debug, Clone)]
pub struct ReportMessage {
    pub json: Value,
    pub request: ReportRequest,
}

impl Message for ReportMessage {
    const KIND: &'static str = "report-with-segment";
    fn decode(body: &[u8]) -> Result<Self, String> {
        let json: Value =
            serde_json::from_slice(body).map_err(|e| format!("$: not valid JSON: {e}"))?;
        let request = parse_report_value(&json).map_err(one_line)?;
        Ok(ReportMessage { json, request })
    }
    fn span(&self) -> Span {
        tracing::info_span!("report-with-segment",
            accountId = %truncate(self.request.account_id.as_deref().unwrap_or(""), 64))
    }
}
