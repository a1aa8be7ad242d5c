//! Measured on the local stack: real SQS (moto) with a dead-letter queue after
//! 5 receives, messages pumped through the real handler entry the way the
//! Lambda event source mapping does it (receive, invoke, delete what did not
//! fail, let failures come back after the visibility timeout).
//!
//! - a permanently bad message reaches the DLQ on its first receive, with its
//!   reason in message attributes, and leaves the source queue;
//! - a transient failure (the fault wrapper over the real Postgres adapter) is
//!   a batch-item failure, comes back, and lands once the outage is over;
//! - a failure that stays transient reaches the DLQ through the redrive
//!   policy after 5 receives, as before.

use aws_lambda_events::sqs::SqsEvent;
use aws_sdk_sqs::types::{MessageSystemAttributeName, QueueAttributeName};
use lambda_runtime::{Context, LambdaEvent};
use segments_core::Catalog;
use segments_handlers::{App, entry};
use segments_infra::aws::SqsQueue;
use segments_infra::config::Config;
use segments_infra::faults::{Faults, Faulty};
use segments_infra::ports::SegmentStore;
use segments_infra::postgres::PgStore;
use segments_infra::wiring::Ports;
use segments_tests::lambda::{fresh_uuid, local_queues, stack_env};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Stack {
    app: App,
    sqs: SqsQueue,
    source: String,
    dlq: String,
    store: PgStore,
    account: String,
}

/// A source queue (visibility 1 s, DLQ after 5 receives) and its DLQ.
async fn stack(faults: &Faults) -> Stack {
    let mut env = stack_env();
    let sqs = local_queues(&mut env, "dlq").await;
    let tag = &fresh_uuid()[..8];
    let dlq = sqs
        .client()
        .create_queue()
        .queue_name(format!("dlq-test-{tag}-dlq"))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    let dlq_arn = sqs
        .client()
        .get_queue_attributes()
        .queue_url(&dlq)
        .attribute_names(QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap()
        .attributes()
        .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
        .unwrap();
    let source = sqs
        .client()
        .create_queue()
        .queue_name(format!("dlq-test-{tag}"))
        .attributes(QueueAttributeName::VisibilityTimeout, "1")
        .attributes(
            QueueAttributeName::RedrivePolicy,
            json!({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "5"}).to_string(),
        )
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    env.insert("DEAD_LETTER_QUEUE_URL".into(), dlq.clone());
    env.insert("BIGQUERY_DATASET_PREFIX".into(), "dlq_".into());
    let config = Config::from_map(&env).unwrap();
    let store = PgStore::connect(&config.database_url.0, 2).unwrap();
    store.migrate().await.unwrap();
    let account = fresh_uuid();
    store.upsert_account(&account, "DLQ", "UTC").await.unwrap();
    let mut ports = Ports::connect(&config).await.unwrap();
    ports.queue = Arc::new(sqs.clone());
    ports.store = Arc::new(Faulty::new(
        PgStore::connect(&config.database_url.0, 2).unwrap(),
        faults,
    ));
    Stack {
        app: App::new(&config, ports, Catalog::default_catalog()),
        sqs,
        source,
        dlq,
        store,
        account,
    }
}

/// What one receive did.
#[derive(Debug, Default, PartialEq)]
struct Pumped {
    /// `ApproximateReceiveCount` of each message received.
    receive_counts: Vec<u32>,
    /// Reported back as batch-item failures (not deleted).
    failed: usize,
}

/// One turn of the event source mapping: receive, invoke create-segment,
/// delete what succeeded.
async fn pump(s: &Stack) -> Pumped {
    let r = s
        .sqs
        .client()
        .receive_message()
        .queue_url(&s.source)
        .max_number_of_messages(4)
        .wait_time_seconds(2)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .unwrap();
    let mut out = Pumped::default();
    if r.messages().is_empty() {
        return out;
    }
    let records: Vec<Value> = r
        .messages()
        .iter()
        .map(|m| {
            let attrs: serde_json::Map<String, Value> = m
                .attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.as_str().to_string(), Value::from(v.as_str())))
                        .collect()
                })
                .unwrap_or_default();
            json!({"messageId": m.message_id(), "receiptHandle": m.receipt_handle(), "body": m.body(),
                "attributes": attrs, "messageAttributes": {}, "eventSource": "aws:sqs"})
        })
        .collect();
    let event: SqsEvent = serde_json::from_value(json!({"Records": records})).unwrap();
    out.receive_counts = event
        .records
        .iter()
        .map(|m| {
            m.attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(0)
        })
        .collect();
    let payload = serde_json::to_value(&event).unwrap();
    let resp = entry::create_segment(&s.app, LambdaEvent::new(payload, Context::default()))
        .await
        .unwrap();
    let failed: Vec<&str> = resp["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["itemIdentifier"].as_str())
        .collect();
    out.failed = failed.len();
    for m in r.messages() {
        if !failed.contains(&m.message_id().unwrap_or_default()) {
            s.sqs
                .client()
                .delete_message()
                .queue_url(&s.source)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .unwrap();
        }
    }
    out
}

/// Every message of the DLQ: body and message attributes.
async fn dead_letters(s: &Stack) -> Vec<(String, Vec<(String, String)>)> {
    let r = s
        .sqs
        .client()
        .receive_message()
        .queue_url(&s.dlq)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    r.messages()
        .iter()
        .map(|m| {
            let mut attrs: Vec<(String, String)> = m
                .message_attributes()
                .map(|a| {
                    a.iter()
                        .map(|(k, v)| (k.clone(), v.string_value().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            attrs.sort();
            (m.body().unwrap_or_default().to_string(), attrs)
        })
        .collect()
}

async fn send(s: &Stack, body: &str) {
    s.sqs
        .client()
        .send_message()
        .queue_url(&s.source)
        .message_body(body)
        .send()
        .await
        .unwrap();
}

fn create(account: &str, segment: &str, condition: &str) -> String {
    json!({"action": "create", "accountId": account, "segment": {"id": segment, "name": "US",
        "ruleGroups": [{"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
        "g0": {"type": "dimension", "key": "country", "condition": condition, "value": "us"}}]}})
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanently_bad_message_reaches_the_dlq_on_its_first_receive_with_its_reason() {
    let s = stack(&Faults::default()).await;
    let seg = fresh_uuid();
    let body = create(&s.account, &seg, "equal");
    send(&s, &body).await;

    let first = pump(&s).await;
    assert_eq!(
        first,
        Pumped {
            receive_counts: vec![1],
            failed: 0
        }
    );
    let dead = dead_letters(&s).await;
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0].0, body, "the original body, untouched");
    let attrs: std::collections::HashMap<_, _> = dead[0].1.iter().cloned().collect();
    assert_eq!(attrs["failureClass"], "permanent");
    assert_eq!(
        attrs["failureReason"],
        r#"ruleGroups[0].g0.condition: unknown operator "equal""#
    );
    // Acknowledged: the source queue is empty once the visibility timeout has passed.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(pump(&s).await, Pumped::default());
    assert!(s.store.segment(&s.account, &seg).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_is_retried_by_sqs_and_lands_when_the_outage_ends() {
    let faults = Faults::default();
    let s = stack(&faults).await;
    let seg = fresh_uuid();
    send(&s, &create(&s.account, &seg, "equals")).await;
    // Postgres fails the first two deliveries.
    faults.fail("store.account_time_zone", 2);
    let mut receives = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let p = pump(&s).await;
        receives.extend(p.receive_counts.iter().map(|c| (*c, p.failed)));
        if p.receive_counts.len() == 1 && p.failed == 0 {
            break;
        }
    }
    assert_eq!(
        receives,
        vec![(1, 1), (2, 1), (3, 0)],
        "(receive count, failed) per receive"
    );
    assert!(dead_letters(&s).await.is_empty());
    let row = s.store.segment(&s.account, &seg).await.unwrap().unwrap();
    assert_eq!(row.query_status, "in-progress");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_that_stays_transient_reaches_the_dlq_after_five_receives() {
    let faults = Faults::default();
    let s = stack(&faults).await;
    let body = create(&s.account, &fresh_uuid(), "equals");
    send(&s, &body).await;
    faults.fail("store.account_time_zone", u32::MAX);
    let mut counts = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut dead = Vec::new();
    while Instant::now() < deadline && dead.is_empty() {
        let p = pump(&s).await;
        assert_eq!(p.failed, p.receive_counts.len());
        counts.extend(p.receive_counts);
        if counts.len() >= 5 {
            dead = dead_letters(&s).await;
        }
    }
    assert_eq!(counts, vec![1, 2, 3, 4, 5]);
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].0, body);
    assert!(
        dead[0].1.iter().all(|(k, _)| k != "failureClass"),
        "moved by the redrive policy, not by the function: {dead:?}"
    );
}
