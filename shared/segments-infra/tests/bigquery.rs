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

/// `datasets.insert` needs the project-level `bigquery.datasets.create`, even
/// for a dataset that exists. A proxy in front of the emulator refuses every
/// insert with BigQuery's 403, as for a service account with Data Editor on
/// each dataset only: a build into an existing dataset must not need it.
#[tokio::test]
async fn an_existing_dataset_is_never_inserted_again() {
    let w = warehouse().await;
    let ds = format!("t_{}", fresh_uuid().replace('-', "_"));
    up(w.ensure_dataset(&ds).await, "the BigQuery emulator");
    let proxy = common::http::InsertRefusingProxy::start(&var("BIGQUERY_BASE_URL")).await;
    let behind = BigQuery::connect(&BigQueryConfig {
        project: var("BIGQUERY_PROJECT"),
        dataset_prefix: "account_".into(),
        location: None,
        base_url: Some(proxy.url()),
        service_account_key: None,
        maximum_bytes_billed: 1 << 30,
    })
    .await
    .unwrap();
    behind.ensure_dataset(&ds).await.unwrap();
    assert_eq!(proxy.calls("GET"), 1);
    assert_eq!(
        proxy.calls("POST"),
        0,
        "an existing dataset was inserted again"
    );
    // A missing one is still created, and the 403 says why when it cannot be.
    let missing = format!("t_{}", fresh_uuid().replace('-', "_"));
    let e = behind
        .ensure_dataset(&missing)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("403") && e.contains("bigquery.datasets.create"),
        "{e}"
    );
    assert_eq!(proxy.calls("POST"), 1);
    w.ensure_dataset(&missing).await.unwrap();
}

/// The real Google sign-in path: a service-account key whose JWT is exchanged
/// for an access token at the key's `token_uri` (tests/stack/google_token.py
/// checks the JWT's signature with the key), then BigQuery calls with it, all
/// logged at LogLevel=debug. The captured logs hold neither the private key,
/// nor the signed JWT, nor the access token.
#[tokio::test]
async fn sign_in_at_debug_level_logs_no_key_jwt_or_token() {
    let logs = common::http::capture_logs(&segments_infra::telemetry::log_filter(Some("debug")));
    let endpoint = common::http::TokenEndpoint::start();
    let key = endpoint.service_account_key();
    let w = BigQuery::connect(&BigQueryConfig {
        project: var("BIGQUERY_PROJECT"),
        dataset_prefix: "account_".into(),
        location: None,
        base_url: Some(var("BIGQUERY_BASE_URL")),
        service_account_key: Some(segments_infra::config::Secret(key.clone())),
        maximum_bytes_billed: 1 << 30,
    })
    .await
    .unwrap();
    let ds = format!("t_{}", fresh_uuid().replace('-', "_"));
    up(w.ensure_dataset(&ds).await, "the BigQuery emulator");
    let id = format!("segments_test_{}", fresh_uuid().replace('-', ""));
    w.submit(&job(&id, "SELECT 1 AS one")).await.unwrap();
    w.wait(&id, Duration::from_secs(10)).await.unwrap();

    let exchanges = endpoint.exchanges().await;
    assert!(!exchanges.is_empty(), "no token exchange");
    for x in &exchanges {
        assert_eq!(x["refused"], "", "the endpoint refused the JWT: {x}");
    }
    let text = logs.text();
    assert!(
        text.contains("BigQuery access token"),
        "our crates did not log at debug: {text}"
    );
    let private_key: serde_json::Value = serde_json::from_str(&key).unwrap();
    let pem_line = private_key["private_key"]
        .as_str()
        .unwrap()
        .lines()
        .nth(5)
        .unwrap()
        .to_string();
    let mut secrets = vec![("a line of the private key", pem_line)];
    for x in &exchanges {
        let jwt = x["assertion"].as_str().unwrap();
        secrets.push((
            "the signed JWT's signature",
            jwt.rsplit('.').next().unwrap().to_string(),
        ));
        secrets.push((
            "the access token",
            x["access_token"].as_str().unwrap().to_string(),
        ));
    }
    for (what, secret) in secrets {
        assert!(secret.len() > 20);
        assert!(!text.contains(&secret), "{what} is in the logs");
    }
}

/// A token endpoint that accepts the connection and never answers: the
/// sign-in gives up (a cold start must not hang until the Lambda timeout).
#[tokio::test]
async fn a_silent_token_endpoint_times_out() {
    let endpoint = common::http::TokenEndpoint::start();
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mut key: serde_json::Value = serde_json::from_str(&endpoint.service_account_key()).unwrap();
    key["token_uri"] = format!("http://{}/token", silent.local_addr().unwrap()).into();
    let w = BigQuery::connect(&BigQueryConfig {
        project: var("BIGQUERY_PROJECT"),
        dataset_prefix: "account_".into(),
        location: None,
        base_url: Some(var("BIGQUERY_BASE_URL")),
        service_account_key: Some(segments_infra::config::Secret(key.to_string())),
        maximum_bytes_billed: 1 << 30,
    })
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let r = w.ensure_dataset("never_reached").await;
    assert!(r.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    drop(silent);
}
