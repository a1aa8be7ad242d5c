//! The functions' handlers. Each takes a parsed message and an [`App`] (the
//! ports plus settings) and returns what happened; `functions/*/src/main.rs`
//! only builds the `App` and hands events to these.

pub mod api;
pub mod check_job;
pub mod create_segment;
pub mod cronjob;
pub mod entry;
#[cfg(any(test, feature = "fakes"))]
pub mod fakes;
pub mod history;
pub mod report;
pub mod segment_models;
pub mod sqs;
#[cfg(test)]
mod tests;

use chrono::{DateTime, Utc};
use segments_core::jobs::CheckSchedule;
use segments_core::messages::CheckJobMessage;
use segments_core::sql::DialectKind;
use segments_core::{Catalog, Target};
use segments_infra::cache::keys;
use segments_infra::config::{Config, WarehouseKind};
use segments_infra::error::ErrorClass;
use segments_infra::wiring::Ports;
use std::sync::Arc;

/// Everything a handler needs: the ports and the settings.
#[derive(Clone)]
pub struct App {
    pub ports: Ports,
    pub catalog: Arc<Catalog>,
    /// The warehouse's SQL dialect (`WAREHOUSE`).
    pub dialect: DialectKind,
    pub project: String,
    pub dataset_prefix: String,
    pub check_queue_url: String,
    /// Where a message that can never succeed goes at once (`DEAD_LETTER_QUEUE_URL`).
    pub dead_letter_queue_url: Option<String>,
    pub cronjob_queue_url: Option<String>,
    /// create-segment's own queue: expire-all fans out one rebuild per segment on it.
    pub create_segment_queue_url: Option<String>,
    pub schedule_report_queue_url: Option<String>,
    pub static_bucket: Option<String>,
    pub maximum_bytes_billed: i64,
    pub bytes_threshold: i64,
    pub schedule: CheckSchedule,
    /// How long report result tables live; `None` keeps them.
    pub report_table_expiration: Option<chrono::Duration>,
    /// Share of the population a run after a rule change may move without an alert.
    pub size_alert_share: f64,
    /// Where finished runs' membership changes are published, when configured.
    pub membership_queue_url: Option<String>,
}

/// A handler's failure. `Rejected` can never succeed (bad message, invalid
/// rules, a foreign account, a refused query): it goes to the queue's
/// dead-letter queue at once. `Retry` met an outage: SQS redelivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Rejected(String),
    Retry(String),
}

impl Failure {
    pub fn class(&self) -> ErrorClass {
        match self {
            Failure::Rejected(_) => ErrorClass::Permanent,
            Failure::Retry(_) => ErrorClass::Transient,
        }
    }

    /// Why, without the class.
    pub fn reason(&self) -> &str {
        match self {
            Failure::Rejected(m) | Failure::Retry(m) => m,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Rejected(m) => write!(f, "rejected: {m}"),
            Failure::Retry(m) => write!(f, "will retry: {m}"),
        }
    }
}

impl From<segments_infra::InfraError> for Failure {
    fn from(e: segments_infra::InfraError) -> Self {
        if e.is_retryable() {
            Failure::Retry(e.to_string())
        } else {
            Failure::Rejected(e.to_string())
        }
    }
}

impl From<segments_core::ValidationErrors> for Failure {
    fn from(e: segments_core::ValidationErrors) -> Self {
        Failure::Rejected(e.to_string().replace('\n', "; "))
    }
}

impl From<segments_core::CoreError> for Failure {
    fn from(e: segments_core::CoreError) -> Self {
        Failure::Rejected(e.to_string().replace('\n', "; "))
    }
}

impl App {
    /// Reads the configuration and connects every adapter: a function's cold start.
    pub async fn from_env() -> Result<App, String> {
        App::from_vars(std::env::vars().collect()).await
    }

    /// [`App::from_env`] over the given variables instead of the process's.
    pub async fn from_vars(vars: std::collections::HashMap<String, String>) -> Result<App, String> {
        let catalog = match vars.get("SEGMENTS_CATALOG") {
            Some(path) if !path.is_empty() => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("SEGMENTS_CATALOG {path}: {e}"))?;
                Catalog::from_json(&text).map_err(|e| format!("SEGMENTS_CATALOG {path}: {e}"))?
            }
            _ => Catalog::default_catalog(),
        };
        let config = Config::load_from(vars).await.map_err(|e| e.to_string())?;
        let ports = Ports::connect(&config).await.map_err(|e| e.to_string())?;
        Ok(App::new(&config, ports, catalog))
    }

    pub fn new(config: &Config, ports: Ports, catalog: Catalog) -> App {
        App {
            ports,
            catalog: Arc::new(catalog),
            dialect: match config.warehouse {
                WarehouseKind::BigQuery => DialectKind::BigQuery,
                WarehouseKind::Postgres => DialectKind::Postgres,
            },
            project: config.bigquery.project.clone(),
            dataset_prefix: config.bigquery.dataset_prefix.clone(),
            check_queue_url: config.check_job_queue_url.clone(),
            dead_letter_queue_url: config.dead_letter_queue_url.clone(),
            cronjob_queue_url: config.cronjob_queue_url.clone(),
            create_segment_queue_url: config.create_segment_queue_url.clone(),
            schedule_report_queue_url: config.schedule_report_queue_url.clone(),
            static_bucket: config.static_bucket.clone(),
            maximum_bytes_billed: config.bigquery.maximum_bytes_billed,
            bytes_threshold: config.bytes_billed_threshold,
            schedule: CheckSchedule {
                deadline: config.job_check_deadline_seconds,
                ..CheckSchedule::default()
            },
            report_table_expiration: (config.report_table_expiration_hours > 0)
                .then(|| chrono::Duration::hours(config.report_table_expiration_hours.into())),
            size_alert_share: config.size_alert_share,
            membership_queue_url: config.membership_queue_url.clone(),
        }
    }

    pub fn dataset(&self, account_id: &str) -> String {
        segments_core::model::account_dataset(&self.dataset_prefix, account_id)
    }

    /// Whether builds and refreshes submit the run with history (SPEC §11):
    /// its SQL renders for BigQuery only, so a Postgres warehouse gets the
    /// plain build and refresh, without history rows (docs/history.md).
    pub fn runs_with_history(&self) -> bool {
        self.dialect == DialectKind::BigQuery
    }

    pub fn target(&self, account_id: &str) -> Result<Target, Failure> {
        Target::for_dialect(self.dialect, &self.project, &self.dataset(account_id))
            .map_err(Failure::Rejected)
    }

    /// Clears the caches a segment change makes stale. A cache outage is logged,
    /// not fatal: the database is the source of truth.
    pub async fn invalidate(&self, account_id: &str, segment_id: Option<&str>) {
        let cache = &self.ports.cache;
        if let Err(e) = cache.delete(&keys::segments(account_id)).await {
            tracing::warn!(error = %e, "cache invalidation failed");
            return;
        }
        let mut prefixes = vec![keys::report_segments_prefix(account_id)];
        if let Some(s) = segment_id {
            prefixes.push(keys::report_segment_prefix(account_id, s));
        }
        for p in prefixes {
            if let Err(e) = cache.delete_prefix(&p).await {
                tracing::warn!(error = %e, prefix = %p, "cache invalidation failed");
            }
        }
    }

    /// Queues the first check of a job.
    pub async fn queue_check(&self, msg: &CheckJobMessage, delay: u32) -> Result<(), Failure> {
        let body = serde_json::to_string(msg).map_err(|e| Failure::Rejected(e.to_string()))?;
        self.ports
            .queue
            .send(&self.check_queue_url, &body, delay)
            .await?;
        Ok(())
    }
}

/// `now`, from the clock; handlers take it as an argument so tests can fix it.
pub fn now() -> DateTime<Utc> {
    Utc::now()
}
