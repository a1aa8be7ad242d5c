//! SPEC §11 through the handlers on the real local stack: rule revisions
//! (create, update, revert), the population rows each build writes with its
//! revision, and a revert refused to another account.

use chrono::Utc;
use segments_core::Catalog;
use segments_core::messages::{CheckJobMessage, SegmentCommand};
use segments_handlers::check_job::{self, Checked};
use segments_handlers::{App, Failure, create_segment};
use segments_infra::aws::SqsQueue;
use segments_infra::config::Config;
use segments_infra::ports::SegmentStore;
use segments_infra::postgres::PgStore;
use segments_infra::wiring::Ports;
use serde_json::{Value, json};
use std::sync::Arc;

use segments_tests::lambda::{fresh_uuid as uuid, stack_env};
use segments_tests::warehouse::Warehouse;

struct Env {
    app: App,
    account: String,
    sqs: SqsQueue,
    check_queue: String,
    store: PgStore,
    warehouse: Warehouse,
}

async fn env() -> Env {
    let mut vars = stack_env();
    let sqs = segments_tests::lambda::local_queues(&mut vars, "hist").await;
    let check_queue = vars["CHECK_JOB_QUEUE_URL"].clone();
    vars.insert("BIGQUERY_DATASET_PREFIX".into(), "hist_".into());
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

/// Handles the one queued check (the emulator has finished the job already).
async fn check(e: &Env) -> CheckJobMessage {
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
        bodies.extend(
            r.messages()
                .iter()
                .filter_map(|m| m.body().map(String::from)),
        );
        if !bodies.is_empty() {
            break;
        }
    }
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    let msg = CheckJobMessage::parse(bodies[0].as_bytes()).unwrap();
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
}
