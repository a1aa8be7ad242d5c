//! The notifier: Pusher's HTTP API, signed here on reqwest (rustls, timeouts).
//! Why not the `pusher` crate: docs/decisions/pusher.md.

use crate::config::PusherConfig;
use crate::error::{ErrorClass, InfraError, Result, Service};
use crate::ports::Notifier;
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use md5::{Digest, Md5};
use serde_json::{Value, json};
use sha2_10::Sha256;
use std::time::Duration;

#[derive(Clone)]
pub struct Pusher {
    http: reqwest::Client,
    config: PusherConfig,
}

/// The query string and signature of one request (Pusher HTTP API, auth_version 1.0).
pub fn signed_query(config: &PusherConfig, path: &str, body: &[u8], timestamp: i64) -> String {
    let body_md5 = hex::encode(Md5::digest(body));
    // Parameters in sorted order, as the signature requires.
    let params = format!(
        "auth_key={}&auth_timestamp={timestamp}&auth_version=1.0&body_md5={body_md5}",
        config.key
    );
    let to_sign = format!("POST\n{path}\n{params}");
    let mut mac = Hmac::<Sha256>::new_from_slice(config.secret.0.as_bytes()).unwrap_or_else(|_| {
        // HMAC accepts keys of any length; this branch cannot run.
        Hmac::<Sha256>::new_from_slice(b"-").unwrap_or_else(|_| unreachable!())
    });
    mac.update(to_sign.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    format!("{params}&auth_signature={signature}")
}

impl Pusher {
    pub fn new(config: PusherConfig) -> Result<Pusher> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| InfraError::Config(format!("Pusher HTTP client: {e}")))?;
        Ok(Pusher { http, config })
    }
}

#[async_trait]
impl Notifier for Pusher {
    async fn trigger(&self, channel: &str, event: &str, data: &Value) -> Result<()> {
        let path = format!("/apps/{}/events", self.config.app_id);
        // Pusher's `data` is a string holding JSON.
        let body =
            json!({"name": event, "channels": [channel], "data": data.to_string()}).to_string();
        let query = signed_query(
            &self.config,
            &path,
            body.as_bytes(),
            chrono::Utc::now().timestamp(),
        );
        let url = format!("{}{path}?{query}", self.config.base_url);
        let resp = self
            .http
            .post(url)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| {
                InfraError::Notifier(format!("cannot reach {}: {e}", self.config.base_url))
            })?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else {
            let text = resp.text().await.unwrap_or_default();
            // 429 and 5xx pass; any other 4xx (bad signature, over quota,
            // payload too large) will answer the same next time.
            let class = if status.as_u16() == 429 || status.is_server_error() {
                ErrorClass::Transient
            } else {
                ErrorClass::Permanent
            };
            Err(InfraError::of_class(
                class,
                Service::Pusher,
                status.as_u16().to_string(),
                format!("{status}: {}", text.chars().take(200).collect::<String>()),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    #[test]
    fn signs_like_the_pusher_documentation() {
        // The worked example of Pusher's HTTP API authentication docs.
        let config = PusherConfig {
            app_id: "3".into(),
            key: "278d425bdf160c739803".into(),
            secret: Secret("7ad3773142a6692b25b8".into()),
            cluster: "mt1".into(),
            base_url: "http://127.0.0.1".into(),
        };
        let body = br#"{"name":"foo","channels":["project-3"],"data":"{\"some\":\"data\"}"}"#;
        let q = signed_query(&config, "/apps/3/events", body, 1353088179);
        assert_eq!(
            q,
            "auth_key=278d425bdf160c739803&auth_timestamp=1353088179&auth_version=1.0&body_md5=ec365a775a4cd0599faeb73354201b6f&auth_signature=da454824c97ba181a32ccc17a72625ba02771f50b50e1e7430e47a1f3f457e6c"
        );
    }
}
