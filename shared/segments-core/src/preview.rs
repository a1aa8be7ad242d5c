//! Preview queries for one condition's field, as the segment builder shows them:
//! popular values with counts, a sample of distinct values, and the unique count.

use crate::catalog::{Catalog, ColumnType, SourceDef};
use crate::error::{CoreError, ValidationErrors};
use crate::model::{DateRange, FieldType, Focus};
use crate::parse::parse_segment;
use crate::sql::*;
use crate::time::{Clock, TimeRef};
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
    let group = &seg.rule_groups[0];
    let cond = &group.conditions[0];
    let mut errs = ValidationErrors::default();
    let obj = catalog
        .object(seg.object)
        .ok_or_else(|| CoreError::Catalog(format!("no object {}", seg.object)))?;

    // The table read, its time column, the previewed field, and row filters.
    let (table, time, field, mut filter) = match group.focus {
        Focus::Property => {
            let key = cond.key.clone().unwrap_or_default();
            let field = if cond.field_type == Some(FieldType::Custom) {
                match &obj.custom {
                    Some(c) if is_identifier(&key) => Field::Keyed(Ident::trusted(c), key),
                    _ => {
                        errs.push(
                            "ruleGroups[0].g0.key",
                            format!("{key:?} is not a valid custom key"),
                        );
                        return Err(errs.into());
                    }
                }
            } else {
                match obj.column_type(&key) {
                    Some(ColumnType::StringArray) => Field::Array(Ident::trusted(&key)),
                    Some(_) => Field::Column(Ident::trusted(&key)),
                    None => {
                        errs.push(
                            "ruleGroups[0].g0.key",
                            format!("unknown field of {} {key:?}", obj.table),
                        );
                        return Err(errs.into());
                    }
                }
            };
            (&obj.table, &obj.time, field, Vec::new())
        }
        f if f.is_event() => {
            let Some((sel, source)) = catalog.event_focus(f) else {
                errs.push("ruleGroups[0].conditionFocus", format!("no source for {f}"));
                return Err(errs.into());
            };
            let (selected, prop) = if f == Focus::OtherEvent {
                (cond.key.clone(), cond.sub_key.clone())
            } else {
                (cond.id.clone(), cond.property.clone().or(cond.key.clone()))
            };
            let mut filter = Vec::new();
            if let Some(s) = selected {
                filter.push(Expr::col("o", &Ident::trusted(&sel.selector)).eq(Expr::Str(s)));
            }
            let field = match prop {
                Some(p) => event_field(source, &p).ok_or_else(|| {
                    let mut e = ValidationErrors::default();
                    e.push(
                        "ruleGroups[0].g0.property",
                        format!("{p:?} is not a property of {}", source.table),
                    );
                    CoreError::from(e)
                })?,
                // No property: preview the selector itself (event names, conversion ids).
                None => Field::Column(Ident::trusted(&sel.selector)),
            };
            (&source.table, &source.time, field, filter)
        }
        f => {
            errs.push(
                "ruleGroups[0].conditionFocus",
                format!("\"{f}\" conditions compare numbers; there are no values to preview"),
            );
            return Err(errs.into());
        }
    };
    match group.date_range {
        DateRange::Lifetime => {}
        DateRange::PreviousPeriod { days } => {
            let t = Expr::col("o", &Ident::trusted(time));
            filter.push(
                t.clone()
                    .bin(BinOp::GtEq, Expr::Time(TimeRef::TodayStart(-(days as i32)))),
            );
            filter.push(t.bin(BinOp::Lt, Expr::Time(TimeRef::TodayStart(0))));
        }
        DateRange::Specific { start, end } => {
            let t = Expr::col("o", &Ident::trusted(time));
            filter.push(
                t.clone()
                    .bin(BinOp::GtEq, Expr::Time(TimeRef::DayStart(start))),
            );
            if let Some(after) = end.succ_opt() {
                filter.push(t.bin(BinOp::Lt, Expr::Time(TimeRef::DayStart(after))));
            }
        }
    }

    // One inner query lists the values (one row per occurrence).
    let (from, joins_filter, value) = match field {
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
            table: target.table(table),
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
    let values = Query::select(inner);
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

enum Field {
    Column(Ident),
    Array(Ident),
    Keyed(Ident, String),
}

fn event_field(source: &SourceDef, prop: &str) -> Option<Field> {
    match source.column_type(prop) {
        Some(ColumnType::StringArray) => Some(Field::Array(Ident::trusted(prop))),
        Some(_) => Some(Field::Column(Ident::trusted(prop))),
        None if prop.split('.').all(is_identifier) => source
            .properties
            .as_ref()
            .map(|p| Field::Keyed(Ident::trusted(p), prop.to_string())),
        None => None,
    }
}
