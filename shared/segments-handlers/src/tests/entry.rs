use super::{ACCOUNT, SEG, fakes, us_sessions};
use crate::entry;
use crate::fakes::{CHECK_QUEUE, DEAD_LETTER_QUEUE, Fakes};
use crate::sqs::{FAILURE_CLASS, FAILURE_REASON, SOURCE_MESSAGE_ID, truncate};
use lambda_runtime::{Context, LambdaEvent};
use segments_infra::error::ErrorClass;
use segments_infra::faults::Faults;
use serde_json::{Value, json};

fn batch(bodies: &[(&str, String)]) -> LambdaEvent<Value> {
    let records: Vec<Value> = bodies
        .iter()
        .map(|(id, body)| json!({"messageId": id, "body": body, "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}}))
        .collect();
    LambdaEvent::new(json!({"Records": records}), Context::default())
}

fn failed_ids(resp: &Value) -> Vec<String> {
    let mut ids: Vec<String> = resp["batchItemFailures"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["itemIdentifier"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

fn create(segment: Value) -> String {
    json!({"action": "create", "accountId": ACCOUNT, "segment": segment}).to_string()
}

#[tokio::test]
async fn given_bad_messages_among_good_when_a_batch_arrives_then_the_bad_go_to_the_dlq_with_their_reason_and_are_acknowledged()
 {
    let f = fakes();
    let bad_rules = json!({"id": SEG, "ruleGroups": [{"mainOperator": "include", "segmentObject": "session",
        "conditionFocus": "property", "g0": {"type": "dimension", "key": "country", "condition": "equal", "value": "x"}}]});
    let good_id = "8c1d2e3f-4a5b-4c6d-8e7f-8091a2b3c4d5";
    let event = batch(&[
        ("good", create(us_sessions(good_id))),
        ("not-json", "{not json".into()),
        ("bad-rules", create(bad_rules)),
    ]);
    let resp = entry::create_segment(&f.app(), event).await.unwrap();
    assert_eq!(failed_ids(&resp), Vec::<String>::new(), "{resp}");
    let mut dead = f.queue.sent_to(DEAD_LETTER_QUEUE);
    dead.sort_by(|a, b| {
        a.attribute(SOURCE_MESSAGE_ID)
            .cmp(&b.attribute(SOURCE_MESSAGE_ID))
    });
    assert_eq!(dead.len(), 2);
    assert_eq!(dead[0].attribute(SOURCE_MESSAGE_ID), Some("bad-rules"));
    assert_eq!(
        dead[0].body,
        create(
            json!({"id": SEG, "ruleGroups": [{"mainOperator": "include", "segmentObject": "session",
        "conditionFocus": "property", "g0": {"type": "dimension", "key": "country", "condition": "equal", "value": "x"}}]})
        )
    );
    assert_eq!(dead[0].attribute(FAILURE_CLASS), Some("permanent"));
    assert_eq!(
        dead[0].attribute(FAILURE_REASON),
        Some(r#"ruleGroups[0].g0.condition: unknown operator "equal""#)
    );
    assert_eq!(dead[1].body, "{not json");
    assert!(
        dead[1]
            .attribute(FAILURE_REASON)
            .unwrap()
            .starts_with("invalid create-segment message: $: not valid JSON"),
        "{dead:?}"
    );
    assert!(
        f.store.row(good_id).is_some(),
        "the good message was handled"
    );
    assert!(f.store.row(SEG).is_none());
}

#[tokio::test]
async fn given_an_outage_when_a_message_fails_then_it_is_a_batch_item_failure_and_not_dead_lettered()
 {
    let f = fakes();
    let faults = Faults::default();
    faults.fail("store.account_time_zone", 1);
    let resp = entry::create_segment(
        &f.app_with_faults(&faults),
        batch(&[("m1", create(us_sessions(SEG)))]),
    )
    .await
    .unwrap();
    assert_eq!(failed_ids(&resp), vec!["m1"]);
    assert!(f.queue.sent_to(DEAD_LETTER_QUEUE).is_empty());
    assert!(f.store.row(SEG).is_none());
}

#[tokio::test]
async fn given_no_dead_letter_queue_url_when_a_message_is_rejected_then_sqs_redrives_it() {
    let f = Fakes::default();
    let mut app = f.app();
    app.dead_letter_queue_url = None;
    let resp = entry::check_job(&app, batch(&[("m1", "{}".into())]))
        .await
        .unwrap();
    assert_eq!(failed_ids(&resp), vec!["m1"]);
    assert!(f.queue.sent().is_empty());
}

#[tokio::test]
async fn given_the_dead_letter_queue_refuses_when_a_message_is_rejected_then_sqs_redrives_it() {
    let f = Fakes::default();
    let faults = Faults::default();
    faults.fail("queue.send", 1);
    let resp = entry::check_job(&f.app_with_faults(&faults), batch(&[("m1", "[]".into())]))
        .await
        .unwrap();
    assert_eq!(failed_ids(&resp), vec!["m1"]);
}

#[tokio::test]
async fn given_a_check_of_another_accounts_job_when_it_arrives_then_it_is_dead_lettered_at_once() {
    let f = fakes();
    let app = f.app();
    entry::create_segment(&app, batch(&[("m1", create(us_sessions(SEG)))]))
        .await
        .unwrap();
    let mut check: Value = f.queue.sent_to(CHECK_QUEUE)[0].json();
    check["accountId"] = super::OTHER.into();
    let resp = entry::check_job(&app, batch(&[("c1", check.to_string())]))
        .await
        .unwrap();
    assert_eq!(failed_ids(&resp), Vec::<String>::new());
    let dead = f.queue.sent_to(DEAD_LETTER_QUEUE);
    assert_eq!(dead.len(), 1);
    assert!(
        dead[0]
            .attribute(FAILURE_REASON)
            .unwrap()
            .contains("does not belong"),
        "{dead:?}"
    );
    assert_eq!(f.store.row(SEG).unwrap().query_status, "in-progress");
}

#[tokio::test]
async fn given_a_report_request_that_does_not_parse_when_it_arrives_then_its_path_is_the_reason() {
    let f = fakes();
    let body = json!({"accountId": ACCOUNT, "object": "session", "dateRange": {"startDate": "June", "endDate": "2024-06-30"}, "segments": []});
    let resp = entry::report(&f.app(), batch(&[("r1", body.to_string())]))
        .await
        .unwrap();
    assert_eq!(failed_ids(&resp), Vec::<String>::new());
    let dead = f.queue.sent_to(DEAD_LETTER_QUEUE);
    let reason = dead[0].attribute(FAILURE_REASON).unwrap();
    assert!(
        reason.starts_with("invalid report-with-segment message: dateRange.startDate"),
        "{reason}"
    );
}

#[tokio::test]
async fn given_an_outage_then_the_class_is_transient_and_a_refusal_permanent() {
    let f = fakes();
    let faults = Faults::default();
    faults.fail_with("store.account_time_zone", 1, ErrorClass::Permanent);
    let resp = entry::create_segment(
        &f.app_with_faults(&faults),
        batch(&[("m1", create(us_sessions(SEG)))]),
    )
    .await
    .unwrap();
    assert_eq!(failed_ids(&resp), Vec::<String>::new());
    let dead = f.queue.sent_to(DEAD_LETTER_QUEUE);
    assert_eq!(dead[0].attribute(FAILURE_CLASS), Some("permanent"));
    assert!(
        dead[0]
            .attribute(FAILURE_REASON)
            .unwrap()
            .contains("injected")
    );
}

#[test]
fn given_a_long_reason_when_truncated_then_cut_on_a_character_boundary_with_a_note() {
    assert_eq!(truncate("abc", 5), "abc");
    assert_eq!(truncate("ééé", 2), "éé... (2 more bytes)");
    assert_eq!(
        truncate(&"x".repeat(5000), 1000).len(),
        1000 + "... (4000 more bytes)".len()
    );
}

#[tokio::test]
async fn given_a_200_kb_bad_id_when_dead_lettered_then_the_reason_is_short() {
    let f = fakes();
    let body = json!({"action": "delete", "accountId": ACCOUNT, "segmentId": "*".repeat(200_000)})
        .to_string();
    let resp = entry::create_segment(&f.app(), batch(&[("m1", body)]))
        .await
        .unwrap();
    assert_eq!(failed_ids(&resp), Vec::<String>::new());
    let reason = f.queue.sent_to(DEAD_LETTER_QUEUE)[0]
        .attribute(FAILURE_REASON)
        .unwrap()
        .to_string();
    assert!(
        reason.len() < 300,
        "{} bytes: {}",
        reason.len(),
        &reason[..300.min(reason.len())]
    );
}
