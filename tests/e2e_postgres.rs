//! End to end on a Postgres warehouse: the real function binaries behind the
//! Lambda runtime API (`cargo lambda`), configured with `WAREHOUSE=postgres`
//! and no BigQuery at all, fed the files of `events/`: create, check, the
//! scheduled refresh and a report, jobs running as the account's role.
//!
//! Needs `cargo build --workspace --bins` and `.venv/bin/cargo-lambda`
//! (tests/stack/up.sh installs it), like `tests/e2e.rs`.

use segments_infra::pg_warehouse::{self, account_role};
use segments_infra::ports::SegmentStore;
use segments_tests::lambda::{
    LocalLambdas, drain, drain_n, fresh_uuid, local_queues, sqs_event, stack_env,
};
use segments_tests::pg_warehouse::{Cleanup, PgWarehouse, connect, database_url};
use segments_tests::repo_root;
use serde_json::{Value, json};
use std::time::Duration;

const DEMO_ACCOUNT: &str = "0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11";
const SESSIONS_SEGMENT: &str = "7b0c1f0e-3f1a-4a59-9a53-2f1c7d7f3b11";
const USERS_SEGMENT: &str = "5d1e2c3b-4a59-4f60-8b71-9c8d7e6f5a40";

fn no_failures(v: &Value) {
    assert_eq!(v["batchItemFailures"], json!([]), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_functions_on_a_postgres_warehouse() {
    let root = repo_root();
    let mut env = stack_env();
    let sqs = local_queues(&mut env, "e2epg").await;
    let account = fresh_uuid();
    let schema = format!("e2epg_{}", account.replace('-', "_"));
    let service = format!("svc_{}", &account[..8]);
    let _cleanup = Cleanup {
        schemas: vec![schema.clone()],
        roles: vec![account_role(&schema), service.clone()],
    };
    // The warehouse: the fixture in the account's schema, the job machinery,
    // the account's role, and the functions' own NOINHERIT login.
    let admin = connect().await;
    admin
        .batch_execute(&format!("CREATE ROLE \"{service}\" LOGIN NOINHERIT"))
        .await
        .unwrap();
    let admin_url = database_url();
    let warehouse = PgWarehouse::fixture_in(&schema).await;
    pg_warehouse::install(&admin_url, &service).await.unwrap();
    pg_warehouse::provision_account(&admin_url, &schema, &service)
        .await
        .unwrap();
    env.insert("WAREHOUSE".into(), "postgres".into());
    env.insert(
        "WAREHOUSE_URL".into(),
        format!(
            "postgres://{service}@{}",
            admin_url.split_once('@').map(|(_, r)| r).unwrap()
        ),
    );
    env.insert("BIGQUERY_DATASET_PREFIX".into(), "e2epg_".into());
    for v in [
        "BIGQUERY_BASE_URL",
        "BIGQUERY_ASYNC_BASE_URL",
        "BIGQUERY_PROJECT",
    ] {
        env.remove(v);
    }
    let store = segments_infra::postgres::PgStore::connect(&env["DATABASE_URL"], 2).unwrap();
    store.migrate().await.unwrap();
    store.upsert_account(&account, "Demo", "UTC").await.unwrap();

    let (sessions, users) = (fresh_uuid(), fresh_uuid());
    let ids = [
        (DEMO_ACCOUNT.to_string(), account.clone()),
        (SESSIONS_SEGMENT.to_string(), sessions.clone()),
        (USERS_SEGMENT.to_string(), users.clone()),
        (
            "00000000-0000-4000-8000-0000000000".to_string(),
            format!("{}-", &fresh_uuid()[..18]),
        ),
    ];
    let swap = |mut text: String| {
        for (from, to) in &ids {
            text = text.replace(from, to);
        }
        text
    };
    let event = |rel: &str| {
        swap(
            std::fs::read_to_string(root.join("events").join(rel))
                .unwrap_or_else(|e| panic!("events/{rel}: {e}")),
        )
    };
    let lambdas = LocalLambdas::start(&env, &root.join("target/debug"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let invoke = |f: &str, data: &str| lambdas.invoke(f, data).unwrap_or_else(|e| panic!("{e}"));

    // create both example segments.
    no_failures(&invoke(
        "create-segment",
        &event("create-segment/create-sqs.json"),
    ));
    let users_segment =
        swap(std::fs::read_to_string(root.join("docs/examples/returning-users.json")).unwrap());
    let direct = invoke(
        "create-segment",
        &json!({"action": "create", "accountId": account,
            "segment": serde_json::from_str::<Value>(&users_segment).unwrap()})
        .to_string(),
    );
    assert_eq!(
        direct["segments"][0]["queryStatus"], "in-progress",
        "{direct}"
    );

    // check: both builds end done.
    let checks = drain_n(
        &sqs,
        &env["CHECK_JOB_QUEUE_URL"],
        Some(2),
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(checks.len(), 2, "{checks:?}");
    no_failures(&invoke("check-bigquery-job", &sqs_event(&checks)));
    for s in [&sessions, &users] {
        let row = store.segment(&account, s).await.unwrap().unwrap();
        assert_eq!(row.query_status, "done", "{s}");
    }
    // As on BigQuery: the sessions example looks at the last 30 days (empty);
    // the users example is lifetime: u1 and u2.
    let sessions_table = format!("segment_{}", sessions.replace('-', "_"));
    let users_table = format!("segment_{}", users.replace('-', "_"));
    assert_eq!(
        warehouse.members(&sessions_table).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        warehouse.members(&users_table).await.unwrap(),
        vec!["u1", "u2"]
    );

    // the schedule fans out; the account's refresh runs.
    let fan = invoke("segment-cronjob", &event("segment-cronjob/schedule.json"));
    assert!(fan["accounts"].as_u64().unwrap() >= 1, "{fan}");
    let ours: Vec<String> = drain(&sqs, &env["CRONJOB_QUEUE_URL"], Duration::from_secs(30))
        .await
        .into_iter()
        .filter(|b| b.contains(&account))
        .collect();
    assert_eq!(ours.len(), 1);
    no_failures(&invoke("segment-cronjob", &sqs_event(&ours)));
    assert_eq!(
        warehouse.members(&users_table).await.unwrap(),
        vec!["u1", "u2"]
    );

    // a report filtered by both segments writes one result table per segment.
    let report = invoke(
        "report-with-segment",
        &event("report-with-segment/report.json"),
    );
    let tables = report["segmentTables"].as_array().unwrap().clone();
    assert_eq!(tables.len(), 2, "{report}");
    let checks = drain_n(
        &sqs,
        &env["CHECK_JOB_QUEUE_URL"],
        Some(2),
        Duration::from_secs(30),
    )
    .await;
    no_failures(&invoke("check-bigquery-job", &sqs_event(&checks)));
    let devices = |n: usize| {
        format!(
            "SELECT device_type FROM {}",
            warehouse.table(tables[n]["table"].as_str().unwrap())
        )
    };
    assert_eq!(
        warehouse.column(&devices(0)).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        warehouse.column(&devices(1)).await.unwrap(),
        vec!["Desktop", "mobile"]
    );
}
