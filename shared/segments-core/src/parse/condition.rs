//! One condition: its wire fields, shaped by its group's focus, and its
//! operand shaped by its operator.

use super::values::{number_of, parse_day, parse_days};
use super::{conjunction, opt_string, parse_enum};
use crate::error::ValidationErrors;
use crate::model::*;
use serde_json::{Map, Value};

/// A text field that may also arrive as a number; empty text is absent.
fn opt_text_field(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
    errs: &mut ValidationErrors,
) -> Option<String> {
    match obj.get(key) {
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => opt_string(obj, key, &format!("{path}.{key}"), errs).filter(|s| !s.is_empty()),
    }
}

/// A condition's wire fields, before its group's focus shapes them.
pub(super) struct Wire {
    index: usize,
    conjunction: Conjunction,
    field_type: Option<FieldType>,
    key: Option<String>,
    sub_key: Option<String>,
    sub_key_lv2: Option<String>,
    property: Option<String>,
    id: Option<String>,
    test: Option<Test>,
}

/// Reads `gN`; `None` (with the errors listed) when any field is wrong.
pub(super) fn parse_wire(
    v: &Value,
    path: &str,
    index: usize,
    focus: Option<Focus>,
    errs: &mut ValidationErrors,
) -> Option<Wire> {
    let Some(obj) = v.as_object() else {
        errs.push(path, "a condition must be an object");
        return None;
    };
    let before = errs.0.len();
    let conjunction = conjunction(obj, path, index == 0, errs);
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
    let test = if selector_only {
        None
    } else {
        let operator = parse_enum(
            obj,
            "condition",
            path,
            "operator",
            Operator::from_wire,
            true,
            errs,
        );
        operator.and_then(|op| {
            let operand = parse_operand(op, obj.get("value"), &format!("{path}.value"), errs)?;
            Some(Test {
                operator: op,
                operand,
            })
        })
    };
    if errs.0.len() != before {
        return None;
    }
    Some(Wire {
        index,
        conjunction,
        field_type,
        key,
        sub_key,
        sub_key_lv2,
        property,
        id,
        test,
    })
}

/// A group's conditions as they are shaped, one list per focus.
pub(super) struct Collected(Conditions);

impl Collected {
    pub(super) fn new(focus: Focus) -> Collected {
        Collected(match focus {
            Focus::Property => Conditions::Property(vec![]),
            Focus::Metric => Conditions::Metric(vec![]),
            Focus::Relationship => Conditions::Relationship(vec![]),
            f => Conditions::Event(f, vec![]),
        })
    }

    pub(super) fn into_conditions(self) -> Conditions {
        self.0
    }

    /// Shapes `w` for the focus; a condition its focus cannot use is an error.
    pub(super) fn add(&mut self, w: Wire, path: &str, errs: &mut ValidationErrors) {
        match &mut self.0 {
            Conditions::Property(list) => list.extend(shaped(&w, property_field(&w, path, errs))),
            Conditions::Metric(list) => list.extend(shaped(&w, metric_field(&w, path, errs))),
            Conditions::Relationship(list) => {
                let related = required(&w.key, path, "is required (the related object)", errs);
                list.extend(shaped(&w, related))
            }
            Conditions::Event(focus, list) => {
                if let Some(field) = event_field(&w, *focus, path, errs) {
                    list.push(Cond {
                        index: w.index,
                        conjunction: w.conjunction,
                        field,
                        test: w.test,
                    });
                }
            }
        }
    }
}

/// A condition of a non-event focus (whose test is always required).
fn shaped<F>(w: &Wire, field: Option<F>) -> Option<Cond<F>> {
    Some(Cond {
        index: w.index,
        conjunction: w.conjunction,
        field: field?,
        test: w.test.clone()?,
    })
}

fn required(
    v: &Option<String>,
    path: &str,
    msg: &str,
    errs: &mut ValidationErrors,
) -> Option<String> {
    if v.is_none() {
        errs.push(format!("{path}.key"), msg);
    }
    v.clone()
}

fn property_field(w: &Wire, path: &str, errs: &mut ValidationErrors) -> Option<PropertyField> {
    let key = required(&w.key, path, "is required", errs)?;
    match w.field_type {
        Some(FieldType::Custom) => Some(PropertyField::Custom(key)),
        Some(
            ft @ (FieldType::Conversion
            | FieldType::SalesConversion
            | FieldType::Ecommerce
            | FieldType::Trigger
            | FieldType::CrmLifetimeCount),
        ) => {
            errs.push(
                format!("{path}.type"),
                format!("a \"{ft}\" condition belongs in a metric group"),
            );
            None
        }
        Some(FieldType::Metric) => Some(PropertyField::RowMetric(key)),
        _ => Some(PropertyField::Column(key)),
    }
}

fn metric_field(w: &Wire, path: &str, errs: &mut ValidationErrors) -> Option<MetricField> {
    match w.field_type {
        None | Some(FieldType::Metric) | Some(FieldType::Number) => {
            required(&w.key, path, "is required", errs).map(MetricField::Metric)
        }
        Some(
            kind @ (FieldType::Conversion
            | FieldType::SalesConversion
            | FieldType::Ecommerce
            | FieldType::Trigger),
        ) => match w.id.as_ref().or(w.key.as_ref()) {
            Some(id) => Some(MetricField::Count {
                kind,
                id: id.clone(),
            }),
            None => {
                errs.push(
                    format!("{path}.id"),
                    format!("a \"{kind}\" condition needs the id it counts"),
                );
                None
            }
        },
        Some(FieldType::CrmLifetimeCount) => {
            required(&w.key, path, "is required (the related object)", errs)
                .map(MetricField::CrmLifetimeCount)
        }
        Some(ft) => {
            errs.push(
                format!("{path}.type"),
                format!("a \"{ft}\" condition belongs in a property group"),
            );
            None
        }
    }
}

/// Which event and which of its values. Other-event names the event in
/// `key` and the property in `subKey` (`subKeyLv2` nests one level down); the
/// other event focuses select by `id` and test `property` (or `key`).
fn event_field(
    w: &Wire,
    focus: Focus,
    path: &str,
    errs: &mut ValidationErrors,
) -> Option<EventField> {
    let (selected, property, wire) = if focus == Focus::OtherEvent {
        let name = required(&w.key, path, "is required (the event name)", errs)?;
        let prop = match (&w.sub_key, &w.sub_key_lv2) {
            (Some(a), Some(b)) => Some(format!("{a}.{b}")),
            (Some(a), None) => Some(a.clone()),
            (None, _) => None,
        };
        (Some(name), prop, "subKey")
    } else {
        (
            w.id.clone(),
            w.property.clone().or(w.key.clone()),
            "property",
        )
    };
    if property.is_none() {
        if selected.is_none() {
            errs.push(
                format!("{path}.id"),
                "an event condition needs an id, key or property",
            );
            return None;
        }
        // "The event happened": only is-set (or no operator) makes sense here.
        if let Some(t) = &w.test
            && t.operator != Operator::IsSet
        {
            errs.push(
                format!("{path}.{wire}"),
                format!("is required with operator \"{}\"", t.operator),
            );
            return None;
        }
    }
    Some(EventField {
        selected,
        property: property.map(|name| EventProperty { name, wire }),
        numeric: w.field_type == Some(FieldType::Number),
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
