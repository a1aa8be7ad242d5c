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
        let cron = case.cronjob_at(&r, NOW).unwrap();
        bq_check::check(&cron).unwrap_or_else(|e| panic!("case {} cronjob: {e}", case.name));
        insta::assert_snapshot!(format!("cronjob_{}", case.name), r.cronjob_query);
    }
}
