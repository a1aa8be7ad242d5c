use super::{ACCOUNT, OTHER, SEG, built, fakes, now};
use crate::cronjob::{fan_out, refresh_account};
use crate::fakes::{CRON_QUEUE, SCHEDULE_REPORT_QUEUE, STATIC_BUCKET, segment_row};
use segments_core::messages::CronjobMessage;
use segments_infra::error::ErrorClass;
use segments_infra::faults::Faults;
use segments_infra::ports::SegmentRow;
use serde_json::json;

/// Makes a built segment ineligible for the refresh.
type Spoil = fn(&mut SegmentRow);

const SEG2: &str = "8c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5";

fn msg(account: &str) -> CronjobMessage {
    CronjobMessage::parse(
        json!({"accountId": account, "timeZone": "UTC", "scheduledAt": "2024-06-15T08:00:00Z"})
            .to_string()
            .as_bytes(),
    )
    .unwrap()
}

#[tokio::test]
async fn given_accounts_with_and_without_eligible_segments_when_the_schedule_ticks_then_one_message_per_eligible_account()
 {
    let f = fakes();
    f.store.put_segment(built(ACCOUNT, SEG));
    let mut blocked = built(OTHER, SEG2);
    blocked.is_blocked = true;
    f.store.put_segment(blocked);
    let out = fan_out(&f.app(), now()).await.unwrap();
    assert_eq!(out.accounts, 1);
    let sent = f.queue.sent_to(CRON_QUEUE);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].json(),
        json!({"accountId": ACCOUNT, "timeZone": "UTC", "scheduledAt": "2024-06-15T08:00:00+00:00"})
    );
}

#[tokio::test]
async fn given_eligible_and_ineligible_segments_when_refreshed_then_only_eligible_ones_submit_batch_jobs()
 {
    let f = fakes();
    f.store.put_segment(built(ACCOUNT, SEG));
    let ineligible: [(&str, Spoil); 4] = [
        ("a0000000-0000-4000-8000-000000000001", |r| {
            r.is_blocked = true
        }),
        ("a0000000-0000-4000-8000-000000000002", |r| r.status = false),
        ("a0000000-0000-4000-8000-000000000003", |r| {
            r.query_status = "failed".into()
        }),
        ("a0000000-0000-4000-8000-000000000004", |r| {
            r.total_bytes_billed = Some(i64::MAX)
        }),
    ];
    for (id, spoil) in ineligible {
        let mut row = built(ACCOUNT, id);
        spoil(&mut row);
        f.store.put_segment(row);
    }
    let out = refresh_account(&f.app(), &msg(ACCOUNT), now(), now())
        .await
        .unwrap();
    assert_eq!(out.submitted.len(), 1);
    let jobs = f.warehouse.submitted();
    assert_eq!(jobs.len(), 1);
    assert!(jobs[0].batch, "refreshes run at BATCH priority");
    assert_eq!(jobs[0].job_id, out.submitted[0]);
}

#[tokio::test]
async fn given_the_same_tick_delivered_twice_when_refreshed_then_nothing_is_submitted_twice() {
    let f = fakes();
    f.store.put_segment(built(ACCOUNT, SEG));
    f.store.put_segment(built(ACCOUNT, SEG2));
    let app = f.app();
    let first = refresh_account(&app, &msg(ACCOUNT), now(), now())
        .await
        .unwrap();
    let again = refresh_account(&app, &msg(ACCOUNT), now(), now())
        .await
        .unwrap();
    assert_eq!(first.submitted, again.submitted);
    assert_eq!(f.warehouse.submitted().len(), 2);
}

#[tokio::test]
async fn given_a_segment_using_a_disabled_trigger_when_refreshed_then_it_is_skipped_and_the_others_run()
 {
    let f = fakes();
    let trigger_rules = json!([{"mainOperator": "include", "segmentObject": "session", "conditionFocus": "metric",
        "g0": {"type": "trigger", "id": "t1", "condition": "greater-than", "value": 0}}]);
    f.store
        .put_segment(segment_row(ACCOUNT, SEG2, &trigger_rules));
    f.store.put_segment(built(ACCOUNT, SEG));
    f.objects.put(
        STATIC_BUCKET,
        &format!("server-side-trigger/{ACCOUNT}.json"),
        br#"[{"id": "t1", "enabled": false}]"#,
    );
    let out = refresh_account(&f.app(), &msg(ACCOUNT), now(), now())
        .await
        .unwrap();
    assert_eq!(out.skipped.len(), 1);
    assert_eq!(out.skipped[0].0, SEG2);
    assert!(out.skipped[0].1.contains("disabled"), "{:?}", out.skipped);
    assert_eq!(out.submitted.len(), 1);
}

#[tokio::test]
async fn given_a_people_segment_in_the_morning_when_refreshed_then_the_schedule_report_is_handed_off()
 {
    let f = fakes();
    let people = json!([{"mainOperator": "include", "segmentObject": "people", "conditionFocus": "property",
        "g0": {"type": "dimension", "key": "country", "condition": "equals", "value": "us"}}]);
    f.store.put_segment(segment_row(ACCOUNT, SEG, &people));
    let out = refresh_account(&f.app(), &msg(ACCOUNT), now(), now())
        .await
        .unwrap();
    assert!(out.schedule_report);
    let sent = f.queue.sent_to(SCHEDULE_REPORT_QUEUE);
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].json(),
        json!({"accountId": ACCOUNT, "timeZone": "UTC"})
    );
}

#[tokio::test]
async fn given_a_submit_outage_when_refreshed_then_retry_and_the_redelivery_submits_the_rest_once()
{
    let f = fakes();
    f.store.put_segment(built(ACCOUNT, SEG));
    f.store.put_segment(built(ACCOUNT, SEG2));
    let faults = Faults::default();
    let app = f.app_with_faults(&faults);
    faults.fail("warehouse.submit", 1);
    let err = refresh_account(&app, &msg(ACCOUNT), now(), now())
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Transient, "{err}");
    assert_eq!(f.warehouse.submitted().len(), 1);
    let out = refresh_account(&app, &msg(ACCOUNT), now(), now())
        .await
        .unwrap();
    assert_eq!(out.submitted.len(), 2);
    assert_eq!(
        f.warehouse.submitted().len(),
        2,
        "the redelivery submitted only the missing one"
    );
}

#[tokio::test]
async fn given_only_refused_refreshes_when_refreshed_then_rejected_not_retried() {
    let f = fakes();
    f.store.put_segment(built(ACCOUNT, SEG));
    let faults = Faults::default();
    faults.fail_with("warehouse.submit", 1, ErrorClass::Permanent);
    let err = refresh_account(&f.app_with_faults(&faults), &msg(ACCOUNT), now(), now())
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent, "{err}");
    assert!(
        err.reason().contains("1 refresh jobs not submitted"),
        "{err}"
    );
}

#[tokio::test]
async fn given_a_malformed_trigger_file_when_refreshed_then_segments_without_triggers_still_refresh()
 {
    let f = fakes();
    let trigger_rules = json!([{"mainOperator": "include", "segmentObject": "session", "conditionFocus": "metric",
        "g0": {"type": "trigger", "id": "t1", "condition": "greater-than", "value": 0}}]);
    f.store
        .put_segment(segment_row(ACCOUNT, SEG2, &trigger_rules));
    f.store.put_segment(built(ACCOUNT, SEG));
    f.objects.put(
        STATIC_BUCKET,
        &format!("server-side-trigger/{ACCOUNT}.json"),
        b"{not a trigger list",
    );
    let out = refresh_account(&f.app(), &msg(ACCOUNT), now(), now())
        .await
        .unwrap();
    assert_eq!(out.submitted.len(), 1, "{out:?}");
    assert_eq!(f.warehouse.submitted().len(), 1);
    assert_eq!(out.skipped.len(), 1, "{out:?}");
    assert_eq!(out.skipped[0].0, SEG2);
    assert!(
        out.skipped[0].1.contains("trigger file"),
        "{:?}",
        out.skipped
    );
}

#[tokio::test]
async fn given_a_stale_stored_query_when_refreshed_then_the_refresh_is_rendered_from_the_rules() {
    let f = fakes();
    // Written by an earlier compiler: unstamped, and not what the rules select.
    let mut row = built(ACCOUNT, SEG);
    row.query = Some("SELECT 'stale'".into());
    f.store.put_segment(row);
    let out = refresh_account(&f.app(), &msg(ACCOUNT), now(), now())
        .await
        .unwrap();
    assert_eq!(out.submitted.len(), 1, "{out:?}");
    let sql = &f.warehouse.submitted()[0].sql;
    // A run (history): the members from the rules, then the history rows.
    assert!(sql.contains("segment_membership_changes"), "{sql}");
    assert!(sql.contains("LOWER(o.`country`) = LOWER('us')"), "{sql}");
    assert!(!sql.contains("stale") && !sql.contains("{{"), "{sql}");
}

#[tokio::test]
async fn given_corrupt_stored_rules_when_refreshed_then_skipped_saying_they_are_not_json() {
    let f = fakes();
    let mut row = built(ACCOUNT, SEG);
    row.rule_groups = Some("[{\"mainOperator\": ".into());
    f.store.put_segment(row);
    f.store.put_segment(built(ACCOUNT, SEG2));
    let out = refresh_account(&f.app(), &msg(ACCOUNT), now(), now())
        .await
        .unwrap();
    assert_eq!(out.submitted.len(), 1);
    assert_eq!(out.skipped.len(), 1, "{out:?}");
    let (id, reason) = &out.skipped[0];
    assert_eq!(id, SEG);
    assert!(reason.contains("are not valid JSON"), "{reason}");
}
