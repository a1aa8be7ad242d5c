use super::{ACCOUNT, OTHER, SEG, built, fakes, now};
use crate::Failure;
use crate::fakes::CHECK_QUEUE;
use crate::report::handle;
use segments_core::messages::{CheckJobMessage, JobAction};
use segments_infra::cache::keys;
use serde_json::{Value, json};

fn request(segments: Value, comparison: Value) -> Value {
    json!({"accountId": ACCOUNT, "accountTimeZone": "UTC", "reportName": "devices", "object": "session",
        "dateRange": {"startDate": "2024-06-01", "endDate": "2024-06-30"}, "dimensions": ["device_type"],
        "metrics": ["sessions"], "segments": segments, "comparisonSegments": comparison})
}

#[tokio::test]
async fn given_a_built_segment_and_all_data_when_reported_then_one_job_and_one_check_each() {
    let f = fakes();
    f.store.put_segment(built(ACCOUNT, SEG));
    let app = f.app();
    let all_data = app.ports.store.ensure_all_data(ACCOUNT).await.unwrap();
    let resp = handle(&app, &request(json!([SEG]), json!([all_data])), "r1", now())
        .await
        .unwrap();
    assert_eq!(resp.segment_tables.len(), 1);
    assert_eq!(resp.comparison_segment_tables.len(), 1);
    let t = &resp.segment_tables[0];
    assert!(
        t.cache_key
            .starts_with(&keys::report_segment_prefix(ACCOUNT, SEG)),
        "{}",
        t.cache_key
    );
    let jobs = f.warehouse.submitted();
    assert_eq!(jobs.len(), 2);
    assert!(jobs[0].sql.contains(&t.table), "{}", jobs[0].sql);
    let checks: Vec<CheckJobMessage> = f
        .queue
        .sent_to(CHECK_QUEUE)
        .iter()
        .map(|s| CheckJobMessage::parse(s.body.as_bytes()).unwrap())
        .collect();
    assert_eq!(checks.len(), 2);
    assert_eq!(checks[0].action, JobAction::QueryReportWithSegment);
    assert_eq!(
        checks[0].job_input_data.cache_key.as_deref(),
        Some(t.cache_key.as_str())
    );
    assert_eq!(
        checks[0].job_input_data.report_name.as_deref(),
        Some("devices")
    );
    // Recorded with the account, so the checks can prove whose jobs they are.
    let recorded: Vec<(String, String)> = f
        .store
        .jobs()
        .into_iter()
        .map(|j| (j.job_id, j.account_id))
        .collect();
    let expected: Vec<(String, String)> = jobs
        .iter()
        .map(|j| (j.job_id.clone(), ACCOUNT.to_string()))
        .collect();
    assert_eq!(recorded, expected);
    // The same request delivered again submits nothing new.
    handle(&app, &request(json!([SEG]), json!([all_data])), "r1", now())
        .await
        .unwrap();
    assert_eq!(f.warehouse.submitted().len(), 2);
}

#[tokio::test]
async fn given_a_segment_not_yet_built_when_reported_then_rejected_and_nothing_submitted() {
    let f = fakes();
    let mut row = built(ACCOUNT, SEG);
    row.query_status = "in-progress".into();
    f.store.put_segment(row);
    let err = handle(&f.app(), &request(json!([SEG]), json!([])), "r", now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Failure::Rejected(ref m) if m.contains("is not built")),
        "{err}"
    );
    assert!(f.warehouse.submitted().is_empty());
}

#[tokio::test]
async fn given_another_accounts_segment_when_reported_then_rejected_and_nothing_submitted() {
    let f = fakes();
    f.store.put_segment(built(OTHER, SEG));
    let err = handle(&f.app(), &request(json!([SEG]), json!([])), "r", now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Failure::Rejected(ref m) if m.contains("does not belong")),
        "{err}"
    );
    assert!(f.warehouse.submitted().is_empty());
    assert!(f.queue.sent().is_empty());
}

#[tokio::test]
async fn given_a_custom_segment_sent_with_all_data_true_when_reported_then_its_filter_stays_on() {
    let f = fakes();
    f.store.put_segment(built(ACCOUNT, SEG));
    let app = f.app();
    let table = segments_core::model::segment_table_name(SEG);
    handle(
        &app,
        &request(json!([{"id": SEG, "allData": true}]), json!([])),
        "r1",
        now(),
    )
    .await
    .unwrap();
    let jobs = f.warehouse.submitted();
    assert_eq!(jobs.len(), 1);
    assert!(
        jobs[0].sql.contains(&table),
        "the report of a custom segment must read its members ({table}): {}",
        jobs[0].sql
    );
}

#[tokio::test]
async fn given_upper_case_ids_when_reported_then_the_canonical_account_dataset_and_cache_keys_are_used()
 {
    let f = fakes();
    f.store.put_segment(built(ACCOUNT, SEG));
    let app = f.app();
    let mut req = request(json!([SEG.to_uppercase()]), json!([]));
    req["accountId"] = ACCOUNT.to_uppercase().into();
    let resp = handle(&app, &req, "r1", now()).await.unwrap();
    assert!(
        resp.segment_tables[0]
            .cache_key
            .starts_with(&keys::report_segment_prefix(ACCOUNT, SEG)),
        "{resp:?}"
    );
    assert!(
        f.warehouse.submitted()[0]
            .sql
            .contains(&app.dataset(ACCOUNT)),
        "{}",
        f.warehouse.submitted()[0].sql
    );
}

#[tokio::test]
async fn given_an_account_id_that_is_not_a_uuid_when_reported_then_rejected() {
    let f = fakes();
    f.store.put_segment(built(ACCOUNT, SEG));
    let mut req = request(json!([SEG]), json!([]));
    // `_` for `-` would name the same dataset as the real account.
    req["accountId"] = ACCOUNT.replace('-', "_").into();
    let err = handle(&f.app(), &req, "r", now()).await.unwrap_err();
    assert!(
        matches!(err, Failure::Rejected(ref m) if m.contains("is not a UUID")),
        "{err}"
    );
    assert!(f.warehouse.submitted().is_empty());
}

#[tokio::test]
async fn given_a_5_mb_report_name_when_reported_then_rejected_before_anything_is_submitted() {
    let f = fakes();
    f.store.put_segment(built(ACCOUNT, SEG));
    let mut req = request(json!([SEG]), json!([]));
    req["reportName"] = "n".repeat(5 << 20).into();
    let err = handle(&f.app(), &req, "r", now()).await.unwrap_err();
    assert!(
        matches!(err, Failure::Rejected(ref m) if m.starts_with("reportName: at most") && m.len() < 200),
        "{}",
        &err.to_string()[..200]
    );
    assert!(f.warehouse.submitted().is_empty());
    assert!(f.queue.sent().is_empty());
}
