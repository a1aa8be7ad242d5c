//! The handlers against a Postgres warehouse (`WAREHOUSE=postgres`) on the
//! local stack: create -> check -> data change -> cronjob refresh -> report ->
//! check, with jobs running as the account's role under the functions' own
//! NOINHERIT login, and no BigQuery involved.

use chrono::Utc;
use segments_core::Catalog;
use segments_core::jobs::QueryStatus;
use segments_core::messages::{CheckJobMessage, CronjobMessage, SegmentCommand};
use segments_handlers::check_job::{self, Checked};
use segments_handlers::{App, create_segment, cronjob, report};
use segments_infra::aws::SqsQueue;
use segments_infra::cache::RedisCache;
use segments_infra::config::Config;
use segments_infra::pg_warehouse::{self, account_role};
use segments_infra::ports::{Cache, SegmentStore};
use segments_infra::postgres::PgStore;
use segments_infra::wiring::Ports;
use segments_tests::lambda::{fresh_uuid as uuid, stack_env};
use segments_tests::pg_warehouse::{Cleanup, PgWarehouse, connect, database_url};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

async fn receive(sqs: &SqsQueue, url: &str, n: usize) -> Vec<String> {
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while out.len() < n && std::time::Instant::now() < deadline {
        let r = sqs
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
    }
    out
}

async fn check_all(app: &App, sqs: &SqsQueue, queue: &str, n: usize) -> Vec<Checked> {
    let bodies = receive(sqs, queue, n).await;
    assert_eq!(bodies.len(), n, "{bodies:?}");
    let mut out = Vec::new();
    for b in bodies {
        let msg = CheckJobMessage::parse(b.as_bytes()).unwrap();
        // Postgres jobs are quick; wait for each to end, as a later check would.
        app.ports
            .warehouse
            .wait(&msg.job_id, Duration::from_secs(30))
            .await
            .unwrap();
        out.push(check_job::handle(app, &msg, Utc::now()).await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_check_refresh_report_on_a_postgres_warehouse() {
    let mut vars = stack_env();
    let sqs = segments_tests::lambda::local_queues(&mut vars, "pgflow").await;
    let check_queue = vars["CHECK_JOB_QUEUE_URL"].clone();
    let cron_queue = vars["CRONJOB_QUEUE_URL"].clone();
    // The functions' login: NOINHERIT, so it reads no account's data itself.
    let account = uuid();
    let service = format!("svc_{}", &account[..8]);
    let admin = connect().await;
    admin
        .batch_execute(&format!("CREATE ROLE \"{service}\" LOGIN NOINHERIT"))
        .await
        .unwrap();
    let admin_url = database_url();
    let service_url = format!(
        "postgres://{service}@{}",
        admin_url.split_once('@').map(|(_, r)| r).unwrap()
    );
    vars.insert("WAREHOUSE".into(), "postgres".into());
    vars.insert("WAREHOUSE_URL".into(), service_url);
    vars.remove("BIGQUERY_BASE_URL");
    vars.remove("BIGQUERY_PROJECT");
    vars.insert("BIGQUERY_DATASET_PREFIX".into(), "pgflow_".into());
    let config = Config::from_map(&vars).unwrap();
    let store = PgStore::connect(&config.database_url.0, 4).unwrap();
    store.migrate().await.unwrap();
    store.upsert_account(&account, "Acme", "UTC").await.unwrap();
    let mut ports = Ports::connect(&config).await.unwrap();
    ports.queue = Arc::new(sqs.clone());
    let app = App::new(&config, ports, Catalog::default_catalog());
    let schema = app.dataset(&account);
    let _cleanup = Cleanup {
        schemas: vec![schema.clone()],
        roles: vec![account_role(&schema), service.clone()],
    };
    let w = PgWarehouse::fixture_in(&schema).await;
    pg_warehouse::install(&admin_url, &service).await.unwrap();
    pg_warehouse::provision_account(&admin_url, &schema, &service)
        .await
        .unwrap();

    // create: the stored cronjob query is Postgres's; the build runs as the account's role.
    let seg = uuid();
    let cmd = SegmentCommand::parse(
        json!({"action": "create", "accountId": account, "segment": {"id": seg, "name": "US sessions",
            "ruleGroups": [{"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
            "g0": {"type": "dimension", "key": "country", "condition": "equals", "value": "us"}}]}})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let out = create_segment::handle(&app, &cmd, "msg-1", Utc::now())
        .await
        .unwrap();
    let table = out.segments[0].table.clone();
    let row = store.segment(&account, &seg).await.unwrap().unwrap();
    assert!(
        row.query.as_deref().unwrap().contains("\nLOCK TABLE \""),
        "{:?}",
        row.query
    );
    let checked = check_all(&app, &sqs, &check_queue, 1).await;
    assert!(
        matches!(&checked[0], Checked::Finished { status, applied: true, .. } if status == "done"),
        "{checked:?}"
    );
    let row = store.segment(&account, &seg).await.unwrap().unwrap();
    assert_eq!(row.query_status, "done");
    assert_eq!(row.total_bytes_billed, None);
    assert_eq!(w.members(&table).await.unwrap(), vec!["s1", "s2"]);
    let owner = w
        .column(&format!(
            "SELECT tableowner FROM pg_tables WHERE schemaname = '{schema}' AND tablename = '{table}'"
        ))
        .await
        .unwrap();
    assert_eq!(owner, vec![account_role(&schema)]);

    // The data changes; the account's refresh brings the table up to date.
    w.run_bigquery_script(
        "INSERT INTO {{dataset}}.sessions (session_id, started_at, country, device_type) VALUES ('s8', TIMESTAMP '2024-06-15 13:00:00+00', 'US', 'Desktop')",
    )
    .await;
    let fan = cronjob::fan_out(&app, Utc::now()).await.unwrap();
    assert!(fan.accounts >= 1);
    // Every account of the database with refreshable segments gets one: find ours.
    let mut mine = Vec::new();
    loop {
        let r = sqs
            .client()
            .receive_message()
            .queue_url(&cron_queue)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        if r.messages().is_empty() {
            break;
        }
        mine.extend(
            r.messages()
                .iter()
                .filter_map(|m| m.body().map(String::from))
                .filter(|b| b.contains(&account)),
        );
    }
    assert_eq!(mine.len(), 1, "{mine:?}");
    let cron = CronjobMessage::parse(mine[0].as_bytes()).unwrap();
    let refreshed = cronjob::refresh_account(&app, &cron, Utc::now(), Utc::now())
        .await
        .unwrap();
    assert_eq!(refreshed.submitted.len(), 1, "{refreshed:?}");
    let done = app
        .ports
        .warehouse
        .wait(&refreshed.submitted[0], Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        (done.state.as_str(), done.error_reason.as_deref()),
        ("DONE", None),
        "{done:?}"
    );
    assert_eq!(w.members(&table).await.unwrap(), vec!["s1", "s2", "s8"]);
    // The refresh is tracked like a build: its check records it done (the plain
    // refresh on Postgres, docs/history.md), with the revision it ran.
    let checked = check_all(&app, &sqs, &check_queue, 1).await;
    assert!(
        matches!(&checked[0], Checked::Finished { status, .. } if status == "done"),
        "{checked:?}"
    );
    let refresh_row = store.job(&refreshed.submitted[0]).await.unwrap().unwrap();
    assert_eq!(refresh_row.status, QueryStatus::Done);

    // A report filtered by the segment: its result table, read back into the cache.
    let request = json!({"accountId": account, "accountTimeZone": "UTC", "reportName": "devices", "object": "session",
        "dateRange": {"startDate": "2024-06-01", "endDate": "2024-06-30"}, "dimensions": ["device_type"], "metrics": ["sessions"],
        "segments": [seg], "sort": {"by": "sessions", "direction": "desc"}});
    let resp = report::handle(&app, &request, "req-1", Utc::now())
        .await
        .unwrap();
    assert_eq!(resp.segment_tables.len(), 1);
    let checked = check_all(&app, &sqs, &check_queue, 1).await;
    assert!(
        matches!(&checked[0], Checked::Finished { applied: true, .. }),
        "{checked:?}"
    );
    let cache = RedisCache::connect(&vars["REDIS_URL"]).await.unwrap();
    let rows = cache
        .get(&resp.segment_tables[0].cache_key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(rows, r#"[["Desktop","2"],["mobile","1"]]"#);
}
