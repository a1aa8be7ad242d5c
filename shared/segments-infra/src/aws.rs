//! SQS (queue) and S3 (object store) on the AWS SDK, with rustls (ring) as the
//! only TLS stack, timeouts on every call, and an endpoint override for moto.

use crate::error::{ErrorClass, InfraError, Result, Service};
use crate::ports::{ObjectStore, Queue};
use async_trait::async_trait;
use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use std::time::Duration;

/// The shared SDK configuration; `endpoint` points every client at moto locally.
///
/// Credentials come from `static_keys` when given (local runs), otherwise from
/// the environment only (Lambda sets `AWS_ACCESS_KEY_ID` and friends). The
/// default chain's instance-metadata fallback is never used: outside AWS it
/// would call a link-local address.
pub async fn sdk_config(
    region: &str,
    endpoint: Option<&str>,
    static_keys: Option<(&str, &str)>,
) -> aws_config::SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .region(aws_config::Region::new(region.to_string()))
        .http_client(http)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(10))
                .operation_timeout(Duration::from_secs(25))
                .build(),
        );
    loader = match static_keys {
        Some((id, secret)) => loader.credentials_provider(aws_credential_types::Credentials::new(
            id, secret, None, None, "static",
        )),
        None => loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        ),
    };
    if let Some(url) = endpoint {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

#[derive(Clone)]
pub struct SqsQueue {
    client: aws_sdk_sqs::Client,
}

impl SqsQueue {
    pub fn new(config: &aws_config::SdkConfig) -> SqsQueue {
        SqsQueue {
            client: aws_sdk_sqs::Client::new(config),
        }
    }

    pub fn client(&self) -> &aws_sdk_sqs::Client {
        &self.client
    }
}

/// A request we could not even build (a bad attribute, a bad entry): permanent.
fn sqs(e: impl std::error::Error) -> InfraError {
    InfraError::refused(Service::Sqs, "invalid request", aws_error_chain(&e))
}

/// A failed SQS or S3 call, classified by [`sdk_class`].
fn sdk_error<E>(service: Service, e: SdkError<E, HttpResponse>) -> InfraError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let class = sdk_class(&e);
    let reason = e
        .code()
        .map(String::from)
        .or_else(|| e.raw_response().map(|r| r.status().as_u16().to_string()))
        .unwrap_or_else(|| "error".into());
    InfraError::of_class(class, service, reason, aws_error_chain(&e))
}

/// Whether an AWS call is worth retrying: a timeout, a connection failure or
/// an unreadable answer is; a service error is when it is throttling or a 5xx
/// ([`aws_response_class`]); a request the SDK could not build is not.
pub fn sdk_class<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> ErrorClass {
    match e {
        SdkError::ConstructionFailure(_) => ErrorClass::Permanent,
        SdkError::ServiceError(ctx) => aws_response_class(
            ctx.raw().status().as_u16(),
            ctx.err().code().unwrap_or_default(),
        ),
        _ => ErrorClass::Transient,
    }
}

/// 429, 5xx and the throttling codes are transient; any other 4xx
/// (`AWS.SimpleQueueService.NonExistentQueue`, `AccessDenied`, `NoSuchBucket`,
/// `InvalidParameterValue`, ...) is permanent.
pub fn aws_response_class(status: u16, code: &str) -> ErrorClass {
    let throttled = code.contains("Throttl")
        || matches!(
            code,
            "SlowDown" | "RequestTimeout" | "ServiceUnavailable" | "InternalError" | "KmsThrottled"
        );
    if status == 429 || status >= 500 || throttled {
        ErrorClass::Transient
    } else {
        ErrorClass::Permanent
    }
}

/// The SDK's Display is terse ("service error"); the source chain says why.
fn aws_error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        out.push_str(": ");
        out.push_str(&s.to_string());
        cur = s.source();
    }
    out
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send_with_attributes(
        &self,
        queue_url: &str,
        body: &str,
        delay_seconds: u32,
        attributes: &[(&str, &str)],
    ) -> Result<()> {
        let mut req = self
            .client
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .delay_seconds(delay_seconds.min(900) as i32);
        for (name, value) in attributes {
            let attr = aws_sdk_sqs::types::MessageAttributeValue::builder()
                .data_type("String")
                .string_value(*value)
                .build()
                .map_err(sqs)?;
            req = req.message_attributes(*name, attr);
        }
        req.send().await.map_err(|e| sdk_error(Service::Sqs, e))?;
        Ok(())
    }

    async fn send_fifo(
        &self,
        queue_url: &str,
        body: &str,
        group_id: &str,
        dedup_id: &str,
    ) -> Result<()> {
        self.client
            .send_message()
            .queue_url(queue_url)
            .message_body(body)
            .message_group_id(group_id)
            .message_deduplication_id(dedup_id)
            .send()
            .await
            .map_err(sqs)?;
        Ok(())
    }

    async fn send_batch(&self, queue_url: &str, bodies: &[String]) -> Result<()> {
        for (chunk_no, chunk) in bodies.chunks(10).enumerate() {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, body)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(format!("m{}", chunk_no * 10 + i))
                        .message_body(body)
                        .build()
                        .map_err(sqs)
                })
                .collect::<Result<Vec<_>>>()?;
            let out = self
                .client
                .send_message_batch()
                .queue_url(queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| sdk_error(Service::Sqs, e))?;
            if let Some(f) = out.failed().first() {
                // SQS says whose fault each entry is: ours is permanent.
                let class = if out.failed().iter().any(|f| !f.sender_fault()) {
                    ErrorClass::Transient
                } else {
                    ErrorClass::Permanent
                };
                return Err(InfraError::of_class(
                    class,
                    Service::Sqs,
                    f.code(),
                    format!(
                        "{} of {} messages not sent; first: {} {}",
                        out.failed().len(),
                        chunk.len(),
                        f.code(),
                        f.message().unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
}

impl S3Store {
    /// Path-style addressing works with both AWS and moto.
    pub fn new(config: &aws_config::SdkConfig) -> S3Store {
        let conf = aws_sdk_s3::config::Builder::from(config)
            .force_path_style(true)
            .build();
        S3Store {
            client: aws_sdk_s3::Client::from_conf(conf),
        }
    }

    pub fn client(&self) -> &aws_sdk_s3::Client {
        &self.client
    }
}

#[async_trait]
impl ObjectStore for S3Store {
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        match self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => {
                let bytes = out
                    .body
                    .collect()
                    .await
                    .map_err(|e| InfraError::ObjectStore(e.to_string()))?;
                Ok(Some(bytes.into_bytes().to_vec()))
            }
            Err(e) => {
                use aws_sdk_s3::error::ProvideErrorMetadata;
                let status = e.raw_response().map(|r| r.status().as_u16());
                if e.as_service_error().is_some_and(|s| s.is_no_such_key()) {
                    Ok(None)
                } else if status == Some(403) || e.code() == Some("AccessDenied") {
                    // Our permissions, not an outage: retrying cannot help. With
                    // s3:ListBucket on the bucket a missing key is a 404 (None);
                    // without it S3 answers 403 for a missing key too.
                    Err(InfraError::Config(format!(
                        "s3: access denied to s3://{bucket}/{key}: the role needs s3:GetObject on the key and s3:ListBucket on the bucket ({})",
                        aws_error_chain(&e)
                    )))
                } else {
                    Err(sdk_error(Service::S3, e))
                }
            }
        }
    }

    async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<()> {
        self.client
            .put_object()
            .bucket(bucket)
            .key(key)
            .content_type(content_type)
            .body(aws_sdk_s3::primitives::ByteStream::from(bytes))
            .send()
            .await
            .map_err(|e| sdk_error(Service::S3, e))?;
        Ok(())
    }

    async fn presigned_get(
        &self,
        bucket: &str,
        key: &str,
        expires_in: std::time::Duration,
    ) -> Result<String> {
        let config = aws_sdk_s3::presigning::PresigningConfig::expires_in(expires_in)
            .map_err(|e| InfraError::Config(format!("presigned URL: {e}")))?;
        let request = self
            .client
            .get_object()
            .bucket(bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| sdk_error(Service::S3, e))?;
        Ok(request.uri().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_an_aws_answer_when_classified_then_throttling_and_5xx_retry() {
        for (status, code) in [
            (500, "InternalError"),
            (503, "SlowDown"),
            (400, "ThrottlingException"),
            (400, "AWS.SimpleQueueService.RequestThrottled"),
            (429, ""),
        ] {
            assert_eq!(
                aws_response_class(status, code),
                ErrorClass::Transient,
                "{status} {code}"
            );
        }
        for (status, code) in [
            (400, "AWS.SimpleQueueService.NonExistentQueue"),
            (400, "InvalidParameterValue"),
            (403, "AccessDenied"),
            (404, "NoSuchBucket"),
        ] {
            assert_eq!(
                aws_response_class(status, code),
                ErrorClass::Permanent,
                "{status} {code}"
            );
        }
    }
}
