//! SQS batches with partial failures, untyped: each message is handled on its
//! own; a message that fails is reported in `batchItemFailures` (SQS redelivers
//! it and, after the queue's maxReceiveCount, moves it to the DLQ) with a log
//! line saying why, and the rest of the batch goes on. The functions use the
//! typed loop of `segments_handlers::sqs`, which also sends a failure that can
//! never succeed straight to the DLQ.

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::StreamExt;
use std::future::Future;

/// Runs `handle` over every message, at most `concurrency` at a time.
pub async fn for_each_message<F, Fut>(
    event: SqsEvent,
    concurrency: usize,
    handle: F,
) -> SqsBatchResponse
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let results: Vec<(Option<String>, Result<(), String>)> =
        futures_util::stream::iter(event.records)
            .map(|m| {
                let id = m.message_id.clone();
                let fut = handle(m);
                async move { (id, fut.await) }
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    let mut response = SqsBatchResponse::default();
    for (id, result) in results {
        if let Err(reason) = result {
            tracing::error!(messageId = id.as_deref().unwrap_or(""), error = %reason, "message failed");
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id.unwrap_or_default();
            response.batch_item_failures.push(failure);
        }
    }
    response
}

/// The SQS message body as bytes (empty when absent).
pub fn body(m: &SqsMessage) -> &[u8] {
    m.body.as_deref().unwrap_or("").as_bytes()
}
