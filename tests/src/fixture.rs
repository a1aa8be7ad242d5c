//! The fixture warehouse as data. `tests/fixtures/warehouse.sql` (BigQuery SQL,
//! loaded as-is on the emulator) is the one source of truth; this module parses
//! it (sqlparser, BigQuery dialect) into typed tables and rows so the same rows
//! can be loaded into any other engine (Postgres: [`postgres_statements`]).
//! A statement this reader does not understand is an error, never skipped.

use chrono::{DateTime, Utc};
use sqlparser::ast::{self, Expr, SetExpr, Statement, TableObject, Value};
use sqlparser::dialect::BigQueryDialect;
use sqlparser::parser::Parser;

/// Column types of the reference warehouse (SPEC §5), as BigQuery spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColType {
    Text,
    Int,
    Float,
    Bool,
    Timestamp,
    TextArray,
    /// `ARRAY<STRUCT<key STRING, value STRING>>`
    KeyValues,
}

impl ColType {
    fn from_bigquery(t: &str) -> Result<ColType, String> {
        Ok(match t {
            "STRING" => ColType::Text,
            "INT64" => ColType::Int,
            "FLOAT64" => ColType::Float,
            "BOOL" => ColType::Bool,
            "TIMESTAMP" => ColType::Timestamp,
            "ARRAY<STRING>" => ColType::TextArray,
            "ARRAY<STRUCT<key STRING, value STRING>>" => ColType::KeyValues,
            other => return Err(format!("fixture column type {other} is not supported")),
        })
    }

    /// The Postgres type of SPEC §9.
    pub fn postgres(self) -> &'static str {
        match self {
            ColType::Text => "text",
            ColType::Int => "bigint",
            ColType::Float => "double precision",
            ColType::Bool => "boolean",
            ColType::Timestamp => "timestamptz",
            ColType::TextArray => "text[]",
            ColType::KeyValues => "jsonb",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Timestamp(DateTime<Utc>),
    TextArray(Vec<String>),
    KeyValues(Vec<(String, Option<String>)>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum FixtureStatement {
    Create {
        table: String,
        columns: Vec<(String, ColType)>,
    },
    Insert {
        table: String,
        columns: Vec<String>,
        rows: Vec<Vec<Cell>>,
    },
}

/// Parses a script as [`crate::warehouse::Warehouse::run_script`] runs it:
/// statements separated by lines holding only `;`, `--` comment lines,
/// `{{dataset}}.` before each table name.
pub fn parse_bigquery_script(text: &str) -> Result<Vec<FixtureStatement>, String> {
    let mut types: std::collections::HashMap<String, Vec<(String, ColType)>> = Default::default();
    let mut out = Vec::new();
    for chunk in text.split("\n;\n") {
        let body: String = chunk
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        if body.trim().is_empty() {
            continue;
        }
        let body = body.replace("{{dataset}}.", "");
        let stmts = Parser::parse_sql(&BigQueryDialect {}, &body)
            .map_err(|e| format!("fixture statement does not parse: {e}\n{body}"))?;
        for stmt in stmts {
            let s = statement(&stmt, &mut types)?;
            out.push(s);
        }
    }
    Ok(out)
}

/// Parses the fixture warehouse file.
pub fn warehouse() -> Vec<FixtureStatement> {
    let path = crate::repo_root().join("tests/fixtures/warehouse.sql");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse_bigquery_script(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn statement(
    stmt: &Statement,
    types: &mut std::collections::HashMap<String, Vec<(String, ColType)>>,
) -> Result<FixtureStatement, String> {
    match stmt {
        Statement::CreateTable(ct) => {
            let table = ct.name.to_string();
            let columns = ct
                .columns
                .iter()
                .map(|c| {
                    Ok((
                        c.name.value.clone(),
                        ColType::from_bigquery(&c.data_type.to_string())?,
                    ))
                })
                .collect::<Result<Vec<_>, String>>()?;
            types.insert(table.clone(), columns.clone());
            Ok(FixtureStatement::Create { table, columns })
        }
        Statement::Insert(ins) => {
            let TableObject::TableName(name) = &ins.table else {
                return Err(format!("INSERT into a table function: {stmt}"));
            };
            let table = name.to_string();
            let table_types = types
                .get(&table)
                .cloned()
                .or_else(|| reference_types(&table))
                .ok_or_else(|| format!("INSERT into {table} before its CREATE TABLE"))?;
            let columns: Vec<String> = ins.columns.iter().map(|c| c.to_string()).collect();
            let col_types = columns
                .iter()
                .map(|c| {
                    table_types
                        .iter()
                        .find(|(n, _)| n == c)
                        .map(|(_, t)| *t)
                        .ok_or_else(|| format!("{table} has no column {c}"))
                })
                .collect::<Result<Vec<_>, String>>()?;
            let Some(SetExpr::Values(values)) = ins.source.as_ref().map(|q| q.body.as_ref()) else {
                return Err(format!("only INSERT ... VALUES is supported: {stmt}"));
            };
            let rows = values
                .rows
                .iter()
                .map(|row| {
                    if row.content.len() != col_types.len() {
                        return Err(format!(
                            "a row of {table} has {} values for {} columns",
                            row.content.len(),
                            col_types.len()
                        ));
                    }
                    row.content
                        .iter()
                        .zip(&col_types)
                        .map(|(e, t)| cell(e, *t))
                        .collect::<Result<Vec<_>, String>>()
                })
                .collect::<Result<Vec<_>, String>>()?;
            Ok(FixtureStatement::Insert {
                table,
                columns,
                rows,
            })
        }
        other => Err(format!("fixture statement not supported: {other}")),
    }
}

/// The column types of a reference table, for scripts that insert into the
/// fixture warehouse without creating it (data changes in tests).
fn reference_types(table: &str) -> Option<Vec<(String, ColType)>> {
    warehouse().into_iter().find_map(|s| match s {
        FixtureStatement::Create { table: t, columns } if t == table => Some(columns),
        _ => None,
    })
}

fn text_of(e: &Expr) -> Result<Option<String>, String> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Ok(Some(s.clone())),
            Value::Null => Ok(None),
            other => Err(format!("expected a string, found {other}")),
        },
        other => Err(format!("expected a string, found {other}")),
    }
}

fn number_text(e: &Expr) -> Result<String, String> {
    match e {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => Ok(n.to_string()),
            other => Err(format!("expected a number, found {other}")),
        },
        Expr::UnaryOp {
            op: ast::UnaryOperator::Minus,
            expr,
        } => Ok(format!("-{}", number_text(expr)?)),
        other => Err(format!("expected a number, found {other}")),
    }
}

fn cell(e: &Expr, t: ColType) -> Result<Cell, String> {
    if let Expr::Value(v) = e
        && v.value == Value::Null
    {
        return Ok(Cell::Null);
    }
    Ok(match t {
        ColType::Text => Cell::Text(text_of(e)?.ok_or("NULL where text expected")?),
        ColType::Int => Cell::Int(number_text(e)?.parse().map_err(|x| format!("{e}: {x}"))?),
        ColType::Float => Cell::Float(number_text(e)?.parse().map_err(|x| format!("{e}: {x}"))?),
        ColType::Bool => match e {
            Expr::Value(v) => match v.value {
                Value::Boolean(b) => Cell::Bool(b),
                _ => return Err(format!("expected a boolean, found {e}")),
            },
            _ => return Err(format!("expected a boolean, found {e}")),
        },
        ColType::Timestamp => match e {
            Expr::TypedString(ts) if ts.data_type.to_string() == "TIMESTAMP" => {
                let s = match &ts.value.value {
                    Value::SingleQuotedString(s) => s.clone(),
                    other => return Err(format!("expected a timestamp string, found {other}")),
                };
                let at = DateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%#z")
                    .map_err(|x| format!("timestamp {s:?}: {x}"))?;
                Cell::Timestamp(at.with_timezone(&Utc))
            }
            _ => return Err(format!("expected TIMESTAMP '...', found {e}")),
        },
        ColType::TextArray => match e {
            Expr::Array(a) => Cell::TextArray(
                a.elem
                    .iter()
                    .map(|x| text_of(x)?.ok_or_else(|| "NULL inside an array".to_string()))
                    .collect::<Result<_, _>>()?,
            ),
            _ => return Err(format!("expected an array, found {e}")),
        },
        ColType::KeyValues => match e {
            Expr::Array(a) => {
                Cell::KeyValues(a.elem.iter().map(key_value).collect::<Result<_, _>>()?)
            }
            _ => return Err(format!("expected an array of STRUCTs, found {e}")),
        },
    })
}

/// `STRUCT('k' AS key, 'v' AS value)`
fn key_value(e: &Expr) -> Result<(String, Option<String>), String> {
    let Expr::Struct { values, .. } = e else {
        return Err(format!(
            "expected STRUCT(... AS key, ... AS value), found {e}"
        ));
    };
    let mut key = None;
    let mut value = None;
    for v in values {
        match v {
            Expr::Named { expr, name } if name.value == "key" => key = text_of(expr)?,
            Expr::Named { expr, name } if name.value == "value" => value = Some(text_of(expr)?),
            _ => return Err(format!("unexpected STRUCT field {v}")),
        }
    }
    match (key, value) {
        (Some(k), Some(v)) => Ok((k, v)),
        _ => Err(format!("STRUCT needs a non-NULL key and a value: {e}")),
    }
}

/// The same rows with every timestamp moved by `by` (a demo moves the
/// fixture's 2024 into the present, whole days so day boundaries stay).
pub fn shifted(stmts: &[FixtureStatement], by: chrono::Duration) -> Vec<FixtureStatement> {
    stmts
        .iter()
        .map(|s| match s {
            FixtureStatement::Insert {
                table,
                columns,
                rows,
            } => FixtureStatement::Insert {
                table: table.clone(),
                columns: columns.clone(),
                rows: rows
                    .iter()
                    .map(|r| {
                        r.iter()
                            .map(|c| match c {
                                Cell::Timestamp(t) => Cell::Timestamp(*t + by),
                                other => other.clone(),
                            })
                            .collect()
                    })
                    .collect(),
            },
            other => other.clone(),
        })
        .collect()
}

/// A Postgres text literal under `standard_conforming_strings = on`.
fn pg_text(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn pg_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// One cell as a Postgres literal of its column's type (SPEC §9).
pub fn postgres_literal(c: &Cell) -> String {
    match c {
        Cell::Null => "NULL".into(),
        Cell::Text(s) => pg_text(s),
        Cell::Int(i) => i.to_string(),
        Cell::Float(f) => format!("{f:?}::double precision"),
        Cell::Bool(b) => if *b { "TRUE" } else { "FALSE" }.into(),
        Cell::Timestamp(t) => format!(
            "{}::timestamptz",
            pg_text(&t.format("%Y-%m-%d %H:%M:%S%.6f+00:00").to_string())
        ),
        Cell::TextArray(items) => format!(
            "ARRAY[{}]::text[]",
            items
                .iter()
                .map(|s| pg_text(s))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Cell::KeyValues(kvs) => {
            let json = serde_json::Value::Array(
                kvs.iter()
                    .map(|(k, v)| serde_json::json!({"key": k, "value": v}))
                    .collect(),
            );
            format!("{}::jsonb", pg_text(&json.to_string()))
        }
    }
}

/// The statements that load `stmts` into schema `schema` of a Postgres
/// database, one statement per string.
pub fn postgres_statements(stmts: &[FixtureStatement], schema: &str) -> Vec<String> {
    let q = |t: &str| format!("{}.{}", pg_ident(schema), pg_ident(t));
    stmts
        .iter()
        .map(|s| match s {
            FixtureStatement::Create { table, columns } => format!(
                "CREATE TABLE {} ({})",
                q(table),
                columns
                    .iter()
                    .map(|(n, t)| format!("{} {}", pg_ident(n), t.postgres()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            FixtureStatement::Insert {
                table,
                columns,
                rows,
            } => format!(
                "INSERT INTO {} ({}) VALUES\n{}",
                q(table),
                columns
                    .iter()
                    .map(|c| pg_ident(c))
                    .collect::<Vec<_>>()
                    .join(", "),
                rows.iter()
                    .map(|r| format!(
                        "({})",
                        r.iter()
                            .map(postgres_literal)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                    .collect::<Vec<_>>()
                    .join(",\n")
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_table_of_the_fixture_warehouse() {
        let stmts = warehouse();
        let creates = stmts
            .iter()
            .filter(|s| matches!(s, FixtureStatement::Create { .. }))
            .count();
        assert_eq!(creates, 20, "SPEC §5 has 20 tables");
        // BigQuery's escapes are decoded: '/it\'s\\path' is /it's\path.
        let s3_landing = stmts.iter().find_map(|s| match s {
            FixtureStatement::Insert {
                table,
                columns,
                rows,
            } if table == "sessions" => {
                let i = columns.iter().position(|c| c == "landing_page")?;
                rows.iter()
                    .find(|r| r[0] == Cell::Text("s3".into()))
                    .map(|r| r[i].clone())
            }
            _ => None,
        });
        assert_eq!(s3_landing, Some(Cell::Text("/it's\\path".into())));
    }

    #[test]
    fn postgres_literals_follow_standard_conforming_strings() {
        assert_eq!(
            postgres_literal(&Cell::Text("it's \\x".into())),
            "'it''s \\x'"
        );
        assert_eq!(
            postgres_literal(&Cell::KeyValues(vec![("k".into(), None)])),
            "'[{\"key\":\"k\",\"value\":null}]'::jsonb"
        );
    }
}
