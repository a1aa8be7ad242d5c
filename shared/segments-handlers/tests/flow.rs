//! The handlers against the real local stack: create -> check -> cronjob ->
//! report -> delete, plus duplicates, foreign accounts, bad messages, failing
//! and overdue jobs, and Redis or Pusher outages.

use chrono::{Duration, Utc};
use segments_core::Catalog;
use segments_core::messages::{CheckJobMessage, CronjobMessage, SegmentCommand};
use segments_handlers::check_job::{self, Checked};
use segments_handlers::{App, Failure, create_segment, cronjob, report};
use segments_infra::aws::SqsQueue;
use segments_infra::cache::{RedisCache, keys};
use segments_infra::config::Config;
use segments_infra::ports::{Cache, SegmentStore};
use segments_infra::postgres::PgStore;
use segments_infra::wiring::Ports;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::Arc;

use segments_tests::lambda::{fresh_uuid as uuid, stack_env};
use segments_tests::warehouse::{api_calls, async_emulator_url, hold_jobs, release_jobs};

struct Env {
    app: App,
    account: String,
    sqs: SqsQueue,
    check_queue: String,
    cron_queue: String,
    report_queue: String,
    store: PgStore,
    warehouse: segments_tests::warehouse::Warehouse,
}

async fn env_with(tweak: impl FnOnce(&mut HashMap<String, String>)) -> Env {
    let mut vars = stack_env();
    // Fresh queues for this test (the harness's helper): check, cron, schedule-report.
    let sqs = segments_tests::lambda::local_queues(&mut vars, "flow").await;
    let (check_queue, cron_queue, report_queue) = (
        vars["CHECK_JOB_QUEUE_URL"].clone(),
        vars["CRONJOB_QUEUE_URL"].clone(),
        vars["SCHEDULE_REPORT_QUEUE_URL"].clone(),
    );
    vars.insert("BIGQUERY_DATASET_PREFIX".into(), "acct_".into());
    tweak(&mut vars);
    let config = Config::from_map(&vars).unwrap();
    let store = PgStore::connect(&config.database_url.0, 4).unwrap();
    store.migrate().await.unwrap();
    let account = uuid();
    store.upsert_account(&account, "Acme", "UTC").await.unwrap();
    let mut ports = Ports::connect(&config).await.unwrap();
    ports.queue = Arc::new(sqs.clone());
    let app = App::new(&config, ports, Catalog::default_catalog());
    let warehouse = segments_tests::warehouse::Warehouse::fixture_in(&app.dataset(&account)).await;
    Env {
        app,
        account,
        sqs,
        check_queue,
        cron_queue,
        report_queue,
        store,
        warehouse,
    }
}

async fn env() -> Env {
    env_with(|_| {}).await
}

async fn receive(e: &Env, url: &str) -> Vec<String> {
    let mut out = Vec::new();
    for _ in 0..5 {
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
        out.extend(
            r.messages()
                .iter()
                .filter_map(|m| m.body().map(String::from)),
        );
        if !out.is_empty() {
            break;
        }
    }
    out
}

/// Receives until `n` messages arrived (or 30 s passed): under load SQS may
/// return fewer messages than are queued.
async fn receive_n(e: &Env, url: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while out.len() < n && std::time::Instant::now() < deadline {
        out.extend(receive(e, url).await);
    }
    out
}

async fn captured(channel: &str) -> Vec<Value> {
    let url = format!("{}/captured", stack_env()["PUSHER_HOST"]);
    let all: Vec<Value> = reqwest::get(url).await.unwrap().json().await.unwrap();
    all.into_iter()
        .filter(|e| e["channels"][0] == channel)
        .collect()
}

fn us_sessions(id: &str) -> Value {
    json!({"id": id, "name": "US sessions", "ruleGroups": [{"mainOperator": "include", "segmentObject": "session",
        "conditionFocus": "property", "g0": {"type": "dimension", "key": "country", "condition": "equals", "value": "us"}}]})
}

fn create(account: &str, segment: Value) -> SegmentCommand {
    SegmentCommand::parse(
        json!({"action": "create", "accountId": account, "segment": segment})
            .to_string()
            .as_bytes(),
    )
    .unwrap()
}

async fn check(e: &Env) -> (CheckJobMessage, Checked) {
    let bodies = receive(e, &e.check_queue).await;
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let msg = CheckJobMessage::parse(bodies[0].as_bytes()).unwrap();
    let out = check_job::handle(&e.app, &msg, Utc::now()).await.unwrap();
    (msg, out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_check_refresh_report_delete() {
    let e = env().await;
    let seg = uuid();
    let cache = RedisCache::connect(&stack_env()["REDIS_URL"])
        .await
        .unwrap();
    cache
        .put(
            &keys::segments(&e.account),
            "[]",
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
    cache
        .put(
            &format!("{}x", keys::report_segment_prefix(&e.account, &seg)),
            "old",
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();

    // create: stored in-progress, build submitted, check queued.
    let out = create_segment::handle(
        &e.app,
        &create(&e.account, us_sessions(&seg)),
        "msg-1",
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(out.segments[0].query_status, "in-progress");
    let row = e.store.segment(&e.account, &seg).await.unwrap().unwrap();
    assert_eq!(row.query_status, "in-progress");
    // The stored query: the refresh as people read it, stamped with the compiler version.
    assert!(row.query.as_deref().unwrap().starts_with(&format!(
        "-- segments-compiler v{}\nMERGE",
        segments_core::COMPILER_VERSION
    )));
    assert!(e.store.ensure_all_data(&e.account).await.is_ok());

    // check: done, recorded, caches cleared, browser notified.
    let (msg, checked) = check(&e).await;
    assert_eq!(
        checked,
        Checked::Finished {
            status: "done".into(),
            applied: true,
            notified: true
        }
    );
    let row = e.store.segment(&e.account, &seg).await.unwrap().unwrap();
    assert_eq!(row.query_status, "done");
    assert!(row.build_at.is_some());
    assert_eq!(cache.get(&keys::segments(&e.account)).await.unwrap(), None);
    assert_eq!(
        cache
            .get(&format!(
                "{}x",
                keys::report_segment_prefix(&e.account, &seg)
            ))
            .await
            .unwrap(),
        None
    );
    let events = captured(&format!("channel-{}", e.account)).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["name"], "PUSHER_UPDATE_SEGMENT");
    assert_eq!(events[0]["data"]["segmentId"], seg.as_str());
    assert_eq!(events[0]["data"]["queryStatus"], "done");
    let table = out.segments[0].table.clone();
    assert_eq!(e.warehouse.members(&table).await.unwrap(), vec!["s1", "s2"]);

    // The same check delivered again: nothing changes, nobody is notified twice.
    let again = check_job::handle(&e.app, &msg, Utc::now()).await.unwrap();
    assert_eq!(
        again,
        Checked::Finished {
            status: "done".into(),
            applied: false,
            notified: false
        }
    );
    assert_eq!(captured(&format!("channel-{}", e.account)).await.len(), 1);
    // The create message delivered again: same job id, nothing resubmitted, status kept.
    let dup = create_segment::handle(
        &e.app,
        &create(&e.account, us_sessions(&seg)),
        "msg-1",
        Utc::now(),
    )
    .await
    .unwrap();
    assert_eq!(dup.segments[0].job_id, out.segments[0].job_id);
    assert_eq!(
        e.store
            .segment(&e.account, &seg)
            .await
            .unwrap()
            .unwrap()
            .query_status,
        "done"
    );
    let _ = receive(&e, &e.check_queue).await;

    // The scheduled refresh: fan-out, then the account's message.
    let fan = cronjob::fan_out(&e.app, Utc::now()).await.unwrap();
    assert!(fan.accounts >= 1);
    // Every account of the database with refreshable segments gets one: find ours.
    let mut mine = Vec::new();
    loop {
        let batch = receive(&e, &e.cron_queue).await;
        if batch.is_empty() {
            break;
        }
        mine.extend(batch.into_iter().filter(|b| b.contains(&e.account)));
    }
    assert_eq!(mine.len(), 1, "{mine:?}");
    let cron = CronjobMessage::parse(mine[0].as_bytes()).unwrap();
    let refreshed = cronjob::refresh_account(&e.app, &cron, Utc::now(), Utc::now())
        .await
        .unwrap();
    assert_eq!(refreshed.submitted.len(), 1);
    // A redelivery submits the same job ids.
    let again = cronjob::refresh_account(&e.app, &cron, Utc::now(), Utc::now())
        .await
        .unwrap();
    assert_eq!(again.submitted, refreshed.submitted);
    assert_eq!(e.warehouse.members(&table).await.unwrap(), vec!["s1", "s2"]);
    // Each refresh is a tracked run: a job row and a check per delivery; the
    // second check of the same job changes nothing.
    // (Received and deleted, so they cannot come back among the report's checks;
    // a create check that came back after its visibility timeout is skipped.)
    let mut checks = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while checks.len() < 2 && std::time::Instant::now() < deadline {
        let r = e
            .sqs
            .client()
            .receive_message()
            .queue_url(&e.check_queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        for m in r.messages() {
            let body = m.body().unwrap_or_default().to_string();
            if body.contains("refresh-segment") {
                checks.push(body);
                e.sqs
                    .client()
                    .delete_message()
                    .queue_url(&e.check_queue)
                    .receipt_handle(m.receipt_handle().unwrap_or_default())
                    .send()
                    .await
                    .unwrap();
            }
        }
    }
    assert_eq!(checks.len(), 2, "{checks:?}");
    let mut applied = 0;
    for body in &checks {
        let m = CheckJobMessage::parse(body.as_bytes()).unwrap();
        assert_eq!(m.action.as_str(), "refresh-segment");
        assert_eq!(m.job_id, refreshed.submitted[0]);
        match check_job::handle(&e.app, &m, Utc::now()).await.unwrap() {
            Checked::Finished {
                status, applied: a, ..
            } => {
                assert_eq!(status, "done");
                applied += usize::from(a);
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(applied, 1);
    let job = e.store.job(&refreshed.submitted[0]).await.unwrap().unwrap();
    assert_eq!(
        (job.action.as_str(), job.status.as_str()),
        ("refresh-segment", "done")
    );

    // A report filtered by the segment and All Data.
    let all_data = e.store.ensure_all_data(&e.account).await.unwrap();
    let request = json!({"accountId": e.account, "accountTimeZone": "UTC", "reportName": "devices", "object": "session",
        "dateRange": {"startDate": "2024-06-01", "endDate": "2024-06-30"}, "dimensions": ["device_type"], "metrics": ["sessions"],
        "segments": [seg], "comparisonSegments": [all_data], "sort": {"by": "sessions", "direction": "desc"}});
    let resp = report::handle(&e.app, &request, "req-1", Utc::now())
        .await
        .unwrap();
    assert_eq!(resp.segment_tables.len(), 1);
    assert_eq!(resp.comparison_segment_tables.len(), 1);
    let checks = receive_n(&e, &e.check_queue, 2).await;
    assert_eq!(checks.len(), 2, "{checks:?}");
    for body in &checks {
        let m = CheckJobMessage::parse(body.as_bytes()).unwrap();
        let out = check_job::handle(&e.app, &m, Utc::now()).await.unwrap();
        assert!(
            matches!(out, Checked::Finished { applied: true, .. }),
            "{out:?}"
        );
    }
    let rows = cache
        .get(&resp.segment_tables[0].cache_key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rows, r#"[["Desktop","1"],["mobile","1"]]"#);
    assert_eq!(
        e.warehouse
            .column(&format!(
                "SELECT device_type FROM {}",
                e.warehouse.table(&resp.segment_tables[0].table)
            ))
            .await
            .unwrap(),
        vec!["Desktop", "mobile"]
    );

    // delete: row gone; "All Data" cannot be deleted.
    let del = SegmentCommand::parse(
        json!({"action": "delete", "accountId": e.account, "segmentId": seg})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    create_segment::handle(&e.app, &del, "msg-del", Utc::now())
        .await
        .unwrap();
    assert!(e.store.segment(&e.account, &seg).await.unwrap().is_none());
    let del_all = SegmentCommand::parse(
        json!({"action": "delete", "accountId": e.account, "segmentId": all_data})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let err = create_segment::handle(&e.app, &del_all, "msg-del2", Utc::now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Failure::Rejected(ref m) if m.contains("cannot be deleted")),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_and_foreign_messages_change_nothing() {
    let e = env().await;
    let other = env().await;
    // An invalid segment: every path named, nothing written.
    let bad = json!({"id": uuid(), "ruleGroups": [{"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
        "g0": {"type": "dimension", "key": "country", "condition": "equal", "value": "x"}}]});
    let err = create_segment::handle(&e.app, &create(&e.account, bad.clone()), "m", Utc::now())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Failure::Rejected(r#"ruleGroups[0].g0.condition: unknown operator "equal""#.into())
    );
    assert!(
        e.store
            .segment(&e.account, bad["id"].as_str().unwrap())
            .await
            .unwrap()
            .is_none()
    );

    // Another account's segment cannot be rebuilt, deleted, updated or checked from here.
    let seg = uuid();
    create_segment::handle(
        &e.app,
        &create(&e.account, us_sessions(&seg)),
        "m1",
        Utc::now(),
    )
    .await
    .unwrap();
    let (msg, _) = check(&e).await;
    for action in ["rebuild", "delete"] {
        let cmd = SegmentCommand::parse(
            json!({"action": action, "accountId": other.account, "segmentId": seg})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        let err = create_segment::handle(&other.app, &cmd, "m2", Utc::now())
            .await
            .unwrap_err();
        assert!(
            matches!(err, Failure::Rejected(ref m) if m.contains("does not belong")),
            "{action}: {err}"
        );
    }
    let update = SegmentCommand::parse(
        json!({"action": "update", "accountId": other.account, "segment": us_sessions(&seg)})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    assert!(
        create_segment::handle(&other.app, &update, "m3", Utc::now())
            .await
            .is_err()
    );
    let foreign = CheckJobMessage {
        account_id: other.account.clone(),
        ..msg
    };
    let err = check_job::handle(&other.app, &foreign, Utc::now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Failure::Rejected(ref m) if m.contains("does not belong")),
        "{err}"
    );
    assert_eq!(
        e.store
            .segment(&e.account, &seg)
            .await
            .unwrap()
            .unwrap()
            .name,
        "US sessions"
    );
    // A report naming a foreign segment is refused.
    let request = json!({"accountId": other.account, "object": "session", "dateRange": {"startDate": "2024-06-01", "endDate": "2024-06-30"}, "segments": [seg]});
    assert!(
        report::handle(&other.app, &request, "r", Utc::now())
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_is_recorded_with_its_error() {
    let e = env().await;
    // A catalog whose sessions table does not exist in the warehouse.
    let mut catalog: Value =
        serde_json::from_str(segments_core::catalog::DEFAULT_CATALOG_JSON).unwrap();
    catalog["objects"]["session"]["table"] = "no_such_table".into();
    let mut app = e.app.clone();
    app.catalog = Arc::new(Catalog::from_json(&catalog.to_string()).unwrap());
    let seg = uuid();
    create_segment::handle(
        &app,
        &create(&e.account, us_sessions(&seg)),
        "m",
        Utc::now(),
    )
    .await
    .unwrap();
    let (_, out) = check(&e).await;
    assert_eq!(
        out,
        Checked::Finished {
            status: "failed".into(),
            applied: true,
            notified: true
        }
    );
    let row = e.store.segment(&e.account, &seg).await.unwrap().unwrap();
    assert_eq!(row.query_status, "failed");
    let events = captured(&format!("channel-{}", e.account)).await;
    assert!(
        events[0]["data"]["error"]
            .as_str()
            .unwrap()
            .contains("no_such_table"),
        "{events:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_job_is_requeued_then_cancelled_after_the_deadline() {
    // BigQuery with asynchronous jobs; this test's project is held, so its
    // build really stays queued (RUNNING to the API) until cancelled.
    let url = async_emulator_url(&stack_env());
    let project = format!("held-{}", &uuid()[..8]);
    let e = env_with(|v| {
        v.insert("BIGQUERY_BASE_URL".into(), url.clone());
        v.insert("BIGQUERY_PROJECT".into(), project.clone());
    })
    .await;
    hold_jobs(&url, &project).await;
    let seg = uuid();
    let out = create_segment::handle(
        &e.app,
        &create(&e.account, us_sessions(&seg)),
        "m",
        Utc::now(),
    )
    .await
    .unwrap();
    let job = out.segments[0].job_id.clone().unwrap();
    let bodies = receive(&e, &e.check_queue).await;
    let msg = CheckJobMessage::parse(bodies[0].as_bytes()).unwrap();
    // A one-second wait inside the check keeps the test short.
    let mut app = e.app.clone();
    app.schedule.window = 1;
    // Still running early on: checked again 2 s later.
    let first = check_job::handle(&app, &msg, msg.started_at + Duration::seconds(2))
        .await
        .unwrap();
    assert_eq!(
        first,
        Checked::Requeued {
            delay: 2,
            attempt: 1
        }
    );
    let next = CheckJobMessage::parse(receive(&e, &e.check_queue).await[0].as_bytes()).unwrap();
    assert_eq!(next.attempt, 1);
    // Five minutes after startedAt: cancelled and recorded.
    let last = check_job::handle(&app, &next, msg.started_at + Duration::seconds(301))
        .await
        .unwrap();
    assert_eq!(last, Checked::Canceled { notified: true });
    assert_eq!(
        e.store
            .segment(&e.account, &seg)
            .await
            .unwrap()
            .unwrap()
            .query_status,
        "canceled"
    );
    // On the wire: the build's insert, one wait that timed out, then at the
    // deadline one status read and the cancel.
    let calls = api_calls(&url, &project).await[&job].clone();
    let expected: std::collections::BTreeMap<String, u32> = [
        ("jobs.insert", 1),
        ("getQueryResults", 1),
        ("jobs.get", 1),
        ("jobs.cancel", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(calls, expected);
    // BigQuery really stopped the job.
    let status = e.app.ports.warehouse.status(&job).await.unwrap();
    assert_eq!(
        (status.state.as_str(), status.error_reason.as_deref()),
        ("DONE", Some("stopped"))
    );
    release_jobs(&url, &project).await;
    let events = captured(&format!("channel-{}", e.account)).await;
    assert_eq!(events.last().unwrap()["data"]["queryStatus"], "canceled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_or_pusher_down_still_records_the_status() {
    let e = env_with(|v| {
        v.insert("REDIS_URL".into(), "redis://127.0.0.1:1".into());
        v.insert("PUSHER_HOST".into(), "http://127.0.0.1:1".into());
    })
    .await;
    let seg = uuid();
    create_segment::handle(
        &e.app,
        &create(&e.account, us_sessions(&seg)),
        "m",
        Utc::now(),
    )
    .await
    .unwrap();
    let (_, out) = check(&e).await;
    assert_eq!(
        out,
        Checked::Finished {
            status: "done".into(),
            applied: true,
            notified: false
        }
    );
    assert_eq!(
        e.store
            .segment(&e.account, &seg)
            .await
            .unwrap()
            .unwrap()
            .query_status,
        "done"
    );
    let _ = (
        &e.report_queue,
        Cache::get(&*e.app.ports.cache, "x").await.is_err(),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_message_in_a_batch_fails_alone() {
    let e = env().await;
    let seg = uuid();
    let good = json!({"action": "create", "accountId": e.account, "segment": us_sessions(&seg)})
        .to_string();
    let event: aws_lambda_events::sqs::SqsEvent = serde_json::from_value(json!({"Records": [
        {"messageId": "good-1", "body": good, "attributes": {}, "messageAttributes": {}},
        {"messageId": "bad-1", "body": "{not json", "attributes": {}, "messageAttributes": {}},
        {"messageId": "bad-2", "body": json!({"action": "explode", "accountId": e.account}).to_string(), "attributes": {}, "messageAttributes": {}}
    ]}))
    .unwrap();
    let app = &e.app;
    let resp = segments_infra::lambda::for_each_message(event, 2, |m| async move {
        let cmd =
            SegmentCommand::parse(segments_infra::lambda::body(&m)).map_err(|x| x.to_string())?;
        create_segment::handle(app, &cmd, m.message_id.as_deref().unwrap_or(""), Utc::now())
            .await
            .map(|_| ())
            .map_err(|x| x.to_string())
    })
    .await;
    let mut failed: Vec<String> = resp
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    failed.sort();
    assert_eq!(failed, vec!["bad-1", "bad-2"]);
    assert!(
        e.store.segment(&e.account, &seg).await.unwrap().is_some(),
        "the good message was handled"
    );
}

/// expire-all does not rebuild an account's segments in one invocation (past
/// ~60 segments that outlived the 120 s timeout and went to the DLQ): it
/// queues one rebuild per segment on create-segment's own queue, each a short
/// invocation of its own that drops and rebuilds one table.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expire_all_fans_out_one_rebuild_message_per_segment() {
    let mut e = env().await;
    let queue = e
        .sqs
        .client()
        .create_queue()
        .queue_name(format!("flow-create-{}", &uuid()[..8]))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_string();
    e.app.create_segment_queue_url = Some(queue.clone());
    let mut segs: Vec<String> = (0..3).map(|_| uuid()).collect();
    segs.sort();
    for (i, s) in segs.iter().enumerate() {
        // Names are unique in an account.
        let mut seg = us_sessions(s);
        seg["name"] = json!(format!("US sessions {i}"));
        create_segment::handle(
            &e.app,
            &create(&e.account, seg),
            &format!("m-{s}"),
            Utc::now(),
        )
        .await
        .unwrap();
    }
    assert_eq!(receive_n(&e, &e.check_queue, 3).await.len(), 3);

    let cmd = SegmentCommand::parse(
        json!({"action": "expire-all", "accountId": e.account, "dropTables": true})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let out = create_segment::handle(&e.app, &cmd, "expire-1", Utc::now())
        .await
        .unwrap();
    let mut queued: Vec<String> = out.segments.iter().map(|s| s.segment_id.clone()).collect();
    queued.sort();
    assert_eq!(queued, segs);
    assert!(
        out.segments
            .iter()
            .all(|s| s.query_status == "queued" && s.job_id.is_none())
    );
    // Nothing was built in the fan-out invocation itself.
    assert!(receive(&e, &e.check_queue).await.is_empty());

    let bodies = receive_n(&e, &queue, 3).await;
    let mut rebuilt = Vec::new();
    for (i, body) in bodies.iter().enumerate() {
        let cmd = SegmentCommand::parse(body.as_bytes()).unwrap();
        let SegmentCommand::Rebuild {
            segment_id,
            drop_table,
            ..
        } = &cmd
        else {
            panic!("not a rebuild: {body}");
        };
        assert!(*drop_table, "{body}");
        let out = create_segment::handle(&e.app, &cmd, &format!("rebuild-{i}"), Utc::now())
            .await
            .unwrap();
        assert_eq!(out.segments.len(), 1);
        assert_eq!(out.segments[0].query_status, "in-progress");
        rebuilt.push(segment_id.clone());
    }
    rebuilt.sort();
    assert_eq!(rebuilt, segs);
    // One check per rebuild. (A build is a run of several statements, which the
    // synchronous emulator executes inside jobs.insert: on a slow machine the
    // creates' checks come back after their visibility timeout meanwhile, so
    // the rebuilds' are counted by job id.)
    let mut rebuild_jobs = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while rebuild_jobs.len() < 3 && std::time::Instant::now() < deadline {
        for body in receive(&e, &e.check_queue).await {
            let m = CheckJobMessage::parse(body.as_bytes()).unwrap();
            if m.action.as_str() == "rebuild-segment" {
                rebuild_jobs.insert(m.job_id);
            }
        }
    }
    assert_eq!(rebuild_jobs.len(), 3);
}
