//! GIVEN the fixture warehouse on the BigQuery emulator and segment tables, WHEN
//! report queries with aggregate metrics (activity per object: sessions,
//! pageviews, web conversions, revenue, ...) run, THEN each report row holds the
//! sums over its objects of their activity inside the report's date range,
//! exactly as computed by hand from `tests/fixtures/warehouse.sql`.

use segments_core::Target;
use segments_core::model::segment_table_name;
use segments_core::report::{parse_report_value, render_report};
use segments_tests::bq_check;
use segments_tests::warehouse::Warehouse;

const NOW: &str = "2024-07-01T12:00:00Z";

/// Creates the table of segment `id` holding exactly `members`.
async fn segment(w: &Warehouse, id: &str, members: &[&str]) {
    let list: Vec<String> = members.iter().map(|m| format!("'{m}'")).collect();
    let sql = format!(
        "CREATE TABLE {} AS SELECT object_id FROM UNNEST([{}]) AS object_id",
        w.table(&segment_table_name(id)),
        list.join(", ")
    );
    bq_check::check(&sql).unwrap();
    w.run(&sql).await.unwrap();
    let mut want: Vec<String> = members.iter().map(|m| m.to_string()).collect();
    want.sort();
    assert_eq!(w.members(&segment_table_name(id)).await.unwrap(), want);
}

/// Runs every query of the report; each row as its cells joined by `|`
/// (NULL as `NULL`, floats to 3 decimals), per segment id in request order.
async fn run_report(
    w: &Warehouse,
    request: serde_json::Value,
    tz: &str,
) -> Vec<(String, Vec<String>)> {
    let req = parse_report_value(&request).unwrap();
    let target = Target::new(&w.project, &w.dataset).unwrap();
    let out = render_report(
        &req,
        &segments_core::Catalog::default_catalog(),
        &target,
        &segments_core::time::parse_time_zone(tz).unwrap(),
        segments_core::time::parse_now(NOW).unwrap(),
    )
    .unwrap();
    let columns = req.dimensions.len() + req.metrics.len();
    let mut got = Vec::new();
    for q in out.segments.iter().chain(&out.comparison_segments) {
        bq_check::check(&q.query).unwrap();
        let mut rs = w
            .run(&q.query)
            .await
            .unwrap_or_else(|e| panic!("{e}\n--- SQL ---\n{}", q.query));
        let mut rows = Vec::new();
        while rs.next_row() {
            let cells: Vec<String> = (0..columns)
                .map(|i| match rs.get_string(i).unwrap() {
                    None => "NULL".to_string(),
                    Some(s) if s.contains('.') || s.contains('e') || s.contains('E') => {
                        match s.parse::<f64>() {
                            Ok(f) => format!("{f:.3}"),
                            Err(_) => s,
                        }
                    }
                    Some(s) => s,
                })
                .collect();
            rows.push(cells.join("|"));
        }
        got.push((q.segment_id.clone(), rows));
    }
    got
}

fn expect(rows: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    rows.iter()
        .map(|(id, rows)| (id.to_string(), rows.iter().map(|r| r.to_string()).collect()))
        .collect()
}

/// Users in June 2024 (UTC) by `last_seen_at`: u1 (US), u2 (DE), u4 (US); u3 has
/// no time, u5 was last seen in January. Their activity inside June:
/// u1 — sessions s1 (5 pageviews, 300 s) and s2 (1, 20 s), conversions w1 and w3,
/// purchases ec1 (99.5) and ec4 (500); u2 — session s6 (3, 100 s) only: s3, w2 and
/// ec2 are from May; u4 — session s5 (0, 0 s), nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_report_sums_each_users_activity_inside_the_range() {
    let w = Warehouse::fixture("repmet_user").await;
    // u3 and u5 are outside the range, u9 has no users row; u4 is not a member.
    segment(&w, "rm-users", &["u1", "u2", "u3", "u5", "u9"]).await;
    let request = serde_json::json!({
        "accountId": "0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11", "accountTimeZone": "UTC",
        "reportName": "users-by-country", "object": "user",
        "dateRange": {"startDate": "2024-06-01", "endDate": "2024-06-30"},
        "dimensions": ["country"],
        "metrics": ["count", "sessions", "pageviews", "web_conversions", "revenue", "avg_session_duration"],
        "segments": "rm-users",
        "comparisonSegments": [{"id": "all-data", "allData": true}],
        "sort": {"by": "sessions", "direction": "desc"}, "limit": 10.0, "offset": 0
    });
    let got = run_report(&w, request, "UTC").await;
    assert_eq!(
        got,
        expect(&[
            (
                "rm-users",
                &[
                    // u1: 2 sessions, 5+1 pageviews, 2 conversions, 99.5+500, 320/2 s.
                    "US|1|2|6|2|599.500|160.000",
                    // u2: s6 only.
                    "DE|1|1|3|0|0.000|100.000",
                ],
            ),
            (
                "all-data",
                &[
                    // u1 and u4 (no conversions or purchases: 0, not NULL); 320/3 s.
                    "US|2|3|6|2|599.500|106.667",
                    "DE|1|1|3|0|0.000|100.000",
                ],
            ),
        ])
    );
}

/// The report's days are the account's: 2024-06-14 in New York is
/// [06-14 04:00, 06-15 04:00) UTC, which holds u1 and u2 (last seen 06-14 23:30
/// and 06-15 02:00 UTC) and, of their activity, s2 (1 pageview), w3, ec4 (500)
/// and s6 (3 pageviews); the same day in UTC holds u1 alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_range_follows_the_accounts_days() {
    let w = Warehouse::fixture("repmet_tz").await;
    let request = serde_json::json!({
        "object": "user", "dateRange": {"startDate": "2024-06-14", "endDate": "2024-06-14"},
        "metrics": ["count", "sessions", "pageviews", "web_conversions", "revenue"],
        "segments": [{"id": "all-data", "allData": true}]
    });
    assert_eq!(
        run_report(&w, request.clone(), "America/New_York").await,
        expect(&[("all-data", &["2|2|4|1|500.000"])])
    );
    assert_eq!(
        run_report(&w, request, "UTC").await,
        expect(&[("all-data", &["1|1|1|1|500.000"])])
    );
}

/// People in June 2024 by `last_seen_at`: p1 (customer, company c1), p2 (lead,
/// c2), p3 (no stage, no company); p4 and p5 were last seen before June.
/// June activity: p1 — s1, s2 (6 pageviews), w1, w3, purchases 99.5 and 500;
/// p2 — s6 (3 pageviews) only; p3 — s5 (0 pageviews) only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn people_report_sums_each_persons_activity_inside_the_range() {
    let w = Warehouse::fixture("repmet_people").await;
    segment(&w, "rm-people", &["p1", "p3", "p4"]).await;
    segment(&w, "rm-companies", &["c2"]).await;
    let request = serde_json::json!({
        "accountId": "0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11", "accountTimeZone": "UTC",
        "reportName": "people-by-stage", "object": "people",
        "dateRange": {"startDate": "2024-06-01", "endDate": "2024-06-30"},
        "dimensions": ["lifecycle_stage"],
        "metrics": ["count", "sessions", "pageviews", "web_conversions", "revenue", "max_order_value", "users"],
        "segments": ["rm-people", {"id": "rm-companies", "object": "revealed-company"}],
        "comparisonSegments": [{"id": "all-data", "allData": true}],
        "sort": {"by": "pageviews", "direction": "asc"}
    });
    let got = run_report(&w, request, "UTC").await;
    assert_eq!(
        got,
        expect(&[
            (
                "rm-people",
                &[
                    // p3: one session without pageviews; no purchase, so no max.
                    "NULL|1|1|0|0|0.000|NULL|1",
                    "customer|1|2|6|2|599.500|500.000|1",
                ],
            ),
            // Through the company link: p2 works at c2.
            ("rm-companies", &["lead|1|1|3|0|0.000|NULL|1"]),
            (
                "all-data",
                &[
                    "NULL|1|1|0|0|0.000|NULL|1",
                    "lead|1|1|3|0|0.000|NULL|1",
                    "customer|1|2|6|2|599.500|500.000|1",
                ],
            ),
        ])
    );
}
