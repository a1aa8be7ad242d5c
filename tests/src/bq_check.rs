//! Checks that a statement is BigQuery Standard SQL: it parses with sqlparser's
//! BigQuery dialect, and passes the rules sqlparser does not enforce but
//! BigQuery does (explicit DISTINCT/ALL on set operations, parentheses where
//! different set operations meet), and ours (no `SELECT *`: every query reads
//! only the columns it needs). Never send sqlparser's re-printed SQL
//! anywhere: it loses backslashes.

use sqlparser::ast::{SelectItem, SetExpr, SetQuantifier, Statement, Visit, Visitor};
use sqlparser::dialect::BigQueryDialect;
use sqlparser::parser::Parser;
use std::ops::ControlFlow;

pub fn parse(sql: &str) -> Result<Vec<Statement>, String> {
    Parser::parse_sql(&BigQueryDialect {}, sql).map_err(|e| format!("{e}\n--- SQL ---\n{sql}"))
}

/// Parses exactly one statement and applies our rules to it.
pub fn check(sql: &str) -> Result<Statement, String> {
    let mut stmts = parse(sql)?;
    if stmts.len() != 1 {
        return Err(format!("expected one statement, got {}", stmts.len()));
    }
    let stmt = stmts.remove(0);
    let mut rules = Rules(Vec::new());
    let _ = stmt.visit(&mut rules);
    if rules.0.is_empty() {
        Ok(stmt)
    } else {
        Err(format!("{}\n--- SQL ---\n{sql}", rules.0.join("\n")))
    }
}

struct Rules(Vec<String>);

impl Rules {
    fn set_expr(&mut self, e: &SetExpr) {
        if let SetExpr::Select(sel) = e
            && sel.projection.iter().any(|p| {
                matches!(
                    p,
                    SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
                )
            })
        {
            self.0
                .push("SELECT * reads every column; name the columns".into());
        }
        if let SetExpr::SetOperation {
            op,
            set_quantifier,
            left,
            right,
        } = e
        {
            if matches!(set_quantifier, SetQuantifier::None) {
                self.0.push(format!(
                    "{op} without DISTINCT or ALL (BigQuery requires one)"
                ));
            }
            for side in [left, right] {
                if let SetExpr::SetOperation {
                    op: inner,
                    set_quantifier: q,
                    ..
                } = side.as_ref()
                    && (inner != op || q != set_quantifier)
                {
                    self.0.push(format!(
                        "{inner} {q} meets {op} {set_quantifier} without parentheses"
                    ));
                }
                self.set_expr(side);
            }
        }
    }
}

impl Visitor for Rules {
    type Break = ();

    fn pre_visit_query(&mut self, query: &sqlparser::ast::Query) -> ControlFlow<()> {
        self.set_expr(&query.body);
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_bigquery_refuses() {
        assert!(check("SELECT 1 UNION SELECT 2").is_err());
        assert!(check("SELECT 1 UNION ALL SELECT 2 EXCEPT DISTINCT SELECT 3").is_err());
        assert!(check("(SELECT 1 UNION ALL SELECT 2) EXCEPT DISTINCT (SELECT 3)").is_ok());
        assert!(check("SELECT 1; SELECT 2").is_err());
        assert!(check("SELEC 1").is_err());
        assert!(check("SELECT * FROM t").is_err());
        assert!(check("SELECT COUNT(*) FROM t").is_ok());
    }
}
