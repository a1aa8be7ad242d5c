//! SPEC §11's published deltas on the local stack (moto SQS FIFO, the BigQuery
//! emulator, Postgres): a build with 30,000 entered members is published in
//! parts under 256 KB whose union is exactly the changes; a check delivered
//! again, and a function that dies between parts, both end with every change
//! on the queue exactly once (counted on the queue).

use async_trait::async_trait;
use chrono::Utc;
use segments_core::Catalog;
use segments_core::messages::{CheckJobMessage, SegmentCommand};
use segments_handlers::check_job::{self, Checked};
use segments_handlers::{App, create_segment};
use segments_infra::InfraError;
use segments_infra::aws::SqsQueue;
use segments_infra::config::Config;
use segments_infra::ports::Queue;
use segments_infra::postgres::PgStore;
use segments_infra::wiring::Ports;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use segments_tests::lambda::{fresh_uuid as uuid, stack_env};
use segments_tests::warehouse::Warehouse;

const MEMBERS: usize = 30_000;

struct Env {
    app: App,
    account: String,
    sqs: SqsQueue,
    check_queue: String,
    deltas: String,
    warehouse: Warehouse,
}

fn member(i: usize) -> String {
    format!("member-{i:08}-aaaaaaaaaaaaaaaaaaaaaaaa")
}

async fn env() -> Env {
    let mut vars = stack_env();
    let sqs = segments_tests::lambda::local_queues(&mut vars, "deltas").await;
    let deltas = sqs
        .client()
        .create_queue()
        .queue_name(format!("deltas-membership-{}.fifo", &uuid()[..8]))
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    vars.insert("MEMBERSHIP_QUEUE_URL".into(), deltas.clone());
    vars.insert("BIGQUERY_DATASET_PREFIX".into(), "deltas_".into());
    let check_queue = vars["CHECK_JOB_QUEUE_URL"].clone();
    let config = Config::from_map(&vars).unwrap();
    let store = PgStore::connect(&config.database_url.0, 4).unwrap();
    store.migrate().await.unwrap();
    let account = uuid();
    store.upsert_account(&account, "Acme", "UTC").await.unwrap();
    let mut ports = Ports::connect(&config).await.unwrap();
    ports.queue = Arc::new(sqs.clone());
    let app = App::new(&config, ports, Catalog::default_catalog());
    let warehouse = Warehouse::open(&app.dataset(&account)).await;
    warehouse
        .run(&format!(
            "CREATE TABLE {} AS SELECT CONCAT('member-', LPAD(CAST(x AS STRING), 8, '0'), '-aaaaaaaaaaaaaaaaaaaaaaaa') AS session_id, \
             'US' AS country FROM UNNEST(GENERATE_ARRAY(1, {MEMBERS})) AS x",
            warehouse.table("sessions")
        ))
        .await
        .unwrap();
    Env {
        app,
        account,
        sqs,
        check_queue,
        deltas,
        warehouse,
    }
}

/// Receives and deletes every message of `url` (FIFO: a group's next message
/// comes only once the one before is deleted), until `patience` empty seconds.
async fn drain(e: &Env, url: &str, patience: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut empty = 0;
    while empty < patience {
        let r = e
            .sqs
            .client()
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if r.messages().is_empty() {
            empty += 1;
            continue;
        }
        empty = 0;
        for m in r.messages() {
            out.extend(m.body().map(String::from));
            e.sqs
                .client()
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .unwrap();
        }
    }
    out
}

async fn build(e: &Env, seg: &str) -> CheckJobMessage {
    let cmd = SegmentCommand::parse(
        json!({"action": "create", "accountId": e.account, "segment": {"id": seg, "name": "All US",
            "ruleGroups": [{"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
                "g0": {"type": "dimension", "key": "country", "condition": "equals", "value": "us"}}]}})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    create_segment::handle(&e.app, &cmd, &format!("m-{seg}"), Utc::now())
        .await
        .unwrap();
    let bodies = drain(e, &e.check_queue, 6).await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    CheckJobMessage::parse(bodies[0].as_bytes()).unwrap()
}

/// Every message's (part, parts) and the entered ids, counted.
fn tally(bodies: &[String], run: &str) -> (Vec<(u64, u64)>, BTreeMap<String, u32>) {
    let mut parts = Vec::new();
    let mut seen = BTreeMap::new();
    for b in bodies {
        assert!(b.len() < 256_000, "a part of {} bytes", b.len());
        let v: Value = serde_json::from_str(b).unwrap();
        assert_eq!(v["type"], "segment-membership-changed");
        assert_eq!(v["runId"], run);
        assert_eq!(v["revision"], 1);
        assert_eq!(v["exited"], json!([]));
        parts.push((v["part"].as_u64().unwrap(), v["parts"].as_u64().unwrap()));
        for id in v["entered"].as_array().unwrap() {
            *seen.entry(id.as_str().unwrap().to_string()).or_default() += 1;
        }
    }
    parts.sort();
    (parts, seen)
}

fn every_member_once(seen: &BTreeMap<String, u32>) {
    assert_eq!(seen.len(), MEMBERS);
    assert!(seen.values().all(|n| *n == 1), "a change published twice");
    assert!(seen.contains_key(&member(1)) && seen.contains_key(&member(MEMBERS)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_thousand_entered_are_published_once_even_when_the_check_comes_twice() {
    let e = env().await;
    let seg = uuid();
    let msg = build(&e, &seg).await;
    let out = check_job::handle(&e.app, &msg, Utc::now()).await.unwrap();
    assert!(
        matches!(out, Checked::Finished { applied: true, .. }),
        "{out:?}"
    );
    // The check delivered again: recorded already, nothing published again.
    let again = check_job::handle(&e.app, &msg, Utc::now()).await.unwrap();
    assert!(
        matches!(again, Checked::Finished { applied: false, .. }),
        "{again:?}"
    );
    let bodies = drain(&e, &e.deltas, 2).await;
    let (parts, seen) = tally(&bodies, &msg.job_id);
    let n = parts.len() as u64;
    assert!(n >= 4, "{n} parts");
    assert_eq!(parts, (1..=n).map(|p| (p, n)).collect::<Vec<_>>());
    every_member_once(&seen);
    // The segment table holds them all.
    let table = segments_core::model::segment_table_name(&seg);
    assert_eq!(e.warehouse.members(&table).await.unwrap().len(), MEMBERS);
}

/// Sends for real, then dies after `sends` FIFO messages: the part is on the
/// queue, but the function never recorded it (the worst moment to die).
struct DiesAfter {
    inner: SqsQueue,
    sends: AtomicUsize,
}

#[async_trait]
impl Queue for DiesAfter {
    async fn send_with_attributes(
        &self,
        queue_url: &str,
        body: &str,
        delay_seconds: u32,
        attributes: &[(&str, &str)],
    ) -> segments_infra::Result<()> {
        self.inner
            .send_with_attributes(queue_url, body, delay_seconds, attributes)
            .await
    }
    async fn send_batch(&self, queue_url: &str, bodies: &[String]) -> segments_infra::Result<()> {
        self.inner.send_batch(queue_url, bodies).await
    }
    async fn send_fifo(
        &self,
        queue_url: &str,
        body: &str,
        group_id: &str,
        dedup_id: &str,
    ) -> segments_infra::Result<()> {
        self.inner
            .send_fifo(queue_url, body, group_id, dedup_id)
            .await?;
        if self.sends.fetch_sub(1, Ordering::SeqCst) == 1 {
            return Err(InfraError::Queue("the function died here".into()));
        }
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_dies_between_parts_publishes_each_change_once() {
    let e = env().await;
    let seg = uuid();
    let msg = build(&e, &seg).await;
    let mut dying = e.app.clone();
    dying.ports.queue = Arc::new(DiesAfter {
        inner: e.sqs.clone(),
        sends: AtomicUsize::new(2),
    });
    // Dies after its second part: the check fails and SQS will deliver it again.
    let died = check_job::handle(&dying, &msg, Utc::now()).await;
    assert!(died.is_err(), "{died:?}");
    // The redelivery sends the rest; part 2 again, which the FIFO queue drops.
    let out = check_job::handle(&e.app, &msg, Utc::now()).await.unwrap();
    assert!(matches!(out, Checked::Finished { .. }), "{out:?}");
    let bodies = drain(&e, &e.deltas, 2).await;
    let (parts, seen) = tally(&bodies, &msg.job_id);
    let n = parts.len() as u64;
    assert!(n >= 4, "{n} parts");
    assert_eq!(parts, (1..=n).map(|p| (p, n)).collect::<Vec<_>>());
    every_member_once(&seen);
}
