//! The warehouse on PostgreSQL (SPEC §9; docs/postgres-warehouse.md).
//!
//! A "job" is a row of `segments_ctl.jobs` plus one call of the
//! `segments_ctl.run_job` procedure on a connection of its own. The procedure
//! records RUNNING (with its backend pid), runs the job's SQL as the account's
//! role under `statement_timeout`, and records DONE with the error, if any, in
//! the same session: the state is right even if the caller never reads the
//! answer (a Lambda frozen after it returned). Status is a read of the row;
//! cancel is `pg_cancel_backend` of the recorded pid; Postgres bills no bytes,
//! so bytes are `None`. The job machinery and each account's role are set up
//! by the warehouse's owner ([`install`], [`provision_account`]).

use crate::error::{InfraError, Result};
use crate::ports::{JobStatus, QueryJob, Warehouse};
use crate::postgres::{PoolSettings, pg_error, pool, pool_error};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use segments_core::sql::is_identifier;
use serde_json::Value;
use std::time::Duration;

/// The setup the warehouse's owner runs once ([`install`]).
pub const SETUP_SQL: &str = include_str!("pg_warehouse_setup.sql");

/// The role an account's jobs run as: the schema's name + `_segments`.
pub fn account_role(schema: &str) -> String {
    format!("{schema}_segments")
}

/// Postgres's longest identifier (longer ones are silently truncated).
const MAX_IDENT: usize = 63;

fn checked(what: &str, name: &str) -> Result<String> {
    if is_identifier(name) && name.len() <= MAX_IDENT {
        Ok(format!("\"{name}\""))
    } else {
        Err(InfraError::Config(format!(
            "{what} {name:?} is not a Postgres identifier (letters, digits, _; at most {MAX_IDENT} bytes)"
        )))
    }
}

/// A text literal under `standard_conforming_strings = on` (job ids, role names).
fn text_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn warehouse_error(e: &tokio_postgres::Error) -> InfraError {
    InfraError::Warehouse(pg_error(e))
}

async fn admin_client(admin_url: &str) -> Result<deadpool_postgres::Object> {
    let p = pool(admin_url, PoolSettings::new(1), "the warehouse admin URL")?;
    p.get()
        .await
        .map_err(|e| InfraError::Warehouse(pool_error(&e)))
}

/// Creates the job machinery (schema `segments_ctl`) and lets `service_role`
/// (the functions' login) use it. Run by the warehouse's owner; repeatable.
pub async fn install(admin_url: &str, service_role: &str) -> Result<()> {
    let service = checked("service role", service_role)?;
    let c = admin_client(admin_url).await?;
    // Concurrent installs (tests) would race on CREATE ... IF NOT EXISTS.
    let sql = format!(
        "SELECT pg_advisory_xact_lock(99037448);\n{}",
        SETUP_SQL.replace("{{service}}", &service)
    );
    c.batch_execute(&format!("BEGIN;\n{sql};\nCOMMIT"))
        .await
        .map_err(|e| warehouse_error(&e))
}

/// Least privilege for one account (seed 003): a NOLOGIN role that can read
/// the tables of `schema` and create tables there (its segment and report
/// tables, which it then owns and replaces), and nothing else; the functions'
/// `service_role` may switch to it. Run by the warehouse's owner after it
/// created the schema and its source tables; repeatable.
pub async fn provision_account(admin_url: &str, schema: &str, service_role: &str) -> Result<()> {
    let schema_q = checked("schema", schema)?;
    let role_name = account_role(schema);
    let role = checked("account role", &role_name)?;
    let service = checked("service role", service_role)?;
    let c = admin_client(admin_url).await?;
    let sql = format!(
        "BEGIN;
SELECT pg_advisory_xact_lock(99037448);
DO $p$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = {lit}) THEN
    CREATE ROLE {role} NOLOGIN NOINHERIT;
  END IF;
END $p$;
REVOKE ALL ON SCHEMA {schema_q} FROM PUBLIC;
GRANT USAGE, CREATE ON SCHEMA {schema_q} TO {role};
GRANT SELECT ON ALL TABLES IN SCHEMA {schema_q} TO {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema_q} GRANT SELECT ON TABLES TO {role};
GRANT {role} TO {service};
COMMIT",
        lit = text_literal(&role_name),
    );
    c.batch_execute(&sql).await.map_err(|e| warehouse_error(&e))
}

#[derive(Debug, Clone)]
pub struct PgWarehouseConfig {
    /// The functions' login to the warehouse (`WAREHOUSE_URL`).
    pub url: String,
    /// The longest a job may run (`statement_timeout`).
    pub statement_timeout: Duration,
    /// How many jobs one container may run at once.
    pub max_running: usize,
}

#[derive(Clone)]
pub struct PgWarehouse {
    /// Status, cancel, rows.
    control: Pool,
    /// One connection per running job.
    runners: Pool,
    statement_timeout: Duration,
}

const JOB_COLUMNS: &str = "job_id, state, error_reason, error_message, started_at, ended_at, \
    backend_pid IS NOT NULL AND state = 'RUNNING' AND NOT EXISTS (\
      SELECT 1 FROM pg_stat_activity a WHERE a.pid = j.backend_pid \
      AND a.query_start IS NOT DISTINCT FROM j.backend_query_start AND a.state <> 'idle')";

fn job_status(r: &tokio_postgres::Row) -> JobStatus {
    let lost: bool = r.get(6);
    let state: String = r.get(1);
    if lost {
        // RUNNING, but its session no longer runs it: it ended without recording why.
        return JobStatus {
            job_id: r.get(0),
            state: "DONE".into(),
            error_reason: Some("backendError".into()),
            error_message: Some("the job's session ended before the job finished".into()),
            total_bytes_billed: None,
            started_at: r.get(4),
            ended_at: None,
        };
    }
    JobStatus {
        job_id: r.get(0),
        state,
        error_reason: r.get(2),
        error_message: r.get(3),
        total_bytes_billed: None,
        started_at: r.get::<_, Option<DateTime<Utc>>>(4),
        ended_at: r.get::<_, Option<DateTime<Utc>>>(5),
    }
}

impl PgWarehouse {
    pub fn connect(cfg: &PgWarehouseConfig) -> Result<PgWarehouse> {
        Ok(PgWarehouse {
            control: pool(&cfg.url, PoolSettings::new(2), "WAREHOUSE_URL")?,
            // A job's connection: its own statement_timeout is set before each run.
            runners: pool(
                &cfg.url,
                PoolSettings {
                    statement_timeout_ms: 0,
                    ..PoolSettings::new(cfg.max_running)
                },
                "WAREHOUSE_URL",
            )?,
            statement_timeout: cfg.statement_timeout,
        })
    }

    async fn control(&self) -> Result<deadpool_postgres::Object> {
        self.control
            .get()
            .await
            .map_err(|e| InfraError::Warehouse(pool_error(&e)))
    }

    /// Starts `run_job` on a connection of its own and returns once the job
    /// left PENDING (or after `settle`), so a caller that freezes right after
    /// still leaves the job running on the server.
    async fn start(&self, job_id: &str, settle: Duration) -> Result<()> {
        let runner = self
            .runners
            .get()
            .await
            .map_err(|e| InfraError::Warehouse(pool_error(&e)))?;
        let timeout = format!(
            "SET statement_timeout = {}",
            self.statement_timeout.as_millis().max(1)
        );
        runner
            .batch_execute(&timeout)
            .await
            .map_err(|e| warehouse_error(&e))?;
        // CALL alone in its message: the procedure commits inside, which a
        // multi-statement message (one implicit transaction) would forbid.
        let call = format!("CALL segments_ctl.run_job({})", text_literal(job_id));
        let id = job_id.to_string();
        tokio::spawn(async move {
            if let Err(e) = runner.batch_execute(&call).await {
                // The procedure records its own end; this is a lost connection or the like.
                tracing::warn!(jobId = %id, error = %pg_error(&e), "postgres job call ended abnormally");
            }
        });
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(5);
        while started.elapsed() < settle {
            if self.status(job_id).await?.state != "PENDING" {
                break;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(200));
        }
        Ok(())
    }
}

/// The role of the schema the job works in.
fn run_as(job: &QueryJob) -> Result<String> {
    if job.dataset.is_empty() {
        return Err(InfraError::Config(format!(
            "job {} names no schema: a Postgres job runs as its account's role",
            job.job_id
        )));
    }
    checked("schema", &job.dataset)?;
    let role = account_role(&job.dataset);
    checked("account role", &role)?;
    Ok(role)
}

#[async_trait]
impl Warehouse for PgWarehouse {
    async fn submit(&self, job: &QueryJob) -> Result<(JobStatus, bool)> {
        let role = run_as(job)?;
        let labels: serde_json::Map<String, Value> = job
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let inserted = {
            let c = self.control().await?;
            c.execute(
                "INSERT INTO segments_ctl.jobs (job_id, run_as, sql, labels) VALUES ($1, $2, $3, $4::text::jsonb)
                 ON CONFLICT (job_id) DO NOTHING",
                &[&job.job_id, &role, &job.sql, &Value::Object(labels).to_string()],
            )
            .await
            .map_err(|e| warehouse_error(&e))?
        };
        if inserted == 0 {
            // A known job id: submitted before (a redelivered message).
            return Ok((self.status(&job.job_id).await?, true));
        }
        self.start(&job.job_id, Duration::from_secs(5)).await?;
        Ok((self.status(&job.job_id).await?, false))
    }

    async fn status(&self, job_id: &str) -> Result<JobStatus> {
        let c = self.control().await?;
        let row = c
            .query_opt(
                &format!("SELECT {JOB_COLUMNS} FROM segments_ctl.jobs j WHERE job_id = $1"),
                &[&job_id],
            )
            .await
            .map_err(|e| warehouse_error(&e))?;
        row.as_ref()
            .map(job_status)
            .ok_or_else(|| InfraError::NotFound(format!("warehouse job {job_id} does not exist")))
    }

    async fn wait(&self, job_id: &str, timeout: Duration) -> Result<JobStatus> {
        let started = tokio::time::Instant::now();
        let mut pause = Duration::from_millis(10);
        loop {
            let s = self.status(job_id).await?;
            if s.state == "DONE" || started.elapsed() >= timeout {
                return Ok(s);
            }
            tokio::time::sleep(pause.min(timeout.saturating_sub(started.elapsed()))).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    async fn cancel(&self, job_id: &str) -> Result<()> {
        let c = self.control().await?;
        // A PENDING job never starts; a RUNNING one is interrupted and records 'stopped'.
        c.execute(
            "UPDATE segments_ctl.jobs SET cancel_requested = TRUE,
                 state = CASE WHEN state = 'PENDING' THEN 'DONE' ELSE state END,
                 error_reason = CASE WHEN state = 'PENDING' THEN 'stopped' ELSE error_reason END,
                 error_message = CASE WHEN state = 'PENDING' THEN 'canceled before it started' ELSE error_message END,
                 ended_at = CASE WHEN state = 'PENDING' THEN clock_timestamp() ELSE ended_at END
             WHERE job_id = $1",
            &[&job_id],
        )
        .await
        .map_err(|e| warehouse_error(&e))?;
        c.execute(
            "SELECT pg_cancel_backend(j.backend_pid) FROM segments_ctl.jobs j
              JOIN pg_stat_activity a ON a.pid = j.backend_pid
               AND a.query_start IS NOT DISTINCT FROM j.backend_query_start
             WHERE j.job_id = $1 AND j.state = 'RUNNING'",
            &[&job_id],
        )
        .await
        .map_err(|e| warehouse_error(&e))?;
        Ok(())
    }

    async fn rows(&self, job_id: &str, _max_rows: usize) -> Result<Vec<Vec<Value>>> {
        Err(InfraError::Unsupported(format!(
            "a Postgres job ({job_id}) keeps no result rows; its SQL writes a result table"
        )))
    }

    async fn table_rows(
        &self,
        dataset: &str,
        table: &str,
        max_rows: usize,
    ) -> Result<Vec<Vec<Value>>> {
        let path = format!(
            "{}.{}",
            checked("schema", dataset)?,
            checked("table", table)?
        );
        let role = account_role(dataset);
        checked("account role", &role)?;
        let mut c = self.control().await?;
        let tx = c.transaction().await.map_err(|e| warehouse_error(&e))?;
        // The account's role reads its own result table; values as text, as BigQuery returns them.
        tx.batch_execute(&format!("SET LOCAL ROLE \"{role}\""))
            .await
            .map_err(|e| warehouse_error(&e))?;
        let rows = tx
            .query(
                &format!(
                    "SELECT (SELECT json_agg(e.value #>> '{{}}') FROM json_each(row_to_json(t)) AS e)::text
                     FROM (SELECT * FROM {path} LIMIT $1) AS t"
                ),
                &[&(max_rows.min(i64::MAX as usize) as i64)],
            )
            .await
            .map_err(|e| warehouse_error(&e))?;
        tx.rollback().await.map_err(|e| warehouse_error(&e))?;
        rows.iter()
            .map(|r| {
                let text: Option<String> = r.get(0);
                match text {
                    None => Ok(vec![]),
                    Some(t) => match serde_json::from_str::<Value>(&t) {
                        Ok(Value::Array(cells)) => Ok(cells),
                        _ => Err(InfraError::Warehouse(format!("unexpected row {t}"))),
                    },
                }
            })
            .collect()
    }

    async fn ensure_dataset(&self, dataset: &str) -> Result<()> {
        // The schema holds the account's source tables: its owner creates it
        // and the account's role ([`provision_account`]); the functions only check.
        checked("schema", dataset)?;
        let c = self.control().await?;
        let ok: bool = c
            .query_one(
                "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)
                    AND pg_has_role($2, 'MEMBER')",
                &[&dataset, &account_role(dataset)],
            )
            .await
            .map_err(|e| match e.as_db_error().map(|d| d.code().code()) {
                // pg_has_role of a role that does not exist.
                Some("42704") => InfraError::NotFound(format!(
                    "role {} does not exist: provision the account (docs/postgres-warehouse.md)",
                    account_role(dataset)
                )),
                _ => warehouse_error(&e),
            })?
            .get(0);
        if ok {
            Ok(())
        } else {
            Err(InfraError::NotFound(format!(
                "schema {dataset} does not exist or the functions may not use role {}: provision the account (docs/postgres-warehouse.md)",
                account_role(dataset)
            )))
        }
    }

    async fn dry_run(&self, _sql: &str) -> Result<i64> {
        Err(InfraError::Unsupported(
            "Postgres bills no bytes; a Postgres warehouse has no dry run".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_quoted() {
        assert_eq!(checked("schema", "account_1").unwrap(), "\"account_1\"");
        assert!(checked("schema", "a\"b").is_err());
        assert!(checked("schema", &"a".repeat(64)).is_err());
        assert_eq!(text_literal("it's"), "'it''s'");
        assert_eq!(account_role("account_1"), "account_1_segments");
    }

    #[test]
    fn a_job_without_a_dataset_is_refused() {
        let job = QueryJob {
            job_id: "j".into(),
            sql: "SELECT 1".into(),
            dataset: String::new(),
            labels: vec![],
            batch: false,
            maximum_bytes_billed: 1,
        };
        assert!(run_as(&job).is_err());
    }
}
