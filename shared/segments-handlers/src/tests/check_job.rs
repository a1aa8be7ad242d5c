use super::{ACCOUNT, OTHER, SEG, built, fakes, now};
use crate::Failure;
use crate::check_job::{Checked, PUSHER_EVENT, REPORT_EVENT, handle};
use crate::fakes::CHECK_QUEUE;
use chrono::Duration;
use segments_core::jobs::QueryStatus;
use segments_core::messages::{CheckJobMessage, JobAction, JobInput};
use segments_infra::cache::keys;
use segments_infra::error::ErrorClass;
use segments_infra::faults::Faults;
use segments_infra::ports::{Cache, JobRecord, SegmentStore};
use serde_json::json;

const JOB: &str = "segments_create_segment_0123456789abcdef";

fn build_check(job: &str) -> CheckJobMessage {
    CheckJobMessage {
        job_id: job.into(),
        account_id: ACCOUNT.into(),
        action: JobAction::CreateSegment,
        job_input_data: JobInput {
            segment_id: Some(SEG.into()),
            ..Default::default()
        },
        started_at: now(),
        attempt: 0,
    }
}

/// A built segment whose build `job` was submitted and recorded; BigQuery
/// says it is done unless the test says otherwise.
async fn started(f: &crate::fakes::Fakes, job: &str) {
    f.warehouse.set_status(job, "DONE", None);
    let mut row = built(ACCOUNT, SEG);
    row.query_status = "in-progress".into();
    f.store.put_segment(row);
    f.store
        .start_job(&JobRecord {
            job_id: job.into(),
            account_id: ACCOUNT.into(),
            segment_id: Some(SEG.into()),
            action: "create-segment".into(),
            status: QueryStatus::InProgress,
            bytes_billed: None,
            error: None,
            created_at: now(),
            finished_at: None,
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn given_a_finished_build_when_checked_then_done_recorded_caches_cleared_and_browser_told() {
    let f = fakes();
    started(&f, JOB).await;
    f.warehouse.set_status(JOB, "DONE", None);
    let key = format!("{}x", keys::report_segment_prefix(ACCOUNT, SEG));
    f.cache
        .put(&key, "old", std::time::Duration::from_secs(9))
        .await
        .unwrap();
    let out = handle(&f.app(), &build_check(JOB), now()).await.unwrap();
    assert_eq!(
        out,
        Checked::Finished {
            status: "done".into(),
            applied: true,
            notified: true
        }
    );
    let row = f.store.row(SEG).unwrap();
    assert_eq!(
        (row.query_status.as_str(), row.total_bytes_billed),
        ("done", Some(1024))
    );
    assert!(row.build_at.is_some());
    assert_eq!(f.cache.value(&key), None);
    let sent = f.notifier.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].channel.clone(), sent[0].event.as_str()),
        (format!("channel-{ACCOUNT}"), PUSHER_EVENT)
    );
    assert_eq!(sent[0].data["queryStatus"], "done");
    assert_eq!(sent[0].data["segmentId"], SEG);
}

#[tokio::test]
async fn given_the_same_check_twice_when_handled_then_the_second_changes_nothing_and_tells_nobody()
{
    let f = fakes();
    started(&f, JOB).await;
    let app = f.app();
    handle(&app, &build_check(JOB), now()).await.unwrap();
    let again = handle(&app, &build_check(JOB), now()).await.unwrap();
    assert_eq!(
        again,
        Checked::Finished {
            status: "done".into(),
            applied: false,
            notified: false
        }
    );
    assert_eq!(f.notifier.sent().len(), 1);
}

#[tokio::test]
async fn given_a_running_job_before_the_deadline_when_checked_then_requeued_with_the_next_attempt()
{
    let f = fakes();
    started(&f, JOB).await;
    f.warehouse.set_status(JOB, "RUNNING", None);
    let app = f.app();
    let out = handle(&app, &build_check(JOB), now() + Duration::seconds(2))
        .await
        .unwrap();
    let Checked::Requeued { delay, attempt } = out else {
        panic!("{out:?}")
    };
    assert_eq!((delay, attempt), (app.schedule.gap, 1));
    let sent = f.queue.sent_to(CHECK_QUEUE);
    assert_eq!(sent.len(), 1);
    let next = CheckJobMessage::parse(sent[0].body.as_bytes()).unwrap();
    assert_eq!((next.attempt, next.started_at), (1, now()));
    assert_eq!(sent[0].delay_seconds, delay);
    assert_eq!(f.store.row(SEG).unwrap().query_status, "in-progress");
    assert!(f.notifier.sent().is_empty());
}

#[tokio::test]
async fn given_a_running_job_past_the_deadline_when_checked_then_cancelled_and_recorded() {
    let f = fakes();
    started(&f, JOB).await;
    f.warehouse.set_status(JOB, "RUNNING", None);
    let app = f.app();
    let late = now() + Duration::seconds(i64::from(app.schedule.deadline) + 1);
    let out = handle(&app, &build_check(JOB), late).await.unwrap();
    assert_eq!(out, Checked::Canceled { notified: true });
    assert_eq!(f.warehouse.cancelled(), vec![JOB.to_string()]);
    assert_eq!(f.store.row(SEG).unwrap().query_status, "canceled");
    assert!(f.queue.sent_to(CHECK_QUEUE).is_empty());
}

#[tokio::test]
async fn given_a_failed_job_when_checked_then_failed_with_its_error() {
    let f = fakes();
    started(&f, JOB).await;
    f.warehouse.set_status(JOB, "DONE", Some("invalidQuery"));
    let out = handle(&f.app(), &build_check(JOB), now()).await.unwrap();
    assert_eq!(
        out,
        Checked::Finished {
            status: "failed".into(),
            applied: true,
            notified: true
        }
    );
    assert_eq!(f.store.row(SEG).unwrap().query_status, "failed");
    assert_eq!(
        f.store.jobs()[0].error.as_deref(),
        Some("job failed: invalidQuery")
    );
    assert_eq!(
        f.notifier.sent()[0].data["error"],
        "job failed: invalidQuery"
    );
}

#[tokio::test]
async fn given_an_older_build_ending_after_a_newer_one_when_checked_then_the_segment_keeps_the_newer()
 {
    let f = fakes();
    let newer = "segments_rebuild_segment_fedcba9876543210";
    started(&f, JOB).await;
    started(&f, newer).await;
    f.warehouse.set_status(newer, "RUNNING", None);
    f.warehouse.set_status(JOB, "DONE", Some("invalidQuery"));
    let out = handle(&f.app(), &build_check(JOB), now()).await.unwrap();
    assert_eq!(
        out,
        Checked::Finished {
            status: "failed".into(),
            applied: false,
            notified: false
        }
    );
    assert_eq!(f.store.row(SEG).unwrap().query_status, "in-progress");
}

#[tokio::test]
async fn given_another_accounts_job_when_checked_then_rejected_and_nothing_changes() {
    let f = fakes();
    started(&f, JOB).await;
    let forged = CheckJobMessage {
        account_id: OTHER.into(),
        ..build_check(JOB)
    };
    let err = handle(&f.app(), &forged, now()).await.unwrap_err();
    assert!(
        matches!(err, Failure::Rejected(ref m) if m.contains("does not belong")),
        "{err}"
    );
    assert_eq!(f.store.row(SEG).unwrap().query_status, "in-progress");
    assert!(f.notifier.sent().is_empty());
}

#[tokio::test]
async fn given_a_finished_report_when_checked_then_its_rows_are_cached_and_the_report_event_sent() {
    let f = fakes();
    let app = f.app();
    let key = format!("{}abc", keys::report_segment_prefix(ACCOUNT, SEG));
    f.warehouse.set_status("segments_report_1", "DONE", None);
    f.store
        .start_job(&JobRecord {
            job_id: "segments_report_1".into(),
            account_id: ACCOUNT.into(),
            segment_id: Some(SEG.into()),
            action: "query-report-with-segment".into(),
            status: QueryStatus::InProgress,
            bytes_billed: None,
            error: None,
            created_at: now(),
            finished_at: None,
        })
        .await
        .unwrap();
    f.warehouse.put_table(
        &app.dataset(ACCOUNT),
        "report_t",
        vec![vec![json!("mobile"), json!("3")]],
    );
    let msg = CheckJobMessage {
        job_id: "segments_report_1".into(),
        action: JobAction::QueryReportWithSegment,
        job_input_data: JobInput {
            segment_id: Some(SEG.into()),
            report_name: Some("devices".into()),
            cache_key: Some(key.clone()),
            result_table: Some("report_t".into()),
            ..Default::default()
        },
        ..build_check(JOB)
    };
    let out = handle(&app, &msg, now()).await.unwrap();
    assert_eq!(
        out,
        Checked::Finished {
            status: "done".into(),
            applied: true,
            notified: true
        }
    );
    assert_eq!(f.cache.value(&key).as_deref(), Some(r#"[["mobile","3"]]"#));
    let sent = f.notifier.sent();
    assert_eq!(
        (sent[0].event.as_str(), &sent[0].data["cacheKey"]),
        (REPORT_EVENT, &json!(key))
    );
}

#[tokio::test]
async fn given_a_report_cache_key_outside_the_account_when_checked_then_rejected_and_nothing_cached()
 {
    let f = fakes();
    f.warehouse.set_status("segments_report_1", "DONE", None);
    let key = format!("{}abc", keys::report_segment_prefix(OTHER, SEG));
    let msg = CheckJobMessage {
        job_id: "segments_report_1".into(),
        action: JobAction::QueryReportWithSegment,
        job_input_data: JobInput {
            cache_key: Some(key.clone()),
            ..Default::default()
        },
        ..build_check(JOB)
    };
    let err = handle(&f.app(), &msg, now()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent, "{err}");
    assert!(f.cache.keys().is_empty());
    assert!(f.notifier.sent().is_empty());
}

#[tokio::test]
async fn given_pusher_down_when_a_build_ends_then_the_status_is_still_recorded() {
    let f = fakes();
    started(&f, JOB).await;
    let faults = Faults::default();
    faults.fail("notifier.trigger", u32::MAX);
    let out = handle(&f.app_with_faults(&faults), &build_check(JOB), now())
        .await
        .unwrap();
    assert_eq!(
        out,
        Checked::Finished {
            status: "done".into(),
            applied: true,
            notified: false
        }
    );
    assert_eq!(f.store.row(SEG).unwrap().query_status, "done");
}

#[tokio::test]
async fn given_a_status_write_outage_when_checked_then_retry_and_the_redelivery_applies_it() {
    let f = fakes();
    started(&f, JOB).await;
    let faults = Faults::default();
    let app = f.app_with_faults(&faults);
    faults.fail("store.finish_job", 1);
    let err = handle(&app, &build_check(JOB), now()).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Transient);
    assert_eq!(f.store.row(SEG).unwrap().query_status, "in-progress");
    let out = handle(&app, &build_check(JOB), now()).await.unwrap();
    assert!(
        matches!(
            out,
            Checked::Finished {
                applied: true,
                notified: true,
                ..
            }
        ),
        "{out:?}"
    );
}

#[tokio::test]
async fn given_a_check_at_the_largest_attempt_when_requeued_then_the_count_saturates_instead_of_overflowing()
 {
    let f = fakes();
    started(&f, JOB).await;
    f.warehouse.set_status(JOB, "RUNNING", None);
    let msg = CheckJobMessage {
        attempt: u32::MAX,
        ..build_check(JOB)
    };
    let out = handle(&f.app(), &msg, now() + Duration::seconds(2))
        .await
        .unwrap();
    assert!(
        matches!(
            out,
            Checked::Requeued {
                attempt: u32::MAX,
                ..
            }
        ),
        "{out:?}"
    );
    let next = CheckJobMessage::parse(f.queue.sent_to(CHECK_QUEUE)[0].body.as_bytes()).unwrap();
    assert_eq!(next.attempt, u32::MAX);
}

/// A refresh job of OTHER's, as the cronjob submits it: not recorded, its id
/// computable from the segment and the tick.
const THEIR_REFRESH: &str = "segments_refresh_segment_00112233445566778899aabbccddeeff";

fn forged(action: JobAction, input: JobInput) -> CheckJobMessage {
    CheckJobMessage {
        job_id: THEIR_REFRESH.into(),
        account_id: ACCOUNT.into(),
        action,
        job_input_data: input,
        started_at: now() - Duration::hours(2),
        attempt: 0,
    }
}

#[tokio::test]
async fn given_a_forged_check_naming_another_accounts_running_job_when_overdue_then_nothing_is_cancelled()
 {
    for action in [JobAction::QueryReport, JobAction::QueryReportWithSegment] {
        let f = fakes();
        f.warehouse.set_status(THEIR_REFRESH, "RUNNING", None);
        let err = handle(&f.app(), &forged(action, JobInput::default()), now())
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::Permanent, "{err}");
        assert!(f.warehouse.cancelled().is_empty(), "{action:?}");
        assert!(f.notifier.sent().is_empty());
    }
}

#[tokio::test]
async fn given_a_forged_report_check_naming_another_accounts_job_when_done_then_its_rows_are_not_copied()
 {
    let f = fakes();
    f.warehouse.set_status(THEIR_REFRESH, "DONE", None);
    f.warehouse
        .put_results(THEIR_REFRESH, vec![vec![json!("their secret")]]);
    let key = format!("{}x", keys::report_segments_prefix(ACCOUNT));
    let input = JobInput {
        cache_key: Some(key.clone()),
        ..Default::default()
    };
    let err = handle(&f.app(), &forged(JobAction::QueryReport, input), now())
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Permanent, "{err}");
    assert_eq!(f.cache.value(&key), None);
}

#[tokio::test]
async fn given_an_unrecorded_report_with_segment_job_when_checked_then_rejected() {
    let f = fakes();
    f.warehouse.set_status(THEIR_REFRESH, "DONE", None);
    let input = JobInput {
        segment_id: Some(SEG.into()),
        ..Default::default()
    };
    let err = handle(
        &f.app(),
        &forged(JobAction::QueryReportWithSegment, input),
        now(),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, Failure::Rejected(ref m) if m.contains("not one of")),
        "{err}"
    );
    assert!(f.notifier.sent().is_empty());
}
