//! Faults injected on top of the real adapters: a failing call leaves the real
//! service as it was, and the next call goes through.

mod common;

use chrono::Utc;
use common::{fresh_uuid, up, var};
use segments_core::jobs::QueryStatus;
use segments_infra::config::{PusherConfig, Secret};
use segments_infra::faults::{Faults, Faulty};
use segments_infra::ports::{JobRecord, JobTransition, Notifier, SegmentStore, SegmentWrite};
use segments_infra::postgres::PgStore;
use segments_infra::pusher::Pusher;
use serde_json::json;

#[tokio::test]
async fn a_failed_status_write_changes_nothing_and_the_retry_lands() {
    let pg = PgStore::connect(&var("DATABASE_URL"), 2).unwrap();
    up(pg.migrate().await, "Postgres");
    let (acc, seg, job_id) = (fresh_uuid(), fresh_uuid(), format!("job_{}", fresh_uuid()));
    pg.upsert_account(&acc, "Acme", "UTC").await.unwrap();
    let faults = Faults::default();
    let store = Faulty::new(pg, &faults);
    store
        .save_segment(&SegmentWrite {
            id: seg.clone(),
            account_id: acc.clone(),
            name: "S".into(),
            description: None,
            rule_groups: "[]".into(),
            query: "SELECT 1".into(),
        })
        .await
        .unwrap();
    store
        .start_job(&JobRecord {
            job_id: job_id.clone(),
            account_id: acc.clone(),
            segment_id: Some(seg.clone()),
            action: "create-segment".into(),
            status: QueryStatus::InProgress,
            bytes_billed: None,
            error: None,
            created_at: Utc::now(),
            finished_at: None,
        })
        .await
        .unwrap();

    faults.fail("store.finish_job", 1);
    let err = store
        .finish_job(&job_id, QueryStatus::Done, Some(7), None, Utc::now())
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let row = store.segment(&acc, &seg).await.unwrap().unwrap();
    assert_eq!(row.query_status, "in-progress");

    assert_eq!(
        store
            .finish_job(&job_id, QueryStatus::Done, Some(7), None, Utc::now())
            .await
            .unwrap(),
        JobTransition::Applied {
            segment_updated: true
        }
    );
    let row = store.segment(&acc, &seg).await.unwrap().unwrap();
    assert_eq!(
        (row.query_status.as_str(), row.total_bytes_billed),
        ("done", Some(7))
    );
}

#[tokio::test]
async fn a_notifier_outage_on_cue_until_cleared() {
    let faults = Faults::default();
    let pusher = Pusher::new(PusherConfig {
        app_id: var("PUSHER_APP_ID"),
        key: var("PUSHER_KEY"),
        secret: Secret(var("PUSHER_SECRET")),
        cluster: "local".into(),
        base_url: var("PUSHER_HOST"),
    })
    .unwrap();
    let notifier = Faulty::new(pusher, &faults);
    let channel = format!("channel-{}", fresh_uuid());
    faults.fail("notifier.trigger", u32::MAX);
    for _ in 0..2 {
        let err = notifier
            .trigger(&channel, "E", &json!({}))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("injected fault"), "{err}");
    }
    faults.clear();
    up(
        notifier.trigger(&channel, "E", &json!({"n": 1})).await,
        "the Pusher capture server",
    );
    let all: Vec<serde_json::Value> = reqwest::get(format!("{}/captured", var("PUSHER_HOST")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mine: Vec<_> = all
        .iter()
        .filter(|e| e["channels"][0] == channel.as_str())
        .collect();
    assert_eq!(mine.len(), 1, "only the call after clear() reached Pusher");
    assert_eq!(mine[0]["data"], json!({"n": 1}));
}
