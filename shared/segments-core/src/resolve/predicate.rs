//! Operators applied to one value: what each operator means for each kind of
//! field (text, key/value text, number, boolean, timestamp, date, text array).
//! Negative operators are exact complements of their positive twins.

use super::Resolver;
use crate::catalog::ColumnType;
use crate::model::*;
use crate::sql::*;
use crate::time::{DayRef, TimeRef};

/// How a value behaves under the operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
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

impl Resolver<'_> {
    /// A condition on the entries of a key/value array named `key` (a
    /// checked name): a positive operator matches when any entry with that
    /// key does; a negative one when none does.
    pub(super) fn keyed_entries(
        &mut self,
        path: &str,
        array: Expr,
        key: &str,
        numeric: bool,
        test: &Test,
    ) -> Option<Expr> {
        let (pos_op, negate) = split_negative(test.operator);
        let value = Expr::Entry("c".into(), EntryField::Value);
        // A `number` condition compares entries as numbers for every operator:
        // `equals 42` then matches "42.0", as `between [42, 42]` does.
        let numeric = numeric && matches!(pos_op, Operator::Equals | Operator::InList);
        let pos = if numeric {
            let n = value.safe_cast(SqlType::Float);
            self.positive(path, n, Kind::Number, pos_op, &test.operand)?
        } else {
            self.positive(path, value, Kind::KeyedText, pos_op, &test.operand)?
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

    /// A condition on one value: negative operators are exact complements.
    pub(super) fn on_value(
        &mut self,
        path: &str,
        value: Expr,
        kind: Kind,
        test: &Test,
    ) -> Option<Expr> {
        let (pos_op, negate) = split_negative(test.operator);
        let pos = self.positive(path, value, kind, pos_op, &test.operand)?;
        Some(if negate { pos.not_definitely() } else { pos })
    }

    /// A positive operator on a value of `kind`; an operator the kind does
    /// not have, or a value it cannot read, is an error at its path.
    pub(super) fn positive(
        &mut self,
        path: &str,
        v: Expr,
        kind: Kind,
        op: Operator,
        operand: &Operand,
    ) -> Option<Expr> {
        let out = match kind {
            Kind::Text => Ok(text(v, op, operand)),
            // A number compares the text read as a number.
            Kind::KeyedText if matches!(operand, Operand::Number(_) | Operand::NumberRange(..)) => {
                let n = v.safe_cast(SqlType::Float);
                return self.positive(path, n, Kind::Number, op, operand);
            }
            Kind::KeyedText => Ok(text(v.clone(), op, operand).or_else(|| keyed_bool(v, op))),
            Kind::Number => numeric(v, op, operand),
            Kind::Bool => Ok(boolean(v, op, operand)),
            Kind::Timestamp => timestamp(v, op, operand),
            Kind::Date => Ok(date(v, op, operand)),
            Kind::TextArray => Ok(text_array(v, op, operand)),
        };
        match out {
            Ok(Some(e)) => Some(e),
            Ok(None) => {
                self.not_applicable(path, kind, op, operand);
                None
            }
            Err(msg) => {
                self.err(format!("{path}.value"), msg);
                None
            }
        }
    }

    fn not_applicable(&mut self, path: &str, kind: Kind, op: Operator, operand: &Operand) {
        let what = match kind {
            Kind::Text | Kind::KeyedText => "a text field",
            Kind::Number => "a number field",
            Kind::Bool => "a boolean field",
            Kind::Timestamp | Kind::Date => "a date field",
            Kind::TextArray => "a multi-value field",
        };
        let shown = negative_of(op).unwrap_or(op);
        if matches!(operand, Operand::DateRange(..)) && kind == Kind::Number {
            self.err(
                format!("{path}.value"),
                "expected [from, to] as two numbers",
            );
        } else {
            self.err(
                format!("{path}.condition"),
                format!("operator \"{shown}\" does not apply to {what}"),
            );
        }
    }
}

fn lower_lit(s: &str) -> Expr {
    Expr::str(s).lower()
}

/// Text compares case-insensitively; a regex runs as written.
fn text(v: Expr, op: Operator, operand: &Operand) -> Option<Expr> {
    use Operator as O;
    Some(match (op, operand) {
        (O::Equals, Operand::Text(s)) => v.lower().eq(lower_lit(s)),
        (O::Contains, Operand::Text(s)) => {
            Expr::call(Func::StrPos, vec![v.lower(), lower_lit(s)]).bin(BinOp::Gt, Expr::Int(0))
        }
        (O::StartsWith, Operand::Text(s)) => {
            Expr::call(Func::StartsWith, vec![v.lower(), lower_lit(s)])
        }
        (O::EndsWith, Operand::Text(s)) => {
            Expr::call(Func::EndsWith, vec![v.lower(), lower_lit(s)])
        }
        (O::MatchesRegex, Operand::Regex(p)) => {
            Expr::call(Func::RegexContains, vec![v, Expr::str(p)])
        }
        (O::InList, Operand::TextList(items)) => Expr::InList(
            Box::new(v.lower()),
            items.iter().map(|s| lower_lit(s)).collect(),
        ),
        (O::IsSet, _) => Expr::and(vec![
            v.clone().is_not_null(),
            v.bin(BinOp::NotEq, Expr::str("")),
        ]),
        _ => return None,
    })
}

/// Key/value text read as a boolean.
fn keyed_bool(v: Expr, op: Operator) -> Option<Expr> {
    match op {
        Operator::IsTrue => Some(v.lower().eq(Expr::str("true"))),
        Operator::IsFalse => Some(v.lower().eq(Expr::str("false"))),
        _ => None,
    }
}

fn number_text(s: &str) -> Result<Expr, String> {
    crate::parse::parse_number_text(s)
        .map(number)
        .ok_or_else(|| format!("{s:?} is not a number"))
}

fn numeric(v: Expr, op: Operator, operand: &Operand) -> Result<Option<Expr>, String> {
    use Operator as O;
    Ok(Some(match (op, operand) {
        (O::Equals, Operand::Text(s)) => v.eq(number_text(s)?),
        (O::InList, Operand::TextList(items)) => {
            let nums = items
                .iter()
                .map(|s| number_text(s))
                .collect::<Result<_, _>>()?;
            Expr::InList(Box::new(v), nums)
        }
        (O::GreaterThan, Operand::Number(n)) => v.bin(BinOp::Gt, number(*n)),
        (O::GreaterThanOrEqual, Operand::Number(n)) => v.bin(BinOp::GtEq, number(*n)),
        (O::LessThan, Operand::Number(n)) => v.bin(BinOp::Lt, number(*n)),
        (O::LessThanOrEqual, Operand::Number(n)) => v.bin(BinOp::LtEq, number(*n)),
        (O::Between, Operand::NumberRange(a, b)) => Expr::and(vec![
            v.clone().bin(BinOp::GtEq, number(*a)),
            v.bin(BinOp::LtEq, number(*b)),
        ]),
        (O::IsSet, _) => v.is_not_null(),
        _ => return Ok(None),
    }))
}

fn boolean(v: Expr, op: Operator, operand: &Operand) -> Option<Expr> {
    use Operator as O;
    Some(match (op, operand) {
        (O::IsSet, _) => v.is_not_null(),
        (O::IsTrue, _) => Expr::IsTrue(Box::new(v)),
        (O::IsFalse, _) => Expr::IsFalse(Box::new(v)),
        (O::Equals, Operand::Text(s)) if s.eq_ignore_ascii_case("true") => {
            Expr::IsTrue(Box::new(v))
        }
        (O::Equals, Operand::Text(s)) if s.eq_ignore_ascii_case("false") => {
            Expr::IsFalse(Box::new(v))
        }
        _ => return None,
    })
}

/// Days of a timestamp are whole local days in the account's zone.
fn timestamp(v: Expr, op: Operator, operand: &Operand) -> Result<Option<Expr>, String> {
    use Operator as O;
    let after = |d: chrono::NaiveDate| {
        d.succ_opt()
            .map(|n| Expr::Time(TimeRef::DayStart(n)))
            .ok_or_else(|| "is out of range".to_string())
    };
    Ok(Some(match (op, operand) {
        (O::IsSet, _) => v.is_not_null(),
        (O::Before, Operand::Date(d)) => v.bin(BinOp::Lt, Expr::Time(TimeRef::DayStart(*d))),
        (O::After, Operand::Date(d)) => v.bin(BinOp::GtEq, after(*d)?),
        (O::Between, Operand::DateRange(a, b)) => {
            let until = after(*b)?;
            Expr::and(vec![
                v.clone()
                    .bin(BinOp::GtEq, Expr::Time(TimeRef::DayStart(*a))),
                v.bin(BinOp::Lt, until),
            ])
        }
        (O::InLastDays, Operand::Days(n)) => Expr::and(vec![
            v.clone()
                .bin(BinOp::GtEq, Expr::Time(TimeRef::NowMinusHours(n * 24))),
            v.bin(BinOp::LtEq, Expr::Time(TimeRef::Now)),
        ]),
        _ => return Ok(None),
    }))
}

fn date(v: Expr, op: Operator, operand: &Operand) -> Option<Expr> {
    use Operator as O;
    let day = |d: &chrono::NaiveDate| Expr::Day(DayRef::Fixed(*d));
    Some(match (op, operand) {
        (O::IsSet, _) => v.is_not_null(),
        (O::Before, Operand::Date(d)) => v.bin(BinOp::Lt, day(d)),
        (O::After, Operand::Date(d)) => v.bin(BinOp::Gt, day(d)),
        (O::Between, Operand::DateRange(a, b)) => Expr::and(vec![
            v.clone().bin(BinOp::GtEq, day(a)),
            v.bin(BinOp::LtEq, day(b)),
        ]),
        (O::InLastDays, Operand::Days(n)) => Expr::and(vec![
            v.clone()
                .bin(BinOp::GtEq, Expr::Day(DayRef::NowMinusHours(n * 24))),
            v.bin(BinOp::LtEq, Expr::Day(DayRef::NowMinusHours(0))),
        ]),
        _ => return None,
    })
}

fn text_array(v: Expr, op: Operator, operand: &Operand) -> Option<Expr> {
    use Operator as O;
    Some(match (op, operand) {
        (O::ContainsAny, Operand::TextList(items)) => element_exists(
            v,
            Expr::InList(
                Box::new(elem().lower()),
                items.iter().map(|s| lower_lit(s)).collect(),
            ),
        ),
        (O::ContainsAll, Operand::TextList(items)) => Expr::and(
            items
                .iter()
                .map(|s| element_exists(v.clone(), elem().lower().eq(lower_lit(s))))
                .collect(),
        ),
        (O::IsSet, _) => Expr::call(Func::ArrayLength, vec![v]).bin(BinOp::Gt, Expr::Int(0)),
        _ => return None,
    })
}

pub(crate) fn split_negative(op: Operator) -> (Operator, bool) {
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

pub(crate) fn number(n: Number) -> Expr {
    match n {
        Number::Int(i) => Expr::Int(i),
        Number::Float(f) => Expr::Float(f),
    }
}
