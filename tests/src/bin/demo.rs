//! The main job, locally, through the real function binaries: a demo account
//! and a generated warehouse, three segments of different objects and focuses
//! built and watched to the end, the scheduled refresh, and a report filtered
//! by two segments. Run with `tests/demo.sh`; running it again starts over.
//! `tests/demo.sh --segment`: the account's warehouse is built by the Segment
//! models (docs/segment-source.md) from generated Segment.com raw tables, and
//! the segments fit what Segment data holds.

use chrono::Utc;
use segments_infra::ports::SegmentStore;
use segments_tests::lambda::{LocalLambdas, drain, local_queues, sqs_event, stack_env};
use segments_tests::repo_root;
use segments_tests::warehouse::Warehouse;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const ACCOUNT: &str = "0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11";
const ZONE: &str = "America/New_York";

fn fail(step: &str, err: impl std::fmt::Display) -> ! {
    eprintln!("\nFAILED while {step}:\n  {err}");
    eprintln!(
        "\nWhat to do: make sure the local stack is up (tests/stack/up.sh) and the binaries are built"
    );
    eprintln!("(cargo build --workspace --bins), then run tests/demo.sh again. Logs: .stack/*.log");
    std::process::exit(1)
}

fn segment_mode() -> bool {
    std::env::args().any(|a| a == "--segment")
}

fn segments() -> Vec<Value> {
    if segment_mode() {
        return vec![
            json!({"id": "8c1f5a2e-0b7d-4c3e-9f10-2a3b4c5d6e11", "name": "Sessions from Google, 2+ pageviews", "ruleGroups": [{
                "mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
                "dateRangeFilter": {"type": "previous-period", "numberOfDaysPrevious": 30},
                "g0": {"type": "dimension", "key": "utm_source", "condition": "equals", "value": "google"},
                "g1": {"type": "number", "key": "pageviews", "condition": "greater-than-or-equal", "value": 2}}]}),
            json!({"id": "8c1f5a2e-0b7d-4c3e-9f10-2a3b4c5d6e12", "name": "Users with 3+ sessions in 7 days", "ruleGroups": [{
                "mainOperator": "include", "segmentObject": "user", "conditionFocus": "metric",
                "dateRangeFilter": {"type": "previous-period", "numberOfDaysPrevious": 7},
                "g0": {"type": "metric", "key": "sessions", "condition": "greater-than-or-equal", "value": 3}}]}),
            json!({"id": "8c1f5a2e-0b7d-4c3e-9f10-2a3b4c5d6e13", "name": "People at example.com", "ruleGroups": [{
                "mainOperator": "include", "segmentObject": "people", "conditionFocus": "property",
                "g0": {"type": "dimension", "key": "email", "condition": "ends-with", "value": "@example.com"}}]}),
        ];
    }
    vec![
        json!({"id": "8c1f5a2e-0b7d-4c3e-9f10-2a3b4c5d6e01", "name": "Engaged mobile sessions, last 30 days", "ruleGroups": [{
            "mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
            "dateRangeFilter": {"type": "previous-period", "numberOfDaysPrevious": 30},
            "g0": {"type": "dimension", "key": "device_type", "condition": "equals", "value": "mobile"},
            "g1": {"type": "boolean", "key": "is_engaged", "condition": "is-true"}}]}),
        json!({"id": "8c1f5a2e-0b7d-4c3e-9f10-2a3b4c5d6e02", "name": "Returning users", "ruleGroups": [{
            "mainOperator": "include", "segmentObject": "user", "conditionFocus": "metric",
            "g0": {"type": "metric", "key": "sessions", "condition": "greater-than", "value": "4"}}]}),
        json!({"id": "8c1f5a2e-0b7d-4c3e-9f10-2a3b4c5d6e03", "name": "People who asked for a demo", "ruleGroups": [{
            "mainOperator": "include", "segmentObject": "people", "conditionFocus": "other-event",
            "dateRangeFilter": {"type": "previous-period", "numberOfDaysPrevious": 60},
            "g0": {"key": "form_submit", "subKey": "form", "condition": "equals", "value": "demo"}}]}),
    ]
}

#[tokio::main]
async fn main() {
    let started = Instant::now();
    let mut env = stack_env();
    if !env.contains_key("DATABASE_URL") {
        fail("reading .stack/env", "it is missing");
    }
    println!("1/6 local services and function binaries");
    // BigQuery's asynchronous jobs (tests/stack/crucible_async.py): builds are
    // submitted, run behind the API, and are watched to their end, as on BigQuery.
    let bigquery = segments_tests::warehouse::async_emulator_url(&env);
    env.insert("BIGQUERY_BASE_URL".into(), bigquery.clone());
    let sqs = local_queues(&mut env, "demo").await;
    let lambdas = LocalLambdas::start(&env, &repo_root().join("target/debug"))
        .await
        .unwrap_or_else(|e| fail("starting the functions", e));
    println!("    the 4 functions run behind the Lambda runtime API (cargo lambda)");

    println!("2/6 demo account {ACCOUNT} ({ZONE}) and its generated warehouse");
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
    let dataset = format!("account_{}", ACCOUNT.replace('-', "_"));
    let warehouse = Warehouse::open_at(&bigquery, &dataset).await;
    if segment_mode() {
        segment_warehouse(&bigquery, &warehouse).await;
    } else {
        let statements = segments_tests::demo_data::statements(Utc::now(), 7);
        warehouse.run_script(&statements.join("\n;\n")).await;
        println!(
            "    {} rows in {}.{}",
            segments_tests::demo_data::row_count(&statements),
            warehouse.project,
            dataset
        );
    }

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
            "    {:<40} {}",
            seg["name"].as_str().unwrap_or(""),
            out["segments"][0]["queryStatus"].as_str().unwrap_or("?")
        );
        ids.push(seg["id"].as_str().unwrap_or_default().to_string());
    }

    println!("4/6 watching the builds (check-bigquery-job)");
    let mut done = false;
    for _ in 0..30 {
        let checks = drain(&sqs, &env["CHECK_JOB_QUEUE_URL"], Duration::from_secs(5)).await;
        if !checks.is_empty() {
            let out = lambdas
                .invoke("check-bigquery-job", &sqs_event(&checks))
                .unwrap_or_else(|e| fail("checking jobs", e));
            if out["batchItemFailures"]
                .as_array()
                .is_some_and(|f| !f.is_empty())
            {
                fail("checking jobs", out);
            }
        }
        let mut statuses = Vec::new();
        for id in &ids {
            let row = store.segment(ACCOUNT, id).await.ok().flatten();
            statuses.push(
                row.map(|r| r.query_status)
                    .unwrap_or_else(|| "missing".into()),
            );
        }
        println!("    {}", statuses.join(", "));
        if statuses.iter().all(|s| s != "in-progress") {
            done = true;
            break;
        }
    }
    if !done {
        fail(
            "waiting for the builds",
            "still in progress after 30 rounds",
        );
    }
    let captured: Vec<Value> = match reqwest::get(format!("{}/captured", env["PUSHER_HOST"])).await
    {
        Ok(r) => r.json().await.unwrap_or_default(),
        Err(_) => vec![],
    };
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
            .map(|m| m.len())
            .unwrap_or(0);
        let notified = captured.iter().any(|e| {
            e["channels"][0] == format!("channel-{ACCOUNT}").as_str()
                && e["data"]["segmentId"] == id.as_str()
        });
        println!(
            "    {:<40} {:<6} {:>5} members  {:>9} bytes billed  built {}  notified {}",
            seg["name"].as_str().unwrap_or(""),
            row.query_status,
            members,
            row.total_bytes_billed.unwrap_or(0),
            row.build_at
                .map(|t| t.format("%H:%M:%S").to_string())
                .unwrap_or_default(),
            if notified { "yes" } else { "no" }
        );
    }

    println!("5/6 the scheduled refresh (segment-cronjob)");
    let fan = lambdas
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
    println!(
        "    {} account(s) fanned out; this account refreshed: failures {}",
        fan["accounts"], out["batchItemFailures"]
    );

    let today = Utc::now().date_naive();
    let dimension = if segment_mode() {
        "landing_page"
    } else {
        "device_type"
    };
    println!(
        "6/6 report: sessions by {dimension}, last 30 days, filtered by two segments (report-with-segment)"
    );
    let request = json!({"accountId": ACCOUNT, "accountTimeZone": ZONE, "reportName": "sessions-by-device", "object": "session",
        "dateRange": {"startDate": (today - chrono::Duration::days(30)).to_string(), "endDate": today.to_string()},
        "dimensions": [dimension], "metrics": ["sessions", "pageviews"],
        "segments": [ids[0], ids[1]], "sort": {"by": "sessions", "direction": "desc"}, "limit": 10});
    let report = lambdas
        .invoke("report-with-segment", &request.to_string())
        .unwrap_or_else(|e| fail("submitting the report", e));
    let checks = segments_tests::lambda::drain_n(
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
        println!(
            "    {} -> {}",
            seg["name"].as_str().unwrap_or(""),
            t["table"].as_str().unwrap_or("")
        );
        let sql = format!(
            "SELECT {dimension}, sessions, pageviews FROM {} ORDER BY sessions DESC",
            warehouse.table(t["table"].as_str().unwrap_or(""))
        );
        let mut rs = warehouse
            .run(&sql)
            .await
            .unwrap_or_else(|e| fail("reading the report", e));
        println!(
            "      {:<32} {:>8} {:>9}",
            dimension, "sessions", "pageviews"
        );
        while rs.next_row() {
            println!(
                "      {:<32} {:>8} {:>9}",
                rs.get_string(0).ok().flatten().unwrap_or_default(),
                rs.get_i64(1).ok().flatten().unwrap_or_default(),
                rs.get_i64(2).ok().flatten().unwrap_or_default()
            );
        }
    }
    println!("\ndone in {:.1} s.", started.elapsed().as_secs_f64());
}

/// Segment.com raw tables in `{dataset}_segment_raw`, then the models' full
/// build into the account's dataset.
async fn segment_warehouse(bigquery: &str, warehouse: &Warehouse) {
    use segments_tests::segment_raw::{Engine, IDENTIFY_COLUMNS, PAGE_COLUMNS, TRACK_COLUMNS};
    let raw_name = format!("{}_segment_raw", warehouse.dataset);
    let raw = Warehouse::open_at(bigquery, &raw_name).await;
    let rows = segments_tests::segment_demo::rows(Utc::now());
    for (table, columns, rows) in [
        ("identifies", IDENTIFY_COLUMNS, &rows.identifies),
        ("pages", PAGE_COLUMNS, &rows.pages),
        ("tracks", TRACK_COLUMNS, &rows.tracks),
    ] {
        let _ = raw
            .run(&format!("DROP TABLE IF EXISTS {}", raw.table(table)))
            .await;
        let rows: Vec<&str> = rows.iter().map(String::as_str).collect();
        // The table, then inserts of 20 rows: the emulator's time grows with
        // the square of a statement's VALUES (250 rows take 50 s, 20 about 1 s).
        let mut sqls = Engine::BigQuery.load_raw(&raw.project, &raw_name, table, columns, &[]);
        for chunk in rows.chunks(20) {
            sqls.extend(Engine::BigQuery.insert_raw(
                &raw.project,
                &raw_name,
                table,
                columns,
                chunk,
            ));
        }
        for sql in sqls {
            raw.run(&sql)
                .await
                .unwrap_or_else(|e| fail("loading the Segment raw tables", e));
        }
    }
    println!(
        "    Segment raw tables in {}.{}: {} identifies, {} pages, {} tracks",
        raw.project,
        raw_name,
        rows.identifies.len(),
        rows.pages.len(),
        rows.tracks.len()
    );
    let models = segments_core::models::SegmentSource::new(
        segments_core::Target::new(&raw.project, &raw_name).unwrap_or_else(|e| fail("naming", e)),
        segments_core::Target::new(&warehouse.project, &warehouse.dataset)
            .unwrap_or_else(|e| fail("naming", e)),
        30,
    )
    .unwrap_or_else(|e| fail("configuring the models", e));
    let statements = models
        .full_build()
        .unwrap_or_else(|e| fail("rendering the models", e));
    let t = Instant::now();
    for sql in &statements {
        warehouse
            .run(sql)
            .await
            .unwrap_or_else(|e| fail("running the Segment models", e));
    }
    let count = |t: &'static str| async move {
        warehouse
            .column(&format!(
                "SELECT CAST(COUNT(*) AS STRING) FROM {}",
                warehouse.table(t)
            ))
            .await
            .ok()
            .and_then(|v| v.first().cloned())
            .unwrap_or_default()
    };
    println!(
        "    models: {} statements in {:.1} s -> {} events, {} sessions, {} users, {} people in {}.{}",
        statements.len(),
        t.elapsed().as_secs_f64(),
        count("events").await,
        count("sessions").await,
        count("users").await,
        count("people").await,
        warehouse.project,
        warehouse.dataset
    );
}
