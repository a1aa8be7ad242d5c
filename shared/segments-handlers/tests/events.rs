//! Every sample event in `events/` is what its function accepts: SQS-wrapped
//! bodies parse as that function's messages (except the deliberately bad ones),
//! direct invokes parse as requests, and the schedule is an EventBridge event.

use aws_lambda_events::eventbridge::EventBridgeEvent;
use aws_lambda_events::sqs::SqsEvent;
use segments_core::messages::{CheckJobMessage, CronjobMessage, SegmentCommand};
use serde_json::Value;
use std::path::PathBuf;

fn events_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

fn load(rel: &str) -> Value {
    let p = events_dir().join(rel);
    serde_json::from_str(
        &std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())),
    )
    .unwrap()
}

/// Parses each SQS body with `parse`; returns how many failed.
fn sqs_failures(rel: &str, parse: fn(&[u8]) -> bool) -> usize {
    let event: SqsEvent =
        serde_json::from_value(load(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"));
    assert!(!event.records.is_empty(), "{rel}");
    event
        .records
        .iter()
        .filter(|m| !parse(m.body.as_deref().unwrap_or("").as_bytes()))
        .count()
}

#[test]
fn every_sample_event_is_accepted() {
    let seg = |b: &[u8]| SegmentCommand::parse(b).is_ok();
    for f in [
        "create-sqs",
        "update-sqs",
        "rebuild-sqs",
        "delete-sqs",
        "expire-all-sqs",
    ] {
        assert_eq!(
            sqs_failures(&format!("create-segment/{f}.json"), seg),
            0,
            "{f}"
        );
    }
    assert_eq!(
        sqs_failures("create-segment/batch-with-a-bad-message-sqs.json", seg),
        2
    );
    assert!(
        SegmentCommand::parse(load("create-segment/create.json").to_string().as_bytes()).is_ok()
    );
    assert_eq!(
        sqs_failures("check-bigquery-job/check-sqs.json", |b| {
            CheckJobMessage::parse(b).is_ok()
        }),
        0
    );
    assert_eq!(
        sqs_failures("segment-cronjob/account-sqs.json", |b| {
            CronjobMessage::parse(b).is_ok()
        }),
        0
    );
    let schedule: EventBridgeEvent =
        serde_json::from_value(load("segment-cronjob/schedule.json")).unwrap();
    assert_eq!(schedule.detail_type, "Scheduled Event");
    let report = |b: &[u8]| segments_core::report::parse_report_request(b).is_ok();
    assert_eq!(
        sqs_failures("report-with-segment/report-sqs.json", report),
        0
    );
    assert!(report(
        load("report-with-segment/report.json")
            .to_string()
            .as_bytes()
    ));
}

#[test]
fn every_event_file_is_listed_in_the_events_readme() {
    let readme = std::fs::read_to_string(events_dir().join("README.md")).unwrap();
    for dir in std::fs::read_dir(events_dir())
        .unwrap()
        .flatten()
        .filter(|d| d.path().is_dir())
    {
        for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let rel = format!(
                "{}/{}",
                dir.file_name().to_string_lossy(),
                f.file_name().to_string_lossy()
            );
            assert!(
                readme.contains(&rel),
                "events/README.md does not describe {rel}"
            );
        }
    }
}

/// Every file, whatever it is named: its function's parser accepts it, unless
/// the file exists to be refused (`bad`, `invalid`, `too-many` in its name).
#[test]
fn every_event_file_parses_with_its_functions_parser() {
    for dir in std::fs::read_dir(events_dir())
        .unwrap()
        .flatten()
        .filter(|d| d.path().is_dir())
    {
        let function = dir.file_name().to_string_lossy().into_owned();
        let parse: fn(&[u8]) -> bool = match function.as_str() {
            // The envelope, and for create/update the rules inside it.
            "create-segment" => |b| match SegmentCommand::parse(b) {
                Ok(
                    SegmentCommand::Create { segment, .. } | SegmentCommand::Update { segment, .. },
                ) => segments_core::parse_segment(&segment).is_ok_and(|s| {
                    segments_core::validate_segment(&s, &segments_core::Catalog::default_catalog())
                        .is_ok()
                }),
                Ok(_) => true,
                Err(_) => false,
            },
            "check-bigquery-job" => |b| CheckJobMessage::parse(b).is_ok(),
            "segment-cronjob" => |b| {
                CronjobMessage::parse(b).is_ok()
                    || serde_json::from_slice::<EventBridgeEvent>(b).is_ok()
            },
            "report-with-segment" => |b| segments_core::report::parse_report_request(b).is_ok(),
            // The envelope (direct or Function URL), and a `test`'s rules.
            "segment-api" => |b| {
                let Ok(v) = serde_json::from_slice::<Value>(b) else {
                    return false;
                };
                match segments_handlers::api::parse_request(&v) {
                    Ok(mut r) if r["action"] == "test" => {
                        // An unsaved segment gets a placeholder id, as the action does.
                        r["segment"]["id"] =
                            Value::from(segments_handlers::api::testing::UNSAVED_ID);
                        segments_core::check_segment(
                            &r["segment"],
                            &segments_core::Catalog::default_catalog(),
                        )
                        .is_ok()
                    }
                    Ok(_) => true,
                    Err(_) => false,
                }
            },
            other => panic!("events/{other}: no function of that name"),
        };
        for f in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            let rel = format!("{function}/{name}");
            let v = load(&rel);
            let bodies: Vec<String> = match v.get("Records") {
                Some(_) => serde_json::from_value::<SqsEvent>(v.clone())
                    .unwrap_or_else(|e| panic!("{rel}: {e}"))
                    .records
                    .into_iter()
                    .map(|m| m.body.unwrap_or_default())
                    .collect(),
                None => vec![v.to_string()],
            };
            let refused = bodies.iter().filter(|b| !parse(b.as_bytes())).count();
            let meant_to_fail = ["bad", "invalid", "too-many"]
                .iter()
                .any(|w| name.contains(w));
            if meant_to_fail {
                assert!(refused > 0, "{rel} is meant to be refused but parses");
            } else {
                assert_eq!(
                    refused,
                    0,
                    "{rel}: {refused} of {} messages do not parse",
                    bodies.len()
                );
            }
        }
    }
}
