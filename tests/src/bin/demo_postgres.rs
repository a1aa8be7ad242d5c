//! The main job on a Postgres warehouse, locally, through the real function
//! binaries with `WAREHOUSE=postgres` and no BigQuery emulator: the fixture
//! warehouse moved into the present in the demo account's schema, the job
//! machinery and the account's least-privilege role, three segments built and
//! watched to the end, the scheduled refresh, and a report filtered by two
//! segments. Run with `tests/demo.sh --warehouse postgres`; running it again
//! starts over.

use chrono::Utc;
use segments_infra::pg_warehouse::{self, account_role};
use segments_infra::ports::SegmentStore;
use segments_tests::fixture;
use segments_tests::lambda::{LocalLambdas, drain, drain_n, local_queues, sqs_event, stack_env};
use segments_tests::pg_warehouse::{PgWarehouse, connect, database_url};
use segments_tests::repo_root;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ACCOUNT: &str = "0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11";
const ZONE: &str = "UTC";
const SERVICE: &str = "segments_demo_svc";

fn fail(step: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("\nFAILED while {step}:\n  {err}");
    eprintln!(
        "\nWhat to do: make sure Postgres is up (tests/stack/up.sh) and the binaries are built"
    );
    eprintln!(
        "(cargo build --workspace --bins), then run tests/demo.sh --warehouse postgres again."
    );
    std::process::exit(1)
}

fn segments() -> Vec<Value> {
    vec![
        json!({"id": "9d2a6b3f-1c8e-4d4f-8a21-3b4c5d6e7f01", "name": "US sessions, last 30 days", "ruleGroups": [{
            "mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
            "dateRangeFilter": {"type": "previous-period", "numberOfDaysPrevious": 30},
            "g0": {"type": "dimension", "key": "country", "condition": "equals", "value": "us"}}]}),
        json!({"id": "9d2a6b3f-1c8e-4d4f-8a21-3b4c5d6e7f02", "name": "Returning users", "ruleGroups": [{
            "mainOperator": "include", "segmentObject": "user", "conditionFocus": "metric",
            "g0": {"type": "metric", "key": "sessions", "condition": "greater-than", "value": 1}}]}),
        json!({"id": "9d2a6b3f-1c8e-4d4f-8a21-3b4c5d6e7f03", "name": "VIP people", "ruleGroups": [{
            "mainOperator": "include", "segmentObject": "people", "conditionFocus": "property",
            "g0": {"type": "multi-value", "key": "tags", "condition": "contains-any", "value": ["vip"]}}]}),
    ]
}

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let mut env = stack_env();
    if !env.contains_key("DATABASE_URL") {
        fail("reading .stack/env", "it is missing");
    }
    println!("1/6 the Postgres warehouse: schema, job machinery, least-privilege roles");
    let schema = format!("account_{}", ACCOUNT.replace('-', "_"));
    let admin = connect().await;
    let reset = format!(
        "DROP SCHEMA IF EXISTS \"{schema}\" CASCADE;
         DO $d$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{SERVICE}') THEN
           CREATE ROLE \"{SERVICE}\" LOGIN NOINHERIT; END IF; END $d$;"
    );
    admin
        .batch_execute(&reset)
        .await
        .unwrap_or_else(|e| fail("resetting the demo schema", e));
    // The fixture warehouse, moved so its "now" (2024-06-15 noon) is today's noon.
    let fixture_now = chrono::NaiveDate::from_ymd_opt(2024, 6, 15).unwrap_or_default();
    let days = (Utc::now().date_naive() - fixture_now).num_days();
    let rows = fixture::shifted(&fixture::warehouse(), chrono::Duration::days(days));
    let warehouse = PgWarehouse::fixture_in(&schema).await;
    warehouse
        .run(&format!(
            "DO $d$ DECLARE t text; BEGIN FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = '{schema}' LOOP
               EXECUTE format('TRUNCATE %I.%I', '{schema}', t); END LOOP; END $d$"
        ))
        .await
        .unwrap_or_else(|e| fail("emptying the fixture", e));
    let inserts: Vec<_> = rows
        .into_iter()
        .filter(|s| matches!(s, fixture::FixtureStatement::Insert { .. }))
        .collect();
    warehouse.load(&inserts).await;
    let admin_url = database_url();
    pg_warehouse::install(&admin_url, SERVICE)
        .await
        .unwrap_or_else(|e| fail("installing the job machinery", e));
    pg_warehouse::provision_account(&admin_url, &schema, SERVICE)
        .await
        .unwrap_or_else(|e| fail("provisioning the account's role", e));
    println!(
        "    schema {schema} (the fixture, {days} days later); jobs run as {}",
        account_role(&schema)
    );

    println!("2/6 the 4 functions with WAREHOUSE=postgres (no BigQuery)");
    env.insert("WAREHOUSE".into(), "postgres".into());
    env.insert(
        "WAREHOUSE_URL".into(),
        format!(
            "postgres://{SERVICE}@{}",
            admin_url
                .split_once('@')
                .map(|(_, r)| r)
                .unwrap_or_default()
        ),
    );
    for v in [
        "BIGQUERY_BASE_URL",
        "BIGQUERY_ASYNC_BASE_URL",
        "BIGQUERY_PROJECT",
    ] {
        env.remove(v);
    }
    let sqs = local_queues(&mut env, "demopg").await;
    let lambdas = LocalLambdas::start(&env, &repo_root().join("target/debug"))
        .await
        .unwrap_or_else(|e| fail("starting the functions", e));
    let store = segments_infra::postgres::PgStore::connect(&env["DATABASE_URL"], 2)
        .unwrap_or_else(|e| fail("connecting to Postgres", e));
    store
        .migrate()
        .await
        .unwrap_or_else(|e| fail("migrating Postgres", e));
    store
        .upsert_account(ACCOUNT, "Demo account", ZONE)
        .await
        .unwrap_or_else(|e| fail("creating the account", e));

    println!("3/6 creating three segments (create-segment)");
    let mut ids = Vec::new();
    for seg in segments() {
        let out = lambdas
            .invoke(
                "create-segment",
                &json!({"action": "create", "accountId": ACCOUNT, "segment": seg}).to_string(),
            )
            .unwrap_or_else(|e| fail("creating a segment", e));
        println!(
            "    {:<28} {}",
            seg["name"].as_str().unwrap_or(""),
            out["segments"][0]["queryStatus"].as_str().unwrap_or("?")
        );
        ids.push(seg["id"].as_str().unwrap_or_default().to_string());
    }

    println!("4/6 watching the builds (check-bigquery-job)");
    for _ in 0..10 {
        let checks = drain(&sqs, &env["CHECK_JOB_QUEUE_URL"], Duration::from_secs(5)).await;
        if !checks.is_empty() {
            lambdas
                .invoke("check-bigquery-job", &sqs_event(&checks))
                .unwrap_or_else(|e| fail("checking jobs", e));
        }
        let mut done = true;
        for id in &ids {
            let row = store.segment(ACCOUNT, id).await.ok().flatten();
            done &= row.is_some_and(|r| r.query_status != "in-progress");
        }
        if done {
            break;
        }
    }
    for (seg, id) in segments().iter().zip(&ids) {
        let row = store
            .segment(ACCOUNT, id)
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| fail("reading a segment", id));
        let members = warehouse
            .members(&format!("segment_{}", id.replace('-', "_")))
            .await
            .unwrap_or_default();
        println!(
            "    {:<28} {:<6} members {:?}",
            seg["name"].as_str().unwrap_or(""),
            row.query_status,
            members
        );
    }

    println!("5/6 the scheduled refresh (segment-cronjob)");
    lambdas
        .invoke("segment-cronjob", &json!({"detail-type": "Scheduled Event", "source": "aws.events", "time": Utc::now().to_rfc3339(), "detail": {}}).to_string())
        .unwrap_or_else(|e| fail("fanning out", e));
    let ours: Vec<String> = drain(&sqs, &env["CRONJOB_QUEUE_URL"], Duration::from_secs(10))
        .await
        .into_iter()
        .filter(|b| b.contains(ACCOUNT))
        .collect();
    let out = lambdas
        .invoke("segment-cronjob", &sqs_event(&ours))
        .unwrap_or_else(|e| fail("refreshing", e));
    println!("    refreshed: failures {}", out["batchItemFailures"]);

    println!("6/6 report: sessions by device, last 30 days, by two segments (report-with-segment)");
    let today = Utc::now().date_naive();
    let request = json!({"accountId": ACCOUNT, "accountTimeZone": ZONE, "reportName": "sessions-by-device", "object": "session",
        "dateRange": {"startDate": (today - chrono::Duration::days(30)).to_string(), "endDate": today.to_string()},
        "dimensions": ["device_type"], "metrics": ["sessions", "pageviews"],
        "segments": [ids[0], ids[1]], "sort": {"by": "sessions", "direction": "desc"}, "limit": 10});
    let report = lambdas
        .invoke("report-with-segment", &request.to_string())
        .unwrap_or_else(|e| fail("submitting the report", e));
    let checks = drain_n(
        &sqs,
        &env["CHECK_JOB_QUEUE_URL"],
        Some(2),
        Duration::from_secs(20),
    )
    .await;
    lambdas
        .invoke("check-bigquery-job", &sqs_event(&checks))
        .unwrap_or_else(|e| fail("finishing the report", e));
    for (t, seg) in report["segmentTables"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .zip(segments())
    {
        let table = t["table"].as_str().unwrap_or("");
        let rows = warehouse
            .column(&format!(
                "SELECT concat_ws(' ', device_type, sessions, pageviews) FROM {}",
                warehouse.table(table)
            ))
            .await
            .unwrap_or_else(|e| fail("reading the report", e));
        println!(
            "    {} -> {table}: {rows:?}",
            seg["name"].as_str().unwrap_or("")
        );
    }
    println!("\ndone in {:.1} s.", started.elapsed().as_secs_f64());
}
