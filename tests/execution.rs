//! GIVEN the fixture warehouse on the BigQuery emulator, WHEN each golden case's
//! create query runs (one test per case file), THEN the segment table holds
//! exactly the expected ids; and a cronjob refresh at the same instant leaves
//! it unchanged.

use segments_core::Target;
use segments_tests::bq_check;
use segments_tests::cases::{NOW, load};
use segments_tests::warehouse::Warehouse;

/// One test per golden case, named after its file in `tests/cases/`.
macro_rules! golden_cases {
    ($($name:ident),* $(,)?) => {
        mod case {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::selects_exactly_the_expected_members(stringify!($name)).await;
                }
            )*
        }
    };
}

include!(concat!(env!("OUT_DIR"), "/golden_cases.rs"));

/// The fixture dataset every case reads: the first case to run loads it.
static CASES_DATASET: tokio::sync::Mutex<Option<String>> = tokio::sync::Mutex::const_new(None);

async fn cases_warehouse() -> Warehouse {
    let mut dataset = CASES_DATASET.lock().await;
    match dataset.as_deref() {
        Some(d) => Warehouse::open(d).await,
        None => {
            let w = Warehouse::fixture("cases").await;
            *dataset = Some(w.dataset.clone());
            w
        }
    }
}

/// The case's create query selects exactly its expected ids, and a refresh
/// at the same instant changes nothing.
async fn selects_exactly_the_expected_members(name: &str) {
    let w = cases_warehouse().await;
    let target = Target::new(&w.project, &w.dataset).unwrap();
    let case = load(name);
    let outcome = async {
        let r = case.render(&target, NOW)?;
        bq_check::check(&r.create_table_query)?;
        w.run(&r.create_table_query).await?;
        let got = w.members(&r.table).await?;
        let mut want = case.expect.clone();
        want.sort();
        if got != want {
            return Err(format!("members {got:?}, expected {want:?}"));
        }
        // A refresh at the same instant is a no-op.
        let cron = case.cronjob_at(&target, NOW)?;
        bq_check::check(&cron)?;
        w.run(&cron).await?;
        let again = w.members(&r.table).await?;
        if again != want {
            return Err(format!(
                "after the cronjob refresh: {again:?}, expected {want:?}"
            ));
        }
        Ok::<(), String>(())
    }
    .await;
    if let Err(e) = outcome {
        panic!("tests/cases/{name}.json ({}): {e}", case.about);
    }
}

fn rendered(
    w: &Warehouse,
    id: &str,
    groups: serde_json::Value,
    now: &str,
) -> segments_core::RenderedSegment {
    let seg =
        segments_core::parse_segment(&serde_json::json!({"id": id, "ruleGroups": groups})).unwrap();
    let target = Target::new(&w.project, &w.dataset).unwrap();
    let tz = segments_core::time::parse_time_zone("UTC").unwrap();
    let now = segments_core::time::parse_now(now).unwrap();
    segments_core::render_segment(
        &seg,
        &segments_core::Catalog::default_catalog(),
        &target,
        &tz,
        now,
    )
    .unwrap()
}

/// The refresh the cronjob submits at `now`, rendered from the rules.
fn refresh(w: &Warehouse, id: &str, groups: serde_json::Value, now: &str) -> String {
    let seg =
        segments_core::parse_segment(&serde_json::json!({"id": id, "ruleGroups": groups})).unwrap();
    let target = Target::new(&w.project, &w.dataset).unwrap();
    let tz = segments_core::time::parse_time_zone("UTC").unwrap();
    let now = segments_core::time::parse_now(now).unwrap();
    segments_core::render_refresh(
        &seg,
        &segments_core::Catalog::default_catalog(),
        &target,
        &tz,
        now,
    )
    .unwrap()
}

const T1: &str = "2024-06-15T12:00:00Z";
const T2: &str = "2024-06-16T12:00:00Z";

/// GIVEN segments built at T1, WHEN data changes and time moves to T2 and the
/// cronjob query runs, THEN each table equals a full rebuild at T2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cronjob_refresh_equals_a_rebuild_after_the_data_changes() {
    let w = Warehouse::fixture("cron").await;
    let window = serde_json::json!([{
        "mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
        "dateRangeFilter": {"type": "previous-period", "numberOfDaysPrevious": 1},
        "g0": {"type": "dimension", "key": "device_type", "condition": "is-set"}
    }]);
    let metric = serde_json::json!([{
        "mainOperator": "include", "segmentObject": "user", "conditionFocus": "metric",
        "g0": {"type": "metric", "key": "sessions", "condition": "greater-than", "value": 1}
    }]);
    let cases = [
        ("cron-window", window, vec!["s2"], vec!["s5", "s6", "s8"]),
        (
            "cron-metric",
            metric,
            vec!["u1", "u2"],
            vec!["u1", "u2", "u4"],
        ),
    ];
    for (id, groups, _, _) in &cases {
        let r = rendered(&w, id, groups.clone(), T1);
        w.run(&r.create_table_query).await.unwrap();
    }
    for (id, groups, at_t1, _) in &cases {
        let r = rendered(&w, id, groups.clone(), T1);
        assert_eq!(w.members(&r.table).await.unwrap(), *at_t1, "{id} at T1");
    }
    // The data changes: a new session today (s8) and a second session for u4 (s9).
    w.run_script(
        "INSERT INTO {{dataset}}.sessions (session_id, user_id, started_at, device_type) VALUES \
         ('s8', 'u5', TIMESTAMP '2024-06-15 13:00:00+00', 'Desktop'), ('s9', 'u4', TIMESTAMP '2024-06-16 09:00:00+00', 'mobile')",
    )
    .await;
    for (id, groups, _, at_t2) in &cases {
        let r = rendered(&w, id, groups.clone(), T1);
        let cron = refresh(&w, id, groups.clone(), T2);
        segments_tests::bq_check::check(&cron).unwrap();
        w.run(&cron).await.unwrap();
        let refreshed = w.members(&r.table).await.unwrap();
        // A rebuild at T2 into a second table.
        let rebuild = rendered(&w, &format!("{id}-rebuild"), groups.clone(), T2);
        w.run(&rebuild.create_table_query).await.unwrap();
        let rebuilt = w.members(&rebuild.table).await.unwrap();
        assert_eq!(
            refreshed, rebuilt,
            "{id}: refresh at T2 differs from a rebuild at T2"
        );
        assert_eq!(refreshed, *at_t2, "{id} at T2");
    }
}

/// GIVEN built segment tables, WHEN the report queries run, THEN each keeps only
/// the report rows whose object belongs to its segment (through the linking id
/// when the objects differ), grouped, sorted and paged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_queries_filter_by_each_segment() {
    let w = Warehouse::fixture("report").await;
    let us = serde_json::json!([{"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
        "g0": {"type": "dimension", "key": "country", "condition": "equals", "value": "us"}}]);
    let loyal = serde_json::json!([{"mainOperator": "include", "segmentObject": "user", "conditionFocus": "metric",
        "g0": {"type": "metric", "key": "sessions", "condition": "greater-than", "value": 1}}]);
    for (id, groups) in [("rep-us", us), ("rep-loyal", loyal)] {
        w.run(&rendered(&w, id, groups, T1).create_table_query)
            .await
            .unwrap();
    }
    let request = serde_json::json!({
        "accountId": "0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11", "accountTimeZone": "UTC", "reportName": "devices",
        "object": "session", "dateRange": {"startDate": "2024-06-01", "endDate": "2024-06-30"},
        "dimensions": ["device_type"], "metrics": ["sessions", "pageviews"],
        "segments": ["rep-us", {"id": "rep-loyal", "object": "user"}],
        "comparisonSegments": [{"id": "all-data", "allData": true}],
        "sort": {"by": "pageviews", "direction": "desc"}, "limit": 10, "offset": 0
    });
    let req = segments_core::report::parse_report_value(&request).unwrap();
    let target = Target::new(&w.project, &w.dataset).unwrap();
    let tz = segments_core::time::parse_time_zone("UTC").unwrap();
    let out = segments_core::report::render_report(
        &req,
        &segments_core::Catalog::default_catalog(),
        &target,
        &tz,
        segments_core::time::parse_now(T1).unwrap(),
    )
    .unwrap();
    let mut got = Vec::new();
    for q in out.segments.iter().chain(out.comparison_segments.iter()) {
        segments_tests::bq_check::check(&q.query).unwrap();
        let mut rs = w.run(&q.query).await.unwrap();
        let mut rows = Vec::new();
        while rs.next_row() {
            rows.push(format!(
                "{}:{}:{}",
                rs.get_string(0).unwrap().unwrap_or_default(),
                rs.get_i64(1).unwrap().unwrap_or(-1),
                rs.get_i64(2).unwrap().unwrap_or(-1)
            ));
        }
        got.push((q.segment_id.clone(), rows));
    }
    let expect = vec![
        (
            "rep-us".to_string(),
            vec!["Desktop:1:5".to_string(), "mobile:1:1".into()],
        ),
        (
            "rep-loyal".to_string(),
            vec!["Desktop:2:8".to_string(), "mobile:1:1".into()],
        ),
        (
            "all-data".to_string(),
            vec![
                "Desktop:2:8".to_string(),
                "mobile:1:1".into(),
                "tablet:1:0".into(),
            ],
        ),
    ];
    assert_eq!(got, expect);
}

/// GIVEN the fixture warehouse, WHEN the preview queries of a field run, THEN
/// they list its popular values with counts, a sorted sample, and the unique count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_queries_list_a_fields_values() {
    let w = Warehouse::fixture("preview").await;
    let target = Target::new(&w.project, &w.dataset).unwrap();
    let tz = segments_core::time::parse_time_zone("UTC").unwrap();
    let now = segments_core::time::parse_now(T1).unwrap();
    let cases = [
        (
            serde_json::json!({"segmentObject": "session", "conditionFocus": "property", "g0": {"type": "custom", "key": "plan"}}),
            vec![":1", "Team:1", "free:1", "pro:1"],
            4,
        ),
        (
            serde_json::json!({"segmentObject": "session", "conditionFocus": "property", "g0": {"type": "dimension", "key": "device_type"}}),
            vec!["Desktop:4", "mobile:1", "tablet:1"],
            3,
        ),
        (
            serde_json::json!({"segmentObject": "people", "conditionFocus": "property", "g0": {"type": "multi-value", "key": "tags"}}),
            vec!["beta:2", "Early:1", "VIP:1", "vip:1"],
            4,
        ),
        (
            serde_json::json!({"segmentObject": "session", "conditionFocus": "other-event",
            "dateRangeFilter": {"type": "previous-period", "numberOfDaysPrevious": 30}, "g0": {"key": "form_submit", "subKey": "form"}}),
            vec!["contact:1"],
            1,
        ),
    ];
    for (group, popular, unique) in cases {
        let q = segments_core::preview::preview_queries(
            &group,
            &segments_core::Catalog::default_catalog(),
            &target,
            &tz,
            now,
        )
        .unwrap();
        for sql in [&q.popular_values, &q.sample_values, &q.unique_count] {
            segments_tests::bq_check::check(sql).unwrap();
        }
        let mut rs = w.run(&q.popular_values).await.unwrap();
        let mut got = Vec::new();
        while rs.next_row() {
            got.push(format!(
                "{}:{}",
                rs.get_string(0).unwrap().unwrap_or_default(),
                rs.get_i64(1).unwrap().unwrap_or(-1)
            ));
        }
        assert_eq!(got, popular, "{group}");
        let mut sample: Vec<String> = popular
            .iter()
            .map(|p| p.rsplit_once(':').unwrap().0.to_string())
            .collect();
        sample.sort();
        assert_eq!(w.column(&q.sample_values).await.unwrap(), sample, "{group}");
        let mut rs = w.run(&q.unique_count).await.unwrap();
        assert!(rs.next_row());
        assert_eq!(rs.get_i64(0).unwrap(), Some(unique), "{group}");
    }
}

/// A segment rendered from its JSON *text*, as a message body arrives.
fn rendered_text(w: &Warehouse, id: &str, groups: &str) -> segments_core::RenderedSegment {
    let v: serde_json::Value =
        serde_json::from_str(&format!(r#"{{"id": "{id}", "ruleGroups": [{groups}]}}"#)).unwrap();
    let seg = segments_core::parse_segment(&v).unwrap();
    let target = Target::new(&w.project, &w.dataset).unwrap();
    let tz = segments_core::time::parse_time_zone("UTC").unwrap();
    let now = segments_core::time::parse_now(T1).unwrap();
    segments_core::render_segment(
        &seg,
        &segments_core::Catalog::default_catalog(),
        &target,
        &tz,
        now,
    )
    .unwrap()
}

/// GIVEN rows whose value is exactly 999.99, WHEN conditions compare them
/// with the JSON number 999.9900000000001 (one float step above, as a
/// browser's JSON.stringify sends it) on every path (a property, a row
/// metric, an aggregate, an event column, an event property), THEN the rows
/// compare against that exact double: 999.99 is below it, not equal to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_numbers_reach_sql_at_full_precision() {
    let w = Warehouse::fixture("precision").await;
    w.run_script(
        "INSERT INTO {{dataset}}.crm_opportunities (id, name, amount, created_at, custom) VALUES \
         ('op3', 'Exact deal', 999.99, TIMESTAMP '2024-06-01 00:00:00+00', []);\n\
         INSERT INTO {{dataset}}.users (user_id, last_seen_at, custom) VALUES ('u9', TIMESTAMP '2024-06-10 00:00:00+00', []);\n\
         INSERT INTO {{dataset}}.ecommerce_events (event_id, event_name, user_id, revenue, event_timestamp, properties) VALUES \
         ('ec9', 'purchase', 'u9', 999.99, TIMESTAMP '2024-06-10 10:00:00+00', [STRUCT('total' AS key, '999.99' AS value)])",
    )
    .await;
    let groups = |object: &str, focus: &str, cond: &str| {
        format!(
            r#"{{"mainOperator": "include", "segmentObject": "{object}", "conditionFocus": "{focus}", "g0": {cond}}}"#
        )
    };
    // (what, object, focus, condition with VALUE, members at 999.99, members at 999.9900000000001)
    let cases = [
        (
            "property",
            "crm-opportunity",
            "property",
            r#"{"type": "number", "key": "amount", "condition": "greater-than-or-equal", "value": VALUE}"#,
            vec!["op1", "op3"],
            vec!["op1"],
        ),
        (
            "row metric",
            "crm-opportunity",
            "metric",
            r#"{"type": "metric", "key": "amount", "condition": "less-than", "value": VALUE}"#,
            vec!["op2"],
            vec!["op2", "op3"],
        ),
        (
            "aggregate",
            "user",
            "metric",
            r#"{"type": "metric", "key": "revenue", "condition": "greater-than-or-equal", "value": VALUE}"#,
            vec!["u9"],
            vec![],
        ),
        (
            "event column",
            "user",
            "ecommerce-event",
            r#"{"id": "purchase", "property": "revenue", "condition": "greater-than-or-equal", "value": VALUE}"#,
            vec!["u9"],
            vec![],
        ),
        (
            "event property",
            "user",
            "ecommerce-event",
            r#"{"id": "purchase", "property": "total", "type": "number", "condition": "greater-than-or-equal", "value": VALUE}"#,
            vec!["u9"],
            vec![],
        ),
    ];
    let mut failures = Vec::new();
    for (i, (what, object, focus, cond, at_exact, above)) in cases.iter().enumerate() {
        for (j, (value, want)) in [("999.99", at_exact), ("999.9900000000001", above)]
            .iter()
            .enumerate()
        {
            let g = groups(object, focus, &cond.replace("VALUE", value));
            let r = rendered_text(&w, &format!("precision-{i}-{j}"), &g);
            w.run(&r.create_table_query).await.unwrap();
            let got = w.members(&r.table).await.unwrap();
            if got != **want {
                failures.push(format!("{what} with {value}: {got:?}, expected {want:?}"));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
