//! Each adapter classifies what its real service answers: a refusal is
//! permanent (with the service's reason), an outage transient.

mod common;

use common::{fresh_uuid, up, var};
use segments_infra::aws::{S3Store, SqsQueue, sdk_config};
use segments_infra::bigquery::BigQuery;
use segments_infra::cache::RedisCache;
use segments_infra::config::BigQueryConfig;
use segments_infra::error::ErrorClass;
use segments_infra::ports::{Cache, ObjectStore, QueryJob, Queue, SegmentStore, Warehouse};
use segments_infra::postgres::PgStore;

async fn bigquery(base_url: &str) -> BigQuery {
    BigQuery::connect(&BigQueryConfig {
        project: var("BIGQUERY_PROJECT"),
        dataset_prefix: "account_".into(),
        location: None,
        base_url: Some(base_url.into()),
        service_account_key: None,
        maximum_bytes_billed: 1 << 30,
    })
    .await
    .unwrap()
}

fn job(sql: &str) -> QueryJob {
    QueryJob {
        job_id: format!("segments_test_{}", fresh_uuid().replace('-', "_")),
        sql: sql.into(),
        dataset: String::new(),
        labels: vec![],
        batch: false,
        maximum_bytes_billed: 1 << 30,
    }
}

#[tokio::test]
async fn bigquery_an_unknown_job_is_permanent_and_an_unreachable_api_transient() {
    let w = bigquery(&var("BIGQUERY_BASE_URL")).await;
    let e = w.status("segments_no_such_job_0123").await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Permanent, "{e}");
    let down = bigquery("http://127.0.0.1:1").await;
    let e = down.submit(&job("SELECT 1")).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Transient, "{e}");
}

/// jobs.insert answers 200 with a job that ended in `invalidQuery`: the check
/// records it as failed, no retry. (A 400 `invalidQuery` from the API itself
/// is classified permanent: the unit tests of `bigquery.rs`.)
#[tokio::test]
async fn bigquery_an_unparsable_query_is_a_failed_job_not_an_error() {
    let w = bigquery(&var("BIGQUERY_BASE_URL")).await;
    let (status, _) = up(
        w.submit(&job("SELEC nothing FROM")).await,
        "the BigQuery emulator",
    );
    let status = w
        .wait(&status.job_id, std::time::Duration::from_secs(10))
        .await
        .unwrap();
    assert_eq!(
        (status.query_status(), status.error_reason.as_deref()),
        (
            Some(segments_core::jobs::QueryStatus::Failed),
            Some("invalidQuery")
        ),
        "{status:?}"
    );
}

#[tokio::test]
async fn postgres_unreachable_is_transient() {
    let pg = PgStore::connect("postgres://postgres@127.0.0.1:1/test", 1).unwrap();
    let e = pg.account_time_zone(&fresh_uuid()).await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Transient, "{e}");
}

#[tokio::test]
async fn postgres_a_refused_statement_is_permanent_with_its_sqlstate() {
    let pg = PgStore::connect(&var("DATABASE_URL"), 1).unwrap();
    up(pg.migrate().await, "Postgres");
    // Postgres text cannot hold a NUL byte (SQLSTATE 22021): the same every time.
    let e = pg
        .upsert_account(&fresh_uuid(), "x\u{0}", "UTC")
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Permanent, "{e}");
    assert!(e.reason().is_some(), "{e}");
}

#[tokio::test]
async fn redis_unreachable_is_transient() {
    let cache = RedisCache::new("redis://127.0.0.1:1").unwrap();
    let e = cache.get("k").await.unwrap_err();
    assert_eq!(e.class(), ErrorClass::Transient, "{e}");
}

#[tokio::test]
async fn redis_a_command_on_the_wrong_type_is_permanent() {
    let cache = RedisCache::connect(&var("REDIS_URL")).await;
    let cache = up(cache, "Redis");
    let key = format!("classes-{}", fresh_uuid());
    let client = redis::Client::open(var("REDIS_URL")).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    redis::cmd("LPUSH")
        .arg(&key)
        .arg("x")
        .query_async::<()>(&mut c)
        .await
        .unwrap();
    let e = cache.get(&key).await.unwrap_err();
    assert_eq!(
        (e.class(), e.reason()),
        (ErrorClass::Permanent, Some("WRONGTYPE")),
        "{e}"
    );
    redis::cmd("DEL")
        .arg(&key)
        .query_async::<()>(&mut c)
        .await
        .unwrap();
}

#[tokio::test]
async fn sqs_and_s3_a_missing_queue_or_bucket_is_permanent_and_no_endpoint_transient() {
    let keys = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY"));
    let sdk = sdk_config(
        &var("AWS_REGION"),
        Some(&var("AWS_ENDPOINT_URL")),
        Some((&keys.0, &keys.1)),
    )
    .await;
    let missing = format!(
        "{}/123456789012/no-such-queue-{}",
        var("AWS_ENDPOINT_URL"),
        &fresh_uuid()[..8]
    );
    let e = SqsQueue::new(&sdk)
        .send(&missing, "{}", 0)
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Permanent, "{e}");
    let e = S3Store::new(&sdk)
        .get(&format!("no-such-bucket-{}", &fresh_uuid()[..8]), "k")
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Permanent, "{e}");

    let down = sdk_config(
        &var("AWS_REGION"),
        Some("http://127.0.0.1:1"),
        Some((&keys.0, &keys.1)),
    )
    .await;
    let e = SqsQueue::new(&down)
        .send(&missing, "{}", 0)
        .await
        .unwrap_err();
    assert_eq!(e.class(), ErrorClass::Transient, "{e}");
}
