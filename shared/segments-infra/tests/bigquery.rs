//! BigQuery jobs through the real client against the local emulator: submitted,
//! duplicated, failed with the error surfaced, cancelled, results read.

mod common;

use common::{fresh_uuid, up, var};
use segments_core::jobs::QueryStatus;
use segments_infra::bigquery::BigQuery;
use segments_infra::config::BigQueryConfig;
use segments_infra::ports::{QueryJob, Warehouse};
use std::time::Duration;

async fn warehouse() -> BigQuery {
    BigQuery::connect(&BigQueryConfig {
        project: var("BIGQUERY_PROJECT"),
        dataset_prefix: "account_".into(),
        location: None,
        base_url: Some(var("BIGQUERY_BASE_URL")),
        service_account_key: None,
        maximum_bytes_billed: 1 << 30,
    })
    .await
    .unwrap()
}

fn job(id: &str, sql: &str) -> QueryJob {
    QueryJob {
        job_id: id.into(),
        sql: sql.into(),
        dataset: String::new(),
        labels: vec![("app".into(), "segments".into())],
        batch: true,
        maximum_bytes_billed: 1 << 30,
    }
}

#[tokio::test]
async fn a_job_is_submitted_once_and_its_results_read() {
    let w = warehouse().await;
    let ds = format!("t_{}", fresh_uuid().replace('-', "_"));
    up(w.ensure_dataset(&ds).await, "the BigQuery emulator");
    w.ensure_dataset(&ds).await.unwrap();
    let id = format!("segments_test_{}", fresh_uuid().replace('-', "_"));
    let sql = format!(
        "CREATE OR REPLACE TABLE `{}.{ds}.t` AS SELECT 'a' AS object_id UNION ALL SELECT 'b'",
        w.project()
    );
    let (status, duplicate) = w.submit(&job(&id, &sql)).await.unwrap();
    assert!(!duplicate);
    let done = w.wait(&id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        done.query_status(),
        Some(QueryStatus::Done),
        "{status:?} {done:?}"
    );
    let (started, ended) = (done.started_at.unwrap(), done.ended_at.unwrap());
    assert!(started <= ended && (chrono::Utc::now() - ended).num_minutes() < 5);
    // The job as BigQuery stores it: standard SQL, BATCH, the bytes cap, labels.
    let raw: serde_json::Value = reqwest::get(format!(
        "{}/bigquery/v2/projects/{}/jobs/{id}",
        var("BIGQUERY_BASE_URL"),
        w.project()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let q = &raw["configuration"]["query"];
    assert_eq!(q["useLegacySql"], false, "{raw}");
    assert_eq!(q["priority"], "BATCH");
    assert_eq!(q["maximumBytesBilled"], (1i64 << 30).to_string());
    assert_eq!(raw["configuration"]["labels"]["app"], "segments");
    // The same id again: BigQuery answers 409 and we get the existing job.
    let (again, duplicate) = w.submit(&job(&id, &sql)).await.unwrap();
    assert!(duplicate);
    assert_eq!(again.job_id, id);

    let read = format!("segments_test_{}", fresh_uuid().replace('-', "_"));
    w.submit(&job(
        &read,
        &format!(
            "SELECT object_id FROM `{}.{ds}.t` ORDER BY object_id",
            w.project()
        ),
    ))
    .await
    .unwrap();
    w.wait(&read, Duration::from_secs(10)).await.unwrap();
    let rows = w.rows(&read, 10).await.unwrap();
    assert_eq!(
        rows,
        vec![vec![serde_json::json!("a")], vec![serde_json::json!("b")]]
    );
}

#[tokio::test]
async fn a_failing_job_surfaces_its_error() {
    let w = warehouse().await;
    let id = format!("segments_test_{}", fresh_uuid().replace('-', "_"));
    // Like BigQuery, the emulator accepts the job and ends it DONE with an error.
    let (submitted, _) = up(
        w.submit(&job(&id, "SELECT * FROM `nowhere.nothing.none`"))
            .await,
        "the BigQuery emulator",
    );
    let s = w.wait(&id, Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        s.query_status(),
        Some(QueryStatus::Failed),
        "{submitted:?} {s:?}"
    );
    assert_eq!(s.error_reason.as_deref(), Some("notFound"));
    assert!(
        s.error_message
            .as_deref()
            .unwrap_or_default()
            .contains("nothing was not found"),
        "{s:?}"
    );
}

#[tokio::test]
async fn cancelling_and_unknown_jobs() {
    let w = warehouse().await;
    let id = format!("segments_test_{}", fresh_uuid().replace('-', "_"));
    up(
        w.submit(&job(&id, "SELECT 1 AS x")).await,
        "the BigQuery emulator",
    );
    // The emulator finishes at once; cancelling a finished job is accepted and changes nothing.
    w.cancel(&id).await.unwrap();
    let s = w.status(&id).await.unwrap();
    assert!(s.query_status().is_some_and(|q| q.is_final()), "{s:?}");
    let missing = w.status("segments_test_missing_job").await.unwrap_err();
    assert!(missing.to_string().contains("does not exist"), "{missing}");
}

#[tokio::test]
async fn dry_run_is_reported_as_unsupported_by_the_emulator() {
    let w = warehouse().await;
    let e = w.dry_run("SELECT 1").await.unwrap_err();
    assert!(
        matches!(e, segments_infra::InfraError::Unsupported(_)),
        "{e} (is the emulator up? tests/stack/up.sh starts it)"
    );
}
