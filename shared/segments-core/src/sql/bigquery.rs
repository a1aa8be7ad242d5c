//! BigQuery Standard SQL: backquoted identifiers and table paths, backslash
//! escapes in strings, `SAFE_CAST`, `COUNTIF`, `UNNEST`, `MERGE`.

use super::ast::{Expr, Func, OrderKey, Query, SetOp, SqlType, ValueType};
use super::dialect::{Dialect, utc_text};
use super::render::Writer;
use super::{Ident, Namespace, TableRef};
use chrono::{DateTime, Utc};

pub struct BigQuery;

impl Dialect for BigQuery {
    fn name(&self) -> &'static str {
        "bigquery"
    }

    fn quote_ident(&self, out: &mut String, name: &str) {
        out.push('`');
        out.push_str(name);
        out.push('`');
    }

    fn table_path(&self, out: &mut String, namespace: &Namespace, table: &Ident) {
        match namespace {
            // Project ids may hold `-`, `.` and `:`, so the path is quoted as one unit.
            Namespace::ProjectDataset { project, dataset } => {
                out.push('`');
                out.push_str(project);
                out.push('.');
                out.push_str(dataset.as_str());
                out.push('.');
                out.push_str(table.as_str());
                out.push('`');
            }
            Namespace::Schema(schema) => {
                self.quote_ident(out, schema.as_str());
                out.push('.');
                self.quote_ident(out, table.as_str());
            }
        }
    }

    /// Only escapes that both BigQuery and sqlparser decode identically are
    /// used; other characters (including `{`, other quotes and non-ASCII) stay.
    fn string_literal(&self, out: &mut String, s: &str) {
        out.push('\'');
        for ch in s.chars() {
            match ch {
                '\\' => out.push_str("\\\\"),
                '\'' => out.push_str("\\'"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                '\u{7}' => out.push_str("\\a"),
                '\u{8}' => out.push_str("\\b"),
                '\u{c}' => out.push_str("\\f"),
                c => out.push(c),
            }
        }
        out.push('\'');
    }

    fn backslash_escapes(&self) -> bool {
        true
    }

    fn timestamp_literal(&self, out: &mut String, t: DateTime<Utc>) {
        out.push_str("TIMESTAMP '");
        utc_text(out, t);
        out.push('\'');
    }

    fn func_name(&self, f: Func) -> &'static str {
        match f {
            Func::ArrayLength => "ARRAY_LENGTH",
            f => super::dialect::default_func_name(f),
        }
    }

    /// BigQuery has every function under its own name: `IF`, `SAFE_DIVIDE`, `COUNTIF`.
    fn call(&self, w: &mut Writer, f: Func, args: &[Expr]) {
        w.call_plain(self.func_name(f), args);
    }

    fn type_name(&self, ty: SqlType) -> &'static str {
        match ty {
            SqlType::Float => "FLOAT64",
            SqlType::Text => "STRING",
        }
    }

    fn cast(&self, w: &mut Writer, e: &Expr, ty: SqlType, safe: bool) {
        w.push(if safe { "SAFE_CAST(" } else { "CAST(" });
        w.expr(e);
        w.push(" AS ");
        w.push(self.type_name(ty));
        w.push(")");
    }

    fn set_operator(&self, op: SetOp) -> &'static str {
        match op {
            SetOp::UnionAll => "UNION ALL",
            SetOp::UnionDistinct => "UNION DISTINCT",
            SetOp::IntersectDistinct => "INTERSECT DISTINCT",
            SetOp::ExceptDistinct => "EXCEPT DISTINCT",
        }
    }

    fn create_or_replace_table(&self, w: &mut Writer, table: &TableRef, query: &Query) {
        w.push("CREATE OR REPLACE TABLE ");
        w.table(table);
        w.push(" AS\n");
        w.query(query);
    }

    /// `OPTIONS (expiration_timestamp = ...)`: BigQuery deletes the table then.
    fn create_or_replace_expiring_table(
        &self,
        w: &mut Writer,
        table: &TableRef,
        query: &Query,
        expires_at: DateTime<Utc>,
    ) {
        w.push("CREATE OR REPLACE TABLE ");
        w.table(table);
        w.push(" OPTIONS (expiration_timestamp = ");
        self.timestamp_literal(w.out(), expires_at);
        w.push(") AS\n");
        w.query(query);
    }

    fn create_table_if_not_exists(
        &self,
        w: &mut Writer,
        table: &TableRef,
        columns: &[(Ident, ValueType)],
        partition_by_day: Option<&Ident>,
        cluster_by: &[Ident],
    ) {
        w.push("CREATE TABLE IF NOT EXISTS ");
        w.table(table);
        w.column_defs(columns);
        if let Some(col) = partition_by_day {
            // Day partitions of a TIMESTAMP column, as `DATE(col)` gives; the
            // emulator accepts only this spelling, BigQuery both.
            w.push("\nPARTITION BY TIMESTAMP_TRUNC(");
            w.ident(col);
            w.push(", DAY)");
        }
        if !cluster_by.is_empty() {
            w.push("\nCLUSTER BY ");
            for (i, c) in cluster_by.iter().enumerate() {
                if i > 0 {
                    w.push(", ");
                }
                w.ident(c);
            }
        }
    }

    fn create_or_replace_scratch_table(
        &self,
        w: &mut Writer,
        table: &TableRef,
        query: &Query,
        expire_hours: u32,
    ) {
        w.push("CREATE OR REPLACE TABLE ");
        w.table(table);
        w.push(&format!(
            "\nOPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL {expire_hours} HOUR)) AS\n"
        ));
        w.query(query);
    }

    /// One MERGE: BigQuery has `WHEN NOT MATCHED BY SOURCE`.
    fn sync_table(&self, w: &mut Writer, table: &TableRef, source: &Query, key: &Ident) {
        w.push("MERGE ");
        w.table(table);
        w.push(" AS t\nUSING ");
        w.query_block(source);
        w.push(" AS s\nON t.");
        w.ident(key);
        w.push(" = s.");
        w.ident(key);
        w.push("\nWHEN NOT MATCHED BY TARGET THEN INSERT (");
        w.ident(key);
        w.push(") VALUES (s.");
        w.ident(key);
        w.push(")\nWHEN NOT MATCHED BY SOURCE THEN DELETE");
    }

    /// Strings already compare by code point (UTF-8 bytes); no collation.
    fn order_key(&self, w: &mut Writer, key: &OrderKey) {
        w.operand(&key.expr);
        w.push(if key.desc {
            " DESC NULLS LAST"
        } else {
            " ASC NULLS FIRST"
        });
    }

    fn value_type_name(&self, ty: ValueType) -> &'static str {
        match ty {
            ValueType::Text => "STRING",
            ValueType::Int => "INT64",
            ValueType::Float => "FLOAT64",
            ValueType::Bool => "BOOL",
            ValueType::Timestamp => "TIMESTAMP",
            ValueType::TextArray => "ARRAY<STRING>",
            ValueType::KeyValues => "ARRAY<STRUCT<key STRING, value STRING>>",
        }
    }

    /// An empty array of a type: `CAST([] AS ARRAY<STRING>)` (the cast form,
    /// which every BigQuery parser reads; `ARRAY<STRUCT<..>>[]` trips some on `>>`).
    fn empty_array(&self, w: &mut Writer, ty: ValueType) {
        match ty {
            ValueType::TextArray | ValueType::KeyValues => {
                w.push("CAST([] AS ");
                w.push(self.value_type_name(ty));
                w.push(")");
            }
            other => self.typed_null(w, other),
        }
    }

    /// `ARRAY_CONCAT(IF(v IS NULL, <empty>, [STRUCT('k' AS key, v AS value)]), ...)`.
    fn key_values(&self, w: &mut Writer, entries: &[(String, Expr)]) {
        if entries.is_empty() {
            return self.empty_array(w, ValueType::KeyValues);
        }
        w.push("ARRAY_CONCAT(");
        for (i, (key, value)) in entries.iter().enumerate() {
            if i > 0 {
                w.push(", ");
            }
            w.push("IF(");
            w.operand(value);
            w.push(" IS NULL, ");
            self.empty_array(w, ValueType::KeyValues);
            w.push(", [STRUCT(");
            self.string_literal(w.out(), key);
            w.push(" AS key, ");
            w.expr(value);
            w.push(" AS value)])");
        }
        w.push(")");
    }

    fn add_seconds(&self, w: &mut Writer, t: &Expr, seconds: i64) {
        w.push("TIMESTAMP_ADD(");
        w.expr(t);
        w.push(&format!(", INTERVAL {seconds} SECOND)"));
    }

    fn seconds_between(&self, w: &mut Writer, from: &Expr, to: &Expr) {
        w.push("TIMESTAMP_DIFF(");
        w.expr(to);
        w.push(", ");
        w.expr(from);
        w.push(", SECOND)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> String {
        let mut out = String::new();
        BigQuery.string_literal(&mut out, s);
        out
    }

    #[test]
    fn escapes_quotes_and_backslashes() {
        assert_eq!(lit(r"it's a \d"), r"'it\'s a \\d'");
        assert_eq!(lit("a\nb\tc\u{7}"), r"'a\nb\tc\a'");
        assert_eq!(lit("{{now}}\""), "'{{now}}\"'");
    }

    #[test]
    fn floats_stay_floats_and_round_trip() {
        let mut s = String::new();
        for f in [3.0, 2.5, -1e300, 999.9900000000001] {
            BigQuery.float_literal(&mut s, f);
            s.push(' ');
        }
        assert_eq!(s, "3.0 2.5 -1e300 999.9900000000001 ");
    }
}
