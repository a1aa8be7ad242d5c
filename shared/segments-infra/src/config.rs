//! Every environment variable the functions read, in one place. A missing or
//! malformed variable is reported by name; secrets never reach Debug output.

use crate::error::InfraError;
use std::collections::HashMap;
use std::fmt;

pub const DEFAULT_BYTES_THRESHOLD: i64 = 10 * 1024 * 1024 * 1024;
/// Postgres connections per execution environment: one per message of a batch
/// (BATCH_CONCURRENCY in segments-handlers). docs/deploy.md has the arithmetic.
pub const DEFAULT_POOL_SIZE: usize = 4;
const MAX_POOL_SIZE: usize = 32;

#[derive(Clone)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone)]
pub struct PusherConfig {
    pub app_id: String,
    pub key: String,
    pub secret: Secret,
    pub cluster: String,
    /// `https://api-{cluster}.pusher.com` unless overridden (`PUSHER_HOST`).
    pub base_url: String,
}

#[derive(Debug, Clone)]
pub struct BigQueryConfig {
    pub project: String,
    pub dataset_prefix: String,
    pub location: Option<String>,
    /// Set: talk to an emulator at this URL without credentials.
    pub base_url: Option<String>,
    pub service_account_key: Option<Secret>,
    pub maximum_bytes_billed: i64,
}

impl BigQueryConfig {
    /// The dataset of an account: prefix + account id with `-` turned into `_`.
    pub fn dataset_for(&self, account_id: &str) -> String {
        segments_core::model::account_dataset(&self.dataset_prefix, account_id)
    }
}

/// Which warehouse the functions query (`WAREHOUSE`, default `bigquery`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WarehouseKind {
    #[default]
    BigQuery,
    Postgres,
}

/// A Postgres warehouse (`WAREHOUSE=postgres`; docs/postgres-warehouse.md).
#[derive(Debug, Clone)]
pub struct PostgresWarehouseConfig {
    /// The functions' login (`WAREHOUSE_URL`; `sslmode`/`sslrootcert` as for `DATABASE_URL`).
    pub url: Secret,
    /// The longest a job may run (`WAREHOUSE_STATEMENT_TIMEOUT_SECONDS`, default 300).
    pub statement_timeout_seconds: u64,
}

/// Lambda always sets `AWS_REGION`; this serves runs that do not.
const DEFAULT_AWS_REGION: &str = "us-east-1";

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: Secret,
    pub redis_url: Secret,
    /// PEM file of the CA that signs a `rediss://` server's certificate
    /// (default: the Mozilla roots).
    pub redis_ca_file: Option<String>,
    pub check_job_queue_url: String,
    /// The dead-letter queue of the queue this function reads: a message that
    /// can never succeed goes there at once, with its reason. Unset: it is
    /// reported as a batch-item failure and reaches the DLQ after maxReceiveCount.
    pub dead_letter_queue_url: Option<String>,
    pub cronjob_queue_url: Option<String>,
    /// create-segment's own queue (expire-all fans out on it).
    pub create_segment_queue_url: Option<String>,
    pub schedule_report_queue_url: Option<String>,
    pub static_bucket: Option<String>,
    pub aws_endpoint_url: Option<String>,
    pub aws_region: String,
    pub bigquery: BigQueryConfig,
    pub warehouse: WarehouseKind,
    /// Set when `warehouse` is Postgres.
    pub postgres_warehouse: Option<PostgresWarehouseConfig>,
    pub pusher: PusherConfig,
    pub bytes_billed_threshold: i64,
    pub job_check_deadline_seconds: u32,
    /// Hours a report's result table lives (`REPORT_TABLE_EXPIRATION_HOURS`,
    /// default 24; 0 keeps them until deleted).
    pub report_table_expiration_hours: u32,
    /// A run after a rule change that moves the population by more than this
    /// share (0.2 = 20 %) raises a size alert (SPEC §11).
    pub size_alert_share: f64,
    /// Where each finished run's membership changes are published (optional).
    pub membership_queue_url: Option<String>,
    /// The Secrets Manager secret the secret variables came from, if any.
    pub secrets_arn: Option<String>,
    /// Postgres connections per execution environment and their timeouts.
    pub database_pool: crate::postgres::PoolSettings,
}

/// Reads variables from a map (the process environment in production).
struct Vars<'a> {
    vars: &'a HashMap<String, String>,
    problems: Vec<String>,
}

impl Vars<'_> {
    fn opt(&self, name: &str) -> Option<String> {
        self.vars
            .get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    fn req(&mut self, name: &str) -> String {
        self.opt(name).unwrap_or_else(|| {
            self.problems.push(format!("{name} is not set"));
            String::new()
        })
    }

    fn num<T: std::str::FromStr>(&mut self, name: &str, default: T) -> T {
        match self.opt(name) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| {
                self.problems
                    .push(format!("{name} is not a whole number: {v:?}"));
                default
            }),
        }
    }

    fn url(&mut self, name: &str, value: Option<String>) -> Option<String> {
        match value {
            Some(v) if v.starts_with("http://") || v.starts_with("https://") => {
                Some(v.trim_end_matches('/').to_string())
            }
            Some(v) => {
                self.problems
                    .push(format!("{name} is not an http(s) URL: {v:?}"));
                None
            }
            None => None,
        }
    }
}

impl Config {
    /// The environment only (no Secrets Manager).
    pub fn from_env() -> Result<Config, InfraError> {
        Config::from_map(&std::env::vars().collect())
    }

    /// What every function starts with: the environment, plus the secret
    /// named by `SECRETS_ARN` when set ([`crate::secrets`]).
    pub async fn load() -> Result<Config, InfraError> {
        Config::load_from(std::env::vars().collect()).await
    }

    pub async fn load_from(mut vars: HashMap<String, String>) -> Result<Config, InfraError> {
        let arn = vars
            .get("SECRETS_ARN")
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty());
        if let Some(arn) = arn {
            let region = vars
                .get("AWS_REGION")
                .cloned()
                .unwrap_or_else(|| DEFAULT_AWS_REGION.into());
            let endpoint = vars.get("AWS_ENDPOINT_URL").cloned();
            // Lambda's role credentials carry a session token and come from the
            // environment; plain keys in `vars` serve local runs.
            let keys = match (
                vars.get("AWS_SESSION_TOKEN"),
                vars.get("AWS_ACCESS_KEY_ID"),
                vars.get("AWS_SECRET_ACCESS_KEY"),
            ) {
                (None, Some(id), Some(secret)) => Some((id.clone(), secret.clone())),
                _ => None,
            };
            let sdk = crate::aws::sdk_config(
                &region,
                endpoint.as_deref(),
                keys.as_ref().map(|(a, b)| (a.as_str(), b.as_str())),
            )
            .await;
            let secret = crate::secrets::fetch(&sdk, &arn).await?;
            crate::secrets::merge(&mut vars, &secret)?;
        }
        Config::from_map(&vars)
    }

    pub fn from_map(vars: &HashMap<String, String>) -> Result<Config, InfraError> {
        let mut v = Vars {
            vars,
            problems: Vec::new(),
        };
        let database_url = Secret(v.req("DATABASE_URL"));
        let redis_url = Secret(v.req("REDIS_URL"));
        let check_job_queue_url = v.req("CHECK_JOB_QUEUE_URL");
        let cluster = v.opt("PUSHER_CLUSTER").unwrap_or_else(|| "mt1".into());
        let pusher_host = v.opt("PUSHER_HOST");
        let pusher_host = v.url("PUSHER_HOST", pusher_host);
        let pusher = PusherConfig {
            app_id: v.req("PUSHER_APP_ID"),
            key: v.req("PUSHER_KEY"),
            secret: Secret(v.req("PUSHER_SECRET")),
            base_url: pusher_host.unwrap_or_else(|| format!("https://api-{cluster}.pusher.com")),
            cluster,
        };
        let warehouse = match v.opt("WAREHOUSE").as_deref().map(str::to_ascii_lowercase) {
            None => WarehouseKind::BigQuery,
            Some(w) if w == "bigquery" => WarehouseKind::BigQuery,
            Some(w) if w == "postgres" => WarehouseKind::Postgres,
            Some(w) => {
                v.problems
                    .push(format!("WAREHOUSE is neither bigquery nor postgres: {w:?}"));
                WarehouseKind::BigQuery
            }
        };
        let on_bigquery = warehouse == WarehouseKind::BigQuery;
        let postgres_warehouse = (!on_bigquery).then(|| PostgresWarehouseConfig {
            url: Secret(v.req("WAREHOUSE_URL")),
            statement_timeout_seconds: v.num("WAREHOUSE_STATEMENT_TIMEOUT_SECONDS", 300),
        });
        let bq_base = v.opt("BIGQUERY_BASE_URL");
        let base_url = v.url("BIGQUERY_BASE_URL", bq_base);
        let service_account_key = v.opt("GOOGLE_SERVICE_ACCOUNT_KEY").map(Secret);
        if on_bigquery && base_url.is_none() && service_account_key.is_none() {
            v.problems
                .push("GOOGLE_SERVICE_ACCOUNT_KEY is not set (needed unless BIGQUERY_BASE_URL points at an emulator)".into());
        }
        let bigquery = BigQueryConfig {
            // A Postgres warehouse has no project.
            project: if on_bigquery {
                v.req("BIGQUERY_PROJECT")
            } else {
                v.opt("BIGQUERY_PROJECT").unwrap_or_default()
            },
            dataset_prefix: v
                .opt("BIGQUERY_DATASET_PREFIX")
                .unwrap_or_else(|| "account_".into()),
            location: v.opt("BIGQUERY_LOCATION"),
            base_url,
            service_account_key,
            maximum_bytes_billed: v.num("BIGQUERY_MAXIMUM_BYTES_BILLED", DEFAULT_BYTES_THRESHOLD),
        };
        if !segments_core::sql::is_project_id(&bigquery.project) && !bigquery.project.is_empty() {
            v.problems.push(format!(
                "BIGQUERY_PROJECT is not a project id: {:?}",
                bigquery.project
            ));
        }
        if !segments_core::sql::is_dataset_id(&format!("{}x", bigquery.dataset_prefix)) {
            v.problems.push(format!(
                "BIGQUERY_DATASET_PREFIX is not a dataset name prefix: {:?}",
                bigquery.dataset_prefix
            ));
        }
        let aws_endpoint = v.opt("AWS_ENDPOINT_URL");
        let config = Config {
            database_url,
            redis_url,
            redis_ca_file: v.opt("REDIS_CA_FILE"),
            check_job_queue_url,
            dead_letter_queue_url: v.opt("DEAD_LETTER_QUEUE_URL"),
            cronjob_queue_url: v.opt("CRONJOB_QUEUE_URL"),
            create_segment_queue_url: v.opt("CREATE_SEGMENT_QUEUE_URL"),
            schedule_report_queue_url: v.opt("SCHEDULE_REPORT_QUEUE_URL"),
            static_bucket: v.opt("STATIC_BUCKET"),
            aws_endpoint_url: v.url("AWS_ENDPOINT_URL", aws_endpoint),
            aws_region: v
                .opt("AWS_REGION")
                .unwrap_or_else(|| DEFAULT_AWS_REGION.into()),
            bigquery,
            warehouse,
            postgres_warehouse,
            pusher,
            bytes_billed_threshold: v
                .num("SEGMENT_BYTES_BILLED_THRESHOLD", DEFAULT_BYTES_THRESHOLD),
            job_check_deadline_seconds: v.num("JOB_CHECK_DEADLINE_SECONDS", 300),
            report_table_expiration_hours: v.num("REPORT_TABLE_EXPIRATION_HOURS", 24),
            size_alert_share: {
                let share: f64 = v.num("SEGMENT_SIZE_ALERT_SHARE", 0.2);
                if share.is_finite() && share >= 0.0 {
                    share
                } else {
                    v.problems.push(format!(
                        "SEGMENT_SIZE_ALERT_SHARE must be a share of at least 0 (0.2 = 20 %), got {share}"
                    ));
                    0.2
                }
            },
            membership_queue_url: v.opt("MEMBERSHIP_QUEUE_URL"),
            secrets_arn: v.opt("SECRETS_ARN"),
            database_pool: crate::postgres::PoolSettings {
                max_size: v.num("DATABASE_POOL_SIZE", DEFAULT_POOL_SIZE),
                statement_timeout_ms: v.num(
                    "DATABASE_STATEMENT_TIMEOUT_MS",
                    crate::postgres::DEFAULT_STATEMENT_TIMEOUT_MS,
                ),
                idle_in_transaction_timeout_ms: v.num(
                    "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS",
                    crate::postgres::DEFAULT_IDLE_IN_TRANSACTION_TIMEOUT_MS,
                ),
            },
        };
        if !(1..=MAX_POOL_SIZE).contains(&config.database_pool.max_size) {
            v.problems.push(format!(
                "DATABASE_POOL_SIZE must be 1 to {MAX_POOL_SIZE}: {}",
                config.database_pool.max_size
            ));
        }
        if v.problems.is_empty() {
            Ok(config)
        } else {
            Err(InfraError::Config(v.problems.join("; ")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> HashMap<String, String> {
        [
            ("DATABASE_URL", "postgres://u:pw-secret@h/db"),
            ("REDIS_URL", "redis://127.0.0.1:6379"),
            ("CHECK_JOB_QUEUE_URL", "http://127.0.0.1:5055/123/check"),
            ("PUSHER_APP_ID", "1"),
            ("PUSHER_KEY", "k"),
            ("PUSHER_SECRET", "pusher-secret"),
            ("BIGQUERY_PROJECT", "acme-prod"),
            ("BIGQUERY_BASE_URL", "http://127.0.0.1:9050/"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    #[test]
    fn reads_a_complete_environment_and_redacts_secrets() {
        let c = Config::from_map(&base()).unwrap();
        assert_eq!(
            c.bigquery.base_url.as_deref(),
            Some("http://127.0.0.1:9050")
        );
        assert_eq!(c.bigquery.dataset_for("0d6f-4b52"), "account_0d6f_4b52");
        assert_eq!(c.bytes_billed_threshold, DEFAULT_BYTES_THRESHOLD);
        assert_eq!(c.pusher.base_url, "https://api-mt1.pusher.com");
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("pw-secret") && !debug.contains("pusher-secret"),
            "{debug}"
        );
    }

    #[test]
    fn a_postgres_warehouse_needs_its_url_and_no_bigquery_settings() {
        let mut vars = base();
        vars.remove("BIGQUERY_PROJECT");
        vars.remove("BIGQUERY_BASE_URL");
        vars.insert("WAREHOUSE".into(), "postgres".into());
        let err = Config::from_map(&vars).unwrap_err().to_string();
        assert_eq!(err, "configuration: WAREHOUSE_URL is not set");
        vars.insert(
            "WAREHOUSE_URL".into(),
            "postgres://svc:wh-secret@h/warehouse".into(),
        );
        let c = Config::from_map(&vars).unwrap();
        assert_eq!(c.warehouse, WarehouseKind::Postgres);
        let pg = c.postgres_warehouse.as_ref().unwrap();
        assert_eq!(pg.statement_timeout_seconds, 300);
        assert!(!format!("{c:?}").contains("wh-secret"));
        vars.insert("WAREHOUSE".into(), "snowflake".into());
        let err = Config::from_map(&vars).unwrap_err().to_string();
        assert!(err.contains("WAREHOUSE is neither"), "{err}");
    }

    #[test]
    fn names_every_missing_or_malformed_variable() {
        let mut vars = base();
        vars.remove("DATABASE_URL");
        vars.remove("BIGQUERY_BASE_URL");
        vars.insert("SEGMENT_BYTES_BILLED_THRESHOLD".into(), "ten".into());
        vars.insert("PUSHER_HOST".into(), "localhost:5056".into());
        let err = Config::from_map(&vars).unwrap_err().to_string();
        for name in [
            "DATABASE_URL is not set",
            "GOOGLE_SERVICE_ACCOUNT_KEY is not set",
            "SEGMENT_BYTES_BILLED_THRESHOLD is not a whole number",
            "PUSHER_HOST is not an http(s) URL",
        ] {
            assert!(err.contains(name), "{err}");
        }
    }
}
