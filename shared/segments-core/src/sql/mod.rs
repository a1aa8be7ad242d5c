//! A small SQL AST ([`ast`]), the [`Dialect`] seam and one renderer. Quoting,
//! escaping and function names live in the dialects only: no other module
//! formats an identifier or a literal by hand.

pub mod ast;
pub mod bigquery;
pub mod dialect;
pub mod postgres;
pub mod render;

pub use ast::*;
pub use dialect::{Dialect, DialectKind};
pub use render::{Writer, render_query, render_script, render_statement};

use crate::error::CoreError;
use crate::time::Clock;
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

/// Where a warehouse keeps an account's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Namespace {
    /// BigQuery: a project and a dataset.
    ProjectDataset { project: String, dataset: Ident },
    /// A database schema (Postgres).
    Schema(Ident),
}

/// Where statements read and write, and in which dialect: a checked
/// namespace in one warehouse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    dialect: DialectKind,
    namespace: Namespace,
}

impl Target {
    /// A BigQuery project and dataset.
    pub fn new(project: &str, dataset: &str) -> Result<Target, String> {
        if !is_project_id(project) {
            return Err(format!("{project:?} is not a valid BigQuery project id"));
        }
        if !is_dataset_id(dataset) {
            return Err(format!(
                "{dataset:?} is not a valid BigQuery dataset name (letters, digits and _, at most 1024)"
            ));
        }
        // Always rendered inside quotes, so a leading digit is safe.
        let dataset = Ident(Cow::Owned(dataset.to_string()));
        Ok(Target {
            dialect: DialectKind::BigQuery,
            namespace: Namespace::ProjectDataset {
                project: project.to_string(),
                dataset,
            },
        })
    }

    /// The target of `dialect` for an account's `dataset` (BigQuery, with
    /// `project`) or schema (warehouses without projects, which ignore it).
    pub fn for_dialect(
        dialect: DialectKind,
        project: &str,
        dataset: &str,
    ) -> Result<Target, String> {
        match dialect {
            DialectKind::BigQuery => Target::new(project, dataset),
            DialectKind::Postgres => Target::schema(dialect, dataset),
        }
    }

    /// A schema of a warehouse that has no projects; `schema` follows
    /// [`is_dataset_id`] (it is always quoted).
    pub fn schema(dialect: DialectKind, schema: &str) -> Result<Target, String> {
        if !is_dataset_id(schema) {
            return Err(format!(
                "{schema:?} is not a valid schema name (letters, digits and _)"
            ));
        }
        dialect.dialect().check_identifier(schema)?;
        Ok(Target {
            dialect,
            namespace: Namespace::Schema(Ident(Cow::Owned(schema.to_string()))),
        })
    }

    /// A table by a name the caller built from checked parts (ids, catalog names).
    pub fn checked_table(&self, name: &str) -> Option<TableRef> {
        self.dialect().check_identifier(name).ok()?;
        Ident::new(name).map(|table| TableRef::Warehouse {
            target: self.clone(),
            table,
        })
    }

    pub fn table(&self, name: &str) -> TableRef {
        TableRef::Warehouse {
            target: self.clone(),
            table: Ident::trusted(name),
        }
    }

    pub fn dialect_kind(&self) -> DialectKind {
        self.dialect
    }

    pub fn dialect(&self) -> &'static dyn Dialect {
        self.dialect.dialect()
    }

    pub fn namespace(&self) -> &Namespace {
        &self.namespace
    }

    /// The BigQuery project; empty for warehouses without projects.
    pub fn project(&self) -> &str {
        match &self.namespace {
            Namespace::ProjectDataset { project, .. } => project,
            Namespace::Schema(_) => "",
        }
    }

    /// The dataset (BigQuery) or schema holding the account's tables.
    pub fn dataset(&self) -> &str {
        match &self.namespace {
            Namespace::ProjectDataset { dataset, .. } => dataset.as_str(),
            Namespace::Schema(schema) => schema.as_str(),
        }
    }

    /// Renders a statement in this target's dialect.
    pub fn render(&self, statement: &Statement, clock: Clock) -> Result<String, CoreError> {
        render_statement(self.dialect(), statement, clock)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TableRef {
    /// A table of a warehouse; it knows its target, so it renders in its dialect.
    Warehouse {
        target: Target,
        table: Ident,
    },
    Cte(Ident),
}

impl TableRef {
    /// The dialect of the table's warehouse.
    pub fn dialect(&self) -> &'static dyn Dialect {
        match self {
            TableRef::Warehouse { target, .. } => target.dialect(),
            TableRef::Cte(_) => DialectKind::default().dialect(),
        }
    }
}

/// `DROP TABLE IF EXISTS <table>`.
pub fn drop_table(table: &TableRef) -> String {
    let s = Statement::DropTableIfExists(table.clone());
    // Without time references rendering cannot fail.
    render_statement(table.dialect(), &s, Clock::Placeholders).unwrap_or_default()
}

/// A string literal of the default dialect (BigQuery).
pub fn string_literal(s: &str) -> String {
    let mut out = String::new();
    DialectKind::default().dialect().string_literal(&mut out, s);
    out
}
