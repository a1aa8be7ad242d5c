//! Activity joined to objects: per-object aggregates of an activity source
//! (metric groups and report metrics build their joins here only), how a
//! source row links to an object, and the one date-window predicate.

use crate::catalog::{Aggregate, Link, SourceDef};
use crate::model::{DateRange, SegmentObject};
use crate::sql::*;
use crate::time::TimeRef;

/// A time window `[from, until)`, or all time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    All,
    Between(TimeRef, TimeRef),
}

impl Window {
    /// A rule group's date range: the previous N local days before today, or
    /// whole local days from start to end. `Err` when the end is the last
    /// representable day (its next midnight does not exist).
    pub fn of(range: &DateRange) -> Result<Window, &'static str> {
        Ok(match *range {
            DateRange::Lifetime => Window::All,
            DateRange::PreviousPeriod { days } => {
                Window::Between(TimeRef::TodayStart(-(days as i32)), TimeRef::TodayStart(0))
            }
            DateRange::Specific { start, end } => Window::days(start, end)?,
        })
    }

    /// Whole local days `start` to `end`.
    pub fn days(start: chrono::NaiveDate, end: chrono::NaiveDate) -> Result<Window, &'static str> {
        let after = end.succ_opt().ok_or("is out of range")?;
        Ok(Window::Between(
            TimeRef::DayStart(start),
            TimeRef::DayStart(after),
        ))
    }

    /// `time >= from`, `time < until`; nothing for all time.
    pub fn bounds(&self, time: Expr) -> Vec<Expr> {
        match *self {
            Window::All => vec![],
            Window::Between(from, until) => vec![
                time.clone().bin(BinOp::GtEq, Expr::Time(from)),
                time.bin(BinOp::Lt, Expr::Time(until)),
            ],
        }
    }

    /// The bounds as one predicate; `None` for all time.
    pub fn filter(&self, time: Expr) -> Option<Expr> {
        let b = self.bounds(time);
        (!b.is_empty()).then(|| Expr::and(b))
    }
}

/// One aggregate requested from an activity source, per object.
#[derive(Debug, Clone, PartialEq)]
pub struct Measure {
    pub aggregate: Aggregate,
    pub column: Option<Ident>,
    /// Only rows where each column equals its value count.
    pub filter: Vec<(Ident, String)>,
}

impl Measure {
    /// One object's aggregate over its source rows (alias `s`).
    pub fn per_object(&self) -> Expr {
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

/// The measures read from one source.
#[derive(Debug, Clone)]
struct SourceMeasures<'c> {
    name: String,
    source: &'c SourceDef,
    measures: Vec<Measure>,
}

/// Per-object aggregates grouped by source, so each source is read once:
/// joined as `LEFT JOIN (SELECT k, v0, v1, ...) AS m{i} ON m{i}.k = <object id>`.
#[derive(Debug, Clone, Default)]
pub struct Activity<'c> {
    sources: Vec<SourceMeasures<'c>>,
}

impl<'c> Activity<'c> {
    /// Adds a measure of `source` (which must link to the object); returns
    /// the joined column that holds it, NULL for objects without activity.
    pub fn add(&mut self, name: &str, source: &'c SourceDef, measure: Measure) -> Expr {
        let si = match self.sources.iter().position(|s| s.name == name) {
            Some(i) => i,
            None => {
                self.sources.push(SourceMeasures {
                    name: name.to_string(),
                    source,
                    measures: Vec::new(),
                });
                self.sources.len() - 1
            }
        };
        let s = &mut self.sources[si];
        s.measures.push(measure);
        Expr::col(
            format!("m{si}"),
            &Ident::trusted(&format!("v{}", s.measures.len() - 1)),
        )
    }

    /// The LEFT JOINs to `oid`, each to `SELECT link AS k, agg AS v0, ...
    /// FROM source WHERE link present AND time in window GROUP BY link`: only
    /// the columns the measures need, and literal time bounds so the
    /// warehouse prunes partitions.
    pub fn joins(
        &self,
        object: SegmentObject,
        oid: &Expr,
        target: &Target,
        window: &Window,
    ) -> Vec<Join> {
        let mut out = Vec::new();
        for (si, j) in self.sources.iter().enumerate() {
            let s = j.source;
            // `add` is only called for sources that link to the object.
            let Some((key, mut filter)) = link_key(s, object, "s") else {
                continue;
            };
            filter.extend(window.filter(Expr::col("s", &Ident::trusted(&s.time))));
            let mut sel = Select {
                from: Some(FromItem::Table {
                    table: target.table(&s.table),
                    alias: "s".into(),
                }),
                filter: Some(Expr::and(filter)),
                group_by: vec![key.clone()],
                ..Default::default()
            }
            .item(key, Some("k"));
            for (mi, m) in j.measures.iter().enumerate() {
                sel = sel.item(m.per_object(), Some(&format!("v{mi}")));
            }
            out.push(left_join(Query::select(sel), format!("m{si}"), oid));
        }
        out
    }
}

/// `LEFT JOIN (query) AS alias ON alias.k = oid`.
pub(crate) fn left_join(query: Query, alias: String, oid: &Expr) -> Join {
    Join {
        kind: JoinKind::Left,
        item: FromItem::Subquery {
            query: Box::new(query),
            alias: alias.clone().into(),
        },
        on: Expr::col(alias, &Ident::fixed("k")).eq(oid.clone()),
    }
}

/// How a row of `source` (aliased `alias`) reaches `object`: the key and the
/// conditions that make the link valid.
pub fn link_key(
    source: &SourceDef,
    object: SegmentObject,
    alias: &'static str,
) -> Option<(Expr, Vec<Expr>)> {
    match source.link(object)? {
        Link::Column(col) => {
            let k = Expr::col(alias, &Ident::trusted(col));
            Some((k.clone(), vec![k.is_not_null()]))
        }
        Link::Crm {
            object_column,
            id_column,
        } => {
            let k = Expr::col(alias, &Ident::trusted(id_column));
            Some((
                k.clone(),
                vec![
                    Expr::col(alias, &Ident::trusted(object_column)).eq(Expr::str(object.as_str())),
                    k.is_not_null(),
                ],
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

    #[test]
    fn a_window_ending_on_the_last_day_is_an_error_not_an_open_end() {
        let start = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        let end = NaiveDate::MAX;
        assert_eq!(
            Window::of(&DateRange::Specific { start, end }),
            Err("is out of range")
        );
        let end = NaiveDate::from_ymd_opt(2024, 1, 31).unwrap();
        let w = Window::of(&DateRange::Specific { start, end }).unwrap();
        let next = NaiveDate::from_ymd_opt(2024, 2, 1).unwrap();
        assert_eq!(
            w,
            Window::Between(TimeRef::DayStart(start), TimeRef::DayStart(next))
        );
        assert_eq!(Window::of(&DateRange::Lifetime), Ok(Window::All));
        assert!(Window::All.filter(Expr::Null).is_none());
    }
}
