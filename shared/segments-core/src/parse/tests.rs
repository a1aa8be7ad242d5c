use super::*;
use serde_json::json;

fn errors(v: Value) -> Vec<String> {
    match parse_segment(&v) {
        Ok(_) => vec![],
        Err(e) => e.0.iter().map(ToString::to_string).collect(),
    }
}

fn group(extra: Value) -> Value {
    let mut g = json!({
        "mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
        "g0": {"type": "dimension", "key": "country", "condition": "equals", "value": "US"}
    });
    for (k, v) in extra.as_object().unwrap() {
        g[k] = v.clone();
    }
    g
}

#[test]
fn reports_unknown_operator_with_its_path() {
    let v = json!({"id": "s1", "ruleGroups": [group(json!({})), group(json!({
        "g1": {"type": "dimension", "key": "country", "condition": "equals", "value": "x"},
        "g2": {"type": "dimension", "key": "country", "condition": "equal", "value": "x"}
    }))]});
    assert_eq!(
        errors(v),
        vec![r#"ruleGroups[1].g2.condition: unknown operator "equal""#]
    );
}

#[test]
fn reports_every_error() {
    let v = json!({"id": "s1", "ruleGroups": [
        {"mainOperator": "maybe", "segmentObject": "session", "conditionFocus": "property",
         "dateRangeFilter": {"type": "specific-date-range", "startDate": "2024-02-30", "endDate": "2024-01-01"},
         "g0": {"type": "dimension", "key": "country", "condition": "equals", "value": "US"},
         "g2": {"type": "number", "key": "pageviews", "condition": "greater-than", "value": "abc"}}
    ]});
    assert_eq!(
        errors(v),
        vec![
            r#"ruleGroups[0].mainOperator: unknown main operator "maybe""#,
            r#"ruleGroups[0].dateRangeFilter.startDate: "2024-02-30" is not a date (YYYY-MM-DD)"#,
            "ruleGroups[0].g1: is missing; conditions must be contiguous from g0 but g2 follows",
            "ruleGroups[0].g2.value: expected a number",
        ]
    );
}

#[test]
fn every_gap_is_reported_once_and_any_index_counts() {
    let c = json!({"type": "dimension", "key": "country", "condition": "equals", "value": "US"});
    let v = json!({"id": "s1", "ruleGroups": [group(json!({
        "g2": c, "g4": c, "g10000": c, "g99999999999999999999999": c, "g00": c, "gx": c
    }))]});
    assert_eq!(
        errors(v),
        vec![
            "ruleGroups[0].g1: is missing; conditions must be contiguous from g0 but g2 follows",
            "ruleGroups[0].g3: is missing; conditions must be contiguous from g0 but g4 follows",
            "ruleGroups[0].g5: is missing, and so are g6 to g9999; conditions must be contiguous from g0 but g10000 follows",
            "ruleGroups[0].g10001: is missing, and so is every index up to g99999999999999999999999; conditions must be contiguous from g0 but g99999999999999999999999 follows",
        ]
    );
}

#[test]
fn conjunctions_are_ignored_on_the_first_group_and_on_g0() {
    let v = json!({"id": "s1", "ruleGroups": [group(json!({"conjunction": "whatever",
            "g0": {"conjunction": 7, "type": "dimension", "key": "country", "condition": "equals", "value": "US"}}))]});
    assert_eq!(errors(v), Vec::<String>::new());
    // ... but not on the others.
    let v = json!({"id": "s1", "ruleGroups": [group(json!({})), group(json!({"conjunction": "xor",
            "g1": {"conjunction": "nand", "type": "dimension", "key": "country", "condition": "equals", "value": "US"}}))]});
    assert_eq!(
        errors(v),
        vec![
            r#"ruleGroups[1].conjunction: unknown conjunction "xor""#,
            r#"ruleGroups[1].g1.conjunction: unknown conjunction "nand""#,
        ]
    );
}

#[test]
fn a_date_range_type_of_the_wrong_type_says_so() {
    let v = json!({"id": "s1", "ruleGroups": [group(json!({"dateRangeFilter": {"type": 5}}))]});
    assert_eq!(
        errors(v),
        vec!["ruleGroups[0].dateRangeFilter.type: must be a string"]
    );
}

#[test]
fn days_stay_inside_bigquerys_range_in_every_zone() {
    assert_eq!(parse_day("0001-01-01"), None);
    assert!(parse_day("0001-01-02").is_some());
    assert!(parse_day("9999-12-30").is_some());
    assert_eq!(parse_day("9999-12-31"), None);
}

#[test]
fn empty_or_missing_rule_groups() {
    assert_eq!(
        errors(json!({"id": "s", "ruleGroups": []})),
        vec!["ruleGroups: at least one rule group is required"]
    );
    assert_eq!(errors(json!({"id": "s"})), vec!["ruleGroups: is required"]);
    assert_eq!(
        errors(json!([1])),
        vec!["$: a segment must be a JSON object"]
    );
}

#[test]
fn numbers_may_be_strings_and_single_values_are_lists() {
    let v = json!({"id": "s1", "ignored": {"x": 1}, "ruleGroups": [group(json!({
        "dateRangeFilter": {"type": "previous-period", "numberOfDaysPrevious": "30"},
        "g1": {"type": "number", "key": "pageviews", "condition": "greater-than", "value": " 2.5 "},
        "g2": {"type": "dimension", "key": "country", "condition": "in-list", "value": "US"}
    }))]});
    let s = parse_segment(&v).unwrap();
    let g = &s.rule_groups[0];
    assert_eq!(g.date_range, DateRange::PreviousPeriod { days: 30 });
    let Conditions::Property(conds) = &g.conditions else {
        panic!("a property group: {g:?}")
    };
    assert_eq!(conds[1].test.operand, Operand::Number(Number::Float(2.5)));
    assert_eq!(conds[2].test.operand, Operand::TextList(vec!["US".into()]));
    assert_eq!(conds[2].field, PropertyField::Column("country".into()));
}

#[test]
fn groups_must_share_the_object() {
    let v = json!({"id": "s1", "ruleGroups": [group(json!({})), group(json!({"segmentObject": "user"}))]});
    assert_eq!(
        errors(v),
        vec![
            r#"ruleGroups[1].segmentObject: "user" differs from the segment's object "session"; every group must select the same object"#
        ]
    );
}

#[test]
fn bad_regex_and_reversed_ranges() {
    let v = json!({"id": "s1", "ruleGroups": [group(json!({
        "g0": {"type": "dimension", "key": "country", "condition": "matches-regex", "value": "(unclosed"},
        "g1": {"type": "number", "key": "pageviews", "condition": "between", "value": [5, 1]}
    }))]});
    let errs = errors(v);
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].starts_with("ruleGroups[0].g0.value: not a valid regular expression"));
    assert_eq!(
        errs[1],
        "ruleGroups[0].g1.value: the range [from, to] ends before it starts"
    );
}

#[test]
fn segment_ids_are_restricted() {
    assert!(errors(json!({"id": "a`b", "ruleGroups": [group(json!({}))]}))[0].starts_with("id: "));
    assert!(is_segment_id("7b0c1f0e-3f1a-4a59-9a53-2f1c7d7f3b11"));
}
