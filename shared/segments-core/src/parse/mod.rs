//! Segment JSON (SPEC §2, exactly as the web app stores it) into the typed model.
//! Collects every structural error with its path; never panics on any JSON.

mod condition;
mod values;

pub use values::{number_of, parse_day, parse_number_text};

use crate::error::ValidationErrors;
use crate::model::*;
use serde_json::{Map, Value};
use values::{parse_date, parse_days};

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

/// Parses segment JSON; every structural error, with its path.
pub fn parse_segment(v: &Value) -> Result<Segment, ValidationErrors> {
    parse_rules(v).into_segment()
}

/// What the structural pass read: the segment's fields, every group whose
/// own fields parsed (with the conditions that parsed, each keeping its
/// `gN`), and every error. The resolve pass checks what parsed against the
/// catalog even when there are errors, so one answer lists them all.
#[derive(Debug, Clone)]
pub struct Parsed {
    pub id: String,
    pub account_id: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub groups: Vec<RuleGroup>,
    pub errors: ValidationErrors,
}

impl Parsed {
    /// The segment, when nothing is wrong with its structure.
    pub fn into_segment(self) -> Result<Segment, ValidationErrors> {
        let mut errs = self.errors;
        match self.groups.first().map(|g| g.object) {
            Some(object) if errs.is_empty() => Ok(Segment {
                id: self.id,
                account_id: self.account_id,
                name: self.name,
                description: self.description,
                object,
                rule_groups: self.groups,
            }),
            _ => {
                if errs.is_empty() {
                    errs.push("ruleGroups", "no valid rule group");
                }
                Err(errs)
            }
        }
    }
}

/// The structural pass over segment JSON; see [`Parsed`].
pub fn parse_rules(v: &Value) -> Parsed {
    let mut errs = ValidationErrors::default();
    let Some(root) = v.as_object() else {
        errs.push("$", "a segment must be a JSON object");
        return Parsed {
            id: String::new(),
            account_id: None,
            name: None,
            description: None,
            groups: vec![],
            errors: errs,
        };
    };
    let id = segment_id(root.get("id"), &mut errs);
    let account_id = opt_string(root, "accountId", "accountId", &mut errs);
    let name = opt_string(root, "name", "name", &mut errs);
    let description = opt_string(root, "description", "description", &mut errs);
    let mut groups = Vec::new();
    match root.get("ruleGroups") {
        Some(Value::Array(items)) if !items.is_empty() => {
            for (i, g) in items.iter().enumerate() {
                groups.extend(parse_group(g, i, &mut errs));
            }
            same_object(items, &groups, &mut errs);
        }
        Some(Value::Array(_)) => errs.push("ruleGroups", "at least one rule group is required"),
        Some(_) => errs.push("ruleGroups", "must be an array of rule groups"),
        None => errs.push("ruleGroups", "is required"),
    }
    Parsed {
        id,
        account_id,
        name,
        description,
        groups,
        errors: errs,
    }
}

fn segment_id(v: Option<&Value>, errs: &mut ValidationErrors) -> String {
    match v {
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
    }
}

/// Every group shares the first group's object: that is the segment's object.
fn same_object(items: &[Value], groups: &[RuleGroup], errs: &mut ValidationErrors) {
    let Some(object) = groups.first().map(|g| g.object) else {
        return;
    };
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

/// Segment ids become table names, so they are limited to safe characters.
pub fn is_segment_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// An optional string field; another type is an error at `path`.
pub(crate) fn opt_string(
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

pub(crate) fn parse_enum<T>(
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

/// A group's or condition's `conjunction` (default and); ignored on the first
/// group and on `g0` (SPEC §2), whatever it holds there.
pub(crate) fn conjunction(
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

/// A group whose own fields parsed, with the conditions that parsed (the
/// others are reported and left out); `None` when its own fields did not.
fn parse_group(v: &Value, gi: usize, errs: &mut ValidationErrors) -> Option<RuleGroup> {
    let path = &format!("ruleGroups[{gi}]");
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
    let conjunction = conjunction(obj, path, gi == 0, errs);
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
    let keys = condition_keys(obj, path, errs);
    let mut conditions = focus.map(condition::Collected::new);
    for (idx, key) in keys {
        let cpath = format!("{path}.{key}");
        let wire = condition::parse_wire(&obj[key], &cpath, idx, focus, errs);
        if let (Some(wire), Some(c)) = (wire, conditions.as_mut()) {
            c.add(wire, &cpath, errs);
        }
    }
    Some(RuleGroup {
        index: gi,
        main_operator: main_operator?,
        conjunction,
        object: object?,
        date_range: date_range?,
        conditions: conditions?.into_conditions(),
    })
}

/// The `gN` keys in index order; every gap is an error, each named once:
/// g1 alone, or g1 to g9 as one error.
fn condition_keys<'v>(
    obj: &'v Map<String, Value>,
    path: &str,
    errs: &mut ValidationErrors,
) -> Vec<(usize, &'v String)> {
    let mut indexes: Vec<(usize, &String)> = obj
        .keys()
        .filter_map(|k| condition_index(k).map(|i| (i, k)))
        .collect();
    indexes.sort_unstable();
    if indexes.is_empty() {
        errs.push(
            format!("{path}.g0"),
            "a rule group needs at least one condition",
        );
    }
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
    indexes
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

#[cfg(test)]
mod tests;
