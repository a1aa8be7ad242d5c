//! Walks the AST and writes SQL text, asking the [`Dialect`] wherever engines
//! differ. Layout (indentation, parentheses, clause order) is decided here once.

use super::ast::*;
use super::dialect::Dialect;
use super::{Ident, TableRef};
use crate::error::CoreError;
use crate::time::Clock;
use std::fmt::Write as _;

/// Renders one statement for `clock`: [`Clock::Placeholders`] writes run-time
/// instants as `{{ts:...}}` (the stored, human-readable form), [`Clock::At`]
/// resolves them for one run. An instant the engine cannot hold is an error.
pub fn render_statement(
    dialect: &dyn Dialect,
    statement: &Statement,
    clock: Clock,
) -> Result<String, CoreError> {
    let mut w = Writer::new(dialect, clock);
    match statement {
        Statement::Query(q) => w.query(q),
        Statement::CreateOrReplaceTable { table, query } => {
            dialect.create_or_replace_table(&mut w, table, query)
        }
        Statement::CreateOrReplaceExpiringTable {
            table,
            query,
            expires_at,
        } => dialect.create_or_replace_expiring_table(&mut w, table, query, *expires_at),
        Statement::Sync { table, source, key } => dialect.sync_table(&mut w, table, source, key),
        Statement::DropTableIfExists(t) => dialect.drop_table_if_exists(&mut w, t),
        Statement::CreateTableIfNotExists {
            table,
            columns,
            partition_by_day,
            cluster_by,
        } => dialect.create_table_if_not_exists(
            &mut w,
            table,
            columns,
            partition_by_day.as_ref(),
            cluster_by,
        ),
        Statement::CreateOrReplaceScratchTable {
            table,
            query,
            expire_hours,
        } => dialect.create_or_replace_scratch_table(&mut w, table, query, *expire_hours),
        Statement::InsertSelect {
            table,
            columns,
            query,
        } => {
            w.push("INSERT INTO ");
            w.table(table);
            w.push(" (");
            for (i, c) in columns.iter().enumerate() {
                if i > 0 {
                    w.push(", ");
                }
                w.ident(c);
            }
            w.push(")\n");
            w.query(query);
        }
    }
    w.finish()
}

/// Statements run in order as one job: separated by `;`, no scripting.
pub fn render_script(
    dialect: &dyn Dialect,
    statements: &[Statement],
    clock: Clock,
) -> Result<String, CoreError> {
    let parts = statements
        .iter()
        .map(|s| render_statement(dialect, s, clock))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(parts.join(";\n"))
}

/// Renders a query for `clock`.
pub fn render_query(dialect: &dyn Dialect, q: &Query, clock: Clock) -> Result<String, CoreError> {
    render_statement(dialect, &Statement::Query(q), clock)
}

/// The output buffer with the context hooks need: the dialect, the clock and
/// the indentation of the query being written.
pub struct Writer<'d> {
    out: String,
    dialect: &'d dyn Dialect,
    clock: Clock,
    level: usize,
    error: Option<CoreError>,
}

impl<'d> Writer<'d> {
    pub fn new(dialect: &'d dyn Dialect, clock: Clock) -> Writer<'d> {
        Writer {
            out: String::with_capacity(1024),
            dialect,
            clock,
            level: 0,
            error: None,
        }
    }

    pub fn finish(self) -> Result<String, CoreError> {
        match self.error {
            Some(e) => Err(e),
            None => Ok(self.out),
        }
    }

    /// The text written so far, for the dialect's text hooks.
    pub fn out(&mut self) -> &mut String {
        &mut self.out
    }

    pub fn push(&mut self, s: &str) {
        self.out.push_str(s);
    }

    /// ` (name type, ...)` of a table definition, types named by the dialect.
    pub fn column_defs(&mut self, columns: &[(Ident, ValueType)]) {
        self.push(" (");
        for (i, (name, ty)) in columns.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.ident(name);
            let ty = self.dialect.value_type_name(*ty);
            self.push(" ");
            self.push(ty);
        }
        self.push(")");
    }

    pub fn ident(&mut self, id: &Ident) {
        self.dialect.quote_ident(&mut self.out, id.as_str());
    }

    pub fn table(&mut self, t: &TableRef) {
        match t {
            TableRef::Warehouse { target, table } => {
                self.dialect
                    .table_path(&mut self.out, target.namespace(), table)
            }
            TableRef::Cte(name) => self.ident(name),
        }
    }

    fn indent(&mut self) {
        for _ in 0..self.level {
            self.out.push_str("  ");
        }
    }

    fn newline(&mut self) {
        self.out.push('\n');
        self.indent();
    }

    /// A query at the current indentation.
    pub fn query(&mut self, q: &Query) {
        match q {
            Query::Select(s) => {
                self.indent();
                self.select(s);
            }
            Query::Set(op, parts) => {
                let kw = self.dialect.set_operator(*op);
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        self.newline();
                        self.push(kw);
                        self.out.push('\n');
                    }
                    self.indent();
                    self.query_block(p);
                }
            }
            Query::With(ctes, body) => {
                self.indent();
                self.push("WITH ");
                for (i, (name, q)) in ctes.iter().enumerate() {
                    if i > 0 {
                        self.out.push(',');
                        self.newline();
                    }
                    self.ident(name);
                    self.push(" AS ");
                    self.query_block(q);
                }
                self.out.push('\n');
                self.query(body);
            }
        }
    }

    /// `(` newline, the query one level deeper, newline, `)`.
    pub fn query_block(&mut self, q: &Query) {
        self.push("(\n");
        self.level += 1;
        self.query(q);
        self.level -= 1;
        self.newline();
        self.out.push(')');
    }

    fn select(&mut self, s: &Select) {
        self.push(if s.distinct {
            "SELECT DISTINCT "
        } else {
            "SELECT "
        });
        for (i, item) in s.items.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.expr(&item.expr);
            if let Some(a) = &item.alias {
                self.push(" AS ");
                self.ident(a);
            }
        }
        if let Some(f) = &s.from {
            self.newline();
            self.push("FROM ");
            self.source_item(f);
        }
        for j in &s.joins {
            self.newline();
            self.push(match j.kind {
                JoinKind::Inner => "INNER JOIN ",
                JoinKind::Left => "LEFT JOIN ",
                JoinKind::Cross => "CROSS JOIN ",
            });
            self.source_item(&j.item);
            if j.kind != JoinKind::Cross {
                self.push(" ON ");
                self.expr(&j.on);
            }
        }
        self.select_tail(s);
    }

    /// WHERE, GROUP BY, ORDER BY, LIMIT.
    fn select_tail(&mut self, s: &Select) {
        if let Some(w) = &s.filter {
            self.newline();
            self.push("WHERE ");
            self.expr(w);
        }
        if !s.group_by.is_empty() {
            self.newline();
            self.push("GROUP BY ");
            self.list(&s.group_by);
        }
        if !s.order_by.is_empty() {
            self.newline();
            self.push("ORDER BY ");
            for (i, (e, desc)) in s.order_by.iter().enumerate() {
                if i > 0 {
                    self.push(", ");
                }
                self.expr(e);
                self.push(if *desc { " DESC" } else { " ASC" });
            }
        }
        if let Some(l) = s.limit {
            self.newline();
            let _ = write!(self.out, "LIMIT {l}");
            if let Some(o) = s.offset {
                let _ = write!(self.out, " OFFSET {o}");
            }
        }
    }

    fn source_item(&mut self, f: &FromItem) {
        let d = self.dialect;
        match f {
            FromItem::Table { table, alias } => {
                self.table(table);
                self.push(" AS ");
                self.push(alias);
            }
            FromItem::Entries { array, alias } => d.entries_from(self, array, alias),
            FromItem::Elements { array, alias } => d.elements_from(self, array, alias),
            FromItem::Subquery { query, alias } => {
                self.query_block(query);
                self.push(" AS ");
                self.push(alias);
            }
        }
    }

    pub fn list(&mut self, items: &[Expr]) {
        for (i, e) in items.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.expr(e);
        }
    }

    /// `name(arg, ...)`.
    pub fn call_plain(&mut self, name: &str, args: &[Expr]) {
        self.push(name);
        self.out.push('(');
        self.list(args);
        self.out.push(')');
    }

    /// An operand of AND/OR/NOT and comparisons: parenthesised when it is
    /// itself compound, so precedence never depends on the reader.
    pub fn operand(&mut self, e: &Expr) {
        if matches!(e, Expr::And(_) | Expr::Or(_)) {
            self.out.push('(');
            self.expr(e);
            self.out.push(')');
        } else {
            self.expr(e);
        }
    }

    pub fn expr(&mut self, e: &Expr) {
        let d = self.dialect;
        match e {
            Expr::Column(alias, name) => {
                self.push(alias);
                self.out.push('.');
                self.ident(name);
            }
            Expr::Name(name) => self.ident(name),
            Expr::Str(s) => d.string_literal(&mut self.out, s),
            Expr::Int(i) => {
                let _ = write!(self.out, "{i}");
            }
            Expr::Float(f) => d.float_literal(&mut self.out, *f),
            Expr::Bool(b) => self.push(if *b { "TRUE" } else { "FALSE" }),
            Expr::Null => self.push("NULL"),
            Expr::Time(t) => self.time(*t),
            Expr::Day(day) => self.day(*day),
            Expr::Call(f, args) => d.call(self, *f, args),
            Expr::CountStar => self.push("COUNT(*)"),
            Expr::Agg {
                func,
                distinct,
                arg,
            } => {
                self.push(d.aggregate_name(*func));
                self.push(if *distinct { "(DISTINCT " } else { "(" });
                self.expr(arg);
                self.out.push(')');
            }
            Expr::Cast { expr, ty, safe } => d.cast(self, expr, *ty, *safe),
            Expr::Entry(alias, field) => d.entry_field(self, alias, *field),
            Expr::Element(alias) => d.element(self, alias),
            Expr::Window(win) => self.window(win),
            Expr::Concat(parts) => {
                self.out.push('(');
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        self.push(" || ");
                    }
                    self.operand(p);
                }
                self.out.push(')');
            }
            Expr::AddSeconds(t, secs) => d.add_seconds(self, t, *secs),
            Expr::SecondsBetween(from, to) => d.seconds_between(self, from, to),
            Expr::TypedNull(ty) => d.typed_null(self, *ty),
            Expr::EmptyArray(ty) => d.empty_array(self, *ty),
            Expr::KeyValues(entries) => d.key_values(self, entries),
            _ => self.logic(e),
        }
    }

    /// Comparisons, connectives, null tests, IN and EXISTS.
    fn logic(&mut self, e: &Expr) {
        match e {
            Expr::Binary(l, op, r) => {
                let d = self.dialect;
                d.compare(self, l, *op, r)
            }
            Expr::And(items) | Expr::Or(items) => {
                let kw = if matches!(e, Expr::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        self.push(kw);
                    }
                    self.operand(item);
                }
            }
            Expr::Not(inner) => {
                self.push("NOT ");
                match **inner {
                    Expr::Call(..) | Expr::Exists(_) | Expr::Column(..) => self.expr(inner),
                    _ => {
                        self.out.push('(');
                        self.expr(inner);
                        self.out.push(')');
                    }
                }
            }
            Expr::IsNull(inner) => self.postfix(inner, " IS NULL"),
            Expr::IsNotNull(inner) => self.postfix(inner, " IS NOT NULL"),
            Expr::IsTrue(inner) => self.postfix(inner, " IS TRUE"),
            Expr::IsFalse(inner) => self.postfix(inner, " IS FALSE"),
            Expr::InList(inner, items) => {
                let d = self.dialect;
                d.in_list(self, inner, items)
            }
            Expr::InQuery(inner, q) => {
                self.operand(inner);
                self.push(" IN ");
                self.query_block(q);
            }
            Expr::Exists(q) => {
                self.push("EXISTS ");
                self.query_block(q);
            }
            // `expr` handles every other variant before calling here.
            other => self.fail(CoreError::Argument(format!(
                "cannot render {other:?} as a condition"
            ))),
        }
    }

    /// `l op r`, the default [`Dialect::compare`].
    pub fn compare_plain(&mut self, l: &Expr, op: BinOp, r: &Expr) {
        self.operand(l);
        self.push(match op {
            BinOp::Eq => " = ",
            BinOp::NotEq => " != ",
            BinOp::Lt => " < ",
            BinOp::LtEq => " <= ",
            BinOp::Gt => " > ",
            BinOp::GtEq => " >= ",
        });
        self.operand(r);
    }

    /// `e IN (items)`, the default [`Dialect::in_list`].
    pub fn in_list_plain(&mut self, e: &Expr, items: &[Expr]) {
        self.operand(e);
        self.push(" IN (");
        self.list(items);
        self.out.push(')');
    }

    /// `f(args) OVER (PARTITION BY .. ORDER BY .. [ROWS ..])`.
    fn window(&mut self, win: &Window) {
        let d = self.dialect;
        self.call_plain(d.window_func_name(win.func), &win.args);
        self.push(" OVER (");
        let mut space = false;
        if !win.partition_by.is_empty() {
            self.push("PARTITION BY ");
            self.list(&win.partition_by);
            space = true;
        }
        if !win.order_by.is_empty() {
            if space {
                self.push(" ");
            }
            self.push("ORDER BY ");
            for (i, key) in win.order_by.iter().enumerate() {
                if i > 0 {
                    self.push(", ");
                }
                d.order_key(self, key);
            }
            space = true;
        }
        if win.running {
            if space {
                self.push(" ");
            }
            self.push("ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW");
        }
        self.out.push(')');
    }

    fn postfix(&mut self, inner: &Expr, suffix: &str) {
        self.operand(inner);
        self.push(suffix);
    }

    /// Records the first error; [`Writer::finish`] returns it.
    pub fn fail(&mut self, e: CoreError) {
        if self.error.is_none() {
            self.error = Some(e);
        }
    }

    fn time(&mut self, t: crate::time::TimeRef) {
        match self.clock {
            Clock::Placeholders => self.push(&t.placeholder()),
            Clock::At { tz, now } => match t.resolve(&tz, now) {
                Some(v) if self.dialect.instant_in_range(v) => {
                    self.dialect.timestamp_literal(&mut self.out, v)
                }
                _ => self.fail(crate::time::out_of_range(&t.placeholder(), now)),
            },
        }
    }

    fn day(&mut self, day: crate::time::DayRef) {
        let resolved = match (self.clock, day) {
            (_, crate::time::DayRef::Fixed(d)) => Some(d),
            (Clock::Placeholders, _) => return self.push(&day.placeholder()),
            (Clock::At { tz, now }, _) => day.resolve(&tz, now),
        };
        match resolved {
            Some(d) if crate::time::day_in_range(d) => self.dialect.date_literal(&mut self.out, d),
            _ => {
                let now = match self.clock {
                    Clock::At { now, .. } => now,
                    Clock::Placeholders => chrono::DateTime::<chrono::Utc>::MIN_UTC,
                };
                self.fail(crate::time::out_of_range(&day.placeholder(), now))
            }
        }
    }
}
