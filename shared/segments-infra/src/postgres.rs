//! The segment store on Postgres (tokio-postgres, pooled by deadpool). Every
//! query is scoped by account id, and job statuses only move forward.

use crate::error::{ErrorClass, InfraError, Result, Service};
use crate::pg_tls;
use crate::ports::{
    JobRecord, JobTransition, SegmentReportRow, SegmentRow, SegmentStore, SegmentWrite,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use segments_core::jobs::QueryStatus;
use tokio_postgres::config::SslMode;
use tokio_postgres::{NoTls, Row};
use tokio_postgres_rustls::MakeRustlsConnect;

/// Who owns a migration's tables. The functions' cold start applies only
/// their own: the web app's tables exist in production, and altering them
/// would need their owner's rights.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Owner {
    WebApp,
    Functions,
}

const MIGRATIONS: &[(i32, Owner, &str)] = &[
    (
        1,
        Owner::WebApp,
        include_str!("migrations/001_web_app_tables.sql"),
    ),
    (
        2,
        Owner::Functions,
        include_str!("migrations/002_segment_jobs.sql"),
    ),
    (
        3,
        Owner::Functions,
        include_str!("migrations/003_segment_jobs_order.sql"),
    ),
    // History (SPEC §11) starts at 10, leaving 4-9 to work merged meanwhile.
    (
        10,
        Owner::Functions,
        include_str!("migrations/010_segment_history.sql"),
    ),
    (
        11,
        Owner::Functions,
        include_str!("migrations/011_segment_delta_outbox.sql"),
    ),
];

// The history port (revisions, runs, the delta outbox) on the same pool.
#[path = "postgres_history.rs"]
mod history;

/// Serialises concurrent migrations (any fixed number works).
const MIGRATION_LOCK: i64 = 0x5e6_3e47;

/// tokio-postgres prints "db error" alone; the server's message says why.
/// Classified: a server error by its SQLSTATE ([`sqlstate_class`]), anything
/// without one (connection refused or lost, pool timeout) is transient.
fn pg(e: impl PgDisplay) -> InfraError {
    let message = e.describe();
    match e.class() {
        (ErrorClass::Permanent, reason) => InfraError::refused(
            Service::Postgres,
            reason.unwrap_or_else(|| "error".into()),
            message,
        ),
        (ErrorClass::Transient, _) => InfraError::Postgres(message),
    }
}

/// Whether a retry can help, by SQLSTATE class: connection exceptions (08),
/// transaction rollbacks such as serialization failures and deadlocks (40),
/// insufficient resources (53), operator intervention such as a cancelled
/// statement or a shutdown (57), system and internal errors (58, XX) and
/// `lock_not_available` (55P03) are transient; constraint violations (23),
/// syntax and access errors (42), bad data (22) and the rest are permanent.
pub fn sqlstate_class(code: &str) -> ErrorClass {
    match code.get(..2) {
        Some("08" | "40" | "53" | "57" | "58" | "XX") => ErrorClass::Transient,
        _ if code == "55P03" => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    }
}

trait PgDisplay {
    fn describe(&self) -> String;
    /// The class, and the SQLSTATE when the server answered one.
    fn class(&self) -> (ErrorClass, Option<String>);
}

impl PgDisplay for tokio_postgres::Error {
    fn describe(&self) -> String {
        match self.as_db_error() {
            Some(db) => format!("{} ({})", db.message(), db.code().code()),
            None => with_causes(self),
        }
    }
    fn class(&self) -> (ErrorClass, Option<String>) {
        match self.code() {
            Some(code) => (sqlstate_class(code.code()), Some(code.code().to_string())),
            None => (ErrorClass::Transient, None),
        }
    }
}

impl PgDisplay for deadpool_postgres::PoolError {
    fn describe(&self) -> String {
        match self {
            deadpool_postgres::PoolError::Backend(e) => e.describe(),
            other => with_causes(other),
        }
    }
    fn class(&self) -> (ErrorClass, Option<String>) {
        match self {
            deadpool_postgres::PoolError::Backend(e) => e.class(),
            _ => (ErrorClass::Transient, None),
        }
    }
}

/// An error and its sources: "error performing TLS handshake" alone does not
/// say that the certificate was refused, or why.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

impl PgDisplay for deadpool_postgres::BuildError {
    fn describe(&self) -> String {
        self.to_string()
    }
    fn class(&self) -> (ErrorClass, Option<String>) {
        (ErrorClass::Permanent, Some("pool configuration".into()))
    }
}

/// Our own finding about what the database holds (e.g. an unknown status):
/// reading it again gives the same answer.
impl PgDisplay for String {
    fn describe(&self) -> String {
        self.clone()
    }
    fn class(&self) -> (ErrorClass, Option<String>) {
        (ErrorClass::Permanent, Some("unexpected data".into()))
    }
}

/// `8-4-4-4-12` hex digits; other ids cannot name a row here.
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[derive(Clone)]
pub struct PgStore {
    pool: Pool,
}

const SEGMENT_COLUMNS: &str = r#"id::text, "accountId"::text, name, description, COALESCE("isCustom", FALSE),
    "ruleGroups", COALESCE(status, TRUE), COALESCE("queryStatus", 'in-progress'), query,
    COALESCE("isBlocked", FALSE), "totalBytesBilled", "buildAt""#;

fn segment_row(r: &Row) -> SegmentRow {
    SegmentRow {
        id: r.get(0),
        account_id: r.get(1),
        name: r.get(2),
        description: r.get(3),
        is_custom: r.get(4),
        rule_groups: r.get(5),
        status: r.get(6),
        query_status: r.get(7),
        query: r.get(8),
        is_blocked: r.get(9),
        total_bytes_billed: r.get(10),
        build_at: r.get(11),
    }
}

fn job_row(r: &Row) -> Result<JobRecord> {
    let status: String = r.get(4);
    Ok(JobRecord {
        job_id: r.get(0),
        account_id: r.get(1),
        segment_id: r.get(2),
        action: r.get(3),
        status: QueryStatus::from_wire(&status)
            .ok_or_else(|| pg(format!("unknown job status {status:?}")))?,
        bytes_billed: r.get(5),
        error: r.get(6),
        created_at: r.get(7),
        finished_at: r.get(8),
    })
}

const JOB_COLUMNS: &str = "job_id, account_id::text, segment_id::text, action, status, bytes_billed, error, created_at, finished_at";

/// The connection budget of one pool (one per Lambda execution environment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Connections this pool opens at most (`DATABASE_POOL_SIZE`).
    pub max_size: usize,
    /// `statement_timeout` of every connection, ms (`DATABASE_STATEMENT_TIMEOUT_MS`);
    /// 0 leaves the server's.
    pub statement_timeout_ms: u32,
    /// `idle_in_transaction_session_timeout`, ms; 0 leaves the server's.
    pub idle_in_transaction_timeout_ms: u32,
}

/// The defaults: a statement never outlives the longest function timeout
/// that waits on it, and a transaction left open by a frozen Lambda does not
/// keep its locks.
pub const DEFAULT_STATEMENT_TIMEOUT_MS: u32 = 20_000;
pub const DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS: u32 = 30_000;

impl PoolSettings {
    pub fn new(max_size: usize) -> PoolSettings {
        PoolSettings {
            max_size,
            statement_timeout_ms: DEFAULT_STATEMENT_TIMEOUT_MS,
            idle_in_transaction_timeout_ms: DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS,
        }
    }

    /// Server settings sent at connection start (libpq's `options`), after any
    /// the URL already has.
    fn options(&self, existing: Option<&str>) -> String {
        let mut opts: Vec<String> = existing
            .filter(|o| !o.trim().is_empty())
            .map(|o| vec![o.trim().to_string()])
            .unwrap_or_default();
        if self.statement_timeout_ms > 0 {
            opts.push(format!(
                "-c statement_timeout={}",
                self.statement_timeout_ms
            ));
        }
        if self.idle_in_transaction_timeout_ms > 0 {
            opts.push(format!(
                "-c idle_in_transaction_session_timeout={}",
                self.idle_in_transaction_timeout_ms
            ));
        }
        opts.join(" ")
    }
}

/// A connection pool over a Postgres URL (`postgres://user:pass@host:port/db`)
/// with `settings`; TLS follows the URL's `sslmode` and `sslrootcert` (see
/// [`crate::pg_tls`]). `variable` names the setting in errors.
pub(crate) fn pool(database_url: &str, settings: PoolSettings, variable: &str) -> Result<Pool> {
    let max_size = settings.max_size.max(1);
    let (url, tls) = pg_tls::split_url(database_url)?;
    let mut config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| InfraError::Config(format!("{variable} is not a Postgres URL: {e}")))?;
    let options = settings.options(config.get_options());
    if !options.is_empty() {
        config.options(&options);
    }
    let manager_config = ManagerConfig {
        recycling_method: RecyclingMethod::Fast,
    };
    let manager = match pg_tls::client_config(&tls)? {
        None => {
            config.ssl_mode(SslMode::Disable);
            Manager::from_config(config, NoTls, manager_config)
        }
        Some(rustls) => {
            config.ssl_mode(match tls.mode {
                pg_tls::SslMode::Prefer => SslMode::Prefer,
                _ => SslMode::Require,
            });
            Manager::from_config(config, MakeRustlsConnect::new(rustls), manager_config)
        }
    };
    Pool::builder(manager)
        .max_size(max_size)
        .wait_timeout(Some(std::time::Duration::from_secs(10)))
        .create_timeout(Some(std::time::Duration::from_secs(10)))
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()
        .map_err(pg)
}

/// A Postgres error as the server worded it.
pub(crate) fn pg_error(e: &tokio_postgres::Error) -> String {
    e.describe()
}

/// A pool error as the server (or the pool) worded it.
pub(crate) fn pool_error(e: &deadpool_postgres::PoolError) -> String {
    e.describe()
}

impl PgStore {
    /// A pool over `database_url` (`postgres://user:pass@host:port/db`) with
    /// the default timeouts ([`PoolSettings::new`]).
    /// TLS follows the URL's `sslmode` and `sslrootcert` (see [`crate::pg_tls`]).
    pub fn connect(database_url: &str, max_size: usize) -> Result<PgStore> {
        PgStore::connect_with(database_url, PoolSettings::new(max_size))
    }

    pub fn connect_with(database_url: &str, settings: PoolSettings) -> Result<PgStore> {
        Ok(PgStore {
            pool: pool(database_url, settings, "DATABASE_URL")?,
        })
    }

    /// A server setting (`current_setting`), e.g. `ssl`.
    pub async fn setting(&self, name: &str) -> Result<String> {
        let c = self.client().await?;
        let row = c
            .query_one("SELECT current_setting($1)", &[&name])
            .await
            .map_err(pg)?;
        Ok(row.get(0))
    }

    /// Whether this pool's connection to the server is encrypted (`pg_stat_ssl`).
    pub async fn tls_in_use(&self) -> Result<bool> {
        let c = self.client().await?;
        let row = c
            .query_one(
                "SELECT COALESCE((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false)",
                &[],
            )
            .await
            .map_err(pg)?;
        Ok(row.get(0))
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pg)
    }

    /// Creates every table when missing, the web app's included (tests, the
    /// demo, a fresh local database); safe to run concurrently and repeatedly.
    pub async fn migrate(&self) -> Result<Vec<i32>> {
        self.apply(&[Owner::WebApp, Owner::Functions]).await
    }

    /// What every function runs at cold start ([`crate::wiring::Ports::connect`]):
    /// the functions' own tables (`segment_jobs`), under a transaction-scoped
    /// advisory lock so concurrent cold starts apply each migration once.
    /// Returns the versions this call applied (empty once up to date).
    pub async fn migrate_functions(&self) -> Result<Vec<i32>> {
        self.apply(&[Owner::Functions]).await
    }

    async fn apply(&self, owners: &[Owner]) -> Result<Vec<i32>> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS segments_migrations (version INT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
        )
        .await
        .map_err(pg)?;
        let mut applied = Vec::new();
        for (version, owner, sql) in MIGRATIONS {
            if !owners.contains(owner) {
                continue;
            }
            let done = tx
                .query_opt(
                    "SELECT 1 FROM segments_migrations WHERE version = $1",
                    &[version],
                )
                .await
                .map_err(pg)?;
            if done.is_none() {
                tx.batch_execute(sql).await.map_err(|e| {
                    InfraError::Postgres(format!("migration {version}: {}", e.describe()))
                })?;
                tx.execute(
                    "INSERT INTO segments_migrations (version) VALUES ($1)",
                    &[version],
                )
                .await
                .map_err(pg)?;
                applied.push(*version);
            }
        }
        tx.commit().await.map_err(pg)?;
        Ok(applied)
    }

    /// Creates (or renames) an account; the web app does this in production.
    pub async fn upsert_account(
        &self,
        account_id: &str,
        name: &str,
        time_zone: &str,
    ) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            r#"INSERT INTO "Accounts" (id, name, "timeZone") VALUES ($1::text::uuid, $2, $3)
               ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, "timeZone" = EXCLUDED."timeZone", updated_at = now()"#,
            &[&account_id, &name, &time_zone],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    /// Blocks or unblocks a segment (an operator's switch).
    pub async fn set_blocked(
        &self,
        account_id: &str,
        segment_id: &str,
        blocked: bool,
    ) -> Result<bool> {
        let c = self.client().await?;
        let n = c
            .execute(
                r#"UPDATE "Segments" SET "isBlocked" = $3, updated_at = now()
                   WHERE id = $1::text::uuid AND "accountId" = $2::text::uuid"#,
                &[&segment_id, &account_id, &blocked],
            )
            .await
            .map_err(pg)?;
        Ok(n == 1)
    }
}

#[async_trait]
impl SegmentStore for PgStore {
    async fn account_time_zone(&self, account_id: &str) -> Result<Option<String>> {
        if !is_uuid(account_id) {
            return Ok(None);
        }
        let c = self.client().await?;
        let row = c
            .query_opt(
                r#"SELECT "timeZone" FROM "Accounts" WHERE id = $1::text::uuid"#,
                &[&account_id],
            )
            .await
            .map_err(pg)?;
        Ok(row.and_then(|r| r.get::<_, Option<String>>(0)))
    }

    async fn segment(&self, account_id: &str, segment_id: &str) -> Result<Option<SegmentRow>> {
        if !is_uuid(account_id) || !is_uuid(segment_id) {
            return Ok(None);
        }
        let c = self.client().await?;
        let sql = format!(
            r#"SELECT {SEGMENT_COLUMNS} FROM "Segments" WHERE id = $1::text::uuid AND "accountId" = $2::text::uuid"#
        );
        let row = c
            .query_opt(&sql, &[&segment_id, &account_id])
            .await
            .map_err(pg)?;
        Ok(row.as_ref().map(segment_row))
    }

    async fn save_segment(&self, seg: &SegmentWrite) -> Result<()> {
        if !is_uuid(&seg.account_id) || !is_uuid(&seg.id) {
            return Err(InfraError::NotFound(format!(
                "segment {} of account {}: ids must be UUIDs",
                seg.id, seg.account_id
            )));
        }
        let c = self.client().await?;
        // The conflict update only applies within the same account.
        let n = c
            .execute(
                r#"INSERT INTO "Segments" (id, "accountId", name, description, "isCustom", "ruleGroups", status, "queryStatus", query)
                   VALUES ($1::text::uuid, $2::text::uuid, $3, $4, TRUE, $5, TRUE, 'in-progress', $6)
                   ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description,
                       "ruleGroups" = EXCLUDED."ruleGroups", query = EXCLUDED.query, updated_at = now()
                   WHERE "Segments"."accountId" = EXCLUDED."accountId" AND "Segments"."isCustom""#,
                &[&seg.id, &seg.account_id, &seg.name, &seg.description, &seg.rule_groups, &seg.query],
            )
            .await
            .map_err(|e| {
                if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) {
                    InfraError::NotFound(format!("account {} does not exist", seg.account_id))
                } else {
                    pg(e)
                }
            })?;
        if n == 1 {
            Ok(())
        } else {
            Err(InfraError::NotFound(format!(
                "segment {} does not belong to account {}",
                seg.id, seg.account_id
            )))
        }
    }

    async fn delete_segment(&self, account_id: &str, segment_id: &str) -> Result<bool> {
        if !is_uuid(account_id) || !is_uuid(segment_id) {
            return Ok(false);
        }
        let c = self.client().await?;
        let n = c
            .execute(
                r#"DELETE FROM "Segments" WHERE id = $1::text::uuid AND "accountId" = $2::text::uuid AND "isCustom""#,
                &[&segment_id, &account_id],
            )
            .await
            .map_err(pg)?;
        Ok(n == 1)
    }

    async fn custom_segments(&self, account_id: &str) -> Result<Vec<SegmentRow>> {
        if !is_uuid(account_id) {
            return Ok(vec![]);
        }
        let c = self.client().await?;
        let sql = format!(
            r#"SELECT {SEGMENT_COLUMNS} FROM "Segments" WHERE "accountId" = $1::text::uuid AND "isCustom" ORDER BY created_at, id"#
        );
        let rows = c.query(&sql, &[&account_id]).await.map_err(pg)?;
        Ok(rows.iter().map(segment_row).collect())
    }

    async fn ensure_all_data(&self, account_id: &str) -> Result<String> {
        if !is_uuid(account_id) {
            return Err(InfraError::NotFound(format!(
                "account {account_id} is not a UUID"
            )));
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        // One "All Data" per account even when two invocations race.
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&account_id])
            .await
            .map_err(pg)?;
        let existing = tx
            .query_opt(
                r#"SELECT id::text FROM "Segments" WHERE "accountId" = $1::text::uuid AND NOT COALESCE("isCustom", FALSE)
                   ORDER BY created_at LIMIT 1"#,
                &[&account_id],
            )
            .await
            .map_err(pg)?;
        let id = match existing {
            Some(r) => r.get(0),
            None => tx
                .query_one(
                    r#"INSERT INTO "Segments" (id, "accountId", name, "isCustom", status, "queryStatus")
                       VALUES (gen_random_uuid(), $1::text::uuid, 'All Data', FALSE, TRUE, 'done') RETURNING id::text"#,
                    &[&account_id],
                )
                .await
                .map_err(|e| {
                    if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) {
                        InfraError::NotFound(format!("account {account_id} does not exist"))
                    } else {
                        pg(e)
                    }
                })?
                .get(0),
        };
        tx.commit().await.map_err(pg)?;
        Ok(id)
    }

    async fn eligible_for_refresh(
        &self,
        account_id: &str,
        bytes_threshold: i64,
    ) -> Result<Vec<SegmentRow>> {
        if !is_uuid(account_id) {
            return Ok(vec![]);
        }
        let c = self.client().await?;
        let sql = format!(
            r#"SELECT {SEGMENT_COLUMNS} FROM "Segments"
               WHERE "accountId" = $1::text::uuid AND COALESCE("isCustom", FALSE) AND COALESCE(status, TRUE)
                 AND NOT COALESCE("isBlocked", FALSE) AND "queryStatus" = 'done' AND query IS NOT NULL
                 AND COALESCE("totalBytesBilled", 0) < $2
               ORDER BY created_at, id"#
        );
        let rows = c
            .query(&sql, &[&account_id, &bytes_threshold])
            .await
            .map_err(pg)?;
        Ok(rows.iter().map(segment_row).collect())
    }

    async fn accounts_to_refresh(&self, bytes_threshold: i64) -> Result<Vec<(String, String)>> {
        let c = self.client().await?;
        let rows = c
            .query(
                r#"SELECT a.id::text, COALESCE(a."timeZone", 'UTC') FROM "Accounts" a
                   WHERE EXISTS (SELECT 1 FROM "Segments" s WHERE s."accountId" = a.id AND COALESCE(s."isCustom", FALSE)
                     AND COALESCE(s.status, TRUE) AND NOT COALESCE(s."isBlocked", FALSE) AND s."queryStatus" = 'done'
                     AND s.query IS NOT NULL AND COALESCE(s."totalBytesBilled", 0) < $1)
                   ORDER BY a.id"#,
                &[&bytes_threshold],
            )
            .await
            .map_err(pg)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn start_job(&self, job: &JobRecord) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let inserted = tx
            .execute(
                r#"INSERT INTO segment_jobs (job_id, account_id, segment_id, action, status, created_at, updated_at)
                   VALUES ($1, $2::text::uuid, $3::text::uuid, $4, 'in-progress', $5, $5)
                   ON CONFLICT (job_id) DO NOTHING"#,
                &[&job.job_id, &job.account_id, &job.segment_id, &job.action, &job.created_at],
            )
            .await
            .map_err(pg)?;
        let is_build = job.action == "create-segment" || job.action == "rebuild-segment";
        if inserted == 1 && is_build {
            tx.execute(
                r#"UPDATE "Segments" SET "queryStatus" = 'in-progress', updated_at = now()
                   WHERE id = $1::text::uuid AND "accountId" = $2::text::uuid"#,
                &[&job.segment_id, &job.account_id],
            )
            .await
            .map_err(pg)?;
        }
        tx.commit().await.map_err(pg)
    }

    async fn finish_job(
        &self,
        job_id: &str,
        status: QueryStatus,
        bytes_billed: Option<i64>,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<JobTransition> {
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        let sql = format!("SELECT {JOB_COLUMNS} FROM segment_jobs WHERE job_id = $1 FOR UPDATE");
        let Some(row) = tx.query_opt(&sql, &[&job_id]).await.map_err(pg)? else {
            return Ok(JobTransition::UnknownJob);
        };
        let job = job_row(&row)?;
        if !job.status.may_become(status) || job.status == status {
            return Ok(JobTransition::AlreadyFinal(job.status));
        }
        tx.execute(
            r#"UPDATE segment_jobs SET status = $2::text, bytes_billed = COALESCE($3::bigint, bytes_billed), error = $4::text,
                   finished_at = CASE WHEN $2::text = 'in-progress' THEN NULL ELSE $5::timestamptz END, updated_at = clock_timestamp()
               WHERE job_id = $1"#,
            &[&job_id, &status.as_str(), &bytes_billed, &error, &at],
        )
        .await
        .map_err(pg)?;
        let is_build = job.action == "create-segment" || job.action == "rebuild-segment";
        let mut segment_updated = false;
        if let (true, Some(segment_id)) = (is_build, &job.segment_id) {
            // Only the segment's latest build decides its status.
            let n = tx
                .execute(
                    r#"UPDATE "Segments" SET "queryStatus" = $2::text,
                           "totalBytesBilled" = CASE WHEN $2::text = 'done' THEN COALESCE($3::bigint, "totalBytesBilled") ELSE "totalBytesBilled" END,
                           "buildAt" = CASE WHEN $2::text = 'done' THEN $4::timestamptz ELSE "buildAt" END, updated_at = now()
                       WHERE id = $1::text::uuid AND "accountId" = $5::text::uuid
                         AND $6::text = (SELECT j.job_id FROM segment_jobs j WHERE j.segment_id = $1::text::uuid
                                   AND j.action IN ('create-segment', 'rebuild-segment')
                                   ORDER BY j.started_seq DESC LIMIT 1)"#,
                    &[segment_id, &status.as_str(), &bytes_billed, &at, &job.account_id, &job_id],
                )
                .await
                .map_err(pg)?;
            segment_updated = n == 1;
        }
        if let (true, Some(segment_id)) = (job.action == "refresh-segment", &job.segment_id) {
            // A refresh leaves "queryStatus" alone (the table keeps its last good
            // members); a finished one records what it billed, which the bytes
            // guard of the next schedule reads, unless a newer run owns the segment.
            let n = tx
                .execute(
                    r#"UPDATE "Segments" SET
                           "totalBytesBilled" = CASE WHEN $2::text = 'done' THEN COALESCE($3::bigint, "totalBytesBilled") ELSE "totalBytesBilled" END,
                           "buildAt" = CASE WHEN $2::text = 'done' THEN $4::timestamptz ELSE "buildAt" END, updated_at = now()
                       WHERE id = $1::text::uuid AND "accountId" = $5::text::uuid
                         AND $6::text = (SELECT j.job_id FROM segment_jobs j WHERE j.segment_id = $1::text::uuid
                                   AND j.action IN ('create-segment', 'rebuild-segment', 'refresh-segment')
                                   ORDER BY j.started_seq DESC LIMIT 1)"#,
                    &[segment_id, &status.as_str(), &bytes_billed, &at, &job.account_id, &job_id],
                )
                .await
                .map_err(pg)?;
            segment_updated = n == 1;
        }
        tx.commit().await.map_err(pg)?;
        Ok(JobTransition::Applied { segment_updated })
    }

    async fn job(&self, job_id: &str) -> Result<Option<JobRecord>> {
        let c = self.client().await?;
        let sql = format!("SELECT {JOB_COLUMNS} FROM segment_jobs WHERE job_id = $1");
        match c.query_opt(&sql, &[&job_id]).await.map_err(pg)? {
            Some(r) => Ok(Some(job_row(&r)?)),
            None => Ok(None),
        }
    }

    async fn running_builds(&self, account_id: &str, segment_id: &str) -> Result<Vec<String>> {
        if !is_uuid(account_id) || !is_uuid(segment_id) {
            return Ok(vec![]);
        }
        let c = self.client().await?;
        let rows = c
            .query(
                r#"SELECT job_id FROM segment_jobs WHERE account_id = $1::text::uuid AND segment_id = $2::text::uuid
                     AND status = 'in-progress' AND action IN ('create-segment', 'rebuild-segment')
                   ORDER BY started_seq"#,
                &[&account_id, &segment_id],
            )
            .await
            .map_err(pg)?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn segments(&self, account_id: &str) -> Result<Vec<SegmentRow>> {
        if !is_uuid(account_id) {
            return Ok(vec![]);
        }
        let c = self.client().await?;
        let sql = format!(
            r#"SELECT {SEGMENT_COLUMNS} FROM "Segments" WHERE "accountId" = $1::text::uuid
               ORDER BY COALESCE("isCustom", FALSE), created_at, id"#
        );
        let rows = c.query(&sql, &[&account_id]).await.map_err(pg)?;
        Ok(rows.iter().map(segment_row).collect())
    }

    async fn set_status(&self, account_id: &str, segment_id: &str, enabled: bool) -> Result<bool> {
        if !is_uuid(account_id) || !is_uuid(segment_id) {
            return Ok(false);
        }
        let c = self.client().await?;
        let n = c
            .execute(
                r#"UPDATE "Segments" SET status = $3, updated_at = now()
                   WHERE id = $1::text::uuid AND "accountId" = $2::text::uuid"#,
                &[&segment_id, &account_id, &enabled],
            )
            .await
            .map_err(pg)?;
        Ok(n == 1)
    }

    async fn name_in_use(&self, account_id: &str, name: &str, except_id: &str) -> Result<bool> {
        if !is_uuid(account_id) {
            return Ok(false);
        }
        let c = self.client().await?;
        let row = c
            .query_opt(
                r#"SELECT 1 FROM "Segments" WHERE "accountId" = $1::text::uuid
                     AND lower(btrim(name)) = lower(btrim($2)) AND id::text <> $3 LIMIT 1"#,
                &[&account_id, &name, &except_id],
            )
            .await
            .map_err(pg)?;
        Ok(row.is_some())
    }

    async fn segment_reports(
        &self,
        account_id: &str,
        user_id: &str,
        report_name: &str,
    ) -> Result<Vec<SegmentReportRow>> {
        if !is_uuid(account_id) || !is_uuid(user_id) {
            return Ok(vec![]);
        }
        let c = self.client().await?;
        let rows = c
            .query(
                r#"SELECT r.id::text, r."accountId"::text, r."segmentId"::text, s.name, r."reportName",
                          r."userId"::text, r."reportType", r.object, COALESCE(r.apply, TRUE), COALESCE(r."applyChart", FALSE)
                   FROM "SegmentReport" r JOIN "Segments" s ON s.id = r."segmentId" AND s."accountId" = r."accountId"
                   WHERE r."accountId" = $1::text::uuid AND r."userId" = $2::text::uuid
                     AND (r."reportName" = $3 OR r."reportName" IS NULL)
                   ORDER BY r.created_at, r.id"#,
                &[&account_id, &user_id, &report_name],
            )
            .await
            .map_err(pg)?;
        Ok(rows
            .iter()
            .map(|r| SegmentReportRow {
                id: r.get(0),
                account_id: r.get(1),
                segment_id: r.get(2),
                segment_name: r.get(3),
                report_name: r.get(4),
                user_id: r.get(5),
                report_type: r.get(6),
                object: r.get(7),
                apply: r.get(8),
                apply_chart: r.get(9),
            })
            .collect())
    }

    async fn link_report(&self, l: &SegmentReportRow) -> Result<String> {
        if !is_uuid(&l.account_id) || !is_uuid(&l.user_id) || !is_uuid(&l.segment_id) {
            return Err(InfraError::NotFound(format!(
                "segment {} of account {}: ids must be UUIDs",
                l.segment_id, l.account_id
            )));
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        // One row per (account, user, report or sticky, segment), even when two calls race.
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext($1))",
            &[&format!("segment-report:{}:{}", l.account_id, l.user_id)],
        )
        .await
        .map_err(pg)?;
        let existing = tx
            .query_opt(
                r#"SELECT id::text FROM "SegmentReport" WHERE "accountId" = $1::text::uuid AND "userId" = $2::text::uuid
                     AND "segmentId" = $3::text::uuid AND "reportName" IS NOT DISTINCT FROM $4 LIMIT 1"#,
                &[&l.account_id, &l.user_id, &l.segment_id, &l.report_name],
            )
            .await
            .map_err(pg)?;
        let id: String = match existing {
            Some(r) => {
                let id: String = r.get(0);
                tx.execute(
                    r#"UPDATE "SegmentReport" SET apply = $2, "applyChart" = $3, "reportType" = $4, object = $5, updated_at = now()
                       WHERE id = $1::text::uuid"#,
                    &[&id, &l.apply, &l.apply_chart, &l.report_type, &l.object],
                )
                .await
                .map_err(pg)?;
                id
            }
            None => tx
                .query_opt(
                    r#"INSERT INTO "SegmentReport" (id, "accountId", "segmentId", "reportName", "userId", "reportType", object, apply, "applyChart")
                       SELECT gen_random_uuid(), s."accountId", s.id, $4, $2::text::uuid, $5, $6, $7, $8
                       FROM "Segments" s WHERE s.id = $3::text::uuid AND s."accountId" = $1::text::uuid
                       RETURNING id::text"#,
                    &[&l.account_id, &l.user_id, &l.segment_id, &l.report_name, &l.report_type, &l.object, &l.apply, &l.apply_chart],
                )
                .await
                .map_err(pg)?
                .ok_or_else(|| {
                    InfraError::NotFound(format!(
                        "segment {} does not belong to account {}",
                        l.segment_id, l.account_id
                    ))
                })?
                .get(0),
        };
        tx.commit().await.map_err(pg)?;
        Ok(id)
    }

    async fn unlink_report(
        &self,
        account_id: &str,
        user_id: &str,
        report_name: &str,
        segment_id: &str,
    ) -> Result<u64> {
        if !is_uuid(account_id) || !is_uuid(user_id) || !is_uuid(segment_id) {
            return Ok(0);
        }
        let c = self.client().await?;
        c.execute(
            r#"DELETE FROM "SegmentReport" WHERE "accountId" = $1::text::uuid AND "userId" = $2::text::uuid
                 AND "segmentId" = $3::text::uuid AND ("reportName" = $4 OR "reportName" IS NULL)"#,
            &[&account_id, &user_id, &segment_id, &report_name],
        )
        .await
        .map_err(pg)
    }

    async fn apply_chart(
        &self,
        account_id: &str,
        user_id: &str,
        report_name: &str,
        segment_ids: &[String],
    ) -> Result<u64> {
        if !is_uuid(account_id) || !is_uuid(user_id) {
            return Ok(0);
        }
        let c = self.client().await?;
        c.execute(
            r#"UPDATE "SegmentReport" SET "applyChart" = ("segmentId"::text = ANY($4)), updated_at = now()
               WHERE "accountId" = $1::text::uuid AND "userId" = $2::text::uuid
                 AND ("reportName" = $3 OR "reportName" IS NULL)"#,
            &[&account_id, &user_id, &report_name, &segment_ids],
        )
        .await
        .map_err(pg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_sqlstate_when_classified_then_outages_retry_and_refusals_do_not() {
        for code in [
            "08006", "08001", "40001", "40P01", "53300", "57014", "57P01", "55P03", "XX000",
        ] {
            assert_eq!(sqlstate_class(code), ErrorClass::Transient, "{code}");
        }
        for code in ["23505", "23503", "42601", "42P01", "22P02", "0A000"] {
            assert_eq!(sqlstate_class(code), ErrorClass::Permanent, "{code}");
        }
    }
}
