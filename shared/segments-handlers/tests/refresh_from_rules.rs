//! GIVEN a built segment whose stored `query` is stale (written by an earlier,
//! faulty compiler: it selects the wrong members), WHEN the scheduled refresh
//! runs, THEN the table holds what the segment's rules select: a compiler fix
//! reaches stored segments at the next refresh, without an expire-all.
//! Runs against the local stack, with BigQuery played by the emulator with
//! asynchronous jobs.

use chrono::Utc;
use segments_core::messages::CronjobMessage;
use segments_core::{Target, parse_segment, render_segment};
use segments_handlers::cronjob;
use segments_infra::ports::{JobRecord, SegmentStore, SegmentWrite};
use segments_tests::lambda::fresh_uuid;
use serde_json::json;

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_stored_query_refreshes_from_the_rules() {
    let common::AsyncStack {
        app,
        store,
        url,
        account,
        ..
    } = common::async_stack("rfr", None).await;
    let dataset = app.dataset(&account);
    let w = segments_tests::warehouse::Warehouse::fixture_at(&url, &dataset).await;
    let target = Target::new(&app.project, &dataset).unwrap();
    let tz = segments_core::time::parse_time_zone("UTC").unwrap();

    let id = fresh_uuid();
    let rules = json!([{"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
        "g0": {"type": "dimension", "key": "country", "condition": "equals", "value": "us"}}]);
    // What the faulty compiler stored and built: the same table, wrong members.
    let wrong = json!([{"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
        "g0": {"type": "dimension", "key": "country", "condition": "equals", "value": "nowhere"}}]);
    let stale = parse_segment(&json!({"id": id, "ruleGroups": wrong})).unwrap();
    let stale = render_segment(&stale, &app.catalog, &target, &tz, Utc::now()).unwrap();
    store
        .save_segment(&SegmentWrite {
            id: id.clone(),
            account_id: account.clone(),
            name: "US sessions".into(),
            description: None,
            rule_groups: rules.to_string(),
            query: stale.cronjob_query.clone(),
        })
        .await
        .unwrap();
    let job = format!("rfr_{}", id.replace('-', "_"));
    store
        .start_job(&JobRecord {
            job_id: job.clone(),
            account_id: account.clone(),
            segment_id: Some(id.clone()),
            action: "create-segment".into(),
            status: segments_core::jobs::QueryStatus::InProgress,
            bytes_billed: None,
            error: None,
            created_at: Utc::now(),
            finished_at: None,
        })
        .await
        .unwrap();
    w.run(&stale.create_table_query).await.unwrap();
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
    assert_eq!(w.members(&stale.table).await.unwrap(), Vec::<String>::new());

    let msg = CronjobMessage::parse(
        json!({"accountId": account, "timeZone": "UTC"})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let out = cronjob::refresh_account(&app, &msg, Utc::now(), Utc::now())
        .await
        .unwrap();
    assert_eq!(out.submitted.len(), 1, "{out:?}");
    let status = loop {
        let s = app
            .ports
            .warehouse
            .wait(&out.submitted[0], std::time::Duration::from_secs(30))
            .await
            .unwrap();
        if s.state == "DONE" {
            break s;
        }
    };
    assert_eq!(status.error_reason, None, "{:?}", status.error_message);
    assert_eq!(w.members(&stale.table).await.unwrap(), vec!["s1", "s2"]);
}
