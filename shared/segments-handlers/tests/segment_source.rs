//! GIVEN an account configured with a Segment source (`segment-source/{id}.json`
//! in the static bucket) and raw Segment tables on the BigQuery emulator, WHEN
//! the scheduled run refreshes the account, THEN its models are built (first
//! run: a full build) or refreshed (later runs) before its segments, every
//! model statement is a job recorded as done; and WHEN the models fail, THEN
//! the account's segments are skipped (not refreshed on stale tables) and the
//! failed job is recorded with its error.

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use segments_core::Catalog;
use segments_core::jobs::QueryStatus;
use segments_core::messages::CronjobMessage;
use segments_handlers::{App, cronjob};
use segments_infra::config::Config;
use segments_infra::ports::{JobRecord, ObjectStore, SegmentStore, SegmentWrite};
use segments_infra::postgres::PgStore;
use segments_infra::wiring::Ports;
use segments_tests::lambda::{fresh_uuid, stack_env};
use segments_tests::segment_raw::*;
use segments_tests::warehouse::{PROJECT, Warehouse};
use std::collections::HashMap;
use std::sync::Arc;

/// The static bucket's account files (the configuration, not what is tested).
struct Files(HashMap<String, Vec<u8>>);

#[async_trait]
impl ObjectStore for Files {
    async fn get(&self, _bucket: &str, key: &str) -> segments_infra::Result<Option<Vec<u8>>> {
        Ok(self.0.get(key).cloned())
    }
    // Read-only: the scheduled run only reads the account files.
    async fn put(&self, _: &str, key: &str, _: Vec<u8>, _: &str) -> segments_infra::Result<()> {
        Err(segments_infra::InfraError::Unsupported(format!(
            "put {key}: the test's files are read-only"
        )))
    }
    async fn presigned_get(
        &self,
        _: &str,
        key: &str,
        _: std::time::Duration,
    ) -> segments_infra::Result<String> {
        Err(segments_infra::InfraError::Unsupported(format!(
            "presign {key}: the test's files are read-only"
        )))
    }
}

struct Env {
    app: App,
    store: PgStore,
    account: String,
}

async fn env(source_dataset: &str) -> Env {
    let mut vars = stack_env();
    vars.insert("BIGQUERY_DATASET_PREFIX".into(), "segsrc_".into());
    vars.insert("STATIC_BUCKET".into(), "static".into());
    // Real queues: the segments' refreshes are tracked runs, each queues a check.
    segments_tests::lambda::local_queues(&mut vars, "segsrc").await;
    let config = Config::from_map(&vars).unwrap();
    let store = PgStore::connect(&config.database_url.0, 4).unwrap();
    store.migrate().await.unwrap();
    let account = fresh_uuid();
    store.upsert_account(&account, "Seg", "UTC").await.unwrap();
    let mut ports = Ports::connect(&config).await.unwrap();
    let config_file = serde_json::json!({"sourceDataset": source_dataset}).to_string();
    ports.objects = Arc::new(Files(HashMap::from([(
        format!("segment-source/{account}.json"),
        config_file.into_bytes(),
    )])));
    let app = App::new(&config, ports, Catalog::default_catalog());
    // The account's dataset exists (the create-segment path makes it).
    Warehouse::open(&app.dataset(&account)).await;
    Env {
        app,
        store,
        account,
    }
}

async fn raw_source() -> Warehouse {
    let src = Warehouse::empty("segsrcraw").await;
    for (table, columns, rows) in [
        ("identifies", IDENTIFY_COLUMNS, IDENTIFIES),
        ("pages", PAGE_COLUMNS, PAGES),
        ("tracks", TRACK_COLUMNS, TRACKS),
    ] {
        for sql in Engine::BigQuery.load_raw(PROJECT, &src.dataset, table, columns, rows) {
            src.run(&sql).await.unwrap();
        }
    }
    src
}

/// One eligible segment (done, with a refresh query) of the account.
async fn eligible_segment(e: &Env) -> String {
    let id = fresh_uuid();
    e.store
        .save_segment(&SegmentWrite {
            id: id.clone(),
            account_id: e.account.clone(),
            name: "Engaged".into(),
            description: None,
            rule_groups: r#"[{"mainOperator":"include","segmentObject":"session","conditionFocus":"property","g0":{"type":"boolean","key":"is_engaged","condition":"is-true"}}]"#.into(),
            query: "SELECT 1".into(),
        })
        .await
        .unwrap();
    // Its build finished: the segment is done (as check-bigquery-job records it).
    let build = fresh_uuid();
    e.store
        .start_job(&JobRecord {
            job_id: build.clone(),
            account_id: e.account.clone(),
            segment_id: Some(id.clone()),
            action: "create-segment".into(),
            status: QueryStatus::InProgress,
            bytes_billed: None,
            error: None,
            created_at: Utc::now(),
            finished_at: None,
        })
        .await
        .unwrap();
    e.store
        .finish_job(&build, QueryStatus::Done, Some(0), None, Utc::now())
        .await
        .unwrap();
    id
}

fn message(e: &Env, hour: u32) -> CronjobMessage {
    CronjobMessage {
        account_id: e.account.clone(),
        time_zone: chrono_tz::UTC,
        scheduled_at: Some(Utc.with_ymd_and_hms(2024, 6, 12, hour, 0, 0).unwrap()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_run_before_the_segments_and_a_failure_skips_them() {
    let src = raw_source().await;
    let e = env(&src.dataset).await;
    let segment = eligible_segment(&e).await;
    let dst = Warehouse::open(&e.app.dataset(&e.account)).await;

    // First run: no staging tables yet, so a full build, then the segment.
    let out = cronjob::refresh_account(&e.app, &message(&e, 1), Utc::now(), Utc::now())
        .await
        .unwrap();
    assert_eq!(out.submitted.len(), 1, "{out:?}");
    assert!(out.skipped.is_empty(), "{out:?}");
    let sessions = dst
        .column(&Engine::BigQuery.read_sessions(&dst.table("sessions")))
        .await
        .unwrap();
    let mut want: Vec<String> = EXPECT_SESSIONS.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(sessions, want);
    let first = segments_core::jobs::job_id(
        "build-models",
        &[&e.account, "2024-06-12T01:00:00+00:00", "0"],
    );
    let job = e.store.job(&first).await.unwrap().expect("recorded");
    assert_eq!(
        (job.status, job.action.as_str()),
        (QueryStatus::Done, "build-models")
    );
    // The refresh's first statement failed (no staging table) and is recorded so.
    let tried = segments_core::jobs::job_id(
        "refresh-models",
        &[&e.account, "2024-06-12T01:00:00+00:00", "0"],
    );
    let tried = e.store.job(&tried).await.unwrap().expect("recorded");
    assert_eq!(tried.status, QueryStatus::Failed);
    assert!(tried.error.is_some());

    // Next run: a refresh, all of whose statements are recorded done.
    let out = cronjob::refresh_account(&e.app, &message(&e, 2), Utc::now(), Utc::now())
        .await
        .unwrap();
    assert_eq!(out.submitted.len(), 1, "{out:?}");
    let n = segments_core::models::SegmentSource::new(
        segments_core::Target::new(PROJECT, &src.dataset).unwrap(),
        segments_core::Target::new(PROJECT, &dst.dataset).unwrap(),
        30,
    )
    .unwrap()
    .refresh()
    .unwrap()
    .len();
    for i in 0..n {
        let id = segments_core::jobs::job_id(
            "refresh-models",
            &[&e.account, "2024-06-12T02:00:00+00:00", &i.to_string()],
        );
        let job = e.store.job(&id).await.unwrap().expect("recorded");
        assert_eq!(job.status, QueryStatus::Done, "statement {i}");
    }

    // A source whose raw tables are gone: the models fail, the segment is skipped.
    let broken = env("segsrc_no_such_raw_dataset").await;
    let other = eligible_segment(&broken).await;
    let out = cronjob::refresh_account(&broken.app, &message(&broken, 3), Utc::now(), Utc::now())
        .await
        .unwrap();
    assert!(out.submitted.is_empty(), "{out:?}");
    assert_eq!(out.skipped.len(), 1, "{out:?}");
    assert_eq!(out.skipped[0].0, other);
    assert!(
        out.skipped[0].1.starts_with("Segment models failed"),
        "{out:?}"
    );
    let failed = segments_core::jobs::job_id(
        "build-models",
        &[&broken.account, "2024-06-12T03:00:00+00:00", "0"],
    );
    let job = broken.store.job(&failed).await.unwrap().expect("recorded");
    assert_eq!(job.status, QueryStatus::Failed);
    let _ = segment;
}
