//! Benchmark (ignored by default; it measures, it does not assert a time):
//! the cronjob refreshing one account with 1,000 eligible segments against the
//! local stack, with BigQuery played by the emulator with asynchronous jobs
//! (`tests/stack/crucible_async.py`: jobs.insert answers at once, as BigQuery's
//! does, and the jobs run behind it). It reports the time to submit every job,
//! the BigQuery calls per segment as the emulator counted them on the wire, and
//! then waits for every refresh to end and checks that each one succeeded. Run:
//!   cargo test --release -p segments-handlers --test cronjob_bench -- --ignored --nocapture

use chrono::Utc;
use segments_core::messages::CronjobMessage;
use segments_core::{Target, parse_segment, render_segment};
use segments_handlers::cronjob;
use segments_infra::ports::{JobRecord, SegmentStore, SegmentWrite};
use segments_tests::lambda::fresh_uuid;
use serde_json::json;
use std::time::Instant;

mod common;

const SEGMENTS: usize = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly"]
async fn cronjob_with_1000_segments() {
    let common::AsyncStack {
        app,
        store,
        url,
        account,
        ..
    } = common::async_stack("bench", None).await;
    let dataset = app.dataset(&account);
    let w = segments_tests::warehouse::Warehouse::fixture_at(&url, &dataset).await;
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
    assert_eq!(out.submitted.len(), SEGMENTS, "{:?}", out.failed);
    let calls = segments_tests::warehouse::api_calls(&url, &app.project).await;
    let per_segment: u32 = out
        .submitted
        .iter()
        .map(|id| calls.get(id).map(|c| c.values().sum::<u32>()).unwrap_or(0))
        .sum();
    println!(
        "cronjob: {} refresh jobs submitted in {elapsed:.2} s ({:.2} ms per segment, {} at a time); BigQuery calls per segment: {:.2} (as counted by the emulator)",
        out.submitted.len(),
        elapsed * 1000.0 / SEGMENTS as f64,
        cronjob::SUBMIT_CONCURRENCY,
        f64::from(per_segment) / SEGMENTS as f64,
    );

    // Every refresh really runs, and succeeds.
    let ran = Instant::now();
    let mut failed = Vec::new();
    for id in &out.submitted {
        let status = loop {
            let s = app
                .ports
                .warehouse
                .wait(id, std::time::Duration::from_secs(50))
                .await
                .unwrap();
            if s.state == "DONE" {
                break s;
            }
        };
        if status.error_reason.is_some() {
            failed.push((id.clone(), status.error_message));
        }
    }
    assert!(failed.is_empty(), "refresh jobs failed: {failed:?}");
    println!(
        "the emulator finished running all {SEGMENTS} MERGE jobs {:.1} s after the cronjob returned; all succeeded",
        ran.elapsed().as_secs_f64()
    );
}
