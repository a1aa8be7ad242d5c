//! A small BigQuery SQL AST and its one renderer. Quoting and escaping live
//! here only: no other module formats an identifier or a literal by hand.

mod render;

pub use render::{
    create_table_as, drop_table, render_query, render_script, render_statement, string_literal,
};

use crate::time::{DayRef, TimeRef};
use std::borrow::Cow;

/// A table alias; almost always a fixed name chosen by the compiler.
pub type Alias = Cow<'static, str>;

/// `^[A-Za-z_][A-Za-z0-9_]*$`, at most 300 bytes (BigQuery's column name limit).
pub fn is_identifier(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 300
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// A BigQuery dataset id: letters, digits and underscores, up to 1,024,
/// which may start with a digit (a dataset per account id often does).
pub fn is_dataset_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 1024 && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

/// A GCP project id as BigQuery accepts it, optionally domain-scoped
/// (`example.com:my-project`).
pub fn is_project_id(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.' | b':'))
}

/// An identifier that passed [`is_identifier`]; the only way to name a column or table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ident(Cow<'static, str>);

impl Ident {
    pub fn new(s: &str) -> Option<Ident> {
        is_identifier(s).then(|| Ident(Cow::Owned(s.to_string())))
    }

    /// For names the catalog already checked at load time.
    pub(crate) fn trusted(s: &str) -> Ident {
        debug_assert!(is_identifier(s), "unchecked identifier {s:?}");
        Ident(Cow::Owned(s.to_string()))
    }

    /// For the compiler's own fixed names.
    pub(crate) const fn fixed(s: &'static str) -> Ident {
        Ident(Cow::Borrowed(s))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where statements read and write: a checked project and dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    project: String,
    dataset: Ident,
}

impl Target {
    pub fn new(project: &str, dataset: &str) -> Result<Target, String> {
        if !is_project_id(project) {
            return Err(format!("{project:?} is not a valid BigQuery project id"));
        }
        if !is_dataset_id(dataset) {
            return Err(format!(
                "{dataset:?} is not a valid BigQuery dataset name (letters, digits and _, at most 1024)"
            ));
        }
        // Always rendered inside backquotes, so a leading digit is safe.
        let dataset = Ident(Cow::Owned(dataset.to_string()));
        Ok(Target {
            project: project.to_string(),
            dataset,
        })
    }

    /// A table by a name the caller built from checked parts (ids, catalog names).
    pub fn checked_table(&self, name: &str) -> Option<TableRef> {
        Ident::new(name).map(|table| TableRef::Warehouse {
            project: self.project.clone(),
            dataset: self.dataset.clone(),
            table,
        })
    }

    pub fn table(&self, name: &str) -> TableRef {
        TableRef::Warehouse {
            project: self.project.clone(),
            dataset: self.dataset.clone(),
            table: Ident::trusted(name),
        }
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    pub fn dataset(&self) -> &str {
        self.dataset.as_str()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TableRef {
    Warehouse {
        project: String,
        dataset: Ident,
        table: Ident,
    },
    Cte(Ident),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinOp {
    Eq,
    NotEq,
    Lt,
    LtEq,
    Gt,
    GtEq,
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
    Time(TimeRef),
    Day(DayRef),
    Func(&'static str, Vec<Expr>),
    CountStar,
    Agg {
        func: &'static str,
        distinct: bool,
        arg: Box<Expr>,
    },
    SafeCast(Box<Expr>, &'static str),
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
}

impl Expr {
    pub fn col(alias: impl Into<Alias>, name: &Ident) -> Expr {
        Expr::Column(alias.into(), name.clone())
    }
    pub fn str(s: &str) -> Expr {
        Expr::Str(s.to_string())
    }
    pub fn func(name: &'static str, args: Vec<Expr>) -> Expr {
        Expr::Func(name, args)
    }
    pub fn lower(self) -> Expr {
        Expr::Func("LOWER", vec![self])
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
        Expr::Not(Box::new(Expr::func(
            "COALESCE",
            vec![self, Expr::Bool(false)],
        )))
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
    Table { table: TableRef, alias: Alias },
    Unnest { expr: Expr, alias: Alias },
    Subquery { query: Box<Query>, alias: Alias },
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
    /// Makes `table` equal to `source` on `key`: inserts new rows, deletes stale ones.
    MergeSync {
        table: TableRef,
        source: &'q Query,
        key: Ident,
    },
    DropTableIfExists(TableRef),
    /// Creates an empty table when missing; BigQuery partitions it by day of
    /// `partition_by_day` (a TIMESTAMP column) and clusters it by `cluster_by`.
    CreateTableIfNotExists {
        table: TableRef,
        columns: Vec<ColumnDef>,
        partition_by_day: Option<Ident>,
        cluster_by: Vec<Ident>,
    },
    /// `CREATE OR REPLACE TABLE` for a scratch table that the warehouse drops
    /// by itself `expire_hours` after creation, should its owner never do it.
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

/// Column types of the tables the functions create themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    String,
    Int64,
    Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ColumnDef {
    pub name: Ident,
    pub kind: ColumnKind,
}

impl ColumnDef {
    pub(crate) const fn fixed(name: &'static str, kind: ColumnKind) -> ColumnDef {
        ColumnDef {
            name: Ident::fixed(name),
            kind,
        }
    }
}
