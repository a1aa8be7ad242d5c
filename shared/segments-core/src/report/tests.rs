use super::*;
use serde_json::{Value, json};

fn base() -> Value {
    json!({
        "object": "user",
        "dateRange": {"startDate": "2024-06-01", "endDate": "2024-06-30"},
        "segments": ["a1"]
    })
}

fn with(key: &str, value: Value) -> Value {
    let mut v = base();
    v[key] = value;
    v
}

fn errors(v: &Value) -> Vec<String> {
    match parse_report_value(v) {
        Ok(r) => panic!("accepted: {r:?}"),
        Err(e) => e.0.iter().map(|e| e.to_string()).collect(),
    }
}

fn ok(v: &Value) -> ReportRequest {
    parse_report_value(v).unwrap_or_else(|e| panic!("refused: {e}"))
}

fn seg(id: &str) -> ReportSegment {
    ReportSegment {
        id: id.into(),
        object: None,
        all_data: false,
    }
}

#[test]
fn report_a_single_segment_id_is_a_one_item_list() {
    let r = ok(&with("segments", json!("a1")));
    assert_eq!(r.segments, vec![seg("a1")]);
    let mut v = with("segments", Value::Null);
    v["comparisonSegments"] = json!("b2");
    let r = ok(&v);
    assert_eq!(r.segments, vec![]);
    assert_eq!(r.comparison_segments, vec![seg("b2")]);
    // The single id is still checked, at the path of its one item.
    assert_eq!(
        errors(&with("segments", json!("a b"))),
        vec![r#"segments[0]: "a b" is not a segment id"#]
    );
    assert_eq!(
        errors(&with("segments", json!(5))),
        vec!["segments: must be an array of segment ids"]
    );
}

#[test]
fn report_a_single_dimension_or_metric_name_is_a_one_item_list() {
    let mut v = with("metrics", json!("sessions"));
    v["dimensions"] = json!("country");
    let r = ok(&v);
    assert_eq!(r.metrics, vec!["sessions"]);
    assert_eq!(r.dimensions, vec!["country"]);
    assert_eq!(
        errors(&with("metrics", json!(3))),
        vec!["metrics: must be an array of names"]
    );
}

#[test]
fn report_sort_reads_by_and_direction() {
    let r = ok(&with("sort", json!({"by": "sessions", "direction": "ASC"})));
    assert_eq!(
        (r.sort_by.as_deref(), r.descending),
        (Some("sessions"), false)
    );
    let r = ok(&with("sort", json!({"direction": "desc"})));
    assert_eq!((r.sort_by, r.descending), (None, true));
    let r = ok(&base());
    assert_eq!((r.sort_by, r.descending), (None, true));
    let r = ok(&with("sort", Value::Null));
    assert_eq!((r.sort_by, r.descending), (None, true));
}

#[test]
fn report_sort_of_the_wrong_type_is_an_error_naming_its_path() {
    assert_eq!(
        errors(&with("sort", json!({"by": 5, "direction": 7}))),
        vec![
            "sort.by: must be a string (a dimension or metric name)",
            r#"sort.direction: must be the string "asc" or "desc""#,
        ]
    );
    assert_eq!(
        errors(&with("sort", json!({"by": ["a"], "direction": true}))),
        vec![
            "sort.by: must be a string (a dimension or metric name)",
            r#"sort.direction: must be the string "asc" or "desc""#,
        ]
    );
    assert_eq!(
        errors(&with("sort", json!({"direction": "up"}))),
        vec![r#"sort.direction: "up" is neither asc nor desc"#]
    );
    assert_eq!(
        errors(&with("sort", json!("sessions"))),
        vec![r#"sort: must be an object {"by", "direction"}"#]
    );
}

#[test]
fn report_limit_and_offset_take_whole_numbers_written_as_floats() {
    let mut v = with("limit", json!(5.0));
    v["offset"] = json!(20.0);
    let r = ok(&v);
    assert_eq!((r.limit, r.offset), (5, 20));
    let mut v = with("limit", json!(0));
    v["offset"] = json!(-0.0);
    let r = ok(&v);
    assert_eq!((r.limit, r.offset), (0, 0));
    let r = ok(&with("limit", json!(MAX_LIMIT as f64)));
    assert_eq!(r.limit, MAX_LIMIT);
    let r = ok(&with("offset", json!(MAX_OFFSET)));
    assert_eq!(r.offset, MAX_OFFSET);
    let r = ok(&base());
    assert_eq!((r.limit, r.offset), (DEFAULT_LIMIT, 0));
    let r = ok(&with("limit", json!("7")));
    assert_eq!(r.limit, 7);
}

#[test]
fn report_limit_and_offset_refuse_fractions_negatives_and_absurd_values() {
    let limit_err = format!("limit: must be a whole number from 0 to {MAX_LIMIT}");
    let offset_err = format!("offset: must be a whole number from 0 to {MAX_OFFSET}");
    for bad in [
        json!(5.5),
        json!(-1),
        json!(-1.0),
        json!(MAX_LIMIT + 1),
        json!(MAX_LIMIT as f64 + 1.0),
        json!(1e300),
        json!(u64::MAX),
        json!(i64::MIN),
        json!("5.5"),
        json!("many"),
        json!(true),
        json!([5]),
    ] {
        assert_eq!(
            errors(&with("limit", bad.clone())),
            vec![limit_err.clone()],
            "limit {bad}"
        );
    }
    for bad in [
        json!(0.5),
        json!(-3),
        json!(-2.0),
        json!(MAX_OFFSET + 1),
        json!(1e19),
        json!({"n": 1}),
    ] {
        assert_eq!(
            errors(&with("offset", bad.clone())),
            vec![offset_err.clone()],
            "offset {bad}"
        );
    }
}

fn render(v: Value) -> Result<Vec<String>, String> {
    let req = parse_report_value(&v).map_err(|e| e.to_string())?;
    let target = Target::new("p", "d").unwrap();
    let tz = crate::time::parse_time_zone("UTC").unwrap();
    let now = crate::time::parse_now("2024-07-01T00:00:00Z").unwrap();
    let out = render_report(&req, &Catalog::default_catalog(), &target, &tz, now)
        .map_err(|e| e.to_string())?;
    Ok(out.segments.into_iter().map(|q| q.query).collect())
}

#[test]
fn report_aggregate_metrics_join_per_object_activity_inside_the_range() {
    let mut v = with(
        "metrics",
        json!(["count", "sessions", "pageviews", "revenue"]),
    );
    v["dimensions"] = json!(["country"]);
    let q = render(v).unwrap();
    assert_eq!(
            q,
            vec![
                "SELECT o.`country` AS `country`, COUNT(DISTINCT o.`user_id`) AS `count`, SUM(COALESCE(m0.`v0`, 0)) AS `sessions`, SUM(COALESCE(m0.`v1`, 0)) AS `pageviews`, SUM(COALESCE(m1.`v0`, 0)) AS `revenue`
FROM `p.d.users` AS o
LEFT JOIN (
  SELECT s.`user_id` AS `k`, COUNT(*) AS `v0`, SUM(s.`pageviews`) AS `v1`
  FROM `p.d.sessions` AS s
  WHERE s.`user_id` IS NOT NULL AND (s.`started_at` >= TIMESTAMP '2024-06-01 00:00:00+00:00' AND s.`started_at` < TIMESTAMP '2024-07-01 00:00:00+00:00')
  GROUP BY s.`user_id`
) AS m0 ON m0.`k` = o.`user_id`
LEFT JOIN (
  SELECT s.`user_id` AS `k`, SUM(IF(s.`event_name` = 'purchase', s.`revenue`, NULL)) AS `v0`
  FROM `p.d.ecommerce_events` AS s
  WHERE s.`user_id` IS NOT NULL AND (s.`event_timestamp` >= TIMESTAMP '2024-06-01 00:00:00+00:00' AND s.`event_timestamp` < TIMESTAMP '2024-07-01 00:00:00+00:00')
  GROUP BY s.`user_id`
) AS m1 ON m1.`k` = o.`user_id`
WHERE o.`last_seen_at` >= TIMESTAMP '2024-06-01 00:00:00+00:00' AND o.`last_seen_at` < TIMESTAMP '2024-07-01 00:00:00+00:00' AND o.`user_id` IN (
  SELECT seg.`object_id`
  FROM `p.d.segment_a1` AS seg
)
GROUP BY o.`country`
ORDER BY `count` DESC, `country` ASC
LIMIT 100 OFFSET 0"
            ]
        );
}

#[test]
fn report_avg_min_max_metrics_combine_over_the_groups_activity() {
    let q = render(with("metrics", json!(["avg_session_duration"]))).unwrap();
    assert!(
        q[0].contains("SAFE_DIVIDE(SUM(m0.`v0`), SUM(m0.`v1`)) AS `avg_session_duration`"),
        "{}",
        q[0]
    );
    assert!(
        q[0].contains("SUM(s.`duration_seconds`) AS `v0`, COUNT(s.`duration_seconds`) AS `v1`"),
        "{}",
        q[0]
    );
    let mut v = with("metrics", json!(["max_order_value", "web_conversions"]));
    v["object"] = json!("people");
    let q = render(v).unwrap();
    assert!(
        q[0].contains(
            "MAX(m0.`v0`) AS `max_order_value`, SUM(COALESCE(m1.`v0`, 0)) AS `web_conversions`"
        ),
        "{}",
        q[0]
    );
    assert!(
        q[0].contains("MAX(IF(s.`event_name` = 'purchase', s.`revenue`, NULL)) AS `v0`"),
        "{}",
        q[0]
    );
}

#[test]
fn report_crm_activity_links_through_the_crm_object_columns() {
    let mut v = with("metrics", json!(["sales_conversions", "amount"]));
    v["object"] = json!("crm-contact");
    let q = render(v).unwrap();
    assert!(
            q[0].contains("WHERE s.`crm_object` = 'crm-contact' AND s.`crm_object_id` IS NOT NULL AND (s.`converted_at` >= "),
            "{}",
            q[0]
        );
    assert!(q[0].contains("SUM(o.`amount`) AS `amount`"), "{}", q[0]);
}

#[test]
fn report_metrics_of_row_values_and_columns_read_no_activity() {
    let mut v = with(
        "metrics",
        json!(["sessions", "pageviews", "duration_seconds"]),
    );
    v["object"] = json!("session");
    let q = render(v).unwrap();
    assert!(!q[0].contains("JOIN"), "{}", q[0]);
    assert!(
            q[0].starts_with("SELECT COUNT(DISTINCT o.`session_id`) AS `sessions`, SUM(o.`pageviews`) AS `pageviews`, SUM(o.`duration_seconds`) AS `duration_seconds`\n"),
            "{}",
            q[0]
        );
}

#[test]
fn report_unknown_metrics_are_still_refused() {
    let err = render(with("metrics", json!(["sessions", "bogus"]))).unwrap_err();
    assert_eq!(
        err,
        r#"metrics[1]: unknown metric "bogus" for a users report (use "count", "users", a numeric field or a catalog metric: avg_session_duration, duration_seconds, pageviews, revenue, sessions, web_conversions)"#
    );
}

#[test]
fn report_sort_by_an_aggregate_metric() {
    let mut v = with("metrics", json!(["sessions", "pageviews"]));
    v["sort"] = json!({"by": "pageviews", "direction": "asc"});
    let q = render(v).unwrap();
    assert!(
        q[0].ends_with("ORDER BY `pageviews` ASC\nLIMIT 100 OFFSET 0"),
        "{}",
        q[0]
    );
}

#[test]
fn report_result_tables_are_created_in_the_targets_dialect() {
    let req = parse_report_value(&with("metrics", json!(["sessions"]))).unwrap();
    let target = Target::new("p", "d").unwrap();
    let tz = crate::time::parse_time_zone("UTC").unwrap();
    let now = crate::time::parse_now("2024-07-01T00:00:00Z").unwrap();
    let out = render_report(&req, &Catalog::default_catalog(), &target, &tz, now).unwrap();
    let q = &out.segments[0];
    let table = target.checked_table("report_a1_0123abcd").unwrap();
    assert_eq!(
        q.create_table(&table).unwrap(),
        format!(
            "CREATE OR REPLACE TABLE `p.d.report_a1_0123abcd` AS\n{}",
            q.query
        )
    );
}
