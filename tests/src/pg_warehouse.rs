//! The fixture warehouse in the local Postgres (SPEC §9): schema D holds the
//! tables of SPEC §5 with Postgres types, loaded from the same
//! `tests/fixtures/warehouse.sql` the emulator runs ([`crate::fixture`]).
//! Each warehouse is a new schema; it is dropped when the value is dropped.

use crate::fixture::{self, FixtureStatement};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub async fn connect() -> Client {
    let url = database_url();
    let (client, conn) = tokio_postgres::connect(&url, NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!("cannot connect to Postgres at {url} ({e}); start the local stack with tests/stack/up.sh")
        });
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

pub struct PgWarehouse {
    pub client: Client,
    /// The schema (the `--dataset` of the postgres dialect).
    pub schema: String,
}

impl PgWarehouse {
    /// A new, empty schema.
    pub async fn empty(prefix: &str) -> PgWarehouse {
        let schema = crate::warehouse::unique_dataset(prefix).to_lowercase();
        let client = connect().await;
        client
            .batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
            .await
            .unwrap_or_else(|e| panic!("CREATE SCHEMA {schema}: {e}"));
        PgWarehouse { client, schema }
    }

    /// A new schema holding the fixture warehouse.
    pub async fn fixture(prefix: &str) -> PgWarehouse {
        let w = PgWarehouse::empty(prefix).await;
        w.load(&fixture::warehouse()).await;
        w
    }

    /// The fixture warehouse in a new schema of the caller's choosing (an account's).
    pub async fn fixture_in(schema: &str) -> PgWarehouse {
        let client = connect().await;
        client
            .batch_execute(&format!("CREATE SCHEMA \"{schema}\""))
            .await
            .unwrap_or_else(|e| panic!("CREATE SCHEMA {schema}: {e}"));
        let w = PgWarehouse {
            client,
            schema: schema.to_string(),
        };
        w.load(&fixture::warehouse()).await;
        w
    }

    pub async fn load(&self, stmts: &[FixtureStatement]) {
        for sql in fixture::postgres_statements(stmts, &self.schema) {
            self.client
                .batch_execute(&sql)
                .await
                .unwrap_or_else(|e| panic!("fixture statement failed: {}\n{sql}", describe(&e)));
        }
    }

    /// Runs a fixture-style BigQuery script (e.g. a data change a test makes on
    /// both engines), translated through [`crate::fixture`].
    pub async fn run_bigquery_script(&self, text: &str) {
        let stmts = fixture::parse_bigquery_script(text).unwrap_or_else(|e| panic!("{e}"));
        self.load(&stmts).await;
    }

    /// Runs a string of statements as one simple query (one implicit transaction).
    pub async fn run(&self, sql: &str) -> Result<(), String> {
        self.client
            .batch_execute(sql)
            .await
            .map_err(|e| describe(&e))
    }

    /// The sorted values of the first column (as text) of the last statement.
    pub async fn column(&self, sql: &str) -> Result<Vec<String>, String> {
        let msgs = self
            .client
            .simple_query(sql)
            .await
            .map_err(|e| describe(&e))?;
        let mut out: Vec<String> = msgs
            .iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => Some(
                    r.get(0)
                        .map(str::to_string)
                        .unwrap_or_else(|| "<NULL>".into()),
                ),
                _ => None,
            })
            .collect();
        out.sort();
        Ok(out)
    }

    pub fn table(&self, name: &str) -> String {
        format!("\"{}\".\"{}\"", self.schema, name)
    }

    /// Drops this warehouse's schema (one this test created, never another).
    pub async fn cleanup(self) {
        let _ = self
            .client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                self.schema
            ))
            .await;
    }

    /// The sorted member ids of a segment table.
    pub async fn members(&self, table: &str) -> Result<Vec<String>, String> {
        self.column(&format!("SELECT object_id FROM {}", self.table(table)))
            .await
    }
}

/// The server's message, not tokio-postgres's bare "db error".
pub fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!(
            "{} ({}){}",
            db.message(),
            db.code().code(),
            db.position()
                .map(|p| format!(" at {p:?}"))
                .unwrap_or_default()
        ),
        None => e.to_string(),
    }
}

/// Drops schemas and roles a test created, when dropped, even if the test
/// panicked first: a guard for objects outside a test's own schema.
pub struct Cleanup {
    pub schemas: Vec<String>,
    pub roles: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut sql = String::new();
        for s in &self.schemas {
            sql.push_str(&format!("DROP SCHEMA IF EXISTS \"{s}\" CASCADE;\n"));
        }
        for r in &self.roles {
            sql.push_str(&format!(
                "DO $c$ BEGIN IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{r}') THEN \
                 EXECUTE 'DROP OWNED BY \"{r}\"'; EXECUTE 'DROP ROLE \"{r}\"'; END IF; END $c$;\n"
            ));
        }
        // Its own thread and runtime: Drop may run inside (or after) a test's runtime.
        let _ = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async {
                if let Ok((c, conn)) = tokio_postgres::connect(&database_url(), NoTls).await {
                    tokio::spawn(async move {
                        let _ = conn.await;
                    });
                    let _ = c.batch_execute(&sql).await;
                }
            });
        })
        .join();
    }
}
