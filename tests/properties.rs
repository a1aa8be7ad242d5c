//! Properties: no input panics; random valid segments render SQL that parses;
//! random user values and keys never change a statement's shape and come back
//! out of the parse unchanged.

use proptest::prelude::*;
use segments_core::catalog::ColumnType;
use segments_core::time::{parse_now, parse_time_zone};
use segments_core::{Catalog, Target, parse_segment, parse_segment_bytes, render_segment};
use segments_tests::bq_check;
use serde_json::{Value, json};
use sqlparser::ast::{Value as SqlValue, ValueWithSpan, VisitMut, VisitorMut};
use std::ops::ControlFlow;

fn render(seg: &Value, tz: &str) -> Result<segments_core::RenderedSegment, String> {
    let seg = parse_segment(seg).map_err(|e| e.to_string())?;
    let target = Target::new("acme-analytics", "account_1").unwrap();
    let tz = parse_time_zone(tz).unwrap();
    render_segment(
        &seg,
        &Catalog::default_catalog(),
        &target,
        &tz,
        parse_now("2024-06-15T12:00:00Z").unwrap(),
    )
    .map_err(|e| e.to_string())
}

/// The refresh the cronjob submits for `seg` at `now` in `tz`, from its rules.
fn refresh(seg: &Value, tz: &str, now: &str) -> Result<String, String> {
    let seg = parse_segment(seg).map_err(|e| e.to_string())?;
    let target = Target::new("acme-analytics", "account_1").unwrap();
    let tz = parse_time_zone(tz).unwrap();
    segments_core::render_refresh(
        &seg,
        &Catalog::default_catalog(),
        &target,
        &tz,
        parse_now(now).unwrap(),
    )
    .map_err(|e| e.to_string())
}

/// Replaces every string literal with '' and records the originals.
struct Literals(Vec<String>);

impl VisitorMut for Literals {
    type Break = ();
    fn pre_visit_value(&mut self, v: &mut ValueWithSpan) -> ControlFlow<()> {
        if let SqlValue::SingleQuotedString(s) = &mut v.value {
            self.0.push(std::mem::take(s));
        }
        ControlFlow::Continue(())
    }
}

/// The statement's shape (its AST with literals blanked, printed without source
/// spans; only compared, never run) and its literals.
fn shape(sql: &str) -> (String, Vec<String>) {
    let mut stmt = bq_check::check(sql).unwrap_or_else(|e| panic!("{e}"));
    let mut lits = Literals(Vec::new());
    let _ = stmt.visit(&mut lits);
    (stmt.to_string(), lits.0)
}

fn value_segment(value: &str, key: &str) -> Value {
    json!({"id": "prop", "ruleGroups": [{
        "mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
        "g0": {"type": "dimension", "key": "country", "condition": "contains", "value": value},
        "g1": {"conjunction": "or", "type": "custom", "key": key, "condition": "in-list", "value": [value, "b"]},
        "g2": {"type": "dimension", "key": "referrer", "condition": "matches-regex", "value": regex_syntax_escape(value)}
    }, {
        "mainOperator": "include", "segmentObject": "session", "conditionFocus": "other-event",
        "g0": {"key": value, "subKey": key, "condition": "not-equal", "value": value}
    }]})
}

/// Any text becomes a valid regex matching it literally.
fn regex_syntax_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~ \t\n\r\u{b}\u{c}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let _ = parse_segment_bytes(&bytes);
        let _ = segments_core::report::parse_report_request(&bytes);
    }

    #[test]
    fn random_json_never_panics(v in arb_json()) {
        if let Ok(seg) = parse_segment(&v) {
            let _ = segments_core::validate_segment(&seg, &Catalog::default_catalog());
        }
        let _ = render(&v, "UTC");
        let _ = segments_core::report::parse_report_value(&v);
    }

    #[test]
    fn user_values_never_change_the_statement(value in "[^\u{0}]{1,24}", key in "[A-Za-z_][A-Za-z0-9_]{0,12}") {
        let baseline = render(&value_segment("x", "k"), "UTC").unwrap();
        let got = render(&value_segment(&value, &key), "UTC").unwrap();
        let cron = |seg: &Value| refresh(seg, "UTC", "2024-06-16T00:00:00Z").unwrap();
        for (base, sql) in [
            (baseline.create_table_query.clone(), got.create_table_query.clone()),
            (cron(&value_segment("x", "k")), cron(&value_segment(&value, &key))),
        ] {
            let (base_shape, _) = shape(&base);
            let (got_shape, lits) = shape(&sql);
            prop_assert_eq!(&base_shape, &got_shape);
            // The value, the key and the regex come back out of the parse as they went in.
            prop_assert!(lits.contains(&value), "value {:?} not among literals {:?}", value, lits);
            prop_assert!(lits.contains(&key));
            prop_assert!(lits.contains(&regex_syntax_escape(&value)));
        }
    }

    #[test]
    fn keys_that_fail_the_identifier_check_are_errors(key in "[^\u{0}]{1,16}") {
        let seg = value_segment("x", &key);
        let ok = segments_core::sql::is_identifier(&key);
        match render(&seg, "UTC") {
            Ok(_) => prop_assert!(ok, "key {:?} reached SQL", key),
            Err(e) => {
                prop_assert!(!ok, "valid key {:?} refused: {}", key, e);
                prop_assert!(e.contains("ruleGroups[0].g1.key") && e.contains("not a valid key"), "{}", e);
            }
        }
    }

    #[test]
    fn string_literals_round_trip(s in "[^\u{0}]{0,40}") {
        let sql = format!("SELECT {}", segments_core::sql::string_literal(&s));
        let (_, lits) = shape(&sql);
        prop_assert_eq!(lits, vec![s]);
    }

    #[test]
    fn random_valid_segments_render_bigquery_sql(seg in arb_segment(), tz in prop::sample::select(vec!["UTC", "America/New_York", "Asia/Kolkata", "Pacific/Chatham"])) {
        let r = render(&seg, tz).unwrap_or_else(|e| panic!("{e}\n{seg:#}"));
        bq_check::check(&r.create_table_query).unwrap();
        let cron = refresh(&seg, tz, "2025-03-30T01:30:00Z").unwrap();
        bq_check::check(&cron).unwrap();
    }
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|i| json!(i)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        prop::sample::select(vec![
            "include",
            "exclude",
            "and",
            "or",
            "session",
            "user",
            "people",
            "property",
            "metric",
            "other-event",
            "custom",
            "dimension",
            "equals",
            "between",
            "is-set",
            "country",
            "g0",
            "2024-01-01",
            "previous-period",
            "specific-date-range",
            "",
            "x'y",
        ])
        .prop_map(|s| json!(s)),
        "[^\u{0}]{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "id",
                    "ruleGroups",
                    "mainOperator",
                    "conjunction",
                    "segmentObject",
                    "conditionFocus",
                    "dateRangeFilter",
                    "type",
                    "key",
                    "subKey",
                    "condition",
                    "value",
                    "g0",
                    "g1",
                    "g3",
                    "numberOfDaysPrevious",
                    "startDate",
                    "endDate",
                    "property",
                ])
                .prop_map(String::from),
                inner,
                0..6
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Conditions valid for an object's property focus, built from the catalog.
fn property_conditions(object: &str) -> Vec<(String, ColumnType)> {
    let cat = Catalog::default_catalog();
    cat.objects[object]
        .columns
        .iter()
        .map(|(k, t)| (k.clone(), *t))
        .collect()
}

fn arb_condition(object: &'static str) -> impl Strategy<Value = Value> {
    let cols = property_conditions(object);
    (prop::sample::select(cols), 0usize..8, "[^\u{0}]{0,6}", -1000i64..1000, 1u32..400, prop::bool::ANY).prop_map(
        |((key, ty), pick, text, n, days, or)| {
            let (op, value) = match ty {
                ColumnType::String => {
                    let ops = ["equals", "not-equal", "contains", "not-contain", "starts-with", "ends-with", "in-list", "is-set"];
                    let op = ops[pick % ops.len()];
                    (op, if op == "in-list" { json!([text, "b"]) } else { json!(text) })
                }
                ColumnType::Int64 | ColumnType::Float64 => {
                    let ops = ["equals", "not-equal", "greater-than", "less-than-or-equal", "between"];
                    let op = ops[pick % ops.len()];
                    (op, if op == "between" { json!([n, n + 5]) } else { json!(n.to_string()) })
                }
                ColumnType::Bool => (["is-true", "is-false", "is-set"][pick % 3], Value::Null),
                ColumnType::Timestamp | ColumnType::Date => {
                    let ops = ["before", "after", "between", "in-last-days", "is-not-set"];
                    let op = ops[pick % ops.len()];
                    let v = match op {
                        "between" => json!(["2024-03-01", "2024-03-31"]),
                        "in-last-days" => json!(days),
                        _ => json!("2024-03-10"),
                    };
                    (op, v)
                }
                ColumnType::StringArray => {
                    let ops = ["contains-any", "contains-all", "not-contains-any", "is-set"];
                    (ops[pick % ops.len()], json!([text]))
                }
            };
            json!({"type": "dimension", "key": key, "condition": op, "value": value, "conjunction": if or { "or" } else { "and" }})
        },
    )
}

fn arb_group(object: &'static str) -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(arb_condition(object), 1..5),
        prop::bool::ANY,
        prop::bool::weighted(0.3),
        0u32..3,
        1u32..90,
    )
        .prop_map(move |(conds, or, exclude, range, days)| {
            let mut g = json!({
                "mainOperator": if exclude { "exclude" } else { "include" },
                "conjunction": if or { "or" } else { "and" },
                "segmentObject": object, "conditionFocus": "property",
                "dateRangeFilter": match range {
                    0 => json!({"type": "lifetime-of-the-object"}),
                    1 => json!({"type": "previous-period", "numberOfDaysPrevious": days}),
                    _ => json!({"type": "specific-date-range", "startDate": "2024-01-01", "endDate": "2024-02-29"}),
                }
            });
            for (i, c) in conds.into_iter().enumerate() {
                g[format!("g{i}")] = c;
            }
            g
        })
}

fn arb_segment() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        "session",
        "user",
        "people",
        "revealed-company",
        "crm-opportunity",
        "web-conversion",
    ])
    .prop_flat_map(|object| prop::collection::vec(arb_group(object), 1..5))
    .prop_map(|groups| json!({"id": "random", "ruleGroups": groups}))
}
