//! SQS and S3 through the real AWS SDK against moto.

mod common;

use common::{fresh_uuid, up, var};
use segments_infra::aws::{S3Store, SqsQueue, sdk_config};
use segments_infra::ports::{ObjectStore, Queue};
use std::time::Duration;

async fn config() -> aws_config::SdkConfig {
    let (id, secret) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"));
    sdk_config(
        &var("AWS_REGION"),
        Some(&var("AWS_ENDPOINT_URL")),
        Some((&id, &secret)),
    )
    .await
}

/// A queue of this test's own (so tests run in parallel and twice).
async fn new_queue(q: &SqsQueue, prefix: &str) -> String {
    let created = q
        .client()
        .create_queue()
        .queue_name(format!("{prefix}-{}", &fresh_uuid()[..8]))
        .send()
        .await;
    up(created, "SQS (moto)").queue_url().unwrap().to_string()
}

async fn receive_all(q: &SqsQueue, url: &str, wait: i32) -> Vec<String> {
    let out = q
        .client()
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(wait)
        .send()
        .await
        .unwrap();
    out.messages()
        .iter()
        .filter_map(|m| m.body().map(String::from))
        .collect()
}

#[tokio::test]
async fn a_delayed_message_is_invisible_until_due() {
    let q = SqsQueue::new(&config().await);
    let url = new_queue(&q, "delay").await;
    q.send_with_attributes(&url, r#"{"n":1}"#, 2, &[("accountId", "acc-1")])
        .await
        .unwrap();
    assert!(
        receive_all(&q, &url, 0).await.is_empty(),
        "visible before its delay"
    );
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let got = q
        .client()
        .receive_message()
        .queue_url(&url)
        .message_attribute_names("All")
        .wait_time_seconds(1)
        .send()
        .await
        .unwrap();
    let m = &got.messages()[0];
    assert_eq!(m.body(), Some(r#"{"n":1}"#));
    let attr = m.message_attributes().and_then(|a| a.get("accountId"));
    assert_eq!(attr.and_then(|a| a.string_value()), Some("acc-1"));
}

#[tokio::test]
async fn batches_send_every_message() {
    let q = SqsQueue::new(&config().await);
    let url = new_queue(&q, "batch").await;
    let bodies: Vec<String> = (0..23).map(|i| format!(r#"{{"i":{i}}}"#)).collect();
    q.send_batch(&url, &bodies).await.unwrap();
    let mut got = Vec::new();
    for _ in 0..10 {
        got.extend(receive_all(&q, &url, 0).await);
        if got.len() >= 23 {
            break;
        }
    }
    got.sort();
    let mut want = bodies.clone();
    want.sort();
    assert_eq!(got, want);
    // A queue that does not exist is an error, not a panic.
    assert!(q.send(&format!("{url}-missing"), "x", 0).await.is_err());
}

#[tokio::test]
async fn the_trigger_file_present_and_missing() {
    let s3 = S3Store::new(&config().await);
    let bucket = format!("static-{}", &fresh_uuid()[..8]);
    up(
        s3.client().create_bucket().bucket(&bucket).send().await,
        "S3 (moto)",
    );
    let body = br#"[{"id":"t1","name":"Buy","enabled":true}]"#;
    s3.client()
        .put_object()
        .bucket(&bucket)
        .key("server-side-trigger/acc-1.json")
        .body(body.to_vec().into())
        .send()
        .await
        .unwrap();
    assert_eq!(
        s3.get(&bucket, "server-side-trigger/acc-1.json")
            .await
            .unwrap()
            .as_deref(),
        Some(&body[..])
    );
    assert_eq!(
        s3.get(&bucket, "server-side-trigger/acc-2.json")
            .await
            .unwrap(),
        None
    );
    assert!(
        s3.get(&format!("{bucket}-missing"), "x").await.is_err(),
        "a missing bucket is an error"
    );
}
