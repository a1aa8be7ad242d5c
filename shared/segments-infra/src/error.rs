//! One error type for every adapter, classified so a handler can tell a call
//! that can never succeed (do not retry: the message goes to its dead-letter
//! queue at once) from a passing outage (retry via SQS redelivery).
//!
//! The port variants (`Postgres`, `Redis`, `Queue`, `ObjectStore`, `Warehouse`,
//! `Notifier`) are outages: connection loss, timeouts, 5xx, throttling. A
//! service that refuses a call for a reason no retry changes (a 400
//! `invalidQuery`, a constraint violation, a 4xx) answers [`InfraError::Refused`].

use serde::Serialize;
use std::fmt;

/// Whether a retry can help.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ErrorClass {
    /// The same call will fail the same way: bad input, a refused query, a
    /// foreign account, a missing setting.
    Permanent,
    /// An outage, a timeout, throttling: the same call may succeed later.
    Transient,
}

impl ErrorClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Permanent => "permanent",
            ErrorClass::Transient => "transient",
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The service behind a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Postgres,
    Redis,
    Sqs,
    S3,
    BigQuery,
    Pusher,
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Service::Postgres => "postgres",
            Service::Redis => "redis",
            Service::Sqs => "sqs",
            Service::S3 => "s3",
            Service::BigQuery => "bigquery",
            Service::Pusher => "pusher",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InfraError {
    /// A setting is missing or malformed (permanent until redeployed).
    #[error("configuration: {0}")]
    Config(String),
    /// Postgres unreachable, a dropped connection, a timeout (transient).
    #[error("postgres: {0}")]
    Postgres(String),
    /// Redis unreachable or timing out (transient).
    #[error("redis: {0}")]
    Redis(String),
    /// SQS unreachable, throttling or failing (transient).
    #[error("sqs: {0}")]
    Queue(String),
    /// S3 unreachable, throttling or failing (transient).
    #[error("s3: {0}")]
    ObjectStore(String),
    /// BigQuery unreachable, 5xx, 429, quota or rate limits (transient).
    #[error("bigquery: {0}")]
    Warehouse(String),
    /// Pusher unreachable or failing (transient).
    #[error("pusher: {0}")]
    Notifier(String),
    /// The service refused the call for a reason no retry changes (permanent):
    /// `reason` is the service's own word for it (`invalidQuery`, a SQLSTATE,
    /// an HTTP status, an error code).
    #[error("{service}: {}", with_reason(message, reason))]
    Refused {
        service: Service,
        reason: String,
        message: String,
    },
    #[error("bigquery job {job_id} failed: {message}")]
    JobFailed { job_id: String, message: String },
    #[error("not supported here: {0}")]
    Unsupported(String),
    #[error("{0}")]
    NotFound(String),
}

impl InfraError {
    /// A permanent refusal by `service`.
    pub fn refused(
        service: Service,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> InfraError {
        InfraError::Refused {
            service,
            reason: reason.into(),
            message: message.into(),
        }
    }

    /// A transient failure of `service`.
    pub fn outage(service: Service, message: impl Into<String>) -> InfraError {
        let m = message.into();
        match service {
            Service::Postgres => InfraError::Postgres(m),
            Service::Redis => InfraError::Redis(m),
            Service::Sqs => InfraError::Queue(m),
            Service::S3 => InfraError::ObjectStore(m),
            Service::BigQuery => InfraError::Warehouse(m),
            Service::Pusher => InfraError::Notifier(m),
        }
    }

    /// A failure of `service` of the given class.
    pub fn of_class(
        class: ErrorClass,
        service: Service,
        reason: impl Into<String>,
        message: impl Into<String>,
    ) -> InfraError {
        match class {
            ErrorClass::Permanent => InfraError::refused(service, reason, message),
            ErrorClass::Transient => InfraError::outage(service, message),
        }
    }

    /// Whether a retry can help.
    pub fn class(&self) -> ErrorClass {
        match self {
            InfraError::Postgres(_)
            | InfraError::Redis(_)
            | InfraError::Queue(_)
            | InfraError::ObjectStore(_)
            | InfraError::Warehouse(_)
            | InfraError::Notifier(_) => ErrorClass::Transient,
            InfraError::Config(_)
            | InfraError::Refused { .. }
            | InfraError::JobFailed { .. }
            | InfraError::Unsupported(_)
            | InfraError::NotFound(_) => ErrorClass::Permanent,
        }
    }

    /// Worth retrying later: outages and timeouts, not bad input.
    pub fn is_retryable(&self) -> bool {
        self.class() == ErrorClass::Transient
    }

    /// The service's own word for a refusal (`invalidQuery`, `23505`, `404`).
    pub fn reason(&self) -> Option<&str> {
        match self {
            InfraError::Refused { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

pub type Result<T, E = InfraError> = std::result::Result<T, E>;

/// The message, and the reason unless the message already says it.
fn with_reason(message: &str, reason: &str) -> String {
    if message.contains(reason) {
        message.to_string()
    } else {
        format!("{message} ({reason})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_each_kind_when_classified_then_only_outages_are_transient() {
        assert_eq!(
            InfraError::outage(Service::BigQuery, "503").class(),
            ErrorClass::Transient
        );
        let refused = InfraError::refused(Service::BigQuery, "invalidQuery", "Syntax error");
        assert_eq!(refused.class(), ErrorClass::Permanent);
        assert_eq!(refused.reason(), Some("invalidQuery"));
        assert_eq!(refused.to_string(), "bigquery: Syntax error (invalidQuery)");
        let said = InfraError::refused(Service::Postgres, "23505", "duplicate key (23505)");
        assert_eq!(said.to_string(), "postgres: duplicate key (23505)");
        assert!(!InfraError::Config("x".into()).is_retryable());
        assert!(InfraError::Postgres("x".into()).is_retryable());
        assert_eq!(ErrorClass::Transient.to_string(), "transient");
    }
}
