//! Pusher notifications, verified by the local capture server, and an outage.

mod common;

use common::{fresh_uuid, var};
use segments_infra::config::{PusherConfig, Secret};
use segments_infra::ports::Notifier;
use segments_infra::pusher::Pusher;
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
    p.trigger(&channel, "PUSHER_UPDATE_SEGMENT", &data)
        .await
        .unwrap();
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
    assert!(err.to_string().contains("401"), "{err}");
    assert!(captured(&channel).await.is_empty());
}

#[tokio::test]
async fn an_outage_is_an_error_not_a_crash() {
    let p = Pusher::new(config("s", "http://127.0.0.1:1")).unwrap();
    let err = p.trigger("channel-x", "E", &json!({})).await.unwrap_err();
    assert!(err.to_string().contains("cannot reach"), "{err}");
    assert!(err.is_retryable());
}
