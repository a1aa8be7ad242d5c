//! One error type for every adapter, classified so a handler can tell a bad
//! message (do not retry) from a passing outage (retry via SQS redelivery).

#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    #[error("configuration: {0}")]
    Config(String),
    #[error("postgres: {0}")]
    Postgres(String),
    #[error("redis: {0}")]
    Redis(String),
    #[error("sqs: {0}")]
    Queue(String),
    #[error("s3: {0}")]
    ObjectStore(String),
    #[error("bigquery: {0}")]
    Warehouse(String),
    #[error("bigquery job {job_id} failed: {message}")]
    JobFailed { job_id: String, message: String },
    #[error("pusher: {0}")]
    Notifier(String),
    #[error("not supported here: {0}")]
    Unsupported(String),
    #[error("{0}")]
    NotFound(String),
}

impl InfraError {
    /// Worth retrying later: outages and timeouts, not bad input.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            InfraError::Postgres(_)
                | InfraError::Redis(_)
                | InfraError::Queue(_)
                | InfraError::ObjectStore(_)
                | InfraError::Warehouse(_)
                | InfraError::Notifier(_)
        )
    }
}

pub type Result<T, E = InfraError> = std::result::Result<T, E>;
