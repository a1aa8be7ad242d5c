//! PostgreSQL (15+; SPEC §9, docs/postgres-warehouse.md): double-quoted
//! identifiers, `"schema"."table"` paths, literals under
//! `standard_conforming_strings = on`, instants with their offset, key/value
//! arrays as `jsonb`, multi-values as `text[]`.
//!
//! Nothing depends on session settings: every table names its schema (never
//! `search_path`), every instant carries `+00:00` (any `TimeZone`), and text
//! is lower-cased under the ICU root collation, which lowers non-ASCII
//! letters whatever the database's default collation is.
//!
//! A replaced table is built under a scratch name and renamed over the old
//! one in the same transaction, and a refresh deletes stale and inserts new
//! members in one statement: run as one string (one implicit transaction),
//! readers see the old rows until the commit and the new ones after it, never
//! a missing or half-built table.

use super::ast::{BinOp, EntryField, Expr, Func, Query, SqlType};
use super::dialect::Dialect;
use super::render::Writer;
use super::{Ident, TableRef};

pub struct Postgres;

/// Postgres truncates longer identifiers silently; we refuse them instead.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// The collation every case-insensitive comparison lowers under: ICU's root
/// locale, present wherever Postgres is built with ICU (RDS, Hydra, Debian).
const LOWER_COLLATION: &str = "und-x-icu";

/// Whitespace `float8in` and BigQuery's casts skip around a number.
const SPACE: &str = "[ \\t\\n\\r\\f\\v]*";

/// ASCII text on the other side of a case-insensitive comparison: `'x'`,
/// or `LOWER('x')` (then lowered under `"C"`, which for ASCII is every
/// collation's lowering; constant, so folded once).
fn ascii_literal(e: &Expr) -> Option<&Expr> {
    match e {
        Expr::Str(s) if s.is_ascii() => Some(e),
        Expr::Call(Func::Lower, args) => match args.as_slice() {
            [Expr::Str(s)] if s.is_ascii() => Some(e),
            _ => None,
        },
        _ => None,
    }
}

/// The `x` of `LOWER(x)`.
fn lowered(e: &Expr) -> Option<&Expr> {
    match e {
        Expr::Call(Func::Lower, args) => match args.as_slice() {
            [x] => Some(x),
            _ => None,
        },
        _ => None,
    }
}

impl Postgres {
    /// `LOWER(x)` for a comparison with ASCII text only, without ICU: the two
    /// non-ASCII letters whose lower case holds ASCII letters (KELVIN SIGN →
    /// `k`, `İ` → `i` + U+0307) are mapped first, then ASCII letters lowered
    /// under `"C"`. Every other non-ASCII character stays non-ASCII under both
    /// lowerings, so an ASCII text equals, contains, starts or ends the result
    /// exactly when it does `LOWER(x COLLATE "und-x-icu")`
    /// (`tests/postgres_properties.rs` checks this on the server).
    fn lower_for_ascii(&self, w: &mut Writer, x: &Expr) {
        w.push("LOWER(REPLACE(TRANSLATE(");
        w.expr(x);
        w.push(", ");
        self.string_literal(w.out(), "\u{212A}");
        w.push(", 'k'), ");
        self.string_literal(w.out(), "\u{130}");
        w.push(", ");
        self.string_literal(w.out(), "i\u{307}");
        w.push(") COLLATE ");
        self.quote_ident(w.out(), "C");
        w.push(")");
    }

    /// An [`ascii_literal`]: the text, lowered under `"C"` when it was lowered.
    fn ascii_text(&self, w: &mut Writer, e: &Expr) {
        match e {
            Expr::Call(Func::Lower, args) => {
                if let [t] = args.as_slice() {
                    w.push("LOWER(");
                    w.expr(t);
                    w.push(" COLLATE ");
                    self.quote_ident(w.out(), "C");
                    w.push(")");
                }
            }
            other => w.expr(other),
        }
    }

    /// `x COLLATE "und-x-icu"`, parenthesised.
    fn collated(&self, w: &mut Writer, e: &Expr) {
        w.push("(");
        w.expr(e);
        w.push(") COLLATE ");
        self.quote_ident(w.out(), LOWER_COLLATION);
    }

    /// `CAST(x AS DOUBLE PRECISION)` that yields NULL where BigQuery's
    /// `SAFE_CAST(x AS FLOAT64)` does, and ±Infinity / 0 where a decimal is
    /// beyond a double's range, as BigQuery does, instead of an error.
    fn safe_float(&self, w: &mut Writer, e: &Expr) {
        let decimal =
            format!("^{SPACE}[-+]?([0-9]+[.]?[0-9]*|[.][0-9]+)([eE][-+]?[0-9]{{1,4}})?{SPACE}$");
        let special = format!("^{SPACE}[-+]?(inf|infinity|nan){SPACE}$");
        let numeric = |w: &mut Writer| {
            w.push("CAST(");
            w.expr(e);
            w.push(" AS NUMERIC)");
        };
        w.push("CASE WHEN ");
        w.operand(e);
        w.push(" ~ ");
        self.string_literal(w.out(), &decimal);
        w.push(" THEN CASE WHEN ABS(");
        numeric(w);
        w.push(") >= 1.7976931348623158e308 THEN SIGN(");
        numeric(w);
        w.push(") * CAST('Infinity' AS DOUBLE PRECISION) WHEN ABS(");
        numeric(w);
        w.push(") <= 2.4703282292062328e-324 THEN CAST(0 AS DOUBLE PRECISION) ELSE CAST(");
        numeric(w);
        w.push(" AS DOUBLE PRECISION) END WHEN ");
        w.operand(e);
        w.push(" ~* ");
        self.string_literal(w.out(), &special);
        w.push(" THEN CAST(");
        w.expr(e);
        w.push(" AS DOUBLE PRECISION) END");
    }

    /// The scratch table a replacement is built in: the table's name with a
    /// suffix, kept within [`MAX_IDENTIFIER_BYTES`] by a hash of the name.
    fn scratch(table: &TableRef) -> TableRef {
        match table {
            TableRef::Warehouse { target, table } => {
                let name = table.as_str();
                let scratch = if name.len() + 6 <= MAX_IDENTIFIER_BYTES {
                    format!("{name}__next")
                } else {
                    let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
                        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
                    });
                    format!("{}__{hash:08x}", &name[..48])
                };
                TableRef::Warehouse {
                    target: target.clone(),
                    table: Ident::trusted(&scratch),
                }
            }
            other => other.clone(),
        }
    }

    /// `ALTER TABLE scratch RENAME TO name`: the new name is unqualified.
    fn rename(&self, w: &mut Writer, from: &TableRef, to: &TableRef) {
        w.push("ALTER TABLE ");
        w.table(from);
        w.push(" RENAME TO ");
        match to {
            TableRef::Warehouse { table, .. } | TableRef::Cte(table) => w.ident(table),
        }
    }

    /// The replace-by-swap around a query written by `body`.
    pub(crate) fn replace_with(
        &self,
        w: &mut Writer,
        table: &TableRef,
        body: impl FnOnce(&mut Writer),
    ) {
        let scratch = Self::scratch(table);
        self.drop_table_if_exists(w, &scratch);
        w.push(";\nCREATE TABLE ");
        w.table(&scratch);
        w.push(" AS\n");
        body(w);
        w.push(";\n");
        self.drop_table_if_exists(w, table);
        w.push(";\n");
        self.rename(w, &scratch, table);
    }
}

impl Dialect for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    /// Standard SQL: `'` doubled; with `standard_conforming_strings = on`
    /// a backslash is an ordinary character. (Postgres text holds no NUL.)
    fn string_literal(&self, out: &mut String, s: &str) {
        out.push('\'');
        for ch in s.chars() {
            if ch == '\'' {
                out.push('\'');
            }
            out.push(ch);
        }
        out.push('\'');
    }

    fn check_identifier(&self, name: &str) -> Result<(), String> {
        if name.len() > MAX_IDENTIFIER_BYTES {
            return Err(format!(
                "{name:?} is longer than Postgres's {MAX_IDENTIFIER_BYTES}-byte identifier limit"
            ));
        }
        Ok(())
    }

    fn func_name(&self, f: Func) -> &'static str {
        match f {
            Func::StrPos => "STRPOS",
            Func::StartsWith => "STARTS_WITH",
            f => super::dialect::default_func_name(f),
        }
    }

    fn call(&self, w: &mut Writer, f: Func, args: &[Expr]) {
        match (f, args) {
            // Against ASCII text, lowering needs no ICU (see `lower_for_ascii`).
            (Func::StrPos | Func::StartsWith, [a, b]) if lowered(a).is_some() => {
                if let (Some(x), Some(lit)) = (lowered(a), ascii_literal(b)) {
                    w.push(self.func_name(f));
                    w.push("(");
                    self.lower_for_ascii(w, x);
                    w.push(", ");
                    self.ascii_text(w, lit);
                    w.push(")");
                } else {
                    w.call_plain(self.func_name(f), args);
                }
            }
            (Func::EndsWith, [a, b]) if lowered(a).is_some() && ascii_literal(b).is_some() => {
                if let (Some(x), Some(lit)) = (lowered(a), ascii_literal(b)) {
                    w.push("RIGHT(");
                    self.lower_for_ascii(w, x);
                    w.push(", LENGTH(");
                    self.ascii_text(w, lit);
                    w.push(")) = ");
                    self.ascii_text(w, lit);
                }
            }
            // Lowered under the ICU root collation (see the module docs).
            (Func::Lower, [a]) => {
                w.push("LOWER(");
                self.collated(w, a);
                w.push(")");
            }
            (Func::EndsWith, [a, b]) => {
                w.push("RIGHT(");
                w.expr(a);
                w.push(", LENGTH(");
                w.expr(b);
                w.push(")) = ");
                w.operand(b);
            }
            (Func::RegexContains, [a, Expr::Str(pattern)]) => {
                match crate::re2_postgres::to_postgres(pattern) {
                    Ok(are) => {
                        w.push("(");
                        w.operand(a);
                        w.push(" ~ ");
                        self.string_literal(w.out(), &are);
                        w.push(")");
                    }
                    // Refused, naming the construct (docs/postgres-warehouse.md).
                    Err(e) => w.fail(crate::error::CoreError::Argument(format!(
                        "matches-regex {pattern:?} cannot run on Postgres: {e}"
                    ))),
                }
            }
            // BigQuery's SAFE_DIVIDE is a FLOAT64 division; Postgres divides integers as integers.
            (Func::SafeDivide, [a, b]) => {
                w.push("CAST(");
                w.expr(a);
                w.push(" AS DOUBLE PRECISION) / NULLIF(");
                w.expr(b);
                w.push(", 0)");
            }
            // The calendar day of an instant in a zone (BigQuery's DATE(ts, zone)).
            (Func::DateInZone, [ts, zone]) => {
                w.push("CAST((");
                w.expr(ts);
                w.push(") AT TIME ZONE ");
                w.operand(zone);
                w.push(" AS DATE)");
            }
            _ => super::dialect::default_call(self.func_name(f), w, f, args),
        }
    }

    fn compare(&self, w: &mut Writer, l: &Expr, op: BinOp, r: &Expr) {
        if matches!(op, BinOp::Eq | BinOp::NotEq)
            && let (Some(x), Some(lit)) = (lowered(l), ascii_literal(r))
        {
            self.lower_for_ascii(w, x);
            w.push(if op == BinOp::Eq { " = " } else { " != " });
            self.ascii_text(w, lit);
            return;
        }
        w.compare_plain(l, op, r);
    }

    fn in_list(&self, w: &mut Writer, e: &Expr, items: &[Expr]) {
        let texts: Option<Vec<&Expr>> = items.iter().map(ascii_literal).collect();
        if let (Some(x), Some(texts)) = (lowered(e), texts) {
            self.lower_for_ascii(w, x);
            w.push(" IN (");
            for (i, t) in texts.iter().enumerate() {
                if i > 0 {
                    w.push(", ");
                }
                self.ascii_text(w, t);
            }
            w.push(")");
            return;
        }
        w.in_list_plain(e, items);
    }

    fn cast(&self, w: &mut Writer, e: &Expr, ty: SqlType, safe: bool) {
        match (ty, safe) {
            (SqlType::Float, true) => self.safe_float(w, e),
            _ => {
                w.push("CAST(");
                w.expr(e);
                w.push(" AS ");
                w.push(self.type_name(ty));
                w.push(")");
            }
        }
    }

    /// `[{"key": …, "value": …}, …]` as rows; a NULL array has none.
    fn entries_from(&self, w: &mut Writer, array: &Expr, alias: &str) {
        w.push("JSONB_TO_RECORDSET(");
        w.expr(array);
        w.push(") AS ");
        w.push(alias);
        w.push("(");
        self.quote_ident(w.out(), "key");
        w.push(" TEXT, ");
        self.quote_ident(w.out(), "value");
        w.push(" TEXT)");
    }

    fn entry_field(&self, w: &mut Writer, alias: &str, field: EntryField) {
        w.push(alias);
        w.push(".");
        self.quote_ident(
            w.out(),
            match field {
                EntryField::Key => "key",
                EntryField::Value => "value",
            },
        );
    }

    fn create_or_replace_table(&self, w: &mut Writer, table: &TableRef, query: &Query) {
        self.replace_with(w, table, |w| w.query(query));
    }

    /// One statement: the members are computed once; stale rows are deleted
    /// and new ones inserted against the same snapshot, so afterwards the
    /// table equals `source`. A lock that readers do not wait on keeps two
    /// refreshes of one table from interleaving.
    fn sync_table(&self, w: &mut Writer, table: &TableRef, source: &Query, key: &Ident) {
        w.push("LOCK TABLE ");
        w.table(table);
        w.push(" IN SHARE ROW EXCLUSIVE MODE;\nWITH ");
        self.quote_ident(w.out(), "s");
        w.push(" AS ");
        w.query_block(source);
        w.push(",\n");
        self.quote_ident(w.out(), "gone");
        w.push(" AS (\n  DELETE FROM ");
        w.table(table);
        w.push(" AS t WHERE NOT EXISTS (SELECT 1 FROM ");
        self.quote_ident(w.out(), "s");
        w.push(" WHERE ");
        self.quote_ident(w.out(), "s");
        w.push(".");
        w.ident(key);
        w.push(" = t.");
        w.ident(key);
        w.push(")\n)\nINSERT INTO ");
        w.table(table);
        w.push(" (");
        w.ident(key);
        w.push(")\nSELECT DISTINCT n.");
        w.ident(key);
        w.push(" FROM ");
        self.quote_ident(w.out(), "s");
        w.push(" AS n\nWHERE NOT EXISTS (SELECT 1 FROM ");
        w.table(table);
        w.push(" AS o WHERE o.");
        w.ident(key);
        w.push(" = n.");
        w.ident(key);
        w.push(")");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> String {
        let mut out = String::new();
        Postgres.string_literal(&mut out, s);
        out
    }

    #[test]
    fn quotes_are_doubled_and_backslashes_stay() {
        assert_eq!(lit(r"it's a \d"), r"'it''s a \d'");
        assert_eq!(lit("a\nb\u{7}"), "'a\nb\u{7}'");
        assert_eq!(lit("''"), "''''''");
    }
}
