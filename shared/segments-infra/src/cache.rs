//! The cache on Redis: plain keys with TTLs, and prefix invalidation with
//! SCAN + UNLINK (never KEYS, which blocks the server).

use crate::error::{ErrorClass, InfraError, Result, Service};
use crate::ports::Cache;
use async_trait::async_trait;
use redis::AsyncCommands;
use redis::aio::ConnectionManager;
use std::time::Duration;

/// A Redis error, classified: what the client itself calls final (a wrong
/// type, a refused command, a bad configuration) and refused credentials are
/// permanent; connection loss, timeouts and busy or failing-over servers are
/// transient, as is anything that is not a `RedisError` (our own timeouts).
fn re(e: impl std::fmt::Display + 'static) -> InfraError {
    let any: &dyn std::any::Any = &e;
    match any.downcast_ref::<redis::RedisError>() {
        Some(err) => InfraError::of_class(
            redis_class(err),
            Service::Redis,
            err.code()
                .map(String::from)
                .unwrap_or_else(|| format!("{:?}", err.kind())),
            e.to_string(),
        ),
        None => InfraError::Redis(e.to_string()),
    }
}

pub fn redis_class(e: &redis::RedisError) -> ErrorClass {
    if e.kind() == redis::ErrorKind::AuthenticationFailed {
        return ErrorClass::Permanent;
    }
    match e.retry_method() {
        redis::RetryMethod::NoRetry => ErrorClass::Permanent,
        _ => ErrorClass::Transient,
    }
}

/// Escapes glob metacharacters so a prefix matches only itself.
pub fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 4);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^' | '-') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The cache keys of SPEC §7.
pub mod keys {
    /// All segments of an account (1 h).
    pub fn segments(account_id: &str) -> String {
        format!("redis_segments_{account_id}")
    }
    /// Prefix of the report results filtered by one segment.
    pub fn report_segment_prefix(account_id: &str, segment_id: &str) -> String {
        format!("{account_id}_report_segment_{segment_id}_")
    }
    /// Prefix of every report-with-segments result of an account.
    pub fn report_segments_prefix(account_id: &str) -> String {
        format!("{account_id}_report_segments_")
    }
}

pub const SEGMENTS_TTL: Duration = Duration::from_secs(3600);

/// Connects on first use, so an unreachable Redis costs a logged miss per
/// call instead of a failed start-up (status updates must still land).
#[derive(Clone)]
pub struct RedisCache {
    client: redis::Client,
    conn: std::sync::Arc<tokio::sync::OnceCell<ConnectionManager>>,
}

impl RedisCache {
    /// Checks the URL; connects lazily. `rediss://` is TLS verified against the
    /// Mozilla roots (ElastiCache's Amazon roots are among them); use
    /// [`RedisCache::with_ca_file`] for a private CA.
    pub fn new(url: &str) -> Result<RedisCache> {
        RedisCache::with_ca_file(url, None)
    }

    /// As [`RedisCache::new`], verifying a `rediss://` server against the CA
    /// certificates of a PEM file instead of the Mozilla roots (`REDIS_CA_FILE`).
    pub fn with_ca_file(url: &str, ca_file: Option<&str>) -> Result<RedisCache> {
        let config = |e: String| InfraError::Config(format!("REDIS_URL: {e}"));
        let tls = url.starts_with("rediss://");
        let client = match ca_file {
            None => redis::Client::open(url).map_err(|e| config(e.to_string()))?,
            Some(_) if !tls => {
                return Err(InfraError::Config(
                    "REDIS_CA_FILE is set but REDIS_URL is not rediss:// (TLS)".into(),
                ));
            }
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| InfraError::Config(format!("REDIS_CA_FILE {path}: {e}")))?;
                if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                    return Err(InfraError::Config(format!(
                        "REDIS_CA_FILE {path}: no PEM certificate in it"
                    )));
                }
                redis::Client::build_with_tls(
                    url,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem),
                    },
                )
                .map_err(|e| config(e.to_string()))?
            }
        };
        Ok(RedisCache {
            client,
            conn: Default::default(),
        })
    }

    /// Connects now (tests and the demo want to know at once).
    pub async fn connect(url: &str) -> Result<RedisCache> {
        let c = RedisCache::new(url)?;
        c.conn().await?;
        Ok(c)
    }

    async fn conn(&self) -> Result<ConnectionManager> {
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(3)))
            .set_number_of_retries(1);
        let c = self
            .conn
            .get_or_try_init(|| async {
                tokio::time::timeout(
                    Duration::from_secs(4),
                    ConnectionManager::new_with_config(self.client.clone(), config),
                )
                .await
                .map_err(|_| re("connection timed out"))?
                .map_err(re)
            })
            .await?;
        Ok(c.clone())
    }
}

#[async_trait]
impl Cache for RedisCache {
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<()> {
        let mut c = self.conn().await?;
        c.set_ex::<_, _, ()>(key, value, ttl.as_secs().max(1))
            .await
            .map_err(re)
    }

    async fn get(&self, key: &str) -> Result<Option<String>> {
        let mut c = self.conn().await?;
        c.get(key).await.map_err(re)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        let mut c = self.conn().await?;
        c.unlink::<_, ()>(key).await.map_err(re)
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let mut c = self.conn().await?;
        let pattern = format!("{}*", glob_escape(prefix));
        let mut cursor: u64 = 0;
        let mut deleted = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(500)
                .query_async(&mut c)
                .await
                .map_err(re)?;
            if !keys.is_empty() {
                let n: u64 = c.unlink(&keys).await.map_err(re)?;
                deleted += n;
            }
            if next == 0 {
                return Ok(deleted);
            }
            cursor = next;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_metacharacters_are_escaped() {
        assert_eq!(glob_escape("a*b?[c]\\d"), "a\\*b\\?\\[c\\]\\\\d");
        assert_eq!(
            keys::report_segment_prefix("acc", "seg"),
            "acc_report_segment_seg_"
        );
    }
}
