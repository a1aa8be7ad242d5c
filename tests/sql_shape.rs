//! Every golden case renders SQL that parses as BigQuery and passes our rules,
//! and its SQL is snapshotted so every change to generated SQL is reviewed.

use segments_core::Target;
use segments_tests::bq_check;
use segments_tests::cases::{NOW, load_all};

#[test]
fn every_case_renders_bigquery_sql_and_matches_its_snapshot() {
    let target = Target::new("acme-analytics", "account_0d6f4b52").unwrap();
    for case in load_all() {
        let r = case
            .render(&target, NOW)
            .unwrap_or_else(|e| panic!("case {}: {e}", case.name));
        bq_check::check(&r.create_table_query)
            .unwrap_or_else(|e| panic!("case {} create: {e}", case.name));
        let cron = case.cronjob_at(&target, NOW).unwrap();
        bq_check::check(&cron).unwrap_or_else(|e| panic!("case {} cronjob: {e}", case.name));
        insta::assert_snapshot!(format!("cronjob_{}", case.name), r.cronjob_query);
    }
}

#[test]
fn report_queries_parse_and_match_their_snapshot() {
    let target = Target::new("acme-analytics", "account_0d6f4b52").unwrap();
    let path = segments_tests::repo_root().join("docs/examples/session-report.json");
    let mut req: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    req["dimensions"] = serde_json::json!(["date", "device_type"]);
    req["comparisonSegments"] = serde_json::json!([{"id": "all-data", "allData": true}]);
    let req = segments_core::report::parse_report_value(&req).unwrap();
    let tz = segments_core::time::parse_time_zone("America/New_York").unwrap();
    let now = segments_core::time::parse_now(NOW).unwrap();
    let out = segments_core::report::render_report(
        &req,
        &segments_core::Catalog::default_catalog(),
        &target,
        &tz,
        now,
    )
    .unwrap();
    let all: Vec<&str> = out
        .segments
        .iter()
        .chain(&out.comparison_segments)
        .map(|q| q.query.as_str())
        .collect();
    for q in &all {
        bq_check::check(q).unwrap();
    }
    insta::assert_snapshot!(
        "report_by_date_and_device",
        all.join("\n\n-- next segment --\n\n")
    );
}
