//! Preview queries for one condition's field, as the segment builder shows them:
//! popular values with counts, a sample of distinct values, and the unique count.

use crate::activity::Window;
use crate::catalog::{Catalog, ColumnType};
use crate::error::{CoreError, ValidationErrors};
use crate::model::Conditions;
use crate::parse::parse_segment;
use crate::resolve::{FieldRef, field};
use crate::sql::*;
use crate::time::Clock;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use serde_json::{Value, json};

/// How many values the popular and sample lists show.
pub const PREVIEW_LIMIT: u64 = 20;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PreviewQueries {
    /// `value`, `count`: the most frequent values first.
    pub popular_values: String,
    /// `value`: distinct values in order.
    pub sample_values: String,
    /// `unique_count`: the number of distinct values.
    pub unique_count: String,
}

/// The field a preview looks at: a rule group with one condition whose
/// `condition`/`value` may be absent, e.g.
/// `{"segmentObject": "session", "conditionFocus": "property", "g0": {"type": "custom", "key": "plan"}}`.
pub fn preview_queries(
    group: &Value,
    catalog: &Catalog,
    target: &Target,
    tz: &Tz,
    now: DateTime<Utc>,
) -> Result<PreviewQueries, CoreError> {
    // Reuse the segment parser: an is-set condition makes the group valid.
    let mut g = group.clone();
    if let Some(c) = g.get_mut("g0").and_then(Value::as_object_mut) {
        c.insert("condition".into(), json!("is-set"));
        c.remove("value");
    }
    if let Some(o) = g.as_object_mut() {
        o.entry("mainOperator").or_insert(json!("include"));
    }
    let seg = parse_segment(&json!({"id": "preview", "ruleGroups": [g]}))?;
    let values = values_query(&read_field(&seg, catalog)?, target);
    let sub = || FromItem::Subquery {
        query: Box::new(values.clone()),
        alias: "v".into(),
    };
    let v = Expr::col("v", &Ident::fixed("value"));
    let popular = Select {
        from: Some(sub()),
        group_by: vec![v.clone()],
        order_by: vec![
            (Expr::Name(Ident::fixed("count")), true),
            (Expr::Name(Ident::fixed("value")), false),
        ],
        limit: Some(PREVIEW_LIMIT),
        ..Default::default()
    }
    .item(v.clone(), Some("value"))
    .item(Expr::CountStar, Some("count"));
    let sample = Select {
        distinct: true,
        from: Some(sub()),
        order_by: vec![(Expr::Name(Ident::fixed("value")), false)],
        limit: Some(PREVIEW_LIMIT),
        ..Default::default()
    }
    .item(v.clone(), Some("value"));
    let unique = Select {
        from: Some(sub()),
        ..Default::default()
    }
    .item(Expr::agg(AggFunc::Count, true, v), Some("unique_count"));
    let clock = Clock::At { tz: *tz, now };
    let out = |s: Select| target.render(&Statement::Query(&Query::select(s)), clock);
    Ok(PreviewQueries {
        popular_values: out(popular)?,
        sample_values: out(sample)?,
        unique_count: out(unique)?,
    })
}

/// The rows a preview reads: a table (alias `o`), the row filters (event
/// selector, date range) and the field whose values it lists.
struct Rows<'c> {
    table: &'c str,
    filter: Vec<Expr>,
    field: Field,
}

fn read_field<'c>(
    seg: &crate::model::Segment,
    catalog: &'c Catalog,
) -> Result<Rows<'c>, CoreError> {
    let Some(group) = seg.rule_groups.first() else {
        return Err(invalid("ruleGroups", "is required"));
    };
    let obj = catalog
        .object(seg.object)
        .ok_or_else(|| CoreError::Catalog(format!("no object {}", seg.object)))?;
    let (table, time, field, mut filter): (&String, &String, Field, Vec<Expr>) =
        match &group.conditions {
            Conditions::Property(conds) => {
                let c = conds
                    .first()
                    .ok_or_else(|| invalid("ruleGroups[0].g0", "is required"))?;
                let path = "ruleGroups[0].g0";
                let field = preview_field(
                    field::property_field(obj, &c.field, path).map_err(ValidationErrors::from)?,
                );
                (&obj.table, &obj.time, field, Vec::new())
            }
            Conditions::Event(focus, conds) => {
                let (sel, source) = catalog.event_focus(*focus).ok_or_else(|| {
                    invalid(
                        "ruleGroups[0].conditionFocus",
                        format!("no source for {focus}"),
                    )
                })?;
                let c = &conds
                    .first()
                    .ok_or_else(|| invalid("ruleGroups[0].g0", "is required"))?
                    .field;
                let mut filter = Vec::new();
                if let Some(s) = &c.selected {
                    filter.push(Expr::col("o", &Ident::trusted(&sel.selector)).eq(Expr::str(s)));
                }
                let field = match &c.property {
                    Some(p) => preview_field(
                        field::event_property(source, p, "ruleGroups[0].g0")
                            .map_err(ValidationErrors::from)?,
                    ),
                    // No property: preview the selector itself (event names, conversion ids).
                    None => Field::Column(Ident::trusted(&sel.selector)),
                };
                (&source.table, &source.time, field, filter)
            }
            c => {
                return Err(invalid(
                    "ruleGroups[0].conditionFocus",
                    format!(
                        "\"{}\" conditions compare numbers; there are no values to preview",
                        c.focus()
                    ),
                ));
            }
        };
    // The group's date range, as segments read it (an end date at the end of
    // time is an error here too).
    let window = Window::of(&group.date_range)
        .map_err(|m| invalid("ruleGroups[0].dateRangeFilter.endDate", m))?;
    filter.extend(window.bounds(Expr::col("o", &Ident::trusted(time))));

    Ok(Rows {
        table,
        filter,
        field,
    })
}

/// One row per occurrence of the field's values, as text.
fn values_query(rows: &Rows, target: &Target) -> Query {
    let mut filter = rows.filter.clone();
    let (from, joins_filter, value) = match rows.field.clone() {
        Field::Column(c) => (None, None, Expr::col("o", &c)),
        Field::Array(c) => (
            Some(FromItem::Elements {
                array: Expr::col("o", &c),
                alias: "x".into(),
            }),
            None,
            Expr::Element("x".into()),
        ),
        Field::Keyed(c, key) => (
            Some(FromItem::Entries {
                array: Expr::col("o", &c),
                alias: "c".into(),
            }),
            Some(Expr::Entry("c".into(), EntryField::Key).eq(Expr::Str(key))),
            Expr::Entry("c".into(), EntryField::Value),
        ),
    };
    filter.extend(joins_filter);
    filter.push(value.clone().is_not_null());
    let mut inner = Select {
        from: Some(FromItem::Table {
            table: target.table(rows.table),
            alias: "o".into(),
        }),
        filter: Some(Expr::and(filter)),
        ..Default::default()
    }
    // SAFE_CAST to STRING keeps every preview a list of strings.
    .item(value.safe_cast(SqlType::Text), Some("value"));
    if let Some(f) = from {
        // A correlated UNNEST of the row's array.
        inner.joins.push(Join {
            kind: JoinKind::Cross,
            item: f,
            on: Expr::Bool(true),
        });
    }
    Query::select(inner)
}

fn invalid(path: impl Into<String>, msg: impl Into<String>) -> CoreError {
    let mut errs = ValidationErrors::default();
    errs.push(path, msg);
    errs.into()
}

/// What a preview lists for a resolved field: a column's values, a text
/// array's elements, or the values of key/value entries.
fn preview_field(f: FieldRef) -> Field {
    match f {
        FieldRef::Column(c, ColumnType::StringArray) => Field::Array(c),
        FieldRef::Column(c, _) => Field::Column(c),
        FieldRef::Keyed { array, key } => Field::Keyed(array, key),
    }
}

#[derive(Clone)]
enum Field {
    Column(Ident),
    Array(Ident),
    Keyed(Ident, String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DateRange;

    fn preview(group: Value) -> Result<PreviewQueries, CoreError> {
        let target = Target::new("p", "d").unwrap();
        let tz = crate::time::parse_time_zone("UTC").unwrap();
        let now = crate::time::parse_now("2024-06-15T12:00:00Z").unwrap();
        preview_queries(&group, &Catalog::default_catalog(), &target, &tz, now)
    }

    #[test]
    fn other_event_previews_read_the_nested_sub_key_as_segments_do() {
        let q = preview(
            json!({"segmentObject": "session", "conditionFocus": "other-event",
            "g0": {"key": "form_submit", "subKey": "form", "subKeyLv2": "id"}}),
        )
        .unwrap();
        assert!(
            q.popular_values.contains("c.`key` = 'form.id'"),
            "{}",
            q.popular_values
        );
        let q = preview(
            json!({"segmentObject": "session", "conditionFocus": "other-event",
            "g0": {"key": "form_submit", "subKey": "form"}}),
        )
        .unwrap();
        assert!(
            q.popular_values.contains("c.`key` = 'form'"),
            "{}",
            q.popular_values
        );
    }

    #[test]
    fn a_preview_reports_an_end_date_segments_cannot_use() {
        let mut seg = crate::parse_segment(&json!({"id": "p", "ruleGroups": [
            {"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
             "g0": {"type": "dimension", "key": "country", "condition": "is-set"}}]}))
        .unwrap();
        let start = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        let end = chrono::NaiveDate::MAX;
        seg.rule_groups[0].date_range = DateRange::Specific { start, end };
        let e = read_field(&seg, &Catalog::default_catalog())
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("ruleGroups[0].dateRangeFilter.endDate: is out of range")
        );
    }
}
