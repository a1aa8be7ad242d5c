//! The seam between what a statement means and how one engine spells it.
//! [`render`](super::render) walks the AST and asks a [`Dialect`] at every
//! point where engines differ; a new warehouse is one more implementation.

use super::ast::{AggFunc, ColumnDef, ColumnKind, EntryField, Expr, Func, Query, SetOp, SqlType};
use super::render::Writer;
use super::{Ident, Namespace, TableRef};
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use std::fmt::Write;

/// How one SQL engine writes the AST. Every hook has a default in portable
/// SQL (close to PostgreSQL's); an engine overrides only what it spells
/// differently, in the style of DataFusion's unparser and PRQL's dialects.
///
/// Text hooks (`quote_ident`, literals, names) append to a `String`.
/// Structural hooks receive the [`Writer`], which renders nested
/// expressions and queries (`w.expr`, `w.query_block`) at the right
/// indentation, so a hook never formats a literal or an identifier itself.
/// Quoting and escaping therefore live in exactly one place per dialect.
pub trait Dialect: Send + Sync {
    /// The dialect's name as `--dialect` takes it (`bigquery`).
    fn name(&self) -> &'static str;

    // ---- names and literals -----------------------------------------------------------

    /// Quotes an identifier (already checked by [`super::is_identifier`]).
    /// Default: `"name"`.
    fn quote_ident(&self, out: &mut String, name: &str) {
        out.push('"');
        out.push_str(name);
        out.push('"');
    }

    /// A warehouse table: its namespace (BigQuery project and dataset, or a
    /// schema) and its name. Default: each part quoted, joined by `.`.
    fn table_path(&self, out: &mut String, namespace: &Namespace, table: &Ident) {
        match namespace {
            Namespace::ProjectDataset { project, dataset } => {
                self.quote_ident(out, project);
                out.push('.');
                self.quote_ident(out, dataset.as_str());
            }
            Namespace::Schema(schema) => self.quote_ident(out, schema.as_str()),
        }
        out.push('.');
        self.quote_ident(out, table.as_str());
    }

    /// A string literal that reads back as exactly `s` (which holds no NUL).
    /// Default: standard SQL, `'` doubled, no backslash escapes.
    fn string_literal(&self, out: &mut String, s: &str) {
        out.push('\'');
        out.push_str(&s.replace('\'', "''"));
        out.push('\'');
    }

    /// A float literal that reads back as exactly `f` (finite). Default: Rust's
    /// shortest round-trip form, with `.0` on whole numbers so it stays a float.
    fn float_literal(&self, out: &mut String, f: f64) {
        if f.fract() == 0.0 && f.abs() < 1e15 {
            let _ = write!(out, "{f:.1}");
        } else {
            let _ = write!(out, "{f:?}");
        }
    }

    /// Whether the engine can hold this instant; rendering a time outside
    /// it is an error, not a wrapped value. Default: years 1 to 9999.
    fn instant_in_range(&self, t: DateTime<Utc>) -> bool {
        (1..=9999).contains(&t.year())
    }

    /// An instant, always written in UTC with microseconds when there are any.
    /// Default: `TIMESTAMP WITH TIME ZONE '2024-06-15 12:00:00+00:00'`.
    fn timestamp_literal(&self, out: &mut String, t: DateTime<Utc>) {
        out.push_str("TIMESTAMP WITH TIME ZONE '");
        utc_text(out, t);
        out.push('\'');
    }

    /// A calendar day. Default: `DATE '2024-06-15'`.
    fn date_literal(&self, out: &mut String, d: NaiveDate) {
        let _ = write!(out, "DATE '{}'", d.format("%Y-%m-%d"));
    }

    // ---- functions, casts, aggregates ---------------------------------------------------

    /// The name of a function rendered as `name(args)` by [`Dialect::call`].
    fn func_name(&self, f: Func) -> &'static str {
        default_func_name(f)
    }

    /// A function call. Default: `name(arg, ...)`, except the portable forms
    /// `CASE WHEN c THEN a ELSE b END` (If), `a / NULLIF(b, 0)` (SafeDivide)
    /// and `COUNT(CASE WHEN c THEN 1 END)` (CountIf).
    fn call(&self, w: &mut Writer, f: Func, args: &[Expr]) {
        match (f, args) {
            (Func::If, [c, a, b]) => {
                w.push("CASE WHEN ");
                w.expr(c);
                w.push(" THEN ");
                w.expr(a);
                w.push(" ELSE ");
                w.expr(b);
                w.push(" END");
            }
            (Func::SafeDivide, [a, b]) => {
                w.operand(a);
                w.push(" / NULLIF(");
                w.expr(b);
                w.push(", 0)");
            }
            (Func::CountIf, [c]) => {
                w.push("COUNT(CASE WHEN ");
                w.expr(c);
                w.push(" THEN 1 END)");
            }
            _ => w.call_plain(self.func_name(f), args),
        }
    }

    /// A type as casts name it. Default: `DOUBLE PRECISION`, `TEXT`.
    fn type_name(&self, ty: SqlType) -> &'static str {
        match ty {
            SqlType::Float => "DOUBLE PRECISION",
            SqlType::Text => "TEXT",
        }
    }

    /// A cast; a `safe` cast yields NULL where the value does not convert.
    /// Default: `CAST(e AS type)` for both; an engine whose plain cast fails
    /// on bad input must override the safe form.
    fn cast(&self, w: &mut Writer, e: &Expr, ty: SqlType, safe: bool) {
        let _ = safe;
        w.push("CAST(");
        w.expr(e);
        w.push(" AS ");
        w.push(self.type_name(ty));
        w.push(")");
    }

    /// The name of an aggregate function.
    fn aggregate_name(&self, f: AggFunc) -> &'static str {
        match f {
            AggFunc::Count => "COUNT",
            AggFunc::Sum => "SUM",
            AggFunc::Avg => "AVG",
            AggFunc::Min => "MIN",
            AggFunc::Max => "MAX",
        }
    }

    // ---- arrays -----------------------------------------------------------------------

    /// A FROM item with one row per entry of a key/value array column
    /// (`[{key, value}, ...]`), bound to `alias`. Default: `UNNEST(array) AS alias`.
    fn entries_from(&self, w: &mut Writer, array: &Expr, alias: &str) {
        w.push("UNNEST(");
        w.expr(array);
        w.push(") AS ");
        w.push(alias);
    }

    /// A field of the entry bound by [`Dialect::entries_from`]. Default: `alias."key"`.
    fn entry_field(&self, w: &mut Writer, alias: &str, field: EntryField) {
        w.push(alias);
        w.push(".");
        let name = match field {
            EntryField::Key => "key",
            EntryField::Value => "value",
        };
        self.quote_ident(w.out(), name);
    }

    /// A FROM item with one row per element of a text array column, bound to
    /// `alias`. Default: `UNNEST(array) AS alias`.
    fn elements_from(&self, w: &mut Writer, array: &Expr, alias: &str) {
        w.push("UNNEST(");
        w.expr(array);
        w.push(") AS ");
        w.push(alias);
    }

    /// The element bound by [`Dialect::elements_from`]. Default: the quoted alias.
    fn element(&self, w: &mut Writer, alias: &str) {
        self.quote_ident(w.out(), alias);
    }

    // ---- queries and statements -------------------------------------------------------

    /// The keyword of a set operation. Default: `UNION ALL`, `UNION`,
    /// `INTERSECT`, `EXCEPT` (the distinct forms are the defaults in SQL).
    fn set_operator(&self, op: SetOp) -> &'static str {
        match op {
            SetOp::UnionAll => "UNION ALL",
            SetOp::UnionDistinct => "UNION",
            SetOp::IntersectDistinct => "INTERSECT",
            SetOp::ExceptDistinct => "EXCEPT",
        }
    }

    /// Replaces `table` with the rows of `query`. Default: two statements,
    /// `DROP TABLE IF EXISTS table;` then `CREATE TABLE table AS query`.
    fn create_or_replace_table(&self, w: &mut Writer, table: &TableRef, query: &Query) {
        self.drop_table_if_exists(w, table);
        w.push(";\nCREATE TABLE ");
        w.table(table);
        w.push(" AS\n");
        w.query(query);
    }

    /// Makes the one-column `table` equal to `source` on `key` (see
    /// [`super::Statement::Sync`]) without rewriting unchanged rows. Default,
    /// for engines without `MERGE ... WHEN NOT MATCHED BY SOURCE`: a DELETE of
    /// the stale keys, then an INSERT of the new ones.
    fn sync_table(&self, w: &mut Writer, table: &TableRef, source: &Query, key: &Ident) {
        w.push("DELETE FROM ");
        w.table(table);
        w.push(" WHERE ");
        w.ident(key);
        w.push(" NOT IN ");
        w.query_block(source);
        w.push(";\nINSERT INTO ");
        w.table(table);
        w.push(" (");
        w.ident(key);
        w.push(")\nSELECT s.");
        w.ident(key);
        w.push(" FROM ");
        w.query_block(source);
        w.push(" AS s\nWHERE s.");
        w.ident(key);
        w.push(" NOT IN (SELECT ");
        w.ident(key);
        w.push(" FROM ");
        w.table(table);
        w.push(")");
    }

    /// `DROP TABLE IF EXISTS table`.
    fn drop_table_if_exists(&self, w: &mut Writer, table: &TableRef) {
        w.push("DROP TABLE IF EXISTS ");
        w.table(table);
    }

    /// A column type of a table the functions create. Default: `TEXT`,
    /// `BIGINT`, `TIMESTAMP WITH TIME ZONE`.
    fn column_type(&self, kind: ColumnKind) -> &'static str {
        match kind {
            ColumnKind::Text => "TEXT",
            ColumnKind::Int64 => "BIGINT",
            ColumnKind::Timestamp => "TIMESTAMP WITH TIME ZONE",
        }
    }

    /// `CREATE TABLE IF NOT EXISTS table (columns)`. Default: no partitioning
    /// or clustering (an engine that has them overrides this).
    fn create_table_if_not_exists(
        &self,
        w: &mut Writer,
        table: &TableRef,
        columns: &[ColumnDef],
        partition_by_day: Option<&Ident>,
        cluster_by: &[Ident],
    ) {
        let _ = (partition_by_day, cluster_by);
        w.push("CREATE TABLE IF NOT EXISTS ");
        w.table(table);
        w.column_defs(columns);
    }

    /// A scratch table. Default: [`Dialect::create_or_replace_table`], with no expiry.
    fn create_or_replace_scratch_table(
        &self,
        w: &mut Writer,
        table: &TableRef,
        query: &Query,
        expire_hours: u32,
    ) {
        let _ = expire_hours;
        self.create_or_replace_table(w, table, query);
    }
}

/// The default names of [`Dialect::func_name`], for dialects that rename a few.
pub fn default_func_name(f: Func) -> &'static str {
    match f {
        Func::Lower => "LOWER",
        Func::StrPos => "STRPOS",
        Func::StartsWith => "STARTS_WITH",
        Func::EndsWith => "ENDS_WITH",
        Func::RegexContains => "REGEXP_CONTAINS",
        Func::Coalesce => "COALESCE",
        Func::If => "IF",
        Func::ArrayLength => "CARDINALITY",
        Func::SafeDivide => "SAFE_DIVIDE",
        Func::DateInZone => "DATE",
        Func::CountIf => "COUNTIF",
    }
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]+00:00`: an instant as text every engine reads.
pub fn utc_text(out: &mut String, t: DateTime<Utc>) {
    let t = crate::time::without_leap_second(t);
    let micros = t.timestamp_subsec_micros();
    let _ = write!(out, "{}", t.format("%Y-%m-%d %H:%M:%S"));
    if micros != 0 {
        let _ = write!(out, ".{micros:06}");
    }
    out.push_str("+00:00");
}

/// The dialects this build can render, as `--dialect` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum DialectKind {
    #[default]
    BigQuery,
}

impl DialectKind {
    pub const ALL: &'static [DialectKind] = &[DialectKind::BigQuery];

    pub fn dialect(self) -> &'static dyn Dialect {
        match self {
            DialectKind::BigQuery => &super::bigquery::BigQuery,
        }
    }

    pub fn name(self) -> &'static str {
        self.dialect().name()
    }
}

impl std::str::FromStr for DialectKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        DialectKind::ALL
            .iter()
            .copied()
            .find(|d| d.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| {
                let known: Vec<&str> = DialectKind::ALL.iter().map(|d| d.name()).collect();
                format!("unknown dialect {s:?} (known: {})", known.join(", "))
            })
    }
}

impl std::fmt::Display for DialectKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
