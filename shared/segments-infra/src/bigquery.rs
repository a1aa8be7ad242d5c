//! The warehouse on BigQuery (gcp-bigquery-client): query jobs with caller-chosen
//! ids, standard SQL always, BATCH or INTERACTIVE priority, a bytes cap, labels;
//! status, waiting, cancelling, results; a duplicate id yields the existing job.

use crate::config::BigQueryConfig;
use crate::error::{ErrorClass, InfraError, Result, Service};
use crate::ports::{JobStatus, QueryJob, Warehouse};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gcp_bigquery_client::Client;
use gcp_bigquery_client::auth::Authenticator;
use gcp_bigquery_client::client_builder::ClientBuilder;
use gcp_bigquery_client::error::BQError;
use gcp_bigquery_client::model::dataset::Dataset;
use gcp_bigquery_client::model::get_query_results_parameters::GetQueryResultsParameters;
use gcp_bigquery_client::model::job::Job;
use gcp_bigquery_client::model::job_configuration::JobConfiguration;
use gcp_bigquery_client::model::job_configuration_query::JobConfigurationQuery;
use gcp_bigquery_client::model::job_reference::JobReference;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// For an emulator: no credentials.
#[derive(Clone)]
struct NoToken;

#[async_trait]
impl Authenticator for NoToken {
    async fn access_token(&self) -> std::result::Result<String, BQError> {
        Ok("local".into())
    }
}

/// The OAuth scope of every BigQuery call.
const BIGQUERY_SCOPE: &str = "https://www.googleapis.com/auth/bigquery";
/// The longest token exchange (connect and request): a cold start waits on it.
const TOKEN_TIMEOUT: Duration = Duration::from_secs(10);

type TokenFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = std::result::Result<String, BQError>> + Send>,
>;

/// The service-account sign-in: a JWT signed with the key, exchanged at the
/// key's `token_uri` for an access token (yup-oauth2, which caches it until
/// it expires), with a timeout on every exchange. The client library's own
/// authenticator has none.
#[derive(Clone)]
struct GoogleAuth {
    token: Arc<dyn Fn() -> TokenFuture + Send + Sync>,
}

impl GoogleAuth {
    async fn new(key: gcp_bigquery_client::yup_oauth2::ServiceAccountKey) -> Result<GoogleAuth> {
        let auth = gcp_bigquery_client::yup_oauth2::ServiceAccountAuthenticator::builder(key)
            .with_timeout(TOKEN_TIMEOUT)
            .build()
            .await
            .map_err(|e| InfraError::Config(format!("GOOGLE_SERVICE_ACCOUNT_KEY: {e}")))?;
        Ok(GoogleAuth {
            token: Arc::new(move || {
                let auth = auth.clone();
                Box::pin(async move {
                    tracing::debug!(
                        "BigQuery access token (exchanged when the cached one expires)"
                    );
                    let token = tokio::time::timeout(TOKEN_TIMEOUT, auth.token(&[BIGQUERY_SCOPE]))
                        .await
                        .map_err(|_| BQError::NoToken)??;
                    token.token().map(str::to_string).ok_or(BQError::NoToken)
                })
            }),
        })
    }
}

#[async_trait]
impl Authenticator for GoogleAuth {
    async fn access_token(&self) -> std::result::Result<String, BQError> {
        (self.token)().await
    }
}

/// Whether a BigQuery API answer is worth retrying: 429, 5xx and the quota and
/// rate-limit reasons (BigQuery answers those with 403) are; every other 4xx
/// (`invalidQuery`, `invalid`, `notFound`, `accessDenied`, ...) is not.
pub fn response_class(code: i64, reason: &str) -> ErrorClass {
    match (code, reason) {
        (429 | 500..=599, _) => ErrorClass::Transient,
        (
            _,
            "quotaExceeded" | "rateLimitExceeded" | "backendError" | "internalError"
            | "jobBackendError" | "jobInternalError",
        ) => ErrorClass::Transient,
        _ => ErrorClass::Permanent,
    }
}

/// A BigQuery error, classified (see [`response_class`]); a failure to reach
/// the API at all (connect, timeout, token fetch) is transient.
fn bq(e: BQError) -> InfraError {
    match e {
        BQError::ResponseError { error } => {
            let reason = error
                .error
                .errors
                .first()
                .and_then(|m| m.get("reason"))
                .cloned()
                .unwrap_or_default();
            let code = error.error.code;
            let message = format!(
                "{} ({code}{})",
                error.error.message,
                if reason.is_empty() {
                    String::new()
                } else {
                    format!(", {reason}")
                }
            );
            let reason = if reason.is_empty() {
                code.to_string()
            } else {
                reason
            };
            InfraError::of_class(
                response_class(code, &reason),
                Service::BigQuery,
                reason,
                message,
            )
        }
        e @ (BQError::InvalidServiceAccountKey(_)
        | BQError::InvalidServiceAccountAuthenticator(_)
        | BQError::InvalidInstalledFlowAuthenticator(_)
        | BQError::InvalidApplicationDefaultCredentialsAuthenticator(_)
        | BQError::InvalidAuthorizedUserAuthenticator(_)) => InfraError::Config(e.to_string()),
        other => InfraError::Warehouse(other.to_string()),
    }
}

/// HTTP status of an API error, if it is one.
fn http_code(e: &BQError) -> Option<i64> {
    match e {
        BQError::ResponseError { error } => Some(error.error.code),
        _ => None,
    }
}

/// BigQuery's times are epoch milliseconds in strings.
fn millis(v: &Option<String>) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(v.as_deref()?.parse().ok()?)
}

/// Rows as JSON values per column.
fn cells(
    rows: Vec<gcp_bigquery_client::model::table_row::TableRow>,
    max_rows: usize,
) -> Vec<Vec<Value>> {
    rows.into_iter()
        .take(max_rows)
        .map(|r| {
            r.columns
                .unwrap_or_default()
                .into_iter()
                .map(|c| c.value.unwrap_or(Value::Null))
                .collect()
        })
        .collect()
}

/// The longest single getQueryResults wait.
const MAX_WAIT: Duration = Duration::from_secs(50);

#[derive(Clone)]
pub struct BigQuery {
    client: Arc<Client>,
    project: String,
    location: Option<String>,
}

impl BigQuery {
    pub async fn connect(cfg: &BigQueryConfig) -> Result<BigQuery> {
        // The client's default HTTP client has no timeouts.
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| InfraError::Config(format!("BigQuery HTTP client: {e}")))?;
        let mut builder = ClientBuilder::new();
        builder.with_client(http);
        // A key is always used when given (the token exchange is then exercised
        // even against an emulator, which ignores the token); no key: an
        // emulator without credentials.
        let client = match (&cfg.base_url, &cfg.service_account_key) {
            (base_url, Some(key)) => {
                if let Some(url) = base_url {
                    builder.with_v2_base_url(format!("{url}/bigquery/v2"));
                }
                let key = gcp_bigquery_client::yup_oauth2::parse_service_account_key(&key.0)
                    .map_err(|e| {
                        InfraError::Config(format!(
                            "GOOGLE_SERVICE_ACCOUNT_KEY is not a service-account key: {e}"
                        ))
                    })?;
                let auth = GoogleAuth::new(key).await?;
                builder
                    .build_from_authenticator(Arc::new(auth))
                    .await
                    .map_err(bq)?
            }
            (Some(url), None) => {
                builder.with_v2_base_url(format!("{url}/bigquery/v2"));
                builder
                    .build_from_authenticator(Arc::new(NoToken))
                    .await
                    .map_err(bq)?
            }
            (None, None) => {
                return Err(InfraError::Config(
                    "GOOGLE_SERVICE_ACCOUNT_KEY is not set".into(),
                ));
            }
        };
        Ok(BigQuery {
            client: Arc::new(client),
            project: cfg.project.clone(),
            location: cfg.location.clone(),
        })
    }

    pub fn project(&self) -> &str {
        &self.project
    }

    fn status_of(job_id: &str, job: &Job) -> JobStatus {
        let status = job.status.as_ref();
        let error = status.and_then(|s| s.error_result.as_ref());
        JobStatus {
            job_id: job_id.to_string(),
            state: status
                .and_then(|s| s.state.clone())
                .unwrap_or_else(|| "PENDING".into()),
            error_reason: error
                .and_then(|e| e.reason.clone())
                .or_else(|| error.map(|_| "error".into())),
            error_message: error.and_then(|e| e.message.clone()),
            total_bytes_billed: job
                .statistics
                .as_ref()
                .and_then(|s| s.query.as_ref())
                .and_then(|q| q.total_bytes_billed.as_ref())
                .and_then(|b| b.parse().ok()),
            started_at: job.statistics.as_ref().and_then(|s| millis(&s.start_time)),
            ended_at: job.statistics.as_ref().and_then(|s| millis(&s.end_time)),
        }
    }

    fn job_body(&self, job: &QueryJob, dry_run: bool) -> Job {
        Job {
            job_reference: Some(JobReference {
                job_id: (!dry_run).then(|| job.job_id.clone()),
                project_id: Some(self.project.clone()),
                location: self.location.clone(),
            }),
            configuration: Some(JobConfiguration {
                dry_run: dry_run.then_some(true),
                labels: (!job.labels.is_empty()).then(|| job.labels.iter().cloned().collect()),
                query: Some(JobConfigurationQuery {
                    query: job.sql.clone(),
                    // The API's default is legacy SQL; ours is always standard SQL.
                    use_legacy_sql: Some(false),
                    priority: Some(if job.batch { "BATCH" } else { "INTERACTIVE" }.into()),
                    maximum_bytes_billed: Some(job.maximum_bytes_billed.to_string()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

#[async_trait]
impl Warehouse for BigQuery {
    async fn submit(&self, job: &QueryJob) -> Result<(JobStatus, bool)> {
        match self
            .client
            .job()
            .insert(&self.project, self.job_body(job, false))
            .await
        {
            Ok(j) => Ok((Self::status_of(&job.job_id, &j), false)),
            // A known job id: the job was submitted before (a redelivered message).
            Err(e) if http_code(&e) == Some(409) => Ok((self.status(&job.job_id).await?, true)),
            Err(e) => Err(bq(e)),
        }
    }

    async fn status(&self, job_id: &str) -> Result<JobStatus> {
        let j = self
            .client
            .job()
            .get_job(&self.project, job_id, self.location.as_deref())
            .await
            .map_err(|e| match http_code(&e) {
                Some(404) => InfraError::NotFound(format!("BigQuery job {job_id} does not exist")),
                _ => bq(e),
            })?;
        Ok(Self::status_of(job_id, &j))
    }

    async fn wait(&self, job_id: &str, timeout: Duration) -> Result<JobStatus> {
        if !timeout.is_zero() {
            // getQueryResults returns as soon as the job ends, or after timeoutMs.
            let params = GetQueryResultsParameters {
                // Below the HTTP client's 60 s timeout, so a long wait is an answer, not an error.
                timeout_ms: Some(timeout.min(MAX_WAIT).as_millis() as i32),
                max_results: Some(0),
                location: self.location.clone(),
                ..Default::default()
            };
            let waited = self
                .client
                .job()
                .get_query_results(&self.project, job_id, params)
                .await;
            match waited {
                // Still running: that is all a check needs, no second call.
                Ok(r) if r.job_complete == Some(false) => {
                    return Ok(JobStatus {
                        job_id: job_id.to_string(),
                        state: "RUNNING".into(),
                        error_reason: None,
                        error_message: None,
                        total_bytes_billed: None,
                        started_at: None,
                        ended_at: None,
                    });
                }
                Ok(_) => {}
                // A failed job answers with its error; the job status below says which.
                Err(e) if http_code(&e).is_some() => {}
                Err(e) => return Err(bq(e)),
            }
        }
        // Ended (or no wait): the job itself has the state, error and bytes billed.
        self.status(job_id).await
    }

    async fn cancel(&self, job_id: &str) -> Result<()> {
        self.client
            .job()
            .cancel_job(&self.project, job_id, self.location.as_deref())
            .await
            .map_err(bq)?;
        Ok(())
    }

    async fn rows(&self, job_id: &str, max_rows: usize) -> Result<Vec<Vec<Value>>> {
        let params = GetQueryResultsParameters {
            max_results: Some(max_rows.min(i32::MAX as usize) as i32),
            location: self.location.clone(),
            ..Default::default()
        };
        let res = self
            .client
            .job()
            .get_query_results(&self.project, job_id, params)
            .await
            .map_err(bq)?;
        Ok(cells(res.rows.unwrap_or_default(), max_rows))
    }

    async fn table_rows(
        &self,
        dataset: &str,
        table: &str,
        max_rows: usize,
    ) -> Result<Vec<Vec<Value>>> {
        let params = gcp_bigquery_client::tabledata::ListQueryParameters {
            start_index: None,
            max_results: Some(max_rows.min(u32::MAX as usize) as u32),
            page_token: None,
            selected_fields: None,
            format_options: None,
        };
        let res = self
            .client
            .tabledata()
            .list(&self.project, dataset, table, params)
            .await
            .map_err(bq)?;
        Ok(cells(res.rows.unwrap_or_default(), max_rows))
    }

    /// Get first, insert only when missing: `datasets.insert` needs the
    /// project-level `bigquery.datasets.create` even for a dataset that exists,
    /// which a service account with Data Editor on each dataset does not have.
    async fn ensure_dataset(&self, dataset: &str) -> Result<()> {
        match self.client.dataset().get(&self.project, dataset).await {
            Ok(_) => return Ok(()),
            Err(e) if http_code(&e) == Some(404) => {}
            Err(e) => return Err(bq(e)),
        }
        let mut ds = Dataset::new(&self.project, dataset);
        if let Some(loc) = &self.location {
            ds = ds.location(loc);
        }
        match self.client.dataset().create(ds).await {
            Ok(_) => Ok(()),
            Err(e) if http_code(&e) == Some(409) => Ok(()),
            Err(e) => Err(bq(e)),
        }
    }

    async fn dry_run(&self, sql: &str) -> Result<i64> {
        let job = QueryJob {
            job_id: String::new(),
            sql: sql.to_string(),
            dataset: String::new(),
            labels: vec![],
            batch: false,
            maximum_bytes_billed: i64::MAX,
        };
        let j = match self
            .client
            .job()
            .insert(&self.project, self.job_body(&job, true))
            .await
        {
            Ok(j) => j,
            // Emulators answer "Not supported ..." where BigQuery would estimate.
            Err(BQError::ResponseError { error })
                if error.error.message.contains("Not supported") =>
            {
                return Err(InfraError::Unsupported(error.error.message));
            }
            Err(e) => return Err(bq(e)),
        };
        j.statistics
            .as_ref()
            .and_then(|s| s.total_bytes_processed.as_ref())
            .and_then(|b| b.parse().ok())
            .ok_or_else(|| {
                InfraError::Unsupported(
                    "this BigQuery endpoint does not report dry-run bytes".into(),
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gcp_bigquery_client::error::{NestedResponseError, ResponseError};

    fn api_error(code: i64, reason: &str) -> InfraError {
        let mut detail = std::collections::HashMap::new();
        detail.insert("reason".to_string(), reason.to_string());
        bq(BQError::ResponseError {
            error: ResponseError {
                error: NestedResponseError {
                    code,
                    errors: vec![detail],
                    message: format!("answer {code}"),
                    status: String::new(),
                },
            },
        })
    }

    #[test]
    fn given_a_refused_query_when_mapped_then_permanent_with_its_reason() {
        for (code, reason) in [
            (400, "invalidQuery"),
            (400, "invalid"),
            (404, "notFound"),
            (403, "accessDenied"),
        ] {
            let e = api_error(code, reason);
            assert_eq!(e.class(), ErrorClass::Permanent, "{code} {reason}");
            assert_eq!(e.reason(), Some(reason));
            assert!(
                e.to_string().contains(&format!("({code}, {reason})")),
                "{e}"
            );
        }
    }

    #[test]
    fn given_an_outage_or_a_limit_when_mapped_then_transient() {
        for (code, reason) in [
            (403, "quotaExceeded"),
            (403, "rateLimitExceeded"),
            (429, "rateLimitExceeded"),
            (429, ""),
            (500, "backendError"),
            (503, ""),
        ] {
            assert_eq!(
                api_error(code, reason).class(),
                ErrorClass::Transient,
                "{code} {reason}"
            );
        }
    }
}
