//! Pusher notifications, verified by the local capture server, and an outage.

mod common;

use common::{fresh_uuid, up, var};
use segments_infra::config::{PusherConfig, Secret};
use segments_infra::ports::Notifier;
use segments_infra::pusher::{Pusher, signed_query};
use serde_json::{Value, json};

fn config(secret: &str, base_url: &str) -> PusherConfig {
    PusherConfig {
        app_id: var("PUSHER_APP_ID"),
        key: var("PUSHER_KEY"),
        secret: Secret(secret.into()),
        cluster: "local".into(),
        base_url: base_url.into(),
    }
}

async fn captured(channel: &str) -> Vec<Value> {
    let all: Vec<Value> = reqwest::get(format!("{}/captured", var("PUSHER_HOST")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    all.into_iter()
        .filter(|e| e["channels"][0] == channel)
        .collect()
}

#[tokio::test]
async fn the_server_verifies_and_records_the_event() {
    let p = Pusher::new(config(&var("PUSHER_SECRET"), &var("PUSHER_HOST"))).unwrap();
    let channel = format!("channel-{}", fresh_uuid());
    let data = json!({"segmentId": "s1", "queryStatus": "done", "totalBytesBilled": 10, "buildAt": "2024-06-15T12:00:00Z"});
    up(
        p.trigger(&channel, "PUSHER_UPDATE_SEGMENT", &data).await,
        "the Pusher capture server",
    );
    let got = captured(&channel).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["name"], "PUSHER_UPDATE_SEGMENT");
    assert_eq!(got[0]["data"], data);
}

#[tokio::test]
async fn a_wrong_secret_is_refused() {
    let p = Pusher::new(config("not-the-secret", &var("PUSHER_HOST"))).unwrap();
    let channel = format!("channel-{}", fresh_uuid());
    let err = p.trigger(&channel, "E", &json!({})).await.unwrap_err();
    assert!(
        err.to_string().contains("401"),
        "{err} (is the capture server up? tests/stack/up.sh starts it)"
    );
    // A refused signature is refused again: no retry helps.
    assert_eq!(
        (err.class(), err.reason()),
        (segments_infra::error::ErrorClass::Permanent, Some("401"))
    );
    assert!(captured(&channel).await.is_empty());
}

#[tokio::test]
async fn an_outage_is_an_error_not_a_crash() {
    let p = Pusher::new(config("s", "http://127.0.0.1:1")).unwrap();
    let err = p.trigger("channel-x", "E", &json!({})).await.unwrap_err();
    assert!(err.to_string().contains("cannot reach"), "{err}");
    assert!(err.is_retryable());
}

/// Posts `body` with a query signed for `signed_body` at `timestamp`.
async fn post_signed(signed_body: &str, body: &str, timestamp: i64) -> (u16, String) {
    let cfg = config(&var("PUSHER_SECRET"), &var("PUSHER_HOST"));
    let path = format!("/apps/{}/events", cfg.app_id);
    let query = signed_query(&cfg, &path, signed_body.as_bytes(), timestamp);
    let sent = reqwest::Client::new()
        .post(format!("{}{path}?{query}", cfg.base_url))
        .header("Content-Type", "application/json")
        .body(body.to_string())
        .send()
        .await;
    let resp = up(sent, "the Pusher capture server");
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn a_changed_body_or_a_stale_timestamp_is_refused() {
    let channel = format!("channel-{}", fresh_uuid());
    let event = |data: &str| json!({"name": "E", "channels": [channel], "data": data}).to_string();
    let now = chrono::Utc::now().timestamp();
    // The signature covers body_md5, so a body changed in transit fails the md5 check.
    let (code, text) = post_signed(&event("{}"), &event(r#"{"x":1}"#), now).await;
    assert_eq!((code, text.contains("body_md5")), (400, true), "{text}");
    let (code, text) = post_signed(&event("{}"), &event("{}"), now - 3600).await;
    assert_eq!(
        (code, text.contains("auth_timestamp")),
        (401, true),
        "{text}"
    );
    assert!(captured(&channel).await.is_empty());
    // The same request, correctly signed and current, is accepted.
    assert_eq!(post_signed(&event("{}"), &event("{}"), now).await.0, 200);
    assert_eq!(captured(&channel).await.len(), 1);
}
