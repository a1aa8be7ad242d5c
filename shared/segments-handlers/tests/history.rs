//! SPEC §11 through the handlers on the real local stack: rule revisions
//! (create, update, revert), the population rows each build writes with its
//! revision, and a revert refused to another account.

use chrono::Duration;
use chrono::Utc;
use segments_core::Catalog;
use segments_core::jobs::QueryStatus;
use segments_core::messages::{CheckJobMessage, CronjobMessage, SegmentCommand};
use segments_handlers::check_job::{self, Checked};
use segments_handlers::{App, Failure, create_segment, cronjob};
use segments_infra::aws::SqsQueue;
use segments_infra::config::Config;
use segments_infra::ports::{QueryJob, SegmentStore};
use segments_infra::postgres::PgStore;
use segments_infra::wiring::Ports;
use serde_json::{Value, json};
use std::sync::Arc;

use segments_tests::lambda::{fresh_uuid as uuid, stack_env};
use segments_tests::warehouse::{Warehouse, async_emulator_url, hold_jobs, release_jobs};

struct Env {
    app: App,
    account: String,
    sqs: SqsQueue,
    check_queue: String,
    store: PgStore,
    warehouse: Warehouse,
}

async fn env() -> Env {
    env_with(|_| {}).await
}

async fn env_with(tweak: impl FnOnce(&mut std::collections::HashMap<String, String>)) -> Env {
    let mut vars = stack_env();
    let sqs = segments_tests::lambda::local_queues(&mut vars, "hist").await;
    let check_queue = vars["CHECK_JOB_QUEUE_URL"].clone();
    vars.insert("BIGQUERY_DATASET_PREFIX".into(), "hist_".into());
    tweak(&mut vars);
    let config = Config::from_map(&vars).unwrap();
    let store = PgStore::connect(&config.database_url.0, 4).unwrap();
    store.migrate().await.unwrap();
    let account = uuid();
    store.upsert_account(&account, "Acme", "UTC").await.unwrap();
    let mut ports = Ports::connect(&config).await.unwrap();
    ports.queue = Arc::new(sqs.clone());
    let app = App::new(&config, ports, Catalog::default_catalog());
    let warehouse = Warehouse::fixture_in(&app.dataset(&account)).await;
    Env {
        app,
        account,
        sqs,
        check_queue,
        store,
        warehouse,
    }
}

async fn receive_one(e: &Env) -> CheckJobMessage {
    let mut bodies = Vec::new();
    for _ in 0..10 {
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
            bodies.extend(m.body().map(String::from));
            // Deleted, so it cannot come back after the visibility timeout.
            if let Some(handle) = m.receipt_handle() {
                e.sqs
                    .client()
                    .delete_message()
                    .queue_url(&e.check_queue)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .unwrap();
            }
        }
        if !bodies.is_empty() {
            break;
        }
    }
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    CheckJobMessage::parse(bodies[0].as_bytes()).unwrap()
}

/// Handles the one queued check (the emulator has finished the job already).
async fn check(e: &Env) -> CheckJobMessage {
    let msg = receive_one(e).await;
    let out = check_job::handle(&e.app, &msg, Utc::now()).await.unwrap();
    assert!(
        matches!(&out, Checked::Finished { status, .. } if status == "done"),
        "{out:?}"
    );
    msg
}

fn rules(country: &str) -> Value {
    json!([{"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
        "g0": {"type": "dimension", "key": "country", "condition": "equals", "value": country}}])
}

fn command(v: Value) -> SegmentCommand {
    SegmentCommand::parse(v.to_string().as_bytes()).unwrap()
}

async fn population(e: &Env, seg: &str) -> Vec<String> {
    e.warehouse
        .column(&format!(
            "SELECT CONCAT(run_id, '|', CAST(revision AS STRING), '|', CAST(population AS STRING), '|', \
             CAST(entered AS STRING), '|', CAST(exited AS STRING)) FROM {} WHERE segment_id = '{seg}'",
            e.warehouse.table("segment_population")
        ))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_then_revert_restores_the_rules_the_table_and_adds_revisions() {
    let e = env().await;
    let seg = uuid();
    let table = segments_core::model::segment_table_name(&seg);
    let acc = e.account.clone();

    // Revision 1: US sessions (s1 "US", s2 "us").
    let create = command(json!({"action": "create", "accountId": acc,
        "segment": {"id": seg, "name": "US", "ruleGroups": rules("us")}}));
    create_segment::handle(&e.app, &create, "m-create", Utc::now())
        .await
        .unwrap();
    let build1 = check(&e).await;
    assert_eq!(build1.job_input_data.revision, Some(1));
    assert_eq!(e.warehouse.members(&table).await.unwrap(), ["s1", "s2"]);

    // Revision 2: German sessions (s3).
    let update = command(json!({"action": "update", "accountId": acc,
        "segment": {"id": seg, "name": "DE", "description": "changed", "ruleGroups": rules("DE")}}));
    create_segment::handle(&e.app, &update, "m-update", Utc::now())
        .await
        .unwrap();
    let build2 = check(&e).await;
    assert_eq!(e.warehouse.members(&table).await.unwrap(), ["s3"]);

    // A foreign account cannot revert it: refused, nothing written, nothing queued.
    let other = uuid();
    e.store
        .upsert_account(&other, "Other", "UTC")
        .await
        .unwrap();
    let foreign =
        command(json!({"action": "revert", "accountId": other, "segmentId": seg, "revision": 1}));
    match create_segment::handle(&e.app, &foreign, "m-foreign", Utc::now()).await {
        Err(Failure::Rejected(m)) => assert!(m.contains("does not belong"), "{m}"),
        other => panic!("foreign revert: {other:?}"),
    }
    assert!(
        e.app
            .ports
            .history
            .revisions(&other, &seg)
            .await
            .unwrap()
            .is_empty()
    );
    // An unknown revision is refused too.
    let missing =
        command(json!({"action": "revert", "accountId": acc, "segmentId": seg, "revision": 9}));
    let refused = create_segment::handle(&e.app, &missing, "m-missing", Utc::now()).await;
    assert!(
        matches!(&refused, Err(Failure::Rejected(m)) if m.contains("no revision 9")),
        "{refused:?}"
    );

    // Revision 3 reverts to 1: rules, name and table are revision 1's again.
    let revert =
        command(json!({"action": "revert", "accountId": acc, "segmentId": seg, "revision": 1}));
    let out = create_segment::handle(&e.app, &revert, "m-revert", Utc::now())
        .await
        .unwrap();
    assert_eq!(out.action, "revert");
    let build3 = check(&e).await;
    assert_eq!(build3.job_input_data.revision, Some(3));
    assert_eq!(e.warehouse.members(&table).await.unwrap(), ["s1", "s2"]);
    let row = e.store.segment(&acc, &seg).await.unwrap().unwrap();
    assert_eq!(row.name, "US");
    assert_eq!(row.description, None);
    assert_eq!(
        serde_json::from_str::<Value>(row.rule_groups.as_deref().unwrap()).unwrap(),
        rules("us")
    );
    assert_eq!(row.query_status, "done");

    // The same revert delivered again adds no revision.
    create_segment::handle(&e.app, &revert, "m-revert", Utc::now())
        .await
        .unwrap();
    let revs = e.app.ports.history.revisions(&acc, &seg).await.unwrap();
    let summary: Vec<(i64, &str, Option<i64>, &str)> = revs
        .iter()
        .map(|r| {
            (
                r.revision,
                r.action.as_str(),
                r.reverted_to,
                r.name.as_str(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (1, "create", None, "US"),
            (2, "update", None, "DE"),
            (3, "revert", Some(1), "US"),
        ]
    );
    assert_eq!(revs[2].rule_groups, revs[0].rule_groups);
    assert_eq!(revs[1].description.as_deref(), Some("changed"));

    // Each build wrote its population row with the revision that produced it.
    let mut want = vec![
        format!("{}|1|2|2|0", build1.job_id),
        format!("{}|2|1|1|2", build2.job_id),
        format!("{}|3|2|2|1", build3.job_id),
    ];
    want.sort();
    assert_eq!(population(&e, &seg).await, want);
    // Both rule changes moved the population by more than 20 %: one size
    // alert each (2 -> 1 after the update, 1 -> 2 after the revert), none for the create.
    let alerts: Vec<(Value, Value)> = captured(&format!("channel-{acc}"))
        .await
        .iter()
        .filter(|ev| ev["name"] == "PUSHER_SEGMENT_SIZE_ALERT")
        .map(|ev| {
            let data = data_of(ev);
            (data["previous"].clone(), data["current"].clone())
        })
        .collect();
    assert_eq!(
        alerts,
        [
            (
                json!({"runId": build1.job_id, "revision": 1, "population": 2}),
                json!({"runId": build2.job_id, "revision": 2, "population": 1})
            ),
            (
                json!({"runId": build2.job_id, "revision": 2, "population": 1}),
                json!({"runId": build3.job_id, "revision": 3, "population": 2})
            ),
        ]
    );
    // And segment_jobs knows which revision each run ran.
    let runs = e.app.ports.history.runs(&acc, &seg, 10).await.unwrap();
    let ran: Vec<(String, Option<i64>, String)> = runs
        .iter()
        .map(|r| (r.job_id.clone(), r.revision, r.status.clone()))
        .collect();
    assert_eq!(
        ran,
        [
            (build3.job_id.clone(), Some(3), "done".to_string()),
            (build2.job_id.clone(), Some(2), "done".to_string()),
            (build1.job_id.clone(), Some(1), "done".to_string()),
        ]
    );

    // The read side: revisions, runs and the population series in one answer.
    let h = segments_handlers::history::read(&e.app, &acc, &seg, "read-1")
        .await
        .unwrap();
    assert_eq!(h.revisions.len(), 3);
    assert_eq!(h.runs.len(), 3);
    let series: Vec<(String, i64, i64, i64, i64)> = h
        .population
        .iter()
        .map(|p| {
            (
                p.run_id.clone(),
                p.revision,
                p.population,
                p.entered,
                p.exited,
            )
        })
        .collect();
    assert_eq!(
        series,
        [
            (build3.job_id.clone(), 3, 2, 2, 1),
            (build2.job_id.clone(), 2, 1, 1, 2),
            (build1.job_id.clone(), 1, 2, 2, 0),
        ]
    );
    assert!(h.population.iter().all(|p| p.ran_at.is_some()));
    assert!(matches!(
        segments_handlers::history::read(&e.app, &other, &seg, "read-2").await,
        Err(Failure::Rejected(_))
    ));
}

async fn captured(channel: &str) -> Vec<Value> {
    let url = format!("{}/captured", stack_env()["PUSHER_HOST"]);
    let all: Vec<Value> = reqwest::get(url).await.unwrap().json().await.unwrap();
    all.into_iter()
        .filter(|e| e["channels"][0] == channel)
        .collect()
}

/// An event's data (Pusher sends it as a JSON string).
fn data_of(ev: &Value) -> Value {
    match &ev["data"] {
        Value::String(s) => serde_json::from_str(s).unwrap(),
        v => v.clone(),
    }
}

async fn refresh(e: &Env) -> String {
    let cron = CronjobMessage::parse(
        json!({"accountId": e.account, "timeZone": "UTC"})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let out = cronjob::refresh_account(&e.app, &cron, Utc::now(), Utc::now())
        .await
        .unwrap();
    assert_eq!(out.submitted.len(), 1, "{out:?}");
    out.submitted[0].clone()
}

async fn build(e: &Env, seg: &str) -> CheckJobMessage {
    let create = command(json!({"action": "create", "accountId": e.account,
        "segment": {"id": seg, "name": "US", "ruleGroups": rules("us")}}));
    create_segment::handle(&e.app, &create, "m-create", Utc::now())
        .await
        .unwrap();
    check(e).await
}

/// GIVEN a built segment WHEN its refresh fails on the warehouse THEN the run is
/// recorded failed with the error, the browser is told, the segment stays done
/// with its last good members, and no history row is written for that run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_that_fails_is_visible_on_the_segment() {
    let e = env().await;
    let seg = uuid();
    let table = segments_core::model::segment_table_name(&seg);
    let build = build(&e, &seg).await;
    // The source disappears: the refresh's first read fails.
    e.warehouse
        .run(&format!("DROP TABLE {}", e.warehouse.table("sessions")))
        .await
        .unwrap();
    let job = refresh(&e).await;
    let msg = receive_one(&e).await;
    assert_eq!(
        (msg.job_id.as_str(), msg.action.as_str()),
        (job.as_str(), "refresh-segment")
    );
    assert_eq!(msg.job_input_data.revision, Some(1));
    let out = check_job::handle(&e.app, &msg, Utc::now()).await.unwrap();
    assert_eq!(
        out,
        Checked::Finished {
            status: "failed".into(),
            applied: true,
            notified: true
        }
    );
    let runs = e
        .app
        .ports
        .history
        .runs(&e.account, &seg, 10)
        .await
        .unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (
            runs[0].job_id.as_str(),
            runs[0].action.as_str(),
            runs[0].status.as_str(),
            runs[0].revision
        ),
        (job.as_str(), "refresh-segment", "failed", Some(1))
    );
    let error = runs[0].error.clone().unwrap_or_default();
    assert!(error.to_lowercase().contains("sessions"), "{error}");
    let row = e.store.segment(&e.account, &seg).await.unwrap().unwrap();
    assert_eq!(row.query_status, "done");
    assert_eq!(e.warehouse.members(&table).await.unwrap(), ["s1", "s2"]);
    let event = captured(&format!("channel-{}", e.account))
        .await
        .last()
        .cloned()
        .unwrap();
    let data = data_of(&event);
    assert_eq!(data["segmentId"], seg);
    assert_eq!(data["queryStatus"], "done");
    assert_eq!(data["run"]["status"], "failed");
    assert_eq!(data["run"]["action"], "refresh-segment");
    assert_eq!(data["jobId"], job);
    assert!(data["error"].as_str().is_some_and(|m| !m.is_empty()));
    assert_eq!(
        population(&e, &seg).await,
        [format!("{}|1|2|2|0", build.job_id)]
    );
}

/// GIVEN a refresh that stays queued on BigQuery WHEN its check comes after the
/// deadline THEN it is cancelled and recorded like a build, and the segment stays done.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_running_past_the_deadline_is_cancelled() {
    let url = async_emulator_url(&stack_env());
    let project = format!("histheld-{}", &uuid()[..8]);
    let e = env_with(|v| {
        v.insert("BIGQUERY_BASE_URL".into(), url.clone());
        v.insert("BIGQUERY_PROJECT".into(), project.clone());
    })
    .await;
    // This project's own source table, on the asynchronous emulator.
    let dataset = e.app.dataset(&e.account);
    let w = &e.app.ports.warehouse;
    w.ensure_dataset(&dataset).await.unwrap();
    let sql = format!(
        "CREATE OR REPLACE TABLE `{project}.{dataset}.sessions` AS SELECT 's1' AS session_id, 'us' AS country"
    );
    let id = format!("histheld_src_{}", &uuid()[..8]);
    w.submit(&QueryJob {
        job_id: id.clone(),
        sql,
        dataset: dataset.clone(),
        labels: vec![],
        batch: false,
        maximum_bytes_billed: e.app.maximum_bytes_billed,
    })
    .await
    .unwrap();
    w.wait(&id, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let seg = uuid();
    build(&e, &seg).await;
    hold_jobs(&url, &project).await;
    let job = refresh(&e).await;
    let msg = receive_one(&e).await;
    let mut app = e.app.clone();
    app.schedule.window = 1;
    let out = check_job::handle(&app, &msg, msg.started_at + Duration::seconds(301))
        .await
        .unwrap();
    release_jobs(&url, &project).await;
    assert_eq!(out, Checked::Canceled { notified: true });
    let status = e.app.ports.warehouse.status(&job).await.unwrap();
    assert_eq!(
        (status.state.as_str(), status.error_reason.as_deref()),
        ("DONE", Some("stopped"))
    );
    let runs = e.app.ports.history.runs(&e.account, &seg, 1).await.unwrap();
    assert_eq!(
        (runs[0].job_id.as_str(), runs[0].status.as_str()),
        (job.as_str(), "canceled")
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
}

/// The bytes guard reads what the segment's last run billed: a refresh that
/// billed over the threshold takes the segment out of the next schedule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bytes_guard_uses_what_the_last_refresh_billed() {
    let e = env().await;
    let seg = uuid();
    build(&e, &seg).await;
    let threshold = 10 * 1024 * 1024 * 1024_i64;
    let eligible = |e: &Env| {
        let (store, account) = (e.store.clone(), e.account.clone());
        async move {
            store
                .eligible_for_refresh(&account, threshold)
                .await
                .unwrap()
                .len()
        }
    };
    assert_eq!(eligible(&e).await, 1);
    let job = refresh(&e).await;
    // The warehouse reports what the run billed (the emulator bills 0; BigQuery
    // reports it on the job); recording 11 GiB for this run:
    e.store
        .finish_job(
            &job,
            QueryStatus::Done,
            Some(threshold + threshold / 10),
            None,
            Utc::now(),
        )
        .await
        .unwrap();
    let row = e.store.segment(&e.account, &seg).await.unwrap().unwrap();
    assert_eq!(row.total_bytes_billed, Some(threshold + threshold / 10));
    assert_eq!(eligible(&e).await, 0);
}
