//! Every golden case renders SQL that parses as BigQuery and passes our rules,
//! and its SQL is snapshotted so every change to generated SQL is reviewed.

use segments_core::Target;
use segments_tests::bq_check;
use segments_tests::cases::{NOW, load, load_all};

/// One test per golden case, named after its file in `tests/cases/`.
macro_rules! golden_cases {
    ($($name:ident),* $(,)?) => {
        mod case {
            $(
                #[test]
                fn $name() {
                    super::renders_bigquery_sql_matching_its_snapshot(stringify!($name));
                }
            )*
        }
    };
}

include!(concat!(env!("OUT_DIR"), "/golden_cases.rs"));

/// The case's create and refresh parse as BigQuery and pass our rules; its
/// stored (placeholder) query matches its snapshot.
fn renders_bigquery_sql_matching_its_snapshot(name: &str) {
    let target = Target::new("acme-analytics", "account_0d6f4b52").unwrap();
    let case = load(name);
    let file = format!("tests/cases/{name}.json");
    let r = case
        .render(&target, NOW)
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    bq_check::check(&r.create_table_query).unwrap_or_else(|e| panic!("{file} create: {e}"));
    let cron = case
        .cronjob_at(&target, NOW)
        .unwrap_or_else(|e| panic!("{file} refresh: {e}"));
    bq_check::check(&cron).unwrap_or_else(|e| panic!("{file} refresh: {e}"));
    insta::assert_snapshot!(format!("cronjob_{}", case.name), r.cronjob_query);
}

#[test]
fn the_suite_holds_every_case() {
    assert!(load_all().len() >= 90, "expected the full case suite");
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
