//! segment-api over the fakes: the answers, the classes of its refusals, the
//! links that report-with-segment then filters by, and an export's object.

use super::{ACCOUNT, OTHER, SEG, built, fakes, now};
use crate::api::{ApiError, handle};
use crate::fakes::STATIC_BUCKET;
use segments_infra::error::ErrorClass;
use segments_infra::faults::Faults;
use segments_infra::ports::SegmentStore;
use serde_json::{Value, json};

const USER: &str = "3e1d2c4b-5a69-4f70-8e91-a2b3c4d5e6f7";

fn seg_id(n: u32) -> String {
    format!("7b0c1f0e-3f1a-4a59-9a53-{n:012}")
}

async fn call(app: &crate::App, req: Value) -> Result<Value, ApiError> {
    handle(app, &req, "req-1", now()).await
}

fn link(segment: &str) -> Value {
    json!({"action": "link-report", "accountId": ACCOUNT, "userId": USER,
        "reportName": "devices", "segmentId": segment})
}

#[tokio::test]
async fn given_four_applied_segments_when_a_fifth_is_linked_then_conflict_and_reports_use_the_four()
{
    let f = fakes();
    for n in 1..=5 {
        let mut row = built(ACCOUNT, &seg_id(n));
        row.name = format!("S{n}");
        f.store.put_segment(row);
    }
    let app = f.app();
    for n in 1..=4 {
        call(&app, link(&seg_id(n))).await.unwrap();
    }
    let e = call(&app, link(&seg_id(5))).await.unwrap_err();
    assert_eq!((e.status, e.kind), (409, "conflict"));
    assert_eq!(e.class(), ErrorClass::Permanent);
    // Re-linking one of the four keeps its place (S2 stays second).
    let out = call(&app, link(&seg_id(2))).await.unwrap();
    let positions: Vec<(String, u64)> = out["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["segmentName"].as_str().unwrap().to_string(),
                l["position"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        positions,
        [("S1", 1), ("S2", 2), ("S3", 3), ("S4", 4)].map(|(n, p)| (n.to_string(), p))
    );
    // A report that names no segment filters by the applied ones, in order;
    // on the queue's path too (the typed body defers to them).
    let none_applied = json!({"accountId": ACCOUNT, "accountTimeZone": "UTC", "userId": OTHER,
        "reportName": "devices", "object": "session",
        "dateRange": {"startDate": "2024-06-01", "endDate": "2024-06-30"},
        "dimensions": ["device_type"], "metrics": ["sessions"]});
    let e = crate::report::handle(&app, &none_applied, "r0", now())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, crate::Failure::Rejected(m) if m.starts_with("segments: name at least one segment")),
        "{e:?}"
    );
    let request = json!({"accountId": ACCOUNT, "accountTimeZone": "UTC", "userId": USER,
        "reportName": "devices", "object": "session",
        "dateRange": {"startDate": "2024-06-01", "endDate": "2024-06-30"},
        "dimensions": ["device_type"], "metrics": ["sessions"]});
    let resp = crate::report::handle(&app, &request, "r1", now())
        .await
        .unwrap();
    let ids: Vec<&str> = resp
        .segment_tables
        .iter()
        .map(|t| t.segment_id.as_str())
        .collect();
    assert_eq!(ids, [seg_id(1), seg_id(2), seg_id(3), seg_id(4)]);
    let body = serde_json::to_vec(&request).unwrap();
    let msg = <crate::sqs::ReportMessage as crate::sqs::Message>::decode(&body).unwrap();
    let resp = crate::report::handle_request(&app, msg.request, &msg.json, "r2", now())
        .await
        .unwrap();
    assert_eq!(resp.segment_tables.len(), 4);
    // Unlinking frees a place; unlinking again is not found.
    let unlink = json!({"action": "unlink-report", "accountId": ACCOUNT, "userId": USER,
        "reportName": "devices", "segmentId": seg_id(1)});
    call(&app, unlink.clone()).await.unwrap();
    call(&app, link(&seg_id(5))).await.unwrap();
    let e = call(&app, unlink).await.unwrap_err();
    assert_eq!((e.status, e.kind), (404, "not-found"));
}

#[tokio::test]
async fn given_an_upper_case_account_id_when_a_segment_is_read_then_the_canonical_account_answers()
{
    let f = fakes();
    f.store.put_segment(built(ACCOUNT, SEG));
    f.store.put_segment(built(OTHER, &seg_id(9)));
    let app = f.app();
    let out = call(
        &app,
        json!({"action": "get", "accountId": ACCOUNT.to_uppercase(), "segmentId": SEG.to_uppercase()}),
    )
    .await
    .unwrap();
    assert_eq!(
        (out["id"].as_str(), out["accountId"].as_str()),
        (Some(SEG), Some(ACCOUNT))
    );
    // Another account's segment is not found, whatever the spelling.
    let e = call(
        &app,
        json!({"action": "get", "accountId": ACCOUNT, "segmentId": seg_id(9)}),
    )
    .await
    .unwrap_err();
    assert_eq!((e.status, e.errors[0].path.as_str()), (404, "segmentId"));
    let e = call(&app, json!({"action": "drop", "accountId": ACCOUNT}))
        .await
        .unwrap_err();
    assert_eq!((e.status, e.errors[0].path.as_str()), (400, "action"));
}

#[tokio::test]
async fn given_a_postgres_outage_when_listed_then_503_transient_and_a_redis_outage_reads_postgres()
{
    let f = fakes();
    f.store.put_segment(built(ACCOUNT, SEG));
    let faults = Faults::default();
    let app = f.app_with_faults(&faults);
    let list = json!({"action": "list", "accountId": ACCOUNT});
    faults.fail("store.segments", 1);
    let e = call(&app, list.clone()).await.unwrap_err();
    assert_eq!(
        (e.status, e.kind, e.class()),
        (503, "unavailable", ErrorClass::Transient)
    );
    assert!(matches!(crate::api::failure(e), crate::Failure::Retry(_)));
    faults.fail("cache.get", 1);
    faults.fail("cache.put", 1);
    let out = call(&app, list).await.unwrap();
    let names: Vec<&str> = out["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["All Data", "Segment"]);
    assert_eq!(out["cached"], false);
}

#[tokio::test]
async fn given_a_disabled_segment_when_linked_then_refused_and_enable_restores_it() {
    let f = fakes();
    f.store.put_segment(built(ACCOUNT, SEG));
    let app = f.app();
    let out = call(
        &app,
        json!({"action": "disable", "accountId": ACCOUNT, "segmentId": SEG}),
    )
    .await
    .unwrap();
    assert_eq!(out["status"], false);
    assert!(!f.store.row(SEG).unwrap().status);
    let e = call(&app, link(SEG)).await.unwrap_err();
    assert_eq!((e.status, e.errors[0].path.as_str()), (400, "segmentId"));
    call(
        &app,
        json!({"action": "enable", "accountId": ACCOUNT, "segmentId": SEG}),
    )
    .await
    .unwrap();
    call(&app, link(SEG)).await.unwrap();
    let links = f
        .store
        .segment_reports(ACCOUNT, USER, "devices")
        .await
        .unwrap();
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].segment_id, SEG);
}

#[tokio::test]
async fn given_result_tables_when_exported_then_the_csv_is_in_the_bucket_with_a_presigned_url() {
    let f = fakes();
    let mut row = built(ACCOUNT, SEG);
    row.name = "US, sessions".into();
    f.store.put_segment(row);
    let app = f.app();
    let table = format!("report_{}_0123abcd", SEG.replace('-', "_"));
    f.warehouse.put_table(
        &app.dataset(ACCOUNT),
        &table,
        vec![
            vec![json!("Desktop"), json!("3")],
            vec![json!("mobile"), json!("1")],
        ],
    );
    let out = call(
        &app,
        json!({"action": "export", "accountId": ACCOUNT, "dimensions": ["device_type"],
            "metrics": ["sessions"], "segmentTables": [{"segmentId": SEG, "table": table}],
            "expiresIn": 60}),
    )
    .await
    .unwrap();
    let key = out["key"].as_str().unwrap();
    assert!(key.starts_with(&format!("exports/{ACCOUNT}/")), "{key}");
    assert_eq!(
        out["url"].as_str().unwrap(),
        format!("fake://{STATIC_BUCKET}/{key}?expires=60")
    );
    assert_eq!(
        f.objects.content_type(STATIC_BUCKET, key).as_deref(),
        Some("text/csv; charset=utf-8")
    );
    let csv = segments_infra::ports::ObjectStore::get(f.objects.as_ref(), STATIC_BUCKET, key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        String::from_utf8(csv).unwrap(),
        "device_type,\"S1:US, sessions - sessions\"\r\nDesktop,3\r\nmobile,1\r\n"
    );
}
