//! Metric and relationship groups: conditions on a value of the object's own
//! row, on per-object aggregates of activity, or on related-object counts.

use super::predicate::{Kind, number, split_negative};
use super::{Resolver, combine, id, unknown};
use crate::activity::{Activity, Measure};
use crate::catalog::{Aggregate, ObjectDef};
use crate::model::*;
use crate::plan::{Population, Relation};
use crate::sql::*;

/// What a metric condition compares.
enum MetricValue {
    /// A value of the object's own row.
    Row(Expr),
    /// A per-object aggregate (already zero-filled where that applies).
    Aggregate(Expr),
}

/// A condition's field in a metric or relationship group.
enum Item<'g> {
    Related(&'g str),
    Metric(&'g MetricField),
}

/// The joins a metric group collects while its conditions resolve.
#[derive(Default)]
struct Joins<'c> {
    activity: Activity<'c>,
    relations: Vec<Relation<'c>>,
}

impl<'c> Resolver<'c> {
    pub(super) fn metric_group(
        &mut self,
        g: &RuleGroup,
        object: SegmentObject,
        def: &'c ObjectDef,
    ) -> Option<Population<'c>> {
        let oid = Expr::col("o", &id(&def.id));
        let window = self.window(g)?;
        let row_range = window.filter(Expr::col("o", &id(&def.time)));
        let mut joins = Joins::default();
        let items: Vec<(usize, Conjunction, &Test, Item)> = match &g.conditions {
            Conditions::Relationship(cs) => cs
                .iter()
                .map(|c| (c.index, c.conjunction, &c.test, Item::Related(&c.field)))
                .collect(),
            Conditions::Metric(cs) => cs
                .iter()
                .map(|c| (c.index, c.conjunction, &c.test, Item::Metric(&c.field)))
                .collect(),
            _ => vec![],
        };
        let wanted = items.len();
        let mut preds = Vec::new();
        for (index, conjunction, test, item) in items {
            let path = format!("{}.g{index}", g.path());
            let value = match item {
                Item::Related(key) => self.relation_value(&path, key, &mut joins, true),
                Item::Metric(f) => self.metric_value(&path, f, object, def, &mut joins),
            };
            let pred = value.and_then(|v| self.metric_pred(&path, v, test, &row_range));
            preds.extend(pred.map(|p| (conjunction, p)));
        }
        if preds.len() != wanted || !self.errs.is_empty() {
            return None;
        }
        Some(Population::Measured {
            activity: joins.activity,
            relations: joins.relations,
            window,
            filter: Expr::and(vec![oid.is_not_null(), combine(preds)]),
        })
    }

    fn metric_pred(
        &mut self,
        path: &str,
        value: MetricValue,
        test: &Test,
        row_range: &Option<Expr>,
    ) -> Option<Expr> {
        match value {
            MetricValue::Row(col) => {
                // A row value behaves like a number property inside the range.
                let p = self.on_value(path, col, Kind::Number, test)?;
                Some(match row_range {
                    Some(r) => Expr::and(vec![r.clone(), p]),
                    None => p,
                })
            }
            MetricValue::Aggregate(v) => self.aggregate_pred(path, v, test),
        }
    }

    /// Missing aggregates (avg/min/max with no activity) never match, so
    /// negatives here are plain comparisons, not complements.
    fn aggregate_pred(&mut self, path: &str, v: Expr, test: &Test) -> Option<Expr> {
        let op = test.operator;
        let (pos_op, negate) = split_negative(op);
        match (negate, pos_op, &test.operand) {
            (true, Operator::Equals, Operand::Text(s)) => {
                match crate::parse::parse_number_text(s) {
                    Some(n) => Some(v.bin(BinOp::NotEq, number(n))),
                    None => {
                        self.err(format!("{path}.value"), format!("{s:?} is not a number"));
                        None
                    }
                }
            }
            (
                false,
                Operator::Equals
                | Operator::GreaterThan
                | Operator::GreaterThanOrEqual
                | Operator::LessThan
                | Operator::LessThanOrEqual
                | Operator::Between,
                _,
            ) => self.positive(path, v, Kind::Number, pos_op, &test.operand),
            _ => {
                self.err(
                    format!("{path}.condition"),
                    format!("operator \"{op}\" does not apply to a metric"),
                );
                None
            }
        }
    }

    fn metric_value(
        &mut self,
        path: &str,
        field: &MetricField,
        object: SegmentObject,
        def: &'c ObjectDef,
        joins: &mut Joins<'c>,
    ) -> Option<MetricValue> {
        match field {
            MetricField::Metric(key) => {
                let Some(m) = def.metrics.get(key) else {
                    self.err(
                        format!("{path}.key"),
                        unknown(&format!("metric of {object}"), key, def.metrics.keys()),
                    );
                    return None;
                };
                if let Some(col) = &m.row {
                    return Some(MetricValue::Row(Expr::col("o", &id(col))));
                }
                let (Some(src), Some(agg)) = (m.source.as_deref(), m.aggregate) else {
                    return None;
                };
                let measure = Measure {
                    aggregate: agg,
                    column: m.column.as_deref().map(id),
                    filter: m.filter.iter().map(|(k, v)| (id(k), v.clone())).collect(),
                };
                self.add_measure(path, object, src, measure, joins)
            }
            MetricField::Count { kind, id: selected } => {
                let Some((sel, _)) = self.catalog.count(*kind) else {
                    self.err(
                        format!("{path}.type"),
                        format!("the catalog defines no \"{kind}\" counts"),
                    );
                    return None;
                };
                let measure = Measure {
                    aggregate: Aggregate::Count,
                    column: None,
                    filter: vec![(id(&sel.selector), selected.clone())],
                };
                self.add_measure(path, object, &sel.source, measure, joins)
            }
            MetricField::CrmLifetimeCount(key) => self.relation_value(path, key, joins, false),
        }
    }

    fn add_measure(
        &mut self,
        path: &str,
        object: SegmentObject,
        source_name: &str,
        measure: Measure,
        joins: &mut Joins<'c>,
    ) -> Option<MetricValue> {
        let Some(source) = self.catalog.sources.get(source_name) else {
            self.err(
                format!("{path}.key"),
                format!("the catalog has no source {source_name:?}"),
            );
            return None;
        };
        if source.link(object).is_none() {
            self.err(
                format!("{path}.key"),
                format!("{} rows do not link to {object}", source.table),
            );
            return None;
        }
        let zero = measure.aggregate.zero_when_empty();
        let v = joins.activity.add(source_name, source, measure);
        Some(MetricValue::Aggregate(if zero {
            v.coalesce(Expr::Int(0))
        } else {
            v
        }))
    }

    fn relation_value(
        &mut self,
        path: &str,
        key: &str,
        joins: &mut Joins<'c>,
        in_range: bool,
    ) -> Option<MetricValue> {
        let found =
            SegmentObject::from_wire(key).and_then(|o| self.catalog.object(o).map(|def| (o, def)));
        let Some((related, def)) = found else {
            self.err(
                format!("{path}.key"),
                format!("unknown related object {key:?}"),
            );
            return None;
        };
        // crm-lifetime-count counts related CRM objects (SPEC §3).
        if !in_range && !related.is_crm() {
            self.err(
                format!("{path}.key"),
                format!("crm-lifetime-count counts CRM objects; {key:?} is not one"),
            );
            return None;
        }
        let rels = &mut joins.relations;
        let ri = match rels
            .iter()
            .position(|r| r.related == related && r.in_range == in_range)
        {
            Some(i) => i,
            None => {
                rels.push(Relation {
                    related,
                    def,
                    via: &self.catalog.relations,
                    in_range,
                });
                rels.len() - 1
            }
        };
        let v = Expr::col(format!("r{ri}"), &Ident::fixed("v"));
        Some(MetricValue::Aggregate(v.coalesce(Expr::Int(0))))
    }
}
