use super::{ACCOUNT, OTHER, SEG, built, fakes, now, us_sessions};
use crate::Failure;
use crate::create_segment::handle;
use crate::fakes::CHECK_QUEUE;
use segments_core::messages::{CheckJobMessage, SegmentCommand};
use segments_infra::cache::keys;
use segments_infra::error::ErrorClass;
use segments_infra::faults::Faults;
use segments_infra::ports::Cache;
use serde_json::{Value, json};

fn cmd(v: Value) -> SegmentCommand {
    SegmentCommand::parse(v.to_string().as_bytes()).unwrap()
}

fn create(account: &str, segment: Value) -> SegmentCommand {
    cmd(json!({"action": "create", "accountId": account, "segment": segment}))
}

#[tokio::test]
async fn given_a_valid_segment_when_created_then_stored_in_progress_built_checked_and_caches_cleared()
 {
    let f = fakes();
    let app = f.app();
    f.cache
        .put(
            &keys::segments(ACCOUNT),
            "[]",
            std::time::Duration::from_secs(60),
        )
        .await
        .unwrap();
    let out = handle(&app, &create(ACCOUNT, us_sessions(SEG)), "m1", now())
        .await
        .unwrap();

    let row = f.store.row(SEG).unwrap();
    assert_eq!(
        (row.account_id.as_str(), row.query_status.as_str()),
        (ACCOUNT, "in-progress")
    );
    // The stored query: the refresh for people to read, stamped with the compiler version.
    let stamp = format!(
        "-- segments-compiler v{}\nMERGE",
        segments_core::COMPILER_VERSION
    );
    assert!(row.query.unwrap().starts_with(&stamp));
    let jobs = f.warehouse.submitted();
    assert_eq!(jobs.len(), 1);
    assert!(
        jobs[0].sql.contains("CREATE OR REPLACE TABLE"),
        "{}",
        jobs[0].sql
    );
    assert!(!jobs[0].batch);
    assert_eq!(
        out.segments[0].job_id.as_deref(),
        Some(jobs[0].job_id.as_str())
    );
    let checks = f.queue.sent_to(CHECK_QUEUE);
    assert_eq!(checks.len(), 1);
    let check = CheckJobMessage::parse(checks[0].body.as_bytes()).unwrap();
    assert_eq!(
        (check.job_id.as_str(), check.attempt),
        (jobs[0].job_id.as_str(), 0)
    );
    assert_eq!(checks[0].delay_seconds, app.schedule.first_delay);
    assert_eq!(f.store.jobs()[0].job_id, jobs[0].job_id);
    assert_eq!(f.warehouse.datasets(), vec![app.dataset(ACCOUNT)]);
    assert_eq!(f.cache.value(&keys::segments(ACCOUNT)), None);
    // Every account has its "All Data" segment.
    assert!(
        f.store
            .rows()
            .iter()
            .any(|r| !r.is_custom && r.account_id == ACCOUNT)
    );
}

#[tokio::test]
async fn given_the_same_message_twice_when_created_then_one_build_is_submitted() {
    let f = fakes();
    let app = f.app();
    let first = handle(&app, &create(ACCOUNT, us_sessions(SEG)), "m1", now())
        .await
        .unwrap();
    let again = handle(&app, &create(ACCOUNT, us_sessions(SEG)), "m1", now())
        .await
        .unwrap();
    assert_eq!(first.segments[0].job_id, again.segments[0].job_id);
    assert_eq!(f.warehouse.submitted().len(), 1);
    assert_eq!(f.store.jobs().len(), 1);
}

#[tokio::test]
async fn given_invalid_rules_when_created_then_rejected_with_the_path_and_nothing_written() {
    let f = fakes();
    let bad = json!({"id": SEG, "ruleGroups": [{"mainOperator": "include", "segmentObject": "session",
        "conditionFocus": "property", "g0": {"type": "dimension", "key": "country", "condition": "equal", "value": "x"}}]});
    let err = handle(&f.app(), &create(ACCOUNT, bad), "m", now())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        Failure::Rejected(r#"ruleGroups[0].g0.condition: unknown operator "equal""#.into())
    );
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert!(f.store.row(SEG).is_none());
    assert!(f.warehouse.submitted().is_empty());
    assert!(f.queue.sent().is_empty());
}

#[tokio::test]
async fn given_an_unknown_account_when_created_then_rejected() {
    let f = fakes();
    let err = handle(
        &f.app(),
        &create("9a6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d99", us_sessions(SEG)),
        "m",
        now(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, Failure::Rejected(ref m) if m.contains("does not exist")),
        "{err}"
    );
}

#[tokio::test]
async fn given_a_segment_naming_another_account_when_created_then_rejected() {
    let f = fakes();
    let mut seg = us_sessions(SEG);
    seg["accountId"] = OTHER.into();
    let err = handle(&f.app(), &create(ACCOUNT, seg), "m", now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Failure::Rejected(ref m) if m.contains("differs")),
        "{err}"
    );
    assert!(f.store.row(SEG).is_none());
}

#[tokio::test]
async fn given_another_accounts_segment_when_updated_rebuilt_or_deleted_then_rejected_and_unchanged()
 {
    let f = fakes();
    f.store.put_segment(built(OTHER, SEG));
    let app = f.app();
    for c in [
        cmd(json!({"action": "update", "accountId": ACCOUNT, "segment": us_sessions(SEG)})),
        cmd(json!({"action": "rebuild", "accountId": ACCOUNT, "segmentId": SEG})),
        cmd(json!({"action": "delete", "accountId": ACCOUNT, "segmentId": SEG})),
    ] {
        let err = handle(&app, &c, "m", now()).await.unwrap_err();
        assert!(
            matches!(err, Failure::Rejected(ref m) if m.contains("does not belong")),
            "{}: {err}",
            c.action()
        );
    }
    assert_eq!(f.store.row(SEG), Some(built(OTHER, SEG)));
    assert!(f.warehouse.submitted().is_empty());
}

#[tokio::test]
async fn given_a_stored_segment_when_rebuilt_then_built_from_its_stored_rules() {
    let f = fakes();
    f.store.put_segment(built(ACCOUNT, SEG));
    let out = handle(
        &f.app(),
        &cmd(json!({"action": "rebuild", "accountId": ACCOUNT, "segmentId": SEG})),
        "m",
        now(),
    )
    .await
    .unwrap();
    assert_eq!(out.segments[0].query_status, "in-progress");
    assert_eq!(f.store.row(SEG).unwrap().query_status, "in-progress");
    assert_eq!(f.store.jobs()[0].action, "rebuild-segment");
    assert!(f.warehouse.submitted()[0].sql.contains("'us'"));
}

#[tokio::test]
async fn given_a_custom_segment_when_deleted_then_its_table_dropped_and_its_row_gone() {
    let f = fakes();
    f.store.put_segment(built(ACCOUNT, SEG));
    let out = handle(
        &f.app(),
        &cmd(json!({"action": "delete", "accountId": ACCOUNT, "segmentId": SEG})),
        "m",
        now(),
    )
    .await
    .unwrap();
    assert_eq!(out.segments[0].query_status, "deleted");
    assert!(f.store.row(SEG).is_none());
    let jobs = f.warehouse.submitted();
    assert_eq!(jobs.len(), 1);
    assert!(
        jobs[0].sql.starts_with("DROP TABLE IF EXISTS"),
        "{}",
        jobs[0].sql
    );
}

#[tokio::test]
async fn given_the_all_data_segment_when_deleted_then_rejected() {
    let f = fakes();
    let app = f.app();
    let all_data = app.ports.store.ensure_all_data(ACCOUNT).await.unwrap();
    let err = handle(
        &app,
        &cmd(json!({"action": "delete", "accountId": ACCOUNT, "segmentId": all_data})),
        "m",
        now(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, Failure::Rejected(ref m) if m.contains("cannot be deleted")),
        "{err}"
    );
    assert!(f.warehouse.submitted().is_empty());
}

#[tokio::test]
async fn given_expire_all_with_one_corrupt_segment_when_handled_then_the_others_rebuild_after_a_drop()
 {
    let f = fakes();
    let good = "8c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5";
    f.store.put_segment(built(ACCOUNT, SEG));
    let mut corrupt = built(ACCOUNT, good);
    corrupt.id = "9d2e3f40-5b6c-4d7e-8f80-91a2b3c4d5e6".into();
    corrupt.rule_groups = Some("{not json".into());
    f.store.put_segment(corrupt);
    f.store.put_segment(built(ACCOUNT, good));
    f.store
        .put_segment(built(OTHER, "aaaaaaaa-5b6c-4d7e-8f80-91a2b3c4d5e6"));
    let out = handle(
        &f.app(),
        &cmd(json!({"action": "expire-all", "accountId": ACCOUNT, "dropTables": true})),
        "m",
        now(),
    )
    .await
    .unwrap();
    let rebuilt: Vec<&str> = out.segments.iter().map(|s| s.segment_id.as_str()).collect();
    assert_eq!(rebuilt, vec![SEG, good]);
    let sql: Vec<String> = f.warehouse.submitted().into_iter().map(|j| j.sql).collect();
    assert_eq!(sql.len(), 4, "a drop and a build per good segment: {sql:?}");
    assert!(sql[0].starts_with("DROP TABLE") && sql[1].contains("CREATE OR REPLACE TABLE"));
}

#[tokio::test]
async fn given_a_postgres_outage_when_created_then_retry_and_the_redelivery_lands() {
    let f = fakes();
    let faults = Faults::default();
    let app = f.app_with_faults(&faults);
    faults.fail("store.save_segment", 1);
    let err = handle(&app, &create(ACCOUNT, us_sessions(SEG)), "m", now())
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Transient, "{err}");
    assert!(f.warehouse.submitted().is_empty());
    handle(&app, &create(ACCOUNT, us_sessions(SEG)), "m", now())
        .await
        .unwrap();
    assert_eq!(f.store.row(SEG).unwrap().query_status, "in-progress");
    assert_eq!(f.warehouse.submitted().len(), 1);
}

#[tokio::test]
async fn given_a_query_the_warehouse_refuses_when_created_then_rejected_not_retried() {
    let f = fakes();
    let faults = Faults::default();
    faults.fail_with("warehouse.submit", 1, ErrorClass::Permanent);
    let err = handle(
        &f.app_with_faults(&faults),
        &create(ACCOUNT, us_sessions(SEG)),
        "m",
        now(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent, "{err}");
    assert!(err.reason().contains("injected"), "{err}");
    assert!(f.queue.sent_to(CHECK_QUEUE).is_empty());
}

#[tokio::test]
async fn given_upper_case_ids_when_deleted_then_the_real_row_and_table_are_the_ones_dropped() {
    let f = fakes();
    f.store.put_segment(built(ACCOUNT, SEG));
    let app = f.app();
    handle(
        &app,
        &cmd(json!({"action": "delete", "accountId": ACCOUNT.to_uppercase(), "segmentId": SEG.to_uppercase()})),
        "m",
        now(),
    )
    .await
    .unwrap();
    assert!(f.store.row(SEG).is_none());
    let sql = &f.warehouse.submitted()[0].sql;
    let table = segments_core::model::segment_table_name(SEG);
    assert!(
        sql.contains(&app.dataset(ACCOUNT)) && sql.contains(&table),
        "{sql}"
    );
}

#[tokio::test]
async fn given_a_1_mb_description_when_created_then_rejected_and_nothing_written() {
    let f = fakes();
    let mut seg = us_sessions(SEG);
    seg["description"] = "d".repeat(1 << 20).into();
    let err = handle(&f.app(), &create(ACCOUNT, seg), "m", now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Failure::Rejected(ref m) if m.starts_with("description: at most") && m.len() < 200),
        "{}",
        &err.to_string()[..200]
    );
    assert!(f.store.row(SEG).is_none());
}
