//! The SQL AST every pass builds and every dialect renders. Nodes say what is
//! meant (lower-case this, cast safely to a float, the entries of a key/value
//! array), never how one engine spells it: spelling lives in [`super::Dialect`].

use super::{Alias, Ident, TableRef};
use crate::time::{DayRef, TimeRef};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
}

/// Scalar functions the compiler needs; each dialect names or rewrites them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `lower(text)`.
    Lower,
    /// 1-based position of the second argument in the first, 0 when absent.
    StrPos,
    StartsWith,
    EndsWith,
    /// Whether the RE2 pattern (second argument) matches anywhere in the first.
    RegexContains,
    /// The first non-NULL argument.
    Coalesce,
    /// `if(cond, then, else)`.
    If,
    /// The number of elements of an array (NULL for a NULL array).
    ArrayLength,
    /// `a / b`, NULL when `b` is 0.
    SafeDivide,
    /// The calendar day of a timestamp in a time zone (`date(ts, 'Europe/Berlin')`).
    DateInZone,
    /// Aggregate: how many rows satisfy the condition.
    CountIf,
}

/// Aggregate functions over a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AggFunc {
    Count,
    Sum,
    Avg,
    Min,
    Max,
}

/// The types values are cast to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlType {
    /// A 64-bit float (BigQuery FLOAT64, Postgres double precision).
    Float,
    /// Text (BigQuery STRING, Postgres text).
    Text,
}

/// The two fields of a key/value array's entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryField {
    Key,
    Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `alias.column`; aliases are chosen by the compiler, never by input.
    Column(Alias, Ident),
    /// An unqualified output column (`object_id`).
    Name(Ident),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    /// An instant that depends on the run (`now`, local midnights).
    Time(TimeRef),
    /// A calendar day that may depend on the run.
    Day(DayRef),
    Call(Func, Vec<Expr>),
    CountStar,
    Agg {
        func: AggFunc,
        distinct: bool,
        arg: Box<Expr>,
    },
    /// A cast; `safe` gives NULL instead of an error when the value does not convert.
    Cast {
        expr: Box<Expr>,
        ty: SqlType,
        safe: bool,
    },
    /// A field of the current entry of a key/value array bound by
    /// [`FromItem::Entries`] under this alias.
    Entry(Alias, EntryField),
    /// The current element of a text array bound by [`FromItem::Elements`].
    Element(Alias),
    Binary(Box<Expr>, BinOp, Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    IsNull(Box<Expr>),
    IsNotNull(Box<Expr>),
    IsTrue(Box<Expr>),
    IsFalse(Box<Expr>),
    InList(Box<Expr>, Vec<Expr>),
    InQuery(Box<Expr>, Box<Query>),
    Exists(Box<Query>),
    /// A window function: `f(args) OVER (PARTITION BY .. ORDER BY ..)`.
    Window(Box<Window>),
    /// Text concatenation; NULL when any part is NULL.
    Concat(Vec<Expr>),
    /// An instant plus a whole number of seconds.
    AddSeconds(Box<Expr>, i64),
    /// The whole seconds from the first instant to the second, truncated
    /// toward zero, as a 64-bit integer.
    SecondsBetween(Box<Expr>, Box<Expr>),
    /// A NULL of a column type (so `CREATE TABLE .. AS` gets the right type).
    TypedNull(ValueType),
    /// An empty array of an array column type (text or key/value).
    EmptyArray(ValueType),
    /// A key/value array (`[{key, value}, ...]`) with one entry per
    /// non-NULL value, in the given order; empty when every value is NULL.
    KeyValues(Vec<(String, Expr)>),
}

/// The column types of the reference warehouse (SPEC §5, §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Text,
    Int,
    Float,
    Bool,
    Timestamp,
    /// `ARRAY<STRING>` / `text[]`.
    TextArray,
    /// `ARRAY<STRUCT<key STRING, value STRING>>` / `jsonb`.
    KeyValues,
}

/// Window functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowFunc {
    RowNumber,
    /// The previous row's value of the argument (NULL on the first row).
    Lag,
    /// The argument on the first row of the window's order.
    FirstValue,
    Sum,
    Min,
    Max,
}

/// One key of a window's order. NULL sorts as the smallest value in both
/// directions on every engine; text keys compare as bytes (code points).
#[derive(Debug, Clone, PartialEq)]
pub struct OrderKey {
    pub expr: Expr,
    pub desc: bool,
    /// Text compared byte by byte (Postgres: `COLLATE "C"`).
    pub bytewise: bool,
}

impl OrderKey {
    pub fn asc(expr: Expr) -> OrderKey {
        OrderKey {
            expr,
            desc: false,
            bytewise: false,
        }
    }
    pub fn desc(expr: Expr) -> OrderKey {
        OrderKey {
            expr,
            desc: true,
            bytewise: false,
        }
    }
    /// The same key comparing text as bytes.
    pub fn bytes(mut self) -> OrderKey {
        self.bytewise = true;
        self
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    pub func: WindowFunc,
    pub args: Vec<Expr>,
    pub partition_by: Vec<Expr>,
    pub order_by: Vec<OrderKey>,
    /// `ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW` (a running total
    /// that never groups peers); otherwise the engine's default frame.
    pub running: bool,
}

impl Window {
    pub fn new(func: WindowFunc, args: Vec<Expr>) -> Window {
        Window {
            func,
            args,
            partition_by: Vec::new(),
            order_by: Vec::new(),
            running: false,
        }
    }
    pub fn partition(mut self, by: Vec<Expr>) -> Window {
        self.partition_by = by;
        self
    }
    pub fn order(mut self, by: Vec<OrderKey>) -> Window {
        self.order_by = by;
        self
    }
    pub fn running(mut self) -> Window {
        self.running = true;
        self
    }
    pub fn expr(self) -> Expr {
        Expr::Window(Box::new(self))
    }
}

impl Expr {
    pub fn col(alias: impl Into<Alias>, name: &Ident) -> Expr {
        Expr::Column(alias.into(), name.clone())
    }
    pub fn str(s: &str) -> Expr {
        Expr::Str(s.to_string())
    }
    pub fn call(func: Func, args: Vec<Expr>) -> Expr {
        Expr::Call(func, args)
    }
    pub fn lower(self) -> Expr {
        Expr::Call(Func::Lower, vec![self])
    }
    pub fn coalesce(self, fallback: Expr) -> Expr {
        Expr::Call(Func::Coalesce, vec![self, fallback])
    }
    pub fn safe_cast(self, ty: SqlType) -> Expr {
        Expr::Cast {
            expr: Box::new(self),
            ty,
            safe: true,
        }
    }
    pub fn agg(func: AggFunc, distinct: bool, arg: Expr) -> Expr {
        Expr::Agg {
            func,
            distinct,
            arg: Box::new(arg),
        }
    }
    pub fn bin(self, op: BinOp, rhs: Expr) -> Expr {
        Expr::Binary(Box::new(self), op, Box::new(rhs))
    }
    pub fn eq(self, rhs: Expr) -> Expr {
        self.bin(BinOp::Eq, rhs)
    }
    pub fn is_not_null(self) -> Expr {
        Expr::IsNotNull(Box::new(self))
    }
    /// Negation that is the exact complement: a NULL (unknown) positive counts as false.
    pub fn not_definitely(self) -> Expr {
        Expr::Not(Box::new(self.coalesce(Expr::Bool(false))))
    }
    pub fn and(mut items: Vec<Expr>) -> Expr {
        match items.len() {
            1 => items.remove(0),
            0 => Expr::Bool(true),
            _ => Expr::And(items),
        }
    }
    pub fn or(mut items: Vec<Expr>) -> Expr {
        match items.len() {
            1 => items.remove(0),
            0 => Expr::Bool(false),
            _ => Expr::Or(items),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum FromItem {
    Table {
        table: TableRef,
        alias: Alias,
    },
    /// One row per entry of a key/value array (`[{key, value}, ...]`).
    Entries {
        array: Expr,
        alias: Alias,
    },
    /// One row per element of a text array.
    Elements {
        array: Expr,
        alias: Alias,
    },
    Subquery {
        query: Box<Query>,
        alias: Alias,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinKind {
    Inner,
    Left,
    /// `CROSS JOIN`; the join's `on` is ignored.
    Cross,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Join {
    pub kind: JoinKind,
    pub item: FromItem,
    pub on: Expr,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SelectItem {
    pub expr: Expr,
    pub alias: Option<Ident>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Select {
    pub distinct: bool,
    pub items: Vec<SelectItem>,
    pub from: Option<FromItem>,
    pub joins: Vec<Join>,
    pub filter: Option<Expr>,
    pub group_by: Vec<Expr>,
    pub order_by: Vec<(Expr, bool)>,
    pub limit: Option<u64>,
    pub offset: Option<u64>,
}

impl Select {
    pub fn item(mut self, expr: Expr, alias: Option<&str>) -> Self {
        self.items.push(SelectItem {
            expr,
            alias: alias.map(Ident::trusted),
        });
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetOp {
    UnionAll,
    UnionDistinct,
    IntersectDistinct,
    ExceptDistinct,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    Select(Box<Select>),
    /// Operands are always parenthesised, so kinds never mix unparenthesised.
    Set(SetOp, Vec<Query>),
    With(Vec<(Ident, Query)>, Box<Query>),
}

impl Query {
    pub fn select(s: Select) -> Query {
        Query::Select(Box::new(s))
    }
}

/// A statement borrows its query, so one query can be rendered into several.
#[derive(Debug, Clone, PartialEq)]
pub enum Statement<'q> {
    Query(&'q Query),
    CreateOrReplaceTable {
        table: TableRef,
        query: &'q Query,
    },
    /// [`Statement::CreateOrReplaceTable`] for a table the engine deletes by
    /// itself at `expires_at` (report result tables). An engine without table
    /// expiry keeps the table.
    CreateOrReplaceExpiringTable {
        table: TableRef,
        query: &'q Query,
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    /// Makes `table` (one column, `key`) equal to `source`: inserts the rows
    /// `source` has and `table` lacks, deletes the rows `table` has and
    /// `source` lacks, leaves the others alone. A dialect may need several
    /// statements for it.
    Sync {
        table: TableRef,
        source: &'q Query,
        key: Ident,
    },
    DropTableIfExists(TableRef),
    /// Creates an empty table with these typed columns unless it exists.
    /// Engines that can partition it by day of `partition_by_day` (a
    /// timestamp column) and cluster it by `cluster_by` do; others ignore both.
    CreateTableIfNotExists {
        table: TableRef,
        columns: Vec<(Ident, ValueType)>,
        partition_by_day: Option<Ident>,
        cluster_by: Vec<Ident>,
    },
    /// Replaces a scratch table with the rows of `query`; engines that can drop
    /// a table by themselves do so `expire_hours` later, should its owner not.
    CreateOrReplaceScratchTable {
        table: TableRef,
        query: &'q Query,
        expire_hours: u32,
    },
    /// `INSERT INTO table (columns) <query>`.
    InsertSelect {
        table: TableRef,
        columns: Vec<Ident>,
        query: &'q Query,
    },
}
