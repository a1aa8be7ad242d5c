//! Renders the AST as BigQuery Standard SQL text. Identifiers are always
//! backquoted; string literals always go through [`string_literal`].

use super::*;
use std::fmt::Write;

/// A BigQuery single-quoted string literal that reads back as exactly `s`.
/// Only escapes that both BigQuery and sqlparser decode identically are used;
/// other characters (including `{`, quotes of other kinds and non-ASCII) stay as they are.
pub fn string_literal(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
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
    out
}

fn quote_ident(out: &mut String, id: &Ident) {
    out.push('`');
    out.push_str(id.as_str());
    out.push('`');
}

fn table_ref(out: &mut String, t: &TableRef) {
    match t {
        TableRef::Warehouse {
            project,
            dataset,
            table,
        } => {
            // Project ids may hold `-`, `.` and `:`, so the path is quoted as one unit.
            let _ = write!(out, "`{project}.{}.{}`", dataset.as_str(), table.as_str());
        }
        TableRef::Cte(name) => quote_ident(out, name),
    }
}

pub fn render_statement(s: &Statement) -> String {
    let mut out = String::new();
    match s {
        Statement::Query(q) => query(&mut out, q, 0),
        Statement::CreateOrReplaceTable { table, query: q } => {
            out.push_str("CREATE OR REPLACE TABLE ");
            table_ref(&mut out, table);
            out.push_str(" AS\n");
            query(&mut out, q, 0);
        }
        Statement::MergeSync { table, source, key } => {
            out.push_str("MERGE ");
            table_ref(&mut out, table);
            out.push_str(" AS t\nUSING (\n");
            query(&mut out, source, 1);
            out.push_str("\n) AS s\nON t.");
            quote_ident(&mut out, key);
            out.push_str(" = s.");
            quote_ident(&mut out, key);
            out.push_str("\nWHEN NOT MATCHED BY TARGET THEN INSERT (");
            quote_ident(&mut out, key);
            out.push_str(") VALUES (s.");
            quote_ident(&mut out, key);
            out.push_str(")\nWHEN NOT MATCHED BY SOURCE THEN DELETE");
        }
        Statement::DropTableIfExists(t) => {
            out.push_str("DROP TABLE IF EXISTS ");
            table_ref(&mut out, t);
        }
        Statement::CreateTableIfNotExists {
            table,
            columns,
            partition_by_day,
            cluster_by,
        } => {
            out.push_str("CREATE TABLE IF NOT EXISTS ");
            table_ref(&mut out, table);
            out.push_str(" (");
            for (i, c) in columns.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                quote_ident(&mut out, &c.name);
                out.push(' ');
                out.push_str(column_type(c.kind));
            }
            out.push(')');
            if let Some(col) = partition_by_day {
                // Day partitions of a TIMESTAMP column; BigQuery reads this as
                // `DATE(col)` does, and the emulator accepts only this spelling.
                out.push_str("\nPARTITION BY TIMESTAMP_TRUNC(");
                quote_ident(&mut out, col);
                out.push_str(", DAY)");
            }
            if !cluster_by.is_empty() {
                out.push_str("\nCLUSTER BY ");
                for (i, c) in cluster_by.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    quote_ident(&mut out, c);
                }
            }
        }
        Statement::CreateOrReplaceScratchTable {
            table,
            query: q,
            expire_hours,
        } => {
            out.push_str("CREATE OR REPLACE TABLE ");
            table_ref(&mut out, table);
            let _ = write!(
                out,
                "\nOPTIONS (expiration_timestamp = TIMESTAMP_ADD(CURRENT_TIMESTAMP(), INTERVAL {expire_hours} HOUR)) AS\n"
            );
            query(&mut out, q, 0);
        }
        Statement::InsertSelect {
            table,
            columns,
            query: q,
        } => {
            out.push_str("INSERT INTO ");
            table_ref(&mut out, table);
            out.push_str(" (");
            for (i, c) in columns.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                quote_ident(&mut out, c);
            }
            out.push_str(")\n");
            query(&mut out, q, 0);
        }
    }
    out
}

fn column_type(kind: ColumnKind) -> &'static str {
    match kind {
        ColumnKind::String => "STRING",
        ColumnKind::Int64 => "INT64",
        ColumnKind::Timestamp => "TIMESTAMP",
    }
}

/// Statements run in order as one job: separated by `;`, no scripting.
pub fn render_script(statements: &[Statement]) -> String {
    statements
        .iter()
        .map(render_statement)
        .collect::<Vec<_>>()
        .join(";\n")
}

/// `CREATE OR REPLACE TABLE <table> AS <query>` around an already rendered query.
pub fn create_table_as(table: &TableRef, query_sql: &str) -> String {
    let mut out = String::from("CREATE OR REPLACE TABLE ");
    table_ref(&mut out, table);
    out.push_str(" AS\n");
    out.push_str(query_sql);
    out
}

/// `DROP TABLE IF EXISTS <table>`.
pub fn drop_table(table: &TableRef) -> String {
    render_statement(&Statement::DropTableIfExists(table.clone()))
}

pub fn render_query(q: &Query) -> String {
    let mut out = String::new();
    query(&mut out, q, 0);
    out
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

fn newline(out: &mut String, level: usize) {
    out.push('\n');
    indent(out, level);
}

fn query(out: &mut String, q: &Query, level: usize) {
    match q {
        Query::Select(s) => {
            indent(out, level);
            select(out, s, level);
        }
        Query::Set(op, parts) => {
            let kw = match op {
                SetOp::UnionAll => "UNION ALL",
                SetOp::UnionDistinct => "UNION DISTINCT",
                SetOp::IntersectDistinct => "INTERSECT DISTINCT",
                SetOp::ExceptDistinct => "EXCEPT DISTINCT",
            };
            for (i, p) in parts.iter().enumerate() {
                if i > 0 {
                    newline(out, level);
                    out.push_str(kw);
                    out.push('\n');
                }
                indent(out, level);
                out.push_str("(\n");
                query(out, p, level + 1);
                newline(out, level);
                out.push(')');
            }
        }
        Query::With(ctes, body) => {
            indent(out, level);
            out.push_str("WITH ");
            for (i, (name, q)) in ctes.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                    newline(out, level);
                }
                quote_ident(out, name);
                out.push_str(" AS (\n");
                query(out, q, level + 1);
                newline(out, level);
                out.push(')');
            }
            out.push('\n');
            query(out, body, level);
        }
    }
}

fn select(out: &mut String, s: &Select, level: usize) {
    out.push_str(if s.distinct {
        "SELECT DISTINCT "
    } else {
        "SELECT "
    });
    for (i, item) in s.items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        expr(out, &item.expr, level);
        if let Some(a) = &item.alias {
            out.push_str(" AS ");
            quote_ident(out, a);
        }
    }
    if let Some(f) = &s.from {
        newline(out, level);
        out.push_str("FROM ");
        from_item(out, f, level);
    }
    for j in &s.joins {
        newline(out, level);
        out.push_str(match j.kind {
            JoinKind::Inner => "INNER JOIN ",
            JoinKind::Left => "LEFT JOIN ",
            JoinKind::Cross => "CROSS JOIN ",
        });
        from_item(out, &j.item, level);
        if j.kind != JoinKind::Cross {
            out.push_str(" ON ");
            expr(out, &j.on, level);
        }
    }
    if let Some(w) = &s.filter {
        newline(out, level);
        out.push_str("WHERE ");
        expr(out, w, level);
    }
    if !s.group_by.is_empty() {
        newline(out, level);
        out.push_str("GROUP BY ");
        list(out, &s.group_by, level);
    }
    if !s.order_by.is_empty() {
        newline(out, level);
        out.push_str("ORDER BY ");
        for (i, (e, desc)) in s.order_by.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            expr(out, e, level);
            out.push_str(if *desc { " DESC" } else { " ASC" });
        }
    }
    if let Some(l) = s.limit {
        newline(out, level);
        let _ = write!(out, "LIMIT {l}");
        if let Some(o) = s.offset {
            let _ = write!(out, " OFFSET {o}");
        }
    }
}

fn from_item(out: &mut String, f: &FromItem, level: usize) {
    match f {
        FromItem::Table { table, alias } => {
            table_ref(out, table);
            let _ = write!(out, " AS {alias}");
        }
        FromItem::Unnest { expr: e, alias } => {
            out.push_str("UNNEST(");
            expr(out, e, level);
            let _ = write!(out, ") AS {alias}");
        }
        FromItem::Subquery { query: q, alias } => {
            out.push_str("(\n");
            query(out, q, level + 1);
            newline(out, level);
            let _ = write!(out, ") AS {alias}");
        }
    }
}

fn list(out: &mut String, items: &[Expr], level: usize) {
    for (i, e) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        expr(out, e, level);
    }
}

/// Operands of AND/OR/NOT are parenthesised when they are themselves compound,
/// so precedence never depends on the reader.
fn operand(out: &mut String, e: &Expr, level: usize) {
    if matches!(e, Expr::And(_) | Expr::Or(_)) {
        out.push('(');
        expr(out, e, level);
        out.push(')');
    } else {
        expr(out, e, level);
    }
}

fn expr(out: &mut String, e: &Expr, level: usize) {
    match e {
        Expr::Column(alias, name) => {
            out.push_str(alias);
            out.push('.');
            quote_ident(out, name);
        }
        Expr::Name(name) => quote_ident(out, name),
        Expr::Str(s) => out.push_str(&string_literal(s)),
        Expr::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Expr::Float(f) => float(out, *f),
        Expr::Bool(b) => out.push_str(if *b { "TRUE" } else { "FALSE" }),
        Expr::Null => out.push_str("NULL"),
        Expr::Time(t) => out.push_str(&t.placeholder()),
        Expr::Day(d) => out.push_str(&d.placeholder()),
        Expr::Func(name, args) => {
            out.push_str(name);
            out.push('(');
            list(out, args, level);
            out.push(')');
        }
        Expr::CountStar => out.push_str("COUNT(*)"),
        Expr::Agg {
            func,
            distinct,
            arg,
        } => {
            out.push_str(func);
            out.push_str(if *distinct { "(DISTINCT " } else { "(" });
            expr(out, arg, level);
            out.push(')');
        }
        Expr::SafeCast(inner, ty) => {
            out.push_str("SAFE_CAST(");
            expr(out, inner, level);
            let _ = write!(out, " AS {ty})");
        }
        Expr::Binary(l, op, r) => {
            operand(out, l, level);
            out.push_str(match op {
                BinOp::Eq => " = ",
                BinOp::NotEq => " != ",
                BinOp::Lt => " < ",
                BinOp::LtEq => " <= ",
                BinOp::Gt => " > ",
                BinOp::GtEq => " >= ",
            });
            operand(out, r, level);
        }
        Expr::And(items) | Expr::Or(items) => {
            let kw = if matches!(e, Expr::And(_)) {
                " AND "
            } else {
                " OR "
            };
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(kw);
                }
                operand(out, item, level);
            }
        }
        Expr::Not(inner) => {
            out.push_str("NOT ");
            match **inner {
                Expr::Func(..) | Expr::Exists(_) | Expr::Column(..) => expr(out, inner, level),
                _ => {
                    out.push('(');
                    expr(out, inner, level);
                    out.push(')');
                }
            }
        }
        Expr::IsNull(inner) => {
            operand(out, inner, level);
            out.push_str(" IS NULL");
        }
        Expr::IsNotNull(inner) => {
            operand(out, inner, level);
            out.push_str(" IS NOT NULL");
        }
        Expr::IsTrue(inner) => {
            operand(out, inner, level);
            out.push_str(" IS TRUE");
        }
        Expr::IsFalse(inner) => {
            operand(out, inner, level);
            out.push_str(" IS FALSE");
        }
        Expr::InList(inner, items) => {
            operand(out, inner, level);
            out.push_str(" IN (");
            list(out, items, level);
            out.push(')');
        }
        Expr::InQuery(inner, q) => {
            operand(out, inner, level);
            out.push_str(" IN (\n");
            query(out, q, level + 1);
            newline(out, level);
            out.push(')');
        }
        Expr::Exists(q) => {
            out.push_str("EXISTS (\n");
            query(out, q, level + 1);
            newline(out, level);
            out.push(')');
        }
    }
}

/// Floats render so BigQuery reads them back as the same FLOAT64, never as
/// an identifier or in exponent-only forms sqlparser might misread.
fn float(out: &mut String, f: f64) {
    if f.fract() == 0.0 && f.abs() < 1e15 {
        let _ = write!(out, "{f:.1}");
    } else {
        let _ = write!(out, "{f:?}");
    }
    // `{:?}` may produce `1e300`; BigQuery reads that as a FLOAT64 too.
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_quotes_and_backslashes() {
        assert_eq!(string_literal(r"it's a \d"), r"'it\'s a \\d'");
        assert_eq!(string_literal("a\nb\tc\u{7}"), r"'a\nb\tc\a'");
        assert_eq!(string_literal("{{now}}\""), "'{{now}}\"'");
    }

    #[test]
    fn floats_stay_floats() {
        let mut s = String::new();
        float(&mut s, 3.0);
        s.push(' ');
        float(&mut s, 2.5);
        s.push(' ');
        float(&mut s, -1e300);
        assert_eq!(s, "3.0 2.5 -1e300");
    }
}
