//! The segment store against the local Postgres: rows written and read back,
//! ownership, forward-only statuses, the cronjob's eligibility rules.

mod common;

use chrono::{Duration, Utc};
use common::{fresh_uuid, up, var};
use segments_core::jobs::QueryStatus;
use segments_infra::ports::{JobRecord, JobTransition, SegmentStore, SegmentWrite};
use segments_infra::postgres::PgStore;

async fn store() -> PgStore {
    let s = PgStore::connect(&var("DATABASE_URL"), 4).unwrap();
    up(s.migrate().await, "Postgres");
    s
}

async fn account(s: &PgStore) -> String {
    let id = fresh_uuid();
    s.upsert_account(&id, "Acme", "America/New_York")
        .await
        .unwrap();
    id
}

fn write(account: &str, id: &str, name: &str) -> SegmentWrite {
    SegmentWrite {
        id: id.into(),
        account_id: account.into(),
        name: name.into(),
        description: Some("d".into()),
        rule_groups: "[]".into(),
        query: "MERGE ...".into(),
    }
}

fn job(account: &str, segment: &str, id: &str, action: &str) -> JobRecord {
    JobRecord {
        job_id: id.into(),
        account_id: account.into(),
        segment_id: Some(segment.into()),
        action: action.into(),
        status: QueryStatus::InProgress,
        bytes_billed: None,
        error: None,
        created_at: Utc::now(),
        finished_at: None,
    }
}

#[tokio::test]
async fn migrations_are_idempotent_and_concurrent_safe() {
    let s = store().await;
    let (a, b) = tokio::join!(s.migrate(), s.migrate());
    a.unwrap();
    b.unwrap();
}

#[tokio::test]
async fn segments_round_trip_and_belong_to_their_account() {
    let s = store().await;
    let acc = account(&s).await;
    let other = account(&s).await;
    let seg = fresh_uuid();
    s.save_segment(&write(&acc, &seg, "First")).await.unwrap();
    let row = s.segment(&acc, &seg).await.unwrap().unwrap();
    assert_eq!(
        (
            row.name.as_str(),
            row.query_status.as_str(),
            row.is_custom,
            row.status
        ),
        ("First", "in-progress", true, true)
    );
    assert_eq!(
        s.account_time_zone(&acc).await.unwrap().as_deref(),
        Some("America/New_York")
    );

    // Another account can neither see, overwrite nor delete it.
    assert!(s.segment(&other, &seg).await.unwrap().is_none());
    let err = s
        .save_segment(&write(&other, &seg, "Hijack"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("does not belong"), "{err}");
    assert!(!s.delete_segment(&other, &seg).await.unwrap());
    assert_eq!(s.segment(&acc, &seg).await.unwrap().unwrap().name, "First");

    s.save_segment(&write(&acc, &seg, "Renamed")).await.unwrap();
    assert_eq!(s.custom_segments(&acc).await.unwrap().len(), 1);
    assert_eq!(s.custom_segments(&acc).await.unwrap()[0].name, "Renamed");
    assert!(s.delete_segment(&acc, &seg).await.unwrap());
    assert!(s.segment(&acc, &seg).await.unwrap().is_none());
    // Ids that are not UUIDs name nothing.
    assert!(s.segment(&acc, "not-a-uuid").await.unwrap().is_none());
}

#[tokio::test]
async fn every_account_has_one_all_data_segment_that_cannot_be_deleted() {
    let s = store().await;
    let acc = account(&s).await;
    let (a, b) = tokio::join!(s.ensure_all_data(&acc), s.ensure_all_data(&acc));
    assert_eq!(a.unwrap(), b.as_ref().unwrap().clone());
    let all = b.unwrap();
    let row = s.segment(&acc, &all).await.unwrap().unwrap();
    assert_eq!((row.name.as_str(), row.is_custom), ("All Data", false));
    assert!(!s.delete_segment(&acc, &all).await.unwrap());
    assert!(s.custom_segments(&acc).await.unwrap().is_empty());
    assert!(
        s.ensure_all_data(&fresh_uuid()).await.is_err(),
        "unknown account"
    );
}

#[tokio::test]
async fn job_status_never_moves_backwards_and_only_the_latest_build_counts() {
    let s = store().await;
    let acc = account(&s).await;
    let seg = fresh_uuid();
    s.save_segment(&write(&acc, &seg, "S")).await.unwrap();
    let j1 = format!("job_{}", fresh_uuid());
    s.start_job(&job(&acc, &seg, &j1, "create-segment"))
        .await
        .unwrap();
    s.start_job(&job(&acc, &seg, &j1, "create-segment"))
        .await
        .unwrap(); // a redelivery
    let at = Utc::now();
    assert_eq!(
        s.finish_job(&j1, QueryStatus::Done, Some(1024), None, at)
            .await
            .unwrap(),
        JobTransition::Applied {
            segment_updated: true
        }
    );
    let row = s.segment(&acc, &seg).await.unwrap().unwrap();
    assert_eq!(
        (row.query_status.as_str(), row.total_bytes_billed),
        ("done", Some(1024))
    );
    assert!((row.build_at.unwrap() - at).num_milliseconds().abs() < 1);
    // A late or duplicate check cannot move it back.
    assert_eq!(
        s.finish_job(&j1, QueryStatus::InProgress, None, None, at)
            .await
            .unwrap(),
        JobTransition::AlreadyFinal(QueryStatus::Done)
    );
    assert_eq!(
        s.finish_job(&j1, QueryStatus::Failed, None, Some("x"), at)
            .await
            .unwrap(),
        JobTransition::AlreadyFinal(QueryStatus::Done)
    );
    assert_eq!(
        s.segment(&acc, &seg).await.unwrap().unwrap().query_status,
        "done"
    );

    // A rebuild starts a new job: in-progress again. The older job's late end changes nothing.
    let j2 = format!("job_{}", fresh_uuid());
    let j3 = format!("job_{}", fresh_uuid());
    s.start_job(&job(&acc, &seg, &j2, "rebuild-segment"))
        .await
        .unwrap();
    // The newer build's clock may lag: the order of start_job calls decides, not clocks.
    let mut newer = job(&acc, &seg, &j3, "rebuild-segment");
    newer.created_at = Utc::now() - Duration::seconds(60);
    s.start_job(&newer).await.unwrap();
    assert_eq!(
        s.segment(&acc, &seg).await.unwrap().unwrap().query_status,
        "in-progress"
    );
    assert_eq!(
        s.finish_job(&j2, QueryStatus::Failed, None, Some("boom"), Utc::now())
            .await
            .unwrap(),
        JobTransition::Applied {
            segment_updated: false
        }
    );
    assert_eq!(
        s.segment(&acc, &seg).await.unwrap().unwrap().query_status,
        "in-progress"
    );
    s.finish_job(&j3, QueryStatus::Canceled, None, None, Utc::now())
        .await
        .unwrap();
    assert_eq!(
        s.segment(&acc, &seg).await.unwrap().unwrap().query_status,
        "canceled"
    );
    let rec = s.job(&j2).await.unwrap().unwrap();
    assert_eq!(
        (rec.status, rec.error.as_deref()),
        (QueryStatus::Failed, Some("boom"))
    );
    assert_eq!(
        s.finish_job("job_unknown", QueryStatus::Done, None, None, Utc::now())
            .await
            .unwrap(),
        JobTransition::UnknownJob
    );
}

#[tokio::test]
async fn the_cronjob_sees_only_eligible_segments() {
    let s = store().await;
    let acc = account(&s).await;
    let mut ids = Vec::new();
    for (name, bytes, blocked) in [
        ("ok", 100, false),
        ("huge", 20 * (1i64 << 30), false),
        ("blocked", 1, true),
        ("building", 0, false),
    ] {
        let seg = fresh_uuid();
        s.save_segment(&write(&acc, &seg, name)).await.unwrap();
        let j = format!("job_{}", fresh_uuid());
        s.start_job(&job(&acc, &seg, &j, "create-segment"))
            .await
            .unwrap();
        if name != "building" {
            s.finish_job(&j, QueryStatus::Done, Some(bytes), None, Utc::now())
                .await
                .unwrap();
        }
        if blocked {
            assert!(s.set_blocked(&acc, &seg, true).await.unwrap());
        }
        ids.push(seg);
    }
    s.ensure_all_data(&acc).await.unwrap();
    let eligible = s
        .eligible_for_refresh(&acc, 10 * (1i64 << 30))
        .await
        .unwrap();
    assert_eq!(
        eligible.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
        vec!["ok"]
    );
    let accounts = s.accounts_to_refresh(10 * (1i64 << 30)).await.unwrap();
    assert!(accounts.contains(&(acc.clone(), "America/New_York".to_string())));
    // A lower threshold drops it.
    assert!(s.eligible_for_refresh(&acc, 100).await.unwrap().is_empty());
}

/// Every connection of the pool carries the timeouts (the connection budget of
/// docs/deploy.md): a runaway statement or a transaction a frozen Lambda left
/// open cannot hold the web app's database.
#[tokio::test]
async fn pool_connections_carry_statement_and_idle_transaction_timeouts() {
    use segments_infra::config::Config;
    use segments_infra::postgres::PoolSettings;
    let defaults = PgStore::connect(&var("DATABASE_URL"), 2).unwrap();
    assert_eq!(
        up(defaults.setting("statement_timeout").await, "Postgres"),
        "20s"
    );
    assert_eq!(
        defaults
            .setting("idle_in_transaction_session_timeout")
            .await
            .unwrap(),
        "30s"
    );

    // From the configuration, as a function reads it.
    let mut vars = common::stack_env();
    vars.insert(
        "CHECK_JOB_QUEUE_URL".into(),
        "http://127.0.0.1:5055/q".into(),
    );
    vars.insert("DATABASE_POOL_SIZE".into(), "3".into());
    vars.insert("DATABASE_STATEMENT_TIMEOUT_MS".into(), "1500".into());
    vars.insert(
        "DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS".into(),
        "2500".into(),
    );
    let config = Config::from_map(&vars).unwrap();
    assert_eq!(
        config.database_pool,
        PoolSettings {
            max_size: 3,
            statement_timeout_ms: 1500,
            idle_in_transaction_timeout_ms: 2500
        }
    );
    // Options the URL already has are kept.
    let url = format!(
        "{}?options=-c%20application_name%3Dsegments_test",
        var("DATABASE_URL")
    );
    let s = PgStore::connect_with(&url, config.database_pool).unwrap();
    assert_eq!(s.setting("statement_timeout").await.unwrap(), "1500ms");
    assert_eq!(
        s.setting("idle_in_transaction_session_timeout")
            .await
            .unwrap(),
        "2500ms"
    );
    assert_eq!(
        s.setting("application_name").await.unwrap(),
        "segments_test"
    );

    vars.insert("DATABASE_POOL_SIZE".into(), "0".into());
    let e = Config::from_map(&vars).unwrap_err().to_string();
    assert!(e.contains("DATABASE_POOL_SIZE must be 1 to 32"), "{e}");
}
