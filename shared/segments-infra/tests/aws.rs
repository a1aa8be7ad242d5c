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

/// What S3 answers a role without s3:ListBucket when the trigger file is
/// missing: 403 AccessDenied, not 404. A local endpoint answers exactly that
/// (moto does not enforce IAM). It is a permanent configuration error naming
/// the missing permission, never "no trigger file" and never an outage to retry.
#[tokio::test]
async fn access_denied_on_the_trigger_file_is_a_permanent_error() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = vec![0u8; 8192];
            let _ = s.read(&mut buf).await;
            let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>R1</RequestId><HostId>H1</HostId></Error>";
            let head = format!(
                "HTTP/1.1 403 Forbidden\r\ncontent-type: application/xml\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes()).await;
            let _ = s.write_all(body.as_bytes()).await;
            let _ = s.shutdown().await;
        }
    });
    let sdk = sdk_config(
        "us-east-1",
        Some(&format!("http://{addr}")),
        Some(("test", "test")),
    )
    .await;
    let s3 = S3Store::new(&sdk);
    let started = std::time::Instant::now();
    let e = s3
        .get("acme-static", "server-side-trigger/missing.json")
        .await
        .unwrap_err();
    assert!(!e.is_retryable(), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("access denied to s3://acme-static/server-side-trigger/missing.json")
            && text.contains("s3:ListBucket"),
        "{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "retried: {:?}",
        started.elapsed()
    );
}
