//! End to end through the Lambda runtime API: the real function binaries run
//! behind `cargo lambda watch --only-lambda-apis`, are invoked with
//! `cargo lambda invoke` and the files of `events/` (with fresh ids swapped in,
//! so runs never collide), against the local stack.
//!
//! Needs `cargo build --workspace --bins` (tests/run.sh does it) and
//! `.venv/bin/cargo-lambda` (tests/stack/up.sh installs it).

use segments_tests::lambda::{
    LocalLambdas, drain, drain_n, fresh_uuid, local_queues, sqs_event, stack_env,
};
use segments_tests::repo_root;
use segments_tests::warehouse::Warehouse;
use serde_json::{Value, json};
use std::time::Duration;

const DEMO_ACCOUNT: &str = "0d6f4b52-6a2c-4c1e-9a8e-3b1f2f0c9d11";
const SESSIONS_SEGMENT: &str = "7b0c1f0e-3f1a-4a59-9a53-2f1c7d7f3b11";
const USERS_SEGMENT: &str = "5d1e2c3b-4a59-4f60-8b71-9c8d7e6f5a40";

struct E2e {
    env: std::collections::HashMap<String, String>,
    lambdas: LocalLambdas,
    ids: Vec<(String, String)>,
    sqs: segments_infra::aws::SqsQueue,
}

impl E2e {
    /// An event file with the demo ids replaced by this run's ids.
    fn event(&self, rel: &str) -> String {
        self.swap(
            std::fs::read_to_string(repo_root().join("events").join(rel))
                .unwrap_or_else(|e| panic!("events/{rel}: {e}")),
        )
    }

    fn swap(&self, mut text: String) -> String {
        for (from, to) in &self.ids {
            text = text.replace(from, to);
        }
        text
    }

    fn invoke(&self, function: &str, data: &str) -> Value {
        self.lambdas
            .invoke(function, data)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    async fn receive(&self, queue: &str) -> Vec<String> {
        drain(&self.sqs, &self.env[queue], Duration::from_secs(30)).await
    }

    async fn receive_n(&self, queue: &str, n: usize) -> Vec<String> {
        drain_n(
            &self.sqs,
            &self.env[queue],
            Some(n),
            Duration::from_secs(30),
        )
        .await
    }
}

fn no_failures(v: &Value) {
    assert_eq!(v["batchItemFailures"], json!([]), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_functions_behind_the_lambda_runtime_api() {
    let root = repo_root();
    let mut env = stack_env();
    let queue = local_queues(&mut env, "e2e").await;
    // One dead-letter queue for the four functions: permanent failures go there at once.
    let dlq = queue
        .client()
        .create_queue()
        .queue_name(format!("e2e-dlq-{}", &fresh_uuid()[..8]))
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap_or_default()
        .to_string();
    env.insert("DEAD_LETTER_QUEUE_URL".into(), dlq);
    env.insert("BIGQUERY_DATASET_PREFIX".into(), "e2e_".into());
    let account = fresh_uuid();
    let ids = vec![
        (DEMO_ACCOUNT.to_string(), account.clone()),
        (SESSIONS_SEGMENT.to_string(), fresh_uuid()),
        (USERS_SEGMENT.to_string(), fresh_uuid()),
        // SQS message ids: fresh per run, so the job ids derived from them are too.
        (
            "00000000-0000-4000-8000-0000000000".to_string(),
            format!("{}-", &fresh_uuid()[..18]),
        ),
    ];
    let (sessions, users) = (ids[1].1.clone(), ids[2].1.clone());

    // The account, and its warehouse in its dataset.
    let store = segments_infra::postgres::PgStore::connect(&env["DATABASE_URL"], 2).unwrap();
    store.migrate().await.unwrap();
    store.upsert_account(&account, "Demo", "UTC").await.unwrap();
    let warehouse = Warehouse::fixture_in(&format!("e2e_{}", account.replace('-', "_"))).await;

    let lambdas = LocalLambdas::start(&env, &root.join("target/debug"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let e = E2e {
        env,
        lambdas,
        ids,
        sqs: queue,
    };

    // create both example segments (SQS and direct invoke).
    no_failures(&e.invoke("create-segment", &e.event("create-segment/create-sqs.json")));
    let users_segment =
        e.swap(std::fs::read_to_string(root.join("docs/examples/returning-users.json")).unwrap());
    let direct = e.invoke("create-segment", &json!({"action": "create", "accountId": account, "segment": serde_json::from_str::<Value>(&users_segment).unwrap()}).to_string());
    assert_eq!(
        direct["segments"][0]["queryStatus"], "in-progress",
        "{direct}"
    );

    // check: both builds end done; the browser hears about each.
    let checks = e.receive_n("CHECK_JOB_QUEUE_URL", 2).await;
    assert_eq!(checks.len(), 2, "{checks:?}");
    no_failures(&e.invoke("check-bigquery-job", &sqs_event(&checks)));
    for s in [&sessions, &users] {
        assert_eq!(
            segments_infra::ports::SegmentStore::segment(&store, &account, s)
                .await
                .unwrap()
                .unwrap()
                .query_status,
            "done"
        );
    }
    let captured: Vec<Value> = reqwest::get(format!("{}/captured", e.env["PUSHER_HOST"]))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mine = captured
        .iter()
        .filter(|c| c["channels"][0] == format!("channel-{account}").as_str())
        .count();
    assert_eq!(mine, 2);
    // The sessions example looks at the last 30 days of real time (the fixture is
    // from 2024): empty. The users example is lifetime: u1 and u2.
    let sessions_table = format!("segment_{}", sessions.replace('-', "_"));
    let users_table = format!("segment_{}", users.replace('-', "_"));
    assert_eq!(
        warehouse.members(&sessions_table).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        warehouse.members(&users_table).await.unwrap(),
        vec!["u1", "u2"]
    );

    // the schedule fans out; the account's refresh submits its jobs.
    let fan = e.invoke("segment-cronjob", &e.event("segment-cronjob/schedule.json"));
    assert!(fan["accounts"].as_u64().unwrap() >= 1, "{fan}");
    let ours: Vec<String> = e
        .receive("CRONJOB_QUEUE_URL")
        .await
        .into_iter()
        .filter(|b| b.contains(&account))
        .collect();
    assert_eq!(ours.len(), 1);
    no_failures(&e.invoke("segment-cronjob", &sqs_event(&ours)));
    // Each refresh is a tracked run: its check records it like a build. (On a
    // slow machine a build's check may come back after its visibility timeout:
    // only the refresh checks are kept.)
    let mut refresh_checks: Vec<String> = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while refresh_checks.len() < 2 && std::time::Instant::now() < deadline {
        for body in e.receive("CHECK_JOB_QUEUE_URL").await {
            if body.contains("\"refresh-segment\"") && !refresh_checks.contains(&body) {
                refresh_checks.push(body);
            }
        }
    }
    assert_eq!(refresh_checks.len(), 2, "{refresh_checks:?}");
    no_failures(&e.invoke("check-bigquery-job", &sqs_event(&refresh_checks)));
    assert_eq!(
        warehouse.members(&sessions_table).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        warehouse.members(&users_table).await.unwrap(),
        vec!["u1", "u2"]
    );

    // a report filtered by both segments writes one result table per segment.
    let report = e.invoke(
        "report-with-segment",
        &e.event("report-with-segment/report.json"),
    );
    let tables = report["segmentTables"].as_array().unwrap();
    assert_eq!(tables.len(), 2, "{report}");
    let checks = e.receive_n("CHECK_JOB_QUEUE_URL", 2).await;
    no_failures(&e.invoke("check-bigquery-job", &sqs_event(&checks)));
    // Report rows: none through the (empty) sessions segment; the users
    // segment keeps the June sessions of u1 and u2.
    let sql: Vec<String> = (0..2)
        .map(|n| {
            format!(
                "SELECT device_type FROM {}",
                warehouse.table(tables[n]["table"].as_str().unwrap())
            )
        })
        .collect();
    assert_eq!(tables[0]["segmentId"], sessions.as_str());
    assert_eq!(
        warehouse.column(&sql[0]).await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        warehouse.column(&sql[1]).await.unwrap(),
        vec!["Desktop", "mobile"]
    );

    // segment-api: a direct invoke, a refusal with its path, and a Function URL request.
    let got = e.invoke("segment-api", &e.event("segment-api/get.json"));
    assert_eq!(got["result"]["id"], sessions.as_str(), "{got}");
    assert!(
        got["result"]["ruleGroups"].is_array() && got["result"].get("query").is_none(),
        "{got}"
    );
    let bad = e.invoke("segment-api", &e.event("segment-api/bad-account.json"));
    assert_eq!(bad["error"]["errors"][0]["path"], "accountId", "{bad}");
    let url = e.invoke("segment-api", &e.event("segment-api/function-url.json"));
    assert_eq!(url["statusCode"], 200, "{url}");
    let listed: Value = serde_json::from_str(url["body"].as_str().unwrap()).unwrap();
    assert_eq!(
        listed["result"]["segments"][0]["name"], "All Data",
        "{listed}"
    );

    // The functions log JSON lines that carry accountId, segmentId and jobId.
    let log = std::fs::read_to_string(root.join(".stack/lambda-check-bigquery-job.log"))
        .unwrap_or_default();
    let tagged = log
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["span"]["accountId"] == account.as_str())
        .filter(|v| {
            v["span"]["segmentId"] == users.as_str()
                && v["span"]["jobId"].as_str().is_some_and(|j| !j.is_empty())
        })
        .count();
    assert!(
        tagged >= 1,
        "no check log line names the account, segment and job"
    );

    // update, rebuild, expire-all, then one bad message among good ones, then delete.
    for f in ["update-sqs", "rebuild-sqs", "expire-all-sqs"] {
        no_failures(&e.invoke(
            "create-segment",
            &e.event(&format!("create-segment/{f}.json")),
        ));
    }
    let row = segments_infra::ports::SegmentStore::segment(&store, &account, &sessions)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.name, "Engaged US sessions (v2)");
    let bad = e.invoke(
        "create-segment",
        &e.event("create-segment/batch-with-a-bad-message-sqs.json"),
    );
    // The two bad ones can never succeed: acknowledged and dead-lettered at once.
    no_failures(&bad);
    let dead = e.receive_n("DEAD_LETTER_QUEUE_URL", 2).await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(dead.iter().any(|b| b == "{not json"), "{dead:?}");
    no_failures(&e.invoke("create-segment", &e.event("create-segment/delete-sqs.json")));
    assert!(
        segments_infra::ports::SegmentStore::segment(&store, &account, &sessions)
            .await
            .unwrap()
            .is_none()
    );
}
