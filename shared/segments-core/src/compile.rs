//! Segment -> member query. One CTE per rule group yields `object_id`s; groups
//! combine with AND before OR, then every exclude group's members are removed.

use crate::catalog::{Aggregate, Catalog, ColumnType, Link, MetricDef, ObjectDef, SourceDef};
use crate::error::ValidationErrors;
use crate::model::*;
use crate::sql::*;
use crate::time::{DayRef, TimeRef};
use chrono::NaiveDate;

/// The output column of every member query and segment table.
pub const OBJECT_ID: &str = "object_id";

/// Compiles a validated segment into the query that lists its members.
pub fn members_query(
    seg: &Segment,
    catalog: &Catalog,
    target: &Target,
) -> Result<Query, ValidationErrors> {
    let mut c = Compiler {
        catalog,
        target,
        errs: ValidationErrors::default(),
    };
    let q = c.segment(seg);
    match q {
        Some(q) if c.errs.is_empty() => Ok(q),
        _ => {
            if c.errs.is_empty() {
                c.errs.push("ruleGroups", "could not be compiled");
            }
            Err(c.errs)
        }
    }
}

/// How a value behaves under the operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    /// A string from a key/value array (custom, event properties): text, plus
    /// numeric and boolean readings of the text.
    KeyedText,
    Number,
    Bool,
    Timestamp,
    Date,
    TextArray,
}

impl From<ColumnType> for Kind {
    fn from(t: ColumnType) -> Kind {
        match t {
            ColumnType::String => Kind::Text,
            ColumnType::Int64 | ColumnType::Float64 => Kind::Number,
            ColumnType::Bool => Kind::Bool,
            ColumnType::Timestamp => Kind::Timestamp,
            ColumnType::Date => Kind::Date,
            ColumnType::StringArray => Kind::TextArray,
        }
    }
}

/// One aggregate requested from an activity source, per object.
pub(crate) struct Measure {
    pub(crate) aggregate: Aggregate,
    pub(crate) column: Option<Ident>,
    pub(crate) filter: Vec<(Ident, String)>,
}

impl Measure {
    /// One object's aggregate over its source rows (alias `s`); the metric's
    /// `filter` keeps only matching rows. Reports use it too.
    pub(crate) fn per_object(&self) -> Expr {
        let cond = Expr::and(
            self.filter
                .iter()
                .map(|(c, v)| Expr::col("s", c).eq(Expr::str(v)))
                .collect(),
        );
        let has_filter = !self.filter.is_empty();
        let arg = |col: &Ident| {
            let c = Expr::col("s", col);
            if has_filter {
                Expr::call(Func::If, vec![cond.clone(), c, Expr::Null])
            } else {
                c
            }
        };
        let agg = |func: AggFunc, distinct: bool, col: &Ident| Expr::agg(func, distinct, arg(col));
        match (self.aggregate, &self.column) {
            (Aggregate::Count, None) if has_filter => Expr::call(Func::CountIf, vec![cond.clone()]),
            (_, None) => Expr::CountStar,
            (Aggregate::Count, Some(c)) => agg(AggFunc::Count, false, c),
            (Aggregate::CountDistinct, Some(c)) => agg(AggFunc::Count, true, c),
            (Aggregate::Sum, Some(c)) => agg(AggFunc::Sum, false, c),
            (Aggregate::Avg, Some(c)) => agg(AggFunc::Avg, false, c),
            (Aggregate::Min, Some(c)) => agg(AggFunc::Min, false, c),
            (Aggregate::Max, Some(c)) => agg(AggFunc::Max, false, c),
        }
    }
}

/// Aggregates of one source joined to the objects of a metric group.
struct SourceJoin<'c> {
    name: String,
    source: &'c SourceDef,
    measures: Vec<Measure>,
}

/// Related-object counts joined to the objects of a group.
struct RelationJoin {
    related: SegmentObject,
    in_range: bool,
}

struct Compiler<'c> {
    catalog: &'c Catalog,
    target: &'c Target,
    errs: ValidationErrors,
}

fn id(s: &str) -> Ident {
    Ident::trusted(s)
}

fn next_day(d: NaiveDate) -> Option<NaiveDate> {
    d.succ_opt()
}

impl<'c> Compiler<'c> {
    fn err(
        &mut self,
        path: impl Into<String>,
        msg: impl Into<String>,
    ) -> Option<std::convert::Infallible> {
        self.errs.push(path, msg);
        None
    }

    fn object_def(&mut self, object: SegmentObject) -> Option<&'c ObjectDef> {
        match self.catalog.object(object) {
            Some(o) => Some(o),
            None => {
                self.err(
                    "ruleGroups[0].segmentObject",
                    format!("the catalog has no object \"{object}\""),
                );
                None
            }
        }
    }

    fn segment(&mut self, seg: &Segment) -> Option<Query> {
        let obj = self.object_def(seg.object)?;
        let mut ctes = Vec::new();
        let mut includes = Vec::new();
        let mut excludes = Vec::new();
        for (gi, g) in seg.rule_groups.iter().enumerate() {
            let name = id(&format!("g{gi}"));
            if let Some(q) = self.group(gi, g, seg.object, obj) {
                ctes.push((name.clone(), q));
            }
            let from_cte = Query::select(
                Select {
                    from: Some(FromItem::Table {
                        table: TableRef::Cte(name),
                        alias: format!("g{gi}").into(),
                    }),
                    ..Default::default()
                }
                .item(
                    Expr::col(format!("g{gi}"), &Ident::fixed(OBJECT_ID)),
                    Some(OBJECT_ID),
                ),
            );
            match g.main_operator {
                MainOperator::Include => includes.push((g.conjunction, from_cte)),
                MainOperator::Exclude => excludes.push(from_cte),
            }
        }
        if !self.errs.is_empty() {
            return None;
        }

        let base = if includes.is_empty() {
            // Exclude-only: start from every object.
            let o = Select {
                from: Some(self.object_table(obj, "o")),
                filter: Some(Expr::col("o", &id(&obj.id)).is_not_null()),
                ..Default::default()
            }
            .item(Expr::col("o", &id(&obj.id)), Some(OBJECT_ID));
            Query::select(o)
        } else {
            let terms: Vec<Query> = and_or_terms(includes)
                .into_iter()
                .map(|t| set(SetOp::IntersectDistinct, t))
                .collect();
            set(SetOp::UnionDistinct, terms)
        };
        let members = if excludes.is_empty() {
            base
        } else {
            Query::Set(
                SetOp::ExceptDistinct,
                vec![base, set(SetOp::UnionDistinct, excludes)],
            )
        };
        ctes.push((Ident::fixed("members"), members));
        let body = Query::select(
            Select {
                from: Some(FromItem::Table {
                    table: TableRef::Cte(Ident::fixed("members")),
                    alias: "m".into(),
                }),
                ..Default::default()
            }
            .item(Expr::col("m", &Ident::fixed(OBJECT_ID)), Some(OBJECT_ID)),
        );
        Some(Query::With(ctes, Box::new(body)))
    }

    fn object_table(&self, obj: &ObjectDef, alias: &'static str) -> FromItem {
        FromItem::Table {
            table: self.target.table(&obj.table),
            alias: alias.into(),
        }
    }

    fn group(
        &mut self,
        gi: usize,
        g: &RuleGroup,
        object: SegmentObject,
        obj: &'c ObjectDef,
    ) -> Option<Query> {
        let path = format!("ruleGroups[{gi}]");
        match g.focus {
            Focus::Property => self.property_group(&path, g, obj),
            Focus::Metric | Focus::Relationship => self.metric_group(&path, g, object, obj),
            _ => self.event_group(&path, g, object, obj),
        }
    }

    /// `time` inside the group's date range; `None` for lifetime.
    fn range(
        &self,
        time: Expr,
        range: &DateRange,
        path: &str,
    ) -> Result<Option<Expr>, (String, String)> {
        Ok(match *range {
            DateRange::Lifetime => None,
            DateRange::PreviousPeriod { days } => Some(Expr::and(vec![
                time.clone()
                    .bin(BinOp::GtEq, Expr::Time(TimeRef::TodayStart(-(days as i32)))),
                time.bin(BinOp::Lt, Expr::Time(TimeRef::TodayStart(0))),
            ])),
            DateRange::Specific { start, end } => {
                let after = next_day(end).ok_or_else(|| {
                    (
                        format!("{path}.dateRangeFilter.endDate"),
                        "is out of range".to_string(),
                    )
                })?;
                Some(Expr::and(vec![
                    time.clone()
                        .bin(BinOp::GtEq, Expr::Time(TimeRef::DayStart(start))),
                    time.bin(BinOp::Lt, Expr::Time(TimeRef::DayStart(after))),
                ]))
            }
        })
    }

    fn range_or_err(&mut self, time: Expr, range: &DateRange, path: &str) -> Option<Option<Expr>> {
        match self.range(time, range, path) {
            Ok(r) => Some(r),
            Err((p, m)) => {
                self.err(p, m);
                None
            }
        }
    }

    // ---- property focus -------------------------------------------------------------

    fn property_group(&mut self, path: &str, g: &RuleGroup, obj: &'c ObjectDef) -> Option<Query> {
        let oid = Expr::col("o", &id(&obj.id));
        let mut filter = vec![oid.clone().is_not_null()];
        if let Some(r) = self.range_or_err(Expr::col("o", &id(&obj.time)), &g.date_range, path)? {
            filter.push(r);
        }
        let mut preds = Vec::new();
        for (ci, cond) in g.conditions.iter().enumerate() {
            let cpath = format!("{path}.g{ci}");
            if let Some(p) = self.property_condition(&cpath, cond, obj, "o") {
                preds.push((cond.conjunction, p));
            }
        }
        if preds.len() != g.conditions.len() {
            return None;
        }
        filter.push(combine(preds));
        Some(Query::select(
            Select {
                distinct: true,
                from: Some(self.object_table(obj, "o")),
                filter: Some(Expr::and(filter)),
                ..Default::default()
            }
            .item(oid, Some(OBJECT_ID)),
        ))
    }

    fn property_condition(
        &mut self,
        path: &str,
        cond: &Condition,
        obj: &ObjectDef,
        alias: &'static str,
    ) -> Option<Expr> {
        let Some(key) = cond.key.as_deref() else {
            self.err(format!("{path}.key"), "is required");
            return None;
        };
        match cond.field_type {
            Some(FieldType::Custom) => {
                let Some(custom) = &obj.custom else {
                    self.err(
                        format!("{path}.type"),
                        format!("{} has no custom properties", obj.table),
                    );
                    return None;
                };
                self.keyed(path, Expr::col(alias, &id(custom)), key, cond)
            }
            Some(
                ft @ (FieldType::Conversion
                | FieldType::SalesConversion
                | FieldType::Ecommerce
                | FieldType::Trigger
                | FieldType::CrmLifetimeCount),
            ) => {
                self.err(
                    format!("{path}.type"),
                    format!("a \"{ft}\" condition belongs in a metric group"),
                );
                None
            }
            Some(FieldType::Metric) => match obj.metrics.get(key) {
                Some(MetricDef { row: Some(col), .. }) => {
                    let ty = obj.columns.get(col).copied().unwrap_or(ColumnType::Float64);
                    self.on_value(path, Expr::col(alias, &id(col)), ty.into(), cond)
                }
                Some(_) => {
                    self.err(
                        format!("{path}.key"),
                        format!("metric {key:?} is an aggregate; use a metric group"),
                    );
                    None
                }
                None => {
                    self.err(
                        format!("{path}.key"),
                        unknown("metric", key, obj.metrics.keys()),
                    );
                    None
                }
            },
            _ => match obj.column_type(key) {
                Some(ty) => self.on_value(path, Expr::col(alias, &id(key)), ty.into(), cond),
                None => {
                    self.err(
                        format!("{path}.key"),
                        unknown(&format!("field of {}", obj.table), key, obj.columns.keys()),
                    );
                    None
                }
            },
        }
    }

    /// A condition on the entries of a key/value array: a positive operator
    /// matches when any entry with that key does; a negative one when none does.
    fn keyed(&mut self, path: &str, array: Expr, key: &str, cond: &Condition) -> Option<Expr> {
        if !is_identifier(key) {
            self.err(
                format!("{path}.key"),
                format!(
                    "{key:?} is not a valid key (letters, digits and _, not starting with a digit)"
                ),
            );
            return None;
        }
        self.keyed_entries(path, array, key, cond)
    }

    /// The EXISTS over the array's entries named `key` (already checked).
    fn keyed_entries(
        &mut self,
        path: &str,
        array: Expr,
        key: &str,
        cond: &Condition,
    ) -> Option<Expr> {
        let op = self.operator(path, cond)?;
        let (pos_op, negate) = split_negative(op);
        let value = Expr::Entry("c".into(), EntryField::Value);
        // A `number` condition compares entries as numbers for every operator:
        // `equals 42` then matches "42.0", as `between [42, 42]` does.
        let numeric = cond.field_type == Some(FieldType::Number)
            && matches!(pos_op, Operator::Equals | Operator::InList);
        let pos = if numeric {
            let n = value.safe_cast(SqlType::Float);
            self.positive(path, n, Kind::Number, pos_op, &cond.operand)?
        } else {
            self.positive(path, value, Kind::KeyedText, pos_op, &cond.operand)?
        };
        let exists = Expr::Exists(Box::new(Query::select(
            Select {
                from: Some(FromItem::Entries {
                    array,
                    alias: "c".into(),
                }),
                filter: Some(Expr::and(vec![
                    Expr::Entry("c".into(), EntryField::Key).eq(Expr::str(key)),
                    pos,
                ])),
                ..Default::default()
            }
            .item(Expr::Int(1), None),
        )));
        Some(if negate {
            Expr::Not(Box::new(exists))
        } else {
            exists
        })
    }

    fn operator(&mut self, path: &str, cond: &Condition) -> Option<Operator> {
        match cond.operator {
            Some(op) => Some(op),
            None => {
                self.err(format!("{path}.condition"), "is required");
                None
            }
        }
    }

    /// A condition on one value: negative operators are exact complements.
    fn on_value(&mut self, path: &str, value: Expr, kind: Kind, cond: &Condition) -> Option<Expr> {
        let op = self.operator(path, cond)?;
        let (pos_op, negate) = split_negative(op);
        let pos = self.positive(path, value, kind, pos_op, &cond.operand)?;
        Some(if negate { pos.not_definitely() } else { pos })
    }

    fn positive(
        &mut self,
        path: &str,
        v: Expr,
        kind: Kind,
        op: Operator,
        operand: &Operand,
    ) -> Option<Expr> {
        use Operator as O;
        let vpath = || format!("{path}.value");
        let lower_lit = |s: &str| Expr::str(s).lower();
        let out = match (kind, op, operand) {
            (Kind::Text | Kind::KeyedText, O::Equals, Operand::Text(s)) => {
                v.lower().eq(lower_lit(s))
            }
            (Kind::Text | Kind::KeyedText, O::Contains, Operand::Text(s)) => {
                Expr::call(Func::StrPos, vec![v.lower(), lower_lit(s)]).bin(BinOp::Gt, Expr::Int(0))
            }
            (Kind::Text | Kind::KeyedText, O::StartsWith, Operand::Text(s)) => {
                Expr::call(Func::StartsWith, vec![v.lower(), lower_lit(s)])
            }
            (Kind::Text | Kind::KeyedText, O::EndsWith, Operand::Text(s)) => {
                Expr::call(Func::EndsWith, vec![v.lower(), lower_lit(s)])
            }
            (Kind::Text | Kind::KeyedText, O::MatchesRegex, Operand::Regex(p)) => {
                Expr::call(Func::RegexContains, vec![v, Expr::str(p)])
            }
            (Kind::Text | Kind::KeyedText, O::InList, Operand::TextList(items)) => Expr::InList(
                Box::new(v.lower()),
                items.iter().map(|s| lower_lit(s)).collect(),
            ),
            (Kind::Text | Kind::KeyedText, O::IsSet, _) => Expr::and(vec![
                v.clone().is_not_null(),
                v.bin(BinOp::NotEq, Expr::str("")),
            ]),
            (Kind::KeyedText, O::IsTrue, _) => v.lower().eq(Expr::str("true")),
            (Kind::KeyedText, O::IsFalse, _) => v.lower().eq(Expr::str("false")),
            (Kind::KeyedText, _, Operand::Number(_) | Operand::NumberRange(..)) => {
                let n = v.safe_cast(SqlType::Float);
                return self.positive(path, n, Kind::Number, op, operand);
            }
            (Kind::Number, O::Equals, Operand::Text(s)) => match crate::parse::parse_number_text(s)
            {
                Some(n) => v.eq(number(n)),
                None => {
                    self.err(vpath(), format!("{s:?} is not a number"));
                    return None;
                }
            },
            (Kind::Number, O::InList, Operand::TextList(items)) => {
                let mut nums = Vec::new();
                for s in items {
                    match crate::parse::parse_number_text(s) {
                        Some(n) => nums.push(number(n)),
                        None => {
                            self.err(vpath(), format!("{s:?} is not a number"));
                            return None;
                        }
                    }
                }
                Expr::InList(Box::new(v), nums)
            }
            (Kind::Number, O::GreaterThan, Operand::Number(n)) => v.bin(BinOp::Gt, number(*n)),
            (Kind::Number, O::GreaterThanOrEqual, Operand::Number(n)) => {
                v.bin(BinOp::GtEq, number(*n))
            }
            (Kind::Number, O::LessThan, Operand::Number(n)) => v.bin(BinOp::Lt, number(*n)),
            (Kind::Number, O::LessThanOrEqual, Operand::Number(n)) => {
                v.bin(BinOp::LtEq, number(*n))
            }
            (Kind::Number, O::Between, Operand::NumberRange(a, b)) => Expr::and(vec![
                v.clone().bin(BinOp::GtEq, number(*a)),
                v.bin(BinOp::LtEq, number(*b)),
            ]),
            (Kind::Number | Kind::Bool | Kind::Timestamp | Kind::Date, O::IsSet, _) => {
                v.is_not_null()
            }
            (Kind::Bool, O::IsTrue, _) => Expr::IsTrue(Box::new(v)),
            (Kind::Bool, O::IsFalse, _) => Expr::IsFalse(Box::new(v)),
            (Kind::Bool, O::Equals, Operand::Text(s)) if s.eq_ignore_ascii_case("true") => {
                Expr::IsTrue(Box::new(v))
            }
            (Kind::Bool, O::Equals, Operand::Text(s)) if s.eq_ignore_ascii_case("false") => {
                Expr::IsFalse(Box::new(v))
            }
            (Kind::Timestamp, O::Before, Operand::Date(d)) => {
                v.bin(BinOp::Lt, Expr::Time(TimeRef::DayStart(*d)))
            }
            (Kind::Timestamp, O::After, Operand::Date(d)) => {
                let Some(next) = next_day(*d) else {
                    self.err(vpath(), "is out of range");
                    return None;
                };
                v.bin(BinOp::GtEq, Expr::Time(TimeRef::DayStart(next)))
            }
            (Kind::Timestamp, O::Between, Operand::DateRange(a, b)) => {
                let Some(next) = next_day(*b) else {
                    self.err(vpath(), "is out of range");
                    return None;
                };
                Expr::and(vec![
                    v.clone()
                        .bin(BinOp::GtEq, Expr::Time(TimeRef::DayStart(*a))),
                    v.bin(BinOp::Lt, Expr::Time(TimeRef::DayStart(next))),
                ])
            }
            (Kind::Timestamp, O::InLastDays, Operand::Days(n)) => Expr::and(vec![
                v.clone()
                    .bin(BinOp::GtEq, Expr::Time(TimeRef::NowMinusHours(n * 24))),
                v.bin(BinOp::LtEq, Expr::Time(TimeRef::Now)),
            ]),
            (Kind::Date, O::Before, Operand::Date(d)) => {
                v.bin(BinOp::Lt, Expr::Day(DayRef::Fixed(*d)))
            }
            (Kind::Date, O::After, Operand::Date(d)) => {
                v.bin(BinOp::Gt, Expr::Day(DayRef::Fixed(*d)))
            }
            (Kind::Date, O::Between, Operand::DateRange(a, b)) => Expr::and(vec![
                v.clone().bin(BinOp::GtEq, Expr::Day(DayRef::Fixed(*a))),
                v.bin(BinOp::LtEq, Expr::Day(DayRef::Fixed(*b))),
            ]),
            (Kind::Date, O::InLastDays, Operand::Days(n)) => Expr::and(vec![
                v.clone()
                    .bin(BinOp::GtEq, Expr::Day(DayRef::NowMinusHours(n * 24))),
                v.bin(BinOp::LtEq, Expr::Day(DayRef::NowMinusHours(0))),
            ]),
            (Kind::TextArray, O::ContainsAny, Operand::TextList(items)) => element_exists(
                v,
                Expr::InList(
                    Box::new(elem().lower()),
                    items.iter().map(|s| lower_lit(s)).collect(),
                ),
            ),
            (Kind::TextArray, O::ContainsAll, Operand::TextList(items)) => Expr::and(
                items
                    .iter()
                    .map(|s| element_exists(v.clone(), elem().lower().eq(lower_lit(s))))
                    .collect(),
            ),
            (Kind::TextArray, O::IsSet, _) => {
                Expr::call(Func::ArrayLength, vec![v]).bin(BinOp::Gt, Expr::Int(0))
            }
            _ => {
                let what = match kind {
                    Kind::Text | Kind::KeyedText => "a text field",
                    Kind::Number => "a number field",
                    Kind::Bool => "a boolean field",
                    Kind::Timestamp | Kind::Date => "a date field",
                    Kind::TextArray => "a multi-value field",
                };
                let shown = negative_of(op).unwrap_or(op);
                if matches!(operand, Operand::DateRange(..)) && kind == Kind::Number {
                    self.err(vpath(), "expected [from, to] as two numbers");
                } else {
                    self.err(
                        format!("{path}.condition"),
                        format!("operator \"{shown}\" does not apply to {what}"),
                    );
                }
                return None;
            }
        };
        Some(out)
    }

    // ---- metric and relationship focus ----------------------------------------------

    fn metric_group(
        &mut self,
        path: &str,
        g: &RuleGroup,
        object: SegmentObject,
        obj: &'c ObjectDef,
    ) -> Option<Query> {
        let oid = Expr::col("o", &id(&obj.id));
        let mut sources: Vec<SourceJoin<'c>> = Vec::new();
        let mut relations: Vec<RelationJoin> = Vec::new();
        let mut preds = Vec::new();
        let row_range = self.range_or_err(Expr::col("o", &id(&obj.time)), &g.date_range, path)?;

        for (ci, cond) in g.conditions.iter().enumerate() {
            let cpath = format!("{path}.g{ci}");
            let value = if g.focus == Focus::Relationship {
                self.relation_value(&cpath, cond, &mut relations, true)
            } else {
                self.metric_value(
                    &cpath,
                    cond,
                    object,
                    obj,
                    &mut sources,
                    &mut relations,
                    row_range.as_ref(),
                )
            };
            let Some(value) = value else { continue };
            let op = self.operator(&cpath, cond);
            let Some(op) = op else { continue };
            let pred = match value {
                MetricValue::Row(col) => {
                    // A row value behaves like a number property inside the range.
                    let p = self.on_value(&cpath, col, Kind::Number, cond);
                    p.map(|p| match &row_range {
                        Some(r) => Expr::and(vec![r.clone(), p]),
                        None => p,
                    })
                }
                MetricValue::Aggregate(v) => {
                    // Missing aggregates (avg/min/max with no activity) never match,
                    // so negatives here are plain comparisons, not complements.
                    let (pos_op, negate) = split_negative(op);
                    match (negate, pos_op, &cond.operand) {
                        (true, Operator::Equals, Operand::Text(s)) => {
                            match crate::parse::parse_number_text(s) {
                                Some(n) => Some(v.bin(BinOp::NotEq, number(n))),
                                None => {
                                    self.err(
                                        format!("{cpath}.value"),
                                        format!("{s:?} is not a number"),
                                    );
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
                        ) => self.positive(&cpath, v, Kind::Number, pos_op, &cond.operand),
                        _ => {
                            self.err(
                                format!("{cpath}.condition"),
                                format!("operator \"{op}\" does not apply to a metric"),
                            );
                            None
                        }
                    }
                }
            };
            if let Some(p) = pred {
                preds.push((cond.conjunction, p));
            }
        }
        if preds.len() != g.conditions.len() || !self.errs.is_empty() {
            return None;
        }

        let mut joins = Vec::new();
        for (si, sj) in sources.iter().enumerate() {
            let alias = format!("m{si}");
            let q = self.source_aggregates(sj, object, &g.date_range, path)?;
            joins.push(Join {
                kind: JoinKind::Left,
                item: FromItem::Subquery {
                    query: Box::new(q),
                    alias: alias.clone().into(),
                },
                on: Expr::col(alias.clone(), &Ident::fixed("k")).eq(oid.clone()),
            });
        }
        for (ri, rj) in relations.iter().enumerate() {
            let alias = format!("r{ri}");
            let q = self.relation_counts(object, rj, &g.date_range, path)?;
            joins.push(Join {
                kind: JoinKind::Left,
                item: FromItem::Subquery {
                    query: Box::new(q),
                    alias: alias.clone().into(),
                },
                on: Expr::col(alias.clone(), &Ident::fixed("k")).eq(oid.clone()),
            });
        }
        Some(Query::select(
            Select {
                distinct: true,
                from: Some(self.object_table(obj, "o")),
                joins,
                filter: Some(Expr::and(vec![oid.clone().is_not_null(), combine(preds)])),
                ..Default::default()
            }
            .item(oid, Some(OBJECT_ID)),
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn metric_value(
        &mut self,
        path: &str,
        cond: &Condition,
        object: SegmentObject,
        obj: &'c ObjectDef,
        sources: &mut Vec<SourceJoin<'c>>,
        relations: &mut Vec<RelationJoin>,
        _row_range: Option<&Expr>,
    ) -> Option<MetricValue> {
        match cond.field_type {
            None | Some(FieldType::Metric) | Some(FieldType::Number) => {
                let Some(key) = cond.key.as_deref() else {
                    self.err(format!("{path}.key"), "is required");
                    return None;
                };
                let Some(def) = obj.metrics.get(key) else {
                    self.err(
                        format!("{path}.key"),
                        unknown(&format!("metric of {object}"), key, obj.metrics.keys()),
                    );
                    return None;
                };
                if let Some(col) = &def.row {
                    return Some(MetricValue::Row(Expr::col("o", &id(col))));
                }
                let (Some(src), Some(agg)) = (def.source.as_deref(), def.aggregate) else {
                    return None;
                };
                let measure = Measure {
                    aggregate: agg,
                    column: def.column.as_deref().map(id),
                    filter: def.filter.iter().map(|(k, v)| (id(k), v.clone())).collect(),
                };
                self.add_measure(path, object, src, measure, sources)
            }
            Some(
                ft @ (FieldType::Conversion
                | FieldType::SalesConversion
                | FieldType::Ecommerce
                | FieldType::Trigger),
            ) => {
                let Some(selected) = cond.id.as_deref().or(cond.key.as_deref()) else {
                    self.err(
                        format!("{path}.id"),
                        format!("a \"{ft}\" condition needs the id it counts"),
                    );
                    return None;
                };
                let Some((sel, _)) = self.catalog.count(ft) else {
                    self.err(
                        format!("{path}.type"),
                        format!("the catalog defines no \"{ft}\" counts"),
                    );
                    return None;
                };
                let measure = Measure {
                    aggregate: Aggregate::Count,
                    column: None,
                    filter: vec![(id(&sel.selector), selected.to_string())],
                };
                let source = sel.source.clone();
                self.add_measure(path, object, &source, measure, sources)
            }
            Some(FieldType::CrmLifetimeCount) => self.relation_value(path, cond, relations, false),
            Some(ft) => {
                self.err(
                    format!("{path}.type"),
                    format!("a \"{ft}\" condition belongs in a property group"),
                );
                None
            }
        }
    }

    fn add_measure(
        &mut self,
        path: &str,
        object: SegmentObject,
        source_name: &str,
        measure: Measure,
        sources: &mut Vec<SourceJoin<'c>>,
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
        let si = match sources.iter().position(|s| s.name == source_name) {
            Some(i) => i,
            None => {
                sources.push(SourceJoin {
                    name: source_name.to_string(),
                    source,
                    measures: Vec::new(),
                });
                sources.len() - 1
            }
        };
        let zero = measure.aggregate.zero_when_empty();
        sources[si].measures.push(measure);
        let v = Expr::col(
            format!("m{si}"),
            &id(&format!("v{}", sources[si].measures.len() - 1)),
        );
        Some(MetricValue::Aggregate(if zero {
            v.coalesce(Expr::Int(0))
        } else {
            v
        }))
    }

    fn relation_value(
        &mut self,
        path: &str,
        cond: &Condition,
        relations: &mut Vec<RelationJoin>,
        in_range: bool,
    ) -> Option<MetricValue> {
        let Some(key) = cond.key.as_deref() else {
            self.err(format!("{path}.key"), "is required (the related object)");
            return None;
        };
        let Some(related) =
            SegmentObject::from_wire(key).filter(|o| self.catalog.object(*o).is_some())
        else {
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
        let ri = match relations
            .iter()
            .position(|r| r.related == related && r.in_range == in_range)
        {
            Some(i) => i,
            None => {
                relations.push(RelationJoin { related, in_range });
                relations.len() - 1
            }
        };
        let v = Expr::col(format!("r{ri}"), &Ident::fixed("v"));
        Some(MetricValue::Aggregate(v.coalesce(Expr::Int(0))))
    }

    /// `SELECT link AS k, agg0 AS v0, ... FROM source WHERE link present AND in range GROUP BY link`.
    fn source_aggregates(
        &mut self,
        sj: &SourceJoin<'c>,
        object: SegmentObject,
        range: &DateRange,
        path: &str,
    ) -> Option<Query> {
        let s = sj.source;
        let (key, mut filter) = link_key(s, object, "s")?;
        if let Some(r) = self.range_or_err(Expr::col("s", &id(&s.time)), range, path)? {
            filter.push(r);
        }
        let mut sel = Select {
            from: Some(FromItem::Table {
                table: self.target.table(&s.table),
                alias: "s".into(),
            }),
            filter: Some(Expr::and(filter)),
            group_by: vec![key.clone()],
            ..Default::default()
        }
        .item(key, Some("k"));
        for (i, m) in sj.measures.iter().enumerate() {
            let e = m.per_object();
            sel = sel.item(e, Some(&format!("v{i}")));
        }
        Some(Query::select(sel))
    }

    /// Distinct related objects per object, through the relation table in either
    /// direction, counting only links whose related row exists (and is in range).
    fn relation_counts(
        &mut self,
        object: SegmentObject,
        rj: &RelationJoin,
        range: &DateRange,
        path: &str,
    ) -> Option<Query> {
        let rel = &self.catalog.relations;
        let related = self.catalog.object(rj.related)?;
        let pairs = |mine_obj: &str, mine_id: &str, other_obj: &str, other_id: &str| {
            Query::select(
                Select {
                    from: Some(FromItem::Table {
                        table: self.target.table(&rel.table),
                        alias: "rel".into(),
                    }),
                    filter: Some(Expr::and(vec![
                        Expr::col("rel", &id(mine_obj)).eq(Expr::str(object.as_str())),
                        Expr::col("rel", &id(other_obj)).eq(Expr::str(rj.related.as_str())),
                        Expr::col("rel", &id(mine_id)).is_not_null(),
                    ])),
                    ..Default::default()
                }
                .item(Expr::col("rel", &id(mine_id)), Some("k"))
                .item(Expr::col("rel", &id(other_id)), Some("other")),
            )
        };
        let both = Query::Set(
            SetOp::UnionAll,
            vec![
                pairs(&rel.from_object, &rel.from_id, &rel.to_object, &rel.to_id),
                pairs(&rel.to_object, &rel.to_id, &rel.from_object, &rel.from_id),
            ],
        );
        let mut on =
            vec![Expr::col("rt", &id(&related.id)).eq(Expr::col("p", &Ident::fixed("other")))];
        if rj.in_range
            && let Some(r) = self.range_or_err(Expr::col("rt", &id(&related.time)), range, path)?
        {
            on.push(r);
        }
        Some(Query::select(
            Select {
                from: Some(FromItem::Subquery {
                    query: Box::new(both),
                    alias: "p".into(),
                }),
                joins: vec![Join {
                    kind: JoinKind::Inner,
                    item: FromItem::Table {
                        table: self.target.table(&related.table),
                        alias: "rt".into(),
                    },
                    on: Expr::and(on),
                }],
                group_by: vec![Expr::col("p", &Ident::fixed("k"))],
                ..Default::default()
            }
            .item(Expr::col("p", &Ident::fixed("k")), Some("k"))
            .item(
                Expr::agg(AggFunc::Count, true, Expr::col("p", &Ident::fixed("other"))),
                Some("v"),
            ),
        ))
    }

    // ---- event focuses --------------------------------------------------------------

    fn event_group(
        &mut self,
        path: &str,
        g: &RuleGroup,
        object: SegmentObject,
        obj: &'c ObjectDef,
    ) -> Option<Query> {
        let Some((sel, source)) = self.catalog.event_focus(g.focus) else {
            self.err(
                format!("{path}.conditionFocus"),
                format!("the catalog defines no source for \"{}\"", g.focus),
            );
            return None;
        };
        let Some((key, mut filter)) = link_key(source, object, "e") else {
            self.err(
                format!("{path}.conditionFocus"),
                format!(
                    "\"{}\" rows ({}) do not link to {object}",
                    g.focus, source.table
                ),
            );
            return None;
        };
        if let Some(r) =
            self.range_or_err(Expr::col("e", &id(&source.time)), &g.date_range, path)?
        {
            filter.push(r);
        }
        let mut preds = Vec::new();
        for (ci, cond) in g.conditions.iter().enumerate() {
            let cpath = format!("{path}.g{ci}");
            if let Some(p) = self.event_condition(&cpath, g.focus, cond, &sel.selector, source) {
                preds.push((cond.conjunction, p));
            }
        }
        if preds.len() != g.conditions.len() {
            return None;
        }
        filter.push(combine(preds));
        // Only objects that exist: an orphan event row makes no member.
        let oid = Expr::col("o", &id(&obj.id));
        filter.push(Expr::InQuery(
            Box::new(key.clone()),
            Box::new(Query::select(
                Select {
                    from: Some(self.object_table(obj, "o")),
                    ..Default::default()
                }
                .item(oid, None),
            )),
        ));
        Some(Query::select(
            Select {
                distinct: true,
                from: Some(FromItem::Table {
                    table: self.target.table(&source.table),
                    alias: "e".into(),
                }),
                filter: Some(Expr::and(filter)),
                ..Default::default()
            }
            .item(key, Some(OBJECT_ID)),
        ))
    }

    fn event_condition(
        &mut self,
        path: &str,
        focus: Focus,
        cond: &Condition,
        selector: &str,
        source: &SourceDef,
    ) -> Option<Expr> {
        let sel_col = Expr::col("e", &id(selector));
        // Which event: other-event names it in `key`; the others pick it by `id`.
        let (selected, property) = if focus == Focus::OtherEvent {
            let Some(name) = cond.key.as_deref() else {
                self.err(format!("{path}.key"), "is required (the event name)");
                return None;
            };
            let prop = match (&cond.sub_key, &cond.sub_key_lv2) {
                (Some(a), Some(b)) => Some(format!("{a}.{b}")),
                (Some(a), None) => Some(a.clone()),
                (None, _) => None,
            };
            (Some(name.to_string()), prop)
        } else {
            (cond.id.clone(), cond.property.clone().or(cond.key.clone()))
        };
        let mut parts = Vec::new();
        if let Some(s) = &selected {
            parts.push(sel_col.eq(Expr::str(s)));
        }
        match property {
            Some(prop) => {
                let pred = match source.column_type(&prop) {
                    Some(ty) if is_identifier(&prop) => {
                        self.on_value(path, Expr::col("e", &id(&prop)), ty.into(), cond)?
                    }
                    _ => {
                        let Some(props) = &source.properties else {
                            self.err(
                                format!("{path}.property"),
                                format!("{} has no column or property {prop:?}", source.table),
                            );
                            return None;
                        };
                        let dotted_ok = prop.split('.').all(is_identifier);
                        if !dotted_ok {
                            self.err(
                                format!("{path}.{}", if focus == Focus::OtherEvent { "subKey" } else { "property" }),
                                format!("{prop:?} is not a valid property name (letters, digits and _, not starting with a digit)"),
                            );
                            return None;
                        }
                        self.keyed_entries(path, Expr::col("e", &id(props)), &prop, cond)?
                    }
                };
                parts.push(pred);
            }
            None => {
                if selected.is_none() {
                    self.err(
                        format!("{path}.id"),
                        "an event condition needs an id, key or property",
                    );
                    return None;
                }
                // "The event happened": only is-set (or no operator) makes sense here.
                match cond.operator {
                    None | Some(Operator::IsSet) => {}
                    Some(op) => {
                        let field = if focus == Focus::OtherEvent {
                            "subKey"
                        } else {
                            "property"
                        };
                        self.err(
                            format!("{path}.{field}"),
                            format!("is required with operator \"{op}\""),
                        );
                        return None;
                    }
                }
            }
        }
        Some(Expr::and(parts))
    }
}

enum MetricValue {
    /// A value of the object's own row.
    Row(Expr),
    /// A per-object aggregate (already zero-filled where that applies).
    Aggregate(Expr),
}

/// How a row of `source` (aliased `alias`) reaches `object`: the key and the
/// conditions that make the link valid. Reports link their activity the same way.
pub(crate) fn link_key(
    source: &SourceDef,
    object: SegmentObject,
    alias: &'static str,
) -> Option<(Expr, Vec<Expr>)> {
    match source.link(object)? {
        Link::Column(col) => {
            let k = Expr::col(alias, &id(col));
            Some((k.clone(), vec![k.is_not_null()]))
        }
        Link::Crm {
            object_column,
            id_column,
        } => {
            let k = Expr::col(alias, &id(id_column));
            Some((
                k.clone(),
                vec![
                    Expr::col(alias, &id(object_column)).eq(Expr::str(object.as_str())),
                    k.is_not_null(),
                ],
            ))
        }
    }
}

fn split_negative(op: Operator) -> (Operator, bool) {
    match op.positive_twin() {
        Some(p) => (p, true),
        None => (op, false),
    }
}

fn negative_of(op: Operator) -> Option<Operator> {
    Operator::ALL
        .iter()
        .copied()
        .find(|n| n.positive_twin() == Some(op))
}

fn elem() -> Expr {
    Expr::Element("x".into())
}

fn element_exists(array: Expr, pred: Expr) -> Expr {
    Expr::Exists(Box::new(Query::select(
        Select {
            from: Some(FromItem::Elements {
                array,
                alias: "x".into(),
            }),
            filter: Some(pred),
            ..Default::default()
        }
        .item(Expr::Int(1), None),
    )))
}

fn number(n: Number) -> Expr {
    match n {
        Number::Int(i) => Expr::Int(i),
        Number::Float(f) => Expr::Float(f),
    }
}

/// AND binds tighter than OR.
fn combine(items: Vec<(Conjunction, Expr)>) -> Expr {
    Expr::or(and_or_terms(items).into_iter().map(Expr::and).collect())
}

fn set(op: SetOp, mut parts: Vec<Query>) -> Query {
    if parts.len() == 1 {
        parts.remove(0)
    } else {
        Query::Set(op, parts)
    }
}

fn unknown<'k>(what: &str, key: &str, known: impl Iterator<Item = &'k String>) -> String {
    let known: Vec<&str> = known.map(String::as_str).collect();
    format!("unknown {what} {key:?} (known: {})", known.join(", "))
}
