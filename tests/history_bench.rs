//! Benchmark (run explicitly: `cargo test -p segments-tests --test history_bench
//! -- --ignored --nocapture`): the extra cost of a run with history (SPEC §11)
//! over a plain refresh (the MERGE), on the BigQuery emulator, same segment,
//! same data, rounds alternated so drift hits both alike.

use segments_core::history::{Run, render_run};
use segments_core::time::{parse_now, parse_time_zone};
use segments_core::{Catalog, Target, parse_segment, render_refresh, render_segment};
use segments_tests::warehouse::Warehouse;
use std::time::{Duration, Instant};

const ROWS: u32 = 50_000;
const ROUNDS: usize = 7;

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly"]
async fn a_run_with_history_against_a_plain_refresh() {
    let w = Warehouse::empty("history_bench").await;
    w.run(&format!(
        "CREATE TABLE {} AS SELECT CONCAT('s', CAST(x AS STRING)) AS session_id, \
         IF(MOD(x, 2) = 0, 'US', 'FR') AS country FROM UNNEST(GENERATE_ARRAY(1, {ROWS})) AS x",
        w.table("sessions")
    ))
    .await
    .unwrap();
    let seg = parse_segment(
        &serde_json::json!({"id": "b3b3b3b3-0000-4000-8000-000000000001", "ruleGroups": [{
        "mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
        "g0": {"type": "dimension", "key": "country", "condition": "equals", "value": "us"}}]}),
    )
    .unwrap();
    let (catalog, target) = (
        Catalog::default_catalog(),
        Target::new(&w.project, &w.dataset).unwrap(),
    );
    let (tz, now) = (
        parse_time_zone("UTC").unwrap(),
        parse_now("2024-06-15T12:00:00Z").unwrap(),
    );
    let build = render_segment(&seg, &catalog, &target, &tz, now).unwrap();
    w.run(&build.create_table_query).await.unwrap();
    let merge = render_refresh(&seg, &catalog, &target, &tz, now).unwrap();
    // The first run of the account creates the history tables and records every member.
    let first = render_run(
        &seg,
        &catalog,
        &target,
        &tz,
        now,
        Run {
            run_id: "warm",
            revision: 1,
        },
    )
    .unwrap();
    w.run(&first.sql).await.unwrap();
    let (mut plain, mut with_history) = (Vec::new(), Vec::new());
    let mut statements = 0;
    for i in 0..ROUNDS {
        let t = Instant::now();
        w.run(&merge).await.unwrap();
        plain.push(t.elapsed());
        let run = render_run(
            &seg,
            &catalog,
            &target,
            &tz,
            now,
            Run {
                run_id: &format!("bench-{i}"),
                revision: 1,
            },
        )
        .unwrap();
        statements = run.statements;
        let t = Instant::now();
        w.run(&run.sql).await.unwrap();
        with_history.push(t.elapsed());
    }
    assert_eq!(
        w.members(&build.table).await.unwrap().len(),
        (ROWS / 2) as usize
    );
    let (p, h) = (median(plain), median(with_history));
    let sources_read = first
        .sql
        .split(";\n")
        .filter(|s| s.contains("`.sessions`") || s.contains(".sessions`"))
        .count();
    println!(
        "{ROWS} sessions, {} members, {ROUNDS} rounds: plain refresh 1 statement, median {p:?}; \
         run with history {statements} statements (sources read by {sources_read}), median {h:?}; extra {:.0} %",
        ROWS / 2,
        (h.as_secs_f64() / p.as_secs_f64() - 1.0) * 100.0
    );
    assert_eq!(sources_read, 1);
}
