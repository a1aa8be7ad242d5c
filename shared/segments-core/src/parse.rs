//! Segment JSON (SPEC §2, exactly as the web app stores it) into the typed model.
//! Collects every structural error with its path; never panics on any JSON.

use crate::error::ValidationErrors;
use crate::model::*;
use chrono::NaiveDate;
use serde_json::{Map, Value};

/// Upper bound for day counts (100 years); larger inputs are typos, not intent.
pub const MAX_DAYS: u32 = 36_500;

/// Parses raw bytes (the file or message body) into a segment.
pub fn parse_segment_bytes(bytes: &[u8]) -> Result<Segment, ValidationErrors> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(v) => parse_segment(&v),
        Err(e) => {
            let mut errs = ValidationErrors::default();
            errs.push("$", format!("not valid JSON: {e}"));
            Err(errs)
        }
    }
}

pub fn parse_segment(v: &Value) -> Result<Segment, ValidationErrors> {
    let mut errs = ValidationErrors::default();
    let Some(root) = v.as_object() else {
        errs.push("$", "a segment must be a JSON object");
        return Err(errs);
    };

    let id = match root.get("id") {
        Some(Value::String(s)) if is_segment_id(s) => s.clone(),
        Some(Value::String(s)) => {
            errs.push(
                "id",
                format!(
                    "{s:?} is not a segment id (letters, digits, - and _ only, 1 to 100 characters)"
                ),
            );
            String::new()
        }
        Some(_) => {
            errs.push("id", "must be a string");
            String::new()
        }
        None => {
            errs.push("id", "is required");
            String::new()
        }
    };
    let account_id = opt_string(root, "accountId", "accountId", &mut errs);
    let name = opt_string(root, "name", "name", &mut errs);
    let description = opt_string(root, "description", "description", &mut errs);

    let mut groups = Vec::new();
    match root.get("ruleGroups") {
        Some(Value::Array(items)) if !items.is_empty() => {
            for (i, g) in items.iter().enumerate() {
                if let Some(group) = parse_group(g, &format!("ruleGroups[{i}]"), &mut errs) {
                    groups.push(group);
                }
            }
        }
        Some(Value::Array(_)) => errs.push("ruleGroups", "at least one rule group is required"),
        Some(_) => errs.push("ruleGroups", "must be an array of rule groups"),
        None => errs.push("ruleGroups", "is required"),
    }

    // Every group shares the first group's object: that is the segment's object.
    let object = groups.first().map(|g| g.object);
    if let Some(object) = object
        && let Some(items) = root.get("ruleGroups").and_then(Value::as_array)
    {
        for (i, g) in items.iter().enumerate() {
            let o = g.get("segmentObject").and_then(Value::as_str);
            if let Some(other) = o.and_then(SegmentObject::from_wire)
                && other != object
            {
                errs.push(
                            format!("ruleGroups[{i}].segmentObject"),
                            format!(
                                "\"{other}\" differs from the segment's object \"{object}\"; every group must select the same object"
                            ),
                        );
            }
        }
    }

    match object {
        Some(object) if errs.is_empty() => Ok(Segment {
            id,
            account_id,
            name,
            description,
            object,
            rule_groups: groups,
        }),
        _ => {
            if errs.is_empty() {
                errs.push("ruleGroups", "no valid rule group");
            }
            Err(errs)
        }
    }
}

/// Segment ids become table names, so they are limited to safe characters.
pub fn is_segment_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn opt_string(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
    errs: &mut ValidationErrors,
) -> Option<String> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errs.push(path, "must be a string");
            None
        }
    }
}

fn parse_enum<T>(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
    what: &str,
    from_wire: fn(&str) -> Option<T>,
    required: bool,
    errs: &mut ValidationErrors,
) -> Option<T> {
    match obj.get(key) {
        None | Some(Value::Null) => {
            if required {
                errs.push(format!("{path}.{key}"), "is required");
            }
            None
        }
        Some(Value::String(s)) => {
            let parsed = from_wire(s);
            if parsed.is_none() {
                errs.push(format!("{path}.{key}"), format!("unknown {what} {s:?}"));
            }
            parsed
        }
        Some(_) => {
            errs.push(format!("{path}.{key}"), "must be a string");
            None
        }
    }
}

fn parse_group(v: &Value, path: &str, errs: &mut ValidationErrors) -> Option<RuleGroup> {
    let before = errs.0.len();
    let (group, _) = parse_group_parts(v, path, errs)?;
    (errs.0.len() == before).then_some(group)
}

/// A group's or condition's `conjunction` (default and); ignored on the first
/// group and on `g0` (SPEC §2), whatever it holds there.
fn conjunction(
    obj: &Map<String, Value>,
    path: &str,
    first: bool,
    errs: &mut ValidationErrors,
) -> Conjunction {
    if first {
        return Conjunction::And;
    }
    parse_enum(
        obj,
        "conjunction",
        path,
        "conjunction",
        Conjunction::from_wire,
        false,
        errs,
    )
    .unwrap_or(Conjunction::And)
}

/// A group whose own fields parsed, with the conditions that parsed and
/// their `gN` indexes (conditions with errors are left out).
fn parse_group_parts(
    v: &Value,
    path: &str,
    errs: &mut ValidationErrors,
) -> Option<(RuleGroup, Vec<usize>)> {
    let Some(obj) = v.as_object() else {
        errs.push(path, "a rule group must be an object");
        return None;
    };
    let main_operator = parse_enum(
        obj,
        "mainOperator",
        path,
        "main operator",
        MainOperator::from_wire,
        true,
        errs,
    );
    let conjunction = conjunction(obj, path, path == "ruleGroups[0]", errs);
    let object = parse_enum(
        obj,
        "segmentObject",
        path,
        "segment object",
        SegmentObject::from_wire,
        true,
        errs,
    );
    let focus = parse_enum(
        obj,
        "conditionFocus",
        path,
        "condition focus",
        Focus::from_wire,
        true,
        errs,
    );
    let date_range = parse_date_range(
        obj.get("dateRangeFilter"),
        &format!("{path}.dateRangeFilter"),
        errs,
    );

    // Conditions live under g0..gN, contiguous from g0.
    let mut indexes: Vec<(usize, &String)> = obj
        .keys()
        .filter_map(|k| condition_index(k).map(|i| (i, k)))
        .collect();
    indexes.sort_unstable();
    let mut conditions = Vec::new();
    let mut kept = Vec::new();
    if indexes.is_empty() {
        errs.push(
            format!("{path}.g0"),
            "a rule group needs at least one condition",
        );
    }
    // Every gap, each named once: g1 alone, or g1 to g9 as one error.
    let mut expected = 0usize;
    for &(idx, key) in &indexes {
        if idx > expected {
            let missing = if idx - expected == 1 {
                "is missing".to_string()
            } else if idx == usize::MAX {
                format!("is missing, and so is every index up to {key}")
            } else {
                format!("is missing, and so are g{} to g{}", expected + 1, idx - 1)
            };
            errs.push(
                format!("{path}.g{expected}"),
                format!("{missing}; conditions must be contiguous from g0 but {key} follows"),
            );
        }
        expected = idx.saturating_add(1);
    }
    for &(idx, key) in &indexes {
        let cpath = format!("{path}.{key}");
        if let Some(c) = parse_condition(&obj[key], &cpath, idx == 0, focus, errs) {
            conditions.push(c);
            kept.push(idx);
        }
    }
    Some((
        RuleGroup {
            main_operator: main_operator?,
            conjunction,
            object: object?,
            focus: focus?,
            date_range: date_range?,
            conditions,
        },
        kept,
    ))
}

/// `g0`, `g1`, ... (digits without leading zeros) name conditions; anything
/// else is an unknown field. An index too large for a usize is still a
/// condition key (it leaves a gap, which is an error).
fn condition_index(key: &str) -> Option<usize> {
    let digits = key.strip_prefix('g')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if digits.len() > 1 && digits.starts_with('0') {
        return None;
    }
    Some(digits.parse().unwrap_or(usize::MAX))
}

/// For a segment that failed to parse: every group whose own fields parsed,
/// as `(group index, group with the conditions that parsed, their gN
/// indexes)`, so the checks against the catalog can still run on them and
/// report their errors alongside the structural ones.
pub fn partial_groups(v: &Value) -> Vec<(usize, RuleGroup, Vec<usize>)> {
    let mut scratch = ValidationErrors::default();
    let Some(items) = v.get("ruleGroups").and_then(Value::as_array) else {
        return vec![];
    };
    items
        .iter()
        .enumerate()
        .filter_map(|(i, g)| {
            parse_group_parts(g, &format!("ruleGroups[{i}]"), &mut scratch)
                .map(|(group, kept)| (i, group, kept))
        })
        .collect()
}

fn parse_date_range(
    v: Option<&Value>,
    path: &str,
    errs: &mut ValidationErrors,
) -> Option<DateRange> {
    let obj = match v {
        None | Some(Value::Null) => return Some(DateRange::Lifetime),
        Some(Value::Object(o)) => o,
        Some(_) => {
            errs.push(path, "must be an object");
            return None;
        }
    };
    let kind = match obj.get("type") {
        None | Some(Value::Null) => {
            errs.push(format!("{path}.type"), "is required");
            return None;
        }
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            errs.push(format!("{path}.type"), "must be a string");
            return None;
        }
    };
    match kind {
        "lifetime-of-the-object" => Some(DateRange::Lifetime),
        "previous-period" => {
            let days = parse_days(
                obj.get("numberOfDaysPrevious"),
                &format!("{path}.numberOfDaysPrevious"),
                errs,
            )?;
            Some(DateRange::PreviousPeriod { days })
        }
        "specific-date-range" => {
            let start = parse_date(obj.get("startDate"), &format!("{path}.startDate"), errs);
            let end = parse_date(obj.get("endDate"), &format!("{path}.endDate"), errs);
            let (start, end) = (start?, end?);
            if start > end {
                errs.push(
                    format!("{path}.endDate"),
                    format!("{end} is before startDate {start}"),
                );
                return None;
            }
            Some(DateRange::Specific { start, end })
        }
        other => {
            errs.push(
                format!("{path}.type"),
                format!("unknown date range type {other:?}"),
            );
            None
        }
    }
}

fn parse_days(v: Option<&Value>, path: &str, errs: &mut ValidationErrors) -> Option<u32> {
    let n = match v {
        None | Some(Value::Null) => {
            errs.push(path, "is required");
            return None;
        }
        Some(v) => number_of(v),
    };
    match n {
        Some(Number::Int(i)) if (1..=MAX_DAYS as i64).contains(&i) => Some(i as u32),
        Some(Number::Float(f)) if f.fract() == 0.0 && (1.0..=MAX_DAYS as f64).contains(&f) => {
            Some(f as u32)
        }
        _ => {
            errs.push(
                path,
                format!("must be a whole number of days from 1 to {MAX_DAYS}"),
            );
            None
        }
    }
}

fn parse_date(v: Option<&Value>, path: &str, errs: &mut ValidationErrors) -> Option<NaiveDate> {
    match v {
        None | Some(Value::Null) => {
            errs.push(path, "is required");
            None
        }
        Some(Value::String(s)) => match parse_day(s) {
            Some(d) => Some(d),
            None => {
                errs.push(path, format!("{s:?} is not a date (YYYY-MM-DD)"));
                None
            }
        },
        Some(_) => {
            errs.push(path, "must be a date string (YYYY-MM-DD)");
            None
        }
    }
}

/// A calendar day written `YYYY-MM-DD`, years 1 to 9999.
pub fn parse_day(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    if s.len() != 10 || s.as_bytes()[4] != b'-' || s.as_bytes()[7] != b'-' {
        return None;
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    // A day's bounds in any zone (UTC-12 to UTC+14) must stay inside
    // BigQuery's TIMESTAMP range, years 1 to 9999.
    (d >= NaiveDate::from_ymd_opt(1, 1, 2)? && d <= NaiveDate::from_ymd_opt(9999, 12, 30)?)
        .then_some(d)
}

/// A JSON number, or a string holding one (the web app sends both).
pub fn number_of(v: &Value) -> Option<Number> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Some(Number::Int(i))
            } else {
                n.as_f64().filter(|f| f.is_finite()).map(Number::Float)
            }
        }
        Value::String(s) => parse_number_text(s),
        _ => None,
    }
}

pub fn parse_number_text(s: &str) -> Option<Number> {
    let t = s.trim();
    if t.is_empty() || t.len() > 64 {
        return None;
    }
    // Only plain decimal notation: no "inf", "NaN", hex or underscores.
    let ok = t
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'));
    if !ok || !t.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    if let Ok(i) = t.parse::<i64>() {
        return Some(Number::Int(i));
    }
    t.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .map(Number::Float)
}

fn opt_text_field(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
    errs: &mut ValidationErrors,
) -> Option<String> {
    match obj.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            errs.push(format!("{path}.{key}"), "must be a string");
            None
        }
    }
}

fn parse_condition(
    v: &Value,
    path: &str,
    first: bool,
    focus: Option<Focus>,
    errs: &mut ValidationErrors,
) -> Option<Condition> {
    let Some(obj) = v.as_object() else {
        errs.push(path, "a condition must be an object");
        return None;
    };
    let before = errs.0.len();
    let conjunction = conjunction(obj, path, first, errs);
    let field_type = parse_enum(
        obj,
        "type",
        path,
        "field type",
        FieldType::from_wire,
        false,
        errs,
    );
    let key = opt_text_field(obj, "key", path, errs);
    let sub_key = opt_text_field(obj, "subKey", path, errs);
    let sub_key_lv2 = opt_text_field(obj, "subKeyLv2", path, errs);
    let property = opt_text_field(obj, "property", path, errs);
    let id = opt_text_field(obj, "id", path, errs);

    // An event condition may select by `id` alone ("has conversion X").
    let selector_only = focus.is_some_and(Focus::is_event)
        && id.is_some()
        && property.is_none()
        && key.is_none()
        && obj.get("condition").is_none_or(Value::is_null);
    let operator = if selector_only {
        None
    } else {
        parse_enum(
            obj,
            "condition",
            path,
            "operator",
            Operator::from_wire,
            true,
            errs,
        )
    };
    let operand = match operator {
        Some(op) => parse_operand(op, obj.get("value"), &format!("{path}.value"), errs),
        None => Some(Operand::None),
    };
    if errs.0.len() != before {
        return None;
    }
    Some(Condition {
        conjunction,
        field_type,
        key,
        sub_key,
        sub_key_lv2,
        property,
        id,
        operator,
        operand: operand?,
    })
}

/// Shapes `value` by what the operator needs.
fn parse_operand(
    op: Operator,
    v: Option<&Value>,
    path: &str,
    errs: &mut ValidationErrors,
) -> Option<Operand> {
    use Operator::*;
    let v = v.unwrap_or(&Value::Null);
    match op {
        IsSet | IsNotSet | IsTrue | IsFalse => Some(Operand::None),
        Equals | NotEqual => match v {
            // equals/not-equal serve both text and number fields; keep the text
            // and let the compiler read it as a number for numeric fields.
            Value::String(_) | Value::Number(_) | Value::Bool(_) => {
                scalar_text(v, path, errs).map(Operand::Text)
            }
            _ => {
                errs.push(path, "expected a single value");
                None
            }
        },
        Contains | NotContain | StartsWith | EndsWith => {
            scalar_text(v, path, errs).map(Operand::Text)
        }
        MatchesRegex | NotMatchRegex => {
            let pattern = scalar_text(v, path, errs)?;
            // BigQuery runs RE2: what RE2 parses, as written, and nothing else.
            if let Err(e) = crate::re2::check(&pattern) {
                errs.push(path, format!("not a valid regular expression (RE2): {e}"));
                return None;
            }
            Some(Operand::Regex(pattern))
        }
        InList | NotInList | ContainsAny | ContainsAll | NotContainsAny => {
            text_list(v, path, errs).map(Operand::TextList)
        }
        GreaterThan | GreaterThanOrEqual | LessThan | LessThanOrEqual => match number_of(v) {
            Some(n) => Some(Operand::Number(n)),
            None => {
                errs.push(path, "expected a number");
                None
            }
        },
        Between => {
            // `between` is numeric unless both ends are dates.
            if let Value::Array(items) = v
                && items.len() == 2
            {
                if let (Some(a), Some(b)) = (
                    items[0].as_str().and_then(parse_day),
                    items[1].as_str().and_then(parse_day),
                ) {
                    if a > b {
                        errs.push(path, format!("the range [{a}, {b}] ends before it starts"));
                        return None;
                    }
                    return Some(Operand::DateRange(a, b));
                }
                if let (Some(a), Some(b)) = (number_of(&items[0]), number_of(&items[1])) {
                    if a.as_f64() > b.as_f64() {
                        errs.push(path, "the range [from, to] ends before it starts");
                        return None;
                    }
                    return Some(Operand::NumberRange(a, b));
                }
            }
            errs.push(
                path,
                "expected [from, to]: two numbers or two dates (YYYY-MM-DD)",
            );
            None
        }
        Before | After => match v.as_str().and_then(parse_day) {
            Some(d) => Some(Operand::Date(d)),
            None => {
                errs.push(path, "expected a date (YYYY-MM-DD)");
                None
            }
        },
        InLastDays => parse_days(Some(v), path, errs).map(Operand::Days),
    }
}

fn scalar_text(v: &Value, path: &str, errs: &mut ValidationErrors) -> Option<String> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => {
            errs.push(path, "is required");
            return None;
        }
        _ => {
            errs.push(path, "expected a single value");
            return None;
        }
    };
    check_text(&s, path, errs).then_some(s)
}

fn check_text(s: &str, path: &str, errs: &mut ValidationErrors) -> bool {
    if s.contains('\0') {
        errs.push(path, "must not contain a NUL character");
        return false;
    }
    if s.len() > 10_000 {
        errs.push(path, "is longer than 10000 bytes");
        return false;
    }
    true
}

fn text_list(v: &Value, path: &str, errs: &mut ValidationErrors) -> Option<Vec<String>> {
    let items: Vec<&Value> = match v {
        // A single value where a list is expected is a one-item list.
        Value::String(_) | Value::Number(_) => vec![v],
        Value::Array(items) => items.iter().collect(),
        Value::Null => {
            errs.push(path, "is required");
            return None;
        }
        _ => {
            errs.push(path, "expected a list of values");
            return None;
        }
    };
    if items.is_empty() {
        errs.push(path, "the list is empty");
        return None;
    }
    if items.len() > 1000 {
        errs.push(path, "the list has more than 1000 values");
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        out.push(scalar_text(item, &format!("{path}[{i}]"), errs)?);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
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
        let c =
            json!({"type": "dimension", "key": "country", "condition": "equals", "value": "US"});
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
        assert_eq!(g.conditions[1].operand, Operand::Number(Number::Float(2.5)));
        assert_eq!(
            g.conditions[2].operand,
            Operand::TextList(vec!["US".into()])
        );
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
        assert!(
            errors(json!({"id": "a`b", "ruleGroups": [group(json!({}))]}))[0].starts_with("id: ")
        );
        assert!(is_segment_id("7b0c1f0e-3f1a-4a59-9a53-2f1c7d7f3b11"));
    }
}
