//! Benchmark (ignored by default; it measures, it does not assert a time):
//! the cronjob refreshing one account with 1,000 eligible segments against the
//! local stack. Run:
//!   cargo test --release -p segments-handlers --test cronjob_bench -- --ignored --nocapture

use chrono::Utc;
use segments_core::messages::CronjobMessage;
use segments_core::{Catalog, Target, parse_segment, render_segment};
use segments_handlers::{App, cronjob};
use segments_infra::config::Config;
use segments_infra::ports::{JobRecord, SegmentStore, SegmentWrite};
use segments_infra::postgres::PgStore;
use segments_infra::wiring::Ports;
use segments_tests::lambda::{fresh_uuid, local_queues, stack_env};
use serde_json::json;
use std::time::Instant;

const SEGMENTS: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly"]
async fn cronjob_with_1000_segments() {
    let mut env = stack_env();
    let _sqs = local_queues(&mut env, "bench").await;
    env.insert("BIGQUERY_DATASET_PREFIX".into(), "bench_".into());
    let config = Config::from_map(&env).unwrap();
    let store = PgStore::connect(&config.database_url.0, 8).unwrap();
    store.migrate().await.unwrap();
    let account = fresh_uuid();
    store
        .upsert_account(&account, "Bench", "UTC")
        .await
        .unwrap();
    let app = App::new(
        &config,
        Ports::connect(&config).await.unwrap(),
        Catalog::default_catalog(),
    );
    let dataset = app.dataset(&account);
    let w = segments_tests::warehouse::Warehouse::fixture_in(&dataset).await;
    let target = Target::new(&app.project, &dataset).unwrap();
    let tz = segments_core::time::parse_time_zone("UTC").unwrap();

    let setup = Instant::now();
    for i in 0..SEGMENTS {
        let id = fresh_uuid();
        let rules = json!([{"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
            "dateRangeFilter": {"type": "previous-period", "numberOfDaysPrevious": 30},
            "g0": {"type": "number", "key": "pageviews", "condition": "greater-than", "value": i % 10}}]);
        let seg = parse_segment(&json!({"id": id, "ruleGroups": rules})).unwrap();
        let r = render_segment(&seg, &app.catalog, &target, &tz, Utc::now()).unwrap();
        store
            .save_segment(&SegmentWrite {
                id: id.clone(),
                account_id: account.clone(),
                name: format!("bench {i}"),
                description: None,
                rule_groups: rules.to_string(),
                query: r.cronjob_query,
            })
            .await
            .unwrap();
        let job = format!("bench_{}", id.replace('-', "_"));
        store
            .start_job(&JobRecord {
                job_id: job.clone(),
                account_id: account.clone(),
                segment_id: Some(id),
                action: "create-segment".into(),
                status: segments_core::jobs::QueryStatus::InProgress,
                bytes_billed: None,
                error: None,
                created_at: Utc::now(),
                finished_at: None,
            })
            .await
            .unwrap();
        w.run(&r.create_table_query).await.unwrap();
        store
            .finish_job(
                &job,
                segments_core::jobs::QueryStatus::Done,
                Some(0),
                None,
                Utc::now(),
            )
            .await
            .unwrap();
    }
    println!(
        "setup: {SEGMENTS} segments built in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    let msg = CronjobMessage::parse(
        json!({"accountId": account, "timeZone": "UTC"})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let started = Instant::now();
    let out = cronjob::refresh_account(&app, &msg, Utc::now(), Utc::now())
        .await
        .unwrap();
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(out.submitted.len(), SEGMENTS);
    println!(
        "cronjob: {} refresh jobs submitted in {elapsed:.2} s ({:.1} ms per segment, {} at a time); BigQuery calls per segment: 1 (jobs.insert)",
        out.submitted.len(),
        elapsed * 1000.0 / SEGMENTS as f64,
        cronjob::SUBMIT_CONCURRENCY
    );
}
