//! The seam between what a statement means and how one engine spells it.
//! [`render`](super::render) walks the AST and asks a [`Dialect`] at every
//! point where engines differ; a new warehouse is one more implementation.

use super::ast::{
    AggFunc, BinOp, EntryField, Expr, Func, OrderKey, Query, SetOp, SqlType, ValueType, WindowFunc,
};
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

    /// Whether a backslash escapes the next character inside a quoted
    /// literal or identifier (BigQuery), or is an ordinary character (standard SQL).
    fn backslash_escapes(&self) -> bool {
        false
    }

    /// Refuses a table name (already an identifier) the engine cannot hold
    /// exactly. Default: every name.
    fn check_identifier(&self, name: &str) -> Result<(), String> {
        let _ = name;
        Ok(())
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
        default_call(self.func_name(f), w, f, args)
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

    /// A comparison `l op r`. Default: as written.
    fn compare(&self, w: &mut Writer, l: &Expr, op: BinOp, r: &Expr) {
        w.compare_plain(l, op, r);
    }

    /// `e IN (items)`. Default: as written.
    fn in_list(&self, w: &mut Writer, e: &Expr, items: &[Expr]) {
        w.in_list_plain(e, items);
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

    /// [`Dialect::create_or_replace_table`] for a table the engine deletes at
    /// `expires_at`. Default, for engines without table expiry: the same
    /// statement, and the table stays until it is dropped.
    fn create_or_replace_expiring_table(
        &self,
        w: &mut Writer,
        table: &TableRef,
        query: &Query,
        _expires_at: DateTime<Utc>,
    ) {
        self.create_or_replace_table(w, table, query);
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

    // ---- models (window functions, typed values, typed tables) -------------------------

    /// The name of a window function. Default: the SQL standard names.
    fn window_func_name(&self, f: WindowFunc) -> &'static str {
        match f {
            WindowFunc::RowNumber => "ROW_NUMBER",
            WindowFunc::Lag => "LAG",
            WindowFunc::FirstValue => "FIRST_VALUE",
            WindowFunc::Sum => "SUM",
            WindowFunc::Min => "MIN",
            WindowFunc::Max => "MAX",
        }
    }

    /// One key of a window's ORDER BY, NULL smallest in both directions.
    /// Default: `expr [COLLATE "C"] ASC NULLS FIRST` / `DESC NULLS LAST`
    /// (byte order for text, whatever the database's default collation).
    fn order_key(&self, w: &mut Writer, key: &OrderKey) {
        if key.bytewise {
            w.push("(");
            w.expr(&key.expr);
            w.push(") COLLATE ");
            self.quote_ident(w.out(), "C");
        } else {
            w.operand(&key.expr);
        }
        w.push(if key.desc {
            " DESC NULLS LAST"
        } else {
            " ASC NULLS FIRST"
        });
    }

    /// A column type as `CREATE TABLE` and casts name it. Default: the
    /// Postgres types of SPEC §9 (key/value arrays are `jsonb`).
    fn value_type_name(&self, ty: ValueType) -> &'static str {
        match ty {
            ValueType::Text => "text",
            ValueType::Int => "bigint",
            ValueType::Float => "double precision",
            ValueType::Bool => "boolean",
            ValueType::Timestamp => "timestamptz",
            ValueType::TextArray => "text[]",
            ValueType::KeyValues => "jsonb",
        }
    }

    /// A NULL of a column type. Default: `CAST(NULL AS type)`.
    fn typed_null(&self, w: &mut Writer, ty: ValueType) {
        w.push("CAST(NULL AS ");
        w.push(self.value_type_name(ty));
        w.push(")");
    }

    /// An empty array of an array type. Default: `CAST('{}' AS text[])`,
    /// `CAST('[]' AS jsonb)`; other types have no empty array, so a NULL.
    fn empty_array(&self, w: &mut Writer, ty: ValueType) {
        let text = match ty {
            ValueType::TextArray => "{}",
            ValueType::KeyValues => "[]",
            other => return self.typed_null(w, other),
        };
        w.push("CAST(");
        self.string_literal(w.out(), text);
        w.push(" AS ");
        w.push(self.value_type_name(ty));
        w.push(")");
    }

    /// A key/value array with an entry per non-NULL value. Default (jsonb):
    /// `CAST('[]' AS jsonb) || CASE WHEN v IS NULL THEN CAST('[]' AS jsonb)
    /// ELSE jsonb_build_array(jsonb_build_object('key', 'k', 'value', v)) END || ...`.
    fn key_values(&self, w: &mut Writer, entries: &[(String, Expr)]) {
        w.push("(");
        self.empty_array(w, ValueType::KeyValues);
        for (key, value) in entries {
            w.push(" || CASE WHEN ");
            w.operand(value);
            w.push(" IS NULL THEN ");
            self.empty_array(w, ValueType::KeyValues);
            w.push(" ELSE jsonb_build_array(jsonb_build_object(");
            self.string_literal(w.out(), "key");
            w.push(", ");
            self.string_literal(w.out(), key);
            w.push(", ");
            self.string_literal(w.out(), "value");
            w.push(", ");
            w.expr(value);
            w.push(")) END");
        }
        w.push(")");
    }

    /// An instant plus whole seconds. Default: `(t + INTERVAL 'N seconds')`.
    fn add_seconds(&self, w: &mut Writer, t: &Expr, seconds: i64) {
        w.push("(");
        w.operand(t);
        w.push(&format!(" + INTERVAL '{seconds} seconds')"));
    }

    /// Whole seconds from `from` to `to`, truncated toward zero, as a 64-bit
    /// integer. Default: `CAST(TRUNC(EXTRACT(EPOCH FROM (to - from))) AS bigint)`.
    fn seconds_between(&self, w: &mut Writer, from: &Expr, to: &Expr) {
        w.push("CAST(TRUNC(EXTRACT(EPOCH FROM (");
        w.operand(to);
        w.push(" - ");
        w.operand(from);
        w.push("))) AS ");
        w.push(self.value_type_name(ValueType::Int));
        w.push(")");
    }

    /// `CREATE TABLE IF NOT EXISTS table (column type, ...)`. Default: no
    /// partitioning or clustering (an engine that has them overrides this).
    fn create_table_if_not_exists(
        &self,
        w: &mut Writer,
        table: &TableRef,
        columns: &[(Ident, ValueType)],
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

/// The default [`Dialect::call`], for dialects that override a few functions
/// and write the rest this way (`name` is the dialect's [`Dialect::func_name`]).
pub fn default_call(name: &str, w: &mut Writer, f: Func, args: &[Expr]) {
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
        _ => w.call_plain(name, args),
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
    Postgres,
}

impl DialectKind {
    pub const ALL: &'static [DialectKind] = &[DialectKind::BigQuery, DialectKind::Postgres];

    pub fn dialect(self) -> &'static dyn Dialect {
        match self {
            DialectKind::BigQuery => &super::bigquery::BigQuery,
            DialectKind::Postgres => &super::postgres::Postgres,
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
