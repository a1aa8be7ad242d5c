//! Benchmark (ignored by default; it measures, it does not assert a time):
//! check-bigquery-job following a build whose BigQuery job really runs for
//! about 5 s and about 60 s, on the emulator with asynchronous jobs
//! (`tests/stack/crucible_async.py`), through real SQS delays (moto), Postgres
//! and Pusher. For each job it reports the Lambda invocations, the BigQuery
//! calls (counted by the emulator on the wire), the time the handler spent
//! (what Lambda bills), and the lateness: from the job's end (BigQuery's
//! `statistics.endTime`) to the notification. It runs our schedule and the
//! primary source's fixed 15 s polling side by side. Run:
//!   cargo test --release -p segments-handlers --test check_job_bench -- --ignored --nocapture

use chrono::Utc;
use segments_core::jobs::CheckSchedule;
use segments_core::messages::CheckJobMessage;
use segments_handlers::check_job::{self, Checked};
use segments_handlers::{App, Failure};
use segments_infra::aws::SqsQueue;
use segments_infra::config::Config;
use segments_infra::ports::{JobRecord, QueryJob, SegmentStore, SegmentWrite};
use segments_infra::postgres::PgStore;
use segments_infra::wiring::Ports;
use segments_tests::lambda::{fresh_uuid, local_queues, stack_env};
use segments_tests::warehouse::{api_calls, async_emulator_url};
use serde_json::json;
use std::time::{Duration, Instant};

/// A query whose run time grows with `rows` (DuckDB cannot shortcut it).
fn busy_query(rows: u64) -> String {
    let outer = rows / 10_000 + 1;
    format!(
        "SELECT COUNT(*) AS n FROM UNNEST(GENERATE_ARRAY(1, {outer})) AS a \
         CROSS JOIN UNNEST(GENERATE_ARRAY(1, 10000)) AS b WHERE MOD(a * b, 7) = 3"
    )
}

struct Bench {
    app: App,
    store: PgStore,
    sqs: SqsQueue,
    url: String,
    account: String,
}

struct Measured {
    job_seconds: f64,
    invocations: u32,
    calls: String,
    call_count: u32,
    handler_seconds: f64,
    late_seconds: f64,
}

impl Bench {
    /// Runs one job of about `seconds` and follows it with `schedule`.
    async fn follow(&mut self, rows: u64, schedule: CheckSchedule) -> Measured {
        self.app.schedule = schedule;
        let segment = fresh_uuid();
        let job_id = format!("bench_check_{}", segment.replace('-', "_"));
        self.store
            .save_segment(&SegmentWrite {
                id: segment.clone(),
                account_id: self.account.clone(),
                name: "bench".into(),
                description: None,
                rule_groups: "[]".into(),
                query: String::new(),
            })
            .await
            .unwrap();
        let now = Utc::now();
        self.store
            .start_job(&JobRecord {
                job_id: job_id.clone(),
                account_id: self.account.clone(),
                segment_id: Some(segment.clone()),
                action: "create-segment".into(),
                status: segments_core::jobs::QueryStatus::InProgress,
                bytes_billed: None,
                error: None,
                created_at: now,
                finished_at: None,
            })
            .await
            .unwrap();
        self.app
            .ports
            .warehouse
            .submit(&QueryJob {
                job_id: job_id.clone(),
                sql: busy_query(rows),
                labels: vec![],
                batch: false,
                maximum_bytes_billed: i64::MAX,
            })
            .await
            .unwrap();
        // What create-segment queues after submitting a build.
        let first = CheckJobMessage::parse(
            json!({"jobId": job_id, "accountId": self.account, "action": "create-segment",
                "jobInputData": {"segmentId": segment}, "startedAt": now.to_rfc3339(), "attempt": 0})
            .to_string()
            .as_bytes(),
        )
        .unwrap();
        self.app
            .queue_check(&first, self.app.schedule.first_delay)
            .await
            .unwrap();

        let mut invocations = 0;
        let mut handler = Duration::ZERO;
        let notified_at = loop {
            let r = self
                .sqs
                .client()
                .receive_message()
                .queue_url(&self.app.check_queue_url)
                .max_number_of_messages(1)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            let Some(m) = r.messages().first() else {
                continue;
            };
            let msg = CheckJobMessage::parse(m.body().unwrap_or_default().as_bytes()).unwrap();
            invocations += 1;
            let t = Instant::now();
            let out: Result<Checked, Failure> =
                check_job::handle(&self.app, &msg, Utc::now()).await;
            handler += t.elapsed();
            let at = Utc::now();
            self.sqs
                .client()
                .delete_message()
                .queue_url(&self.app.check_queue_url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .unwrap();
            println!(
                "    check {invocations} at +{:.1} s: {:?}",
                (at - now).num_milliseconds() as f64 / 1000.0,
                out.as_ref().map_err(|e| e.to_string())
            );
            match out.unwrap() {
                Checked::Finished { notified, .. } => {
                    assert!(notified, "the browser was not notified");
                    break at;
                }
                Checked::Requeued { .. } => {}
                other => panic!("unexpected {other:?}"),
            }
        };
        let all = api_calls(&self.url, &self.app.project).await;
        let mut calls = all.get(&job_id).cloned().unwrap_or_default();
        // The submission is create-segment's, the same under both schedules.
        calls.remove("jobs.insert");
        // The bench's own read of the job's times, below, is not the handler's.
        let status = self.app.ports.warehouse.status(&job_id).await.unwrap();
        let (started, ended) = (status.started_at.unwrap(), status.ended_at.unwrap());
        Measured {
            job_seconds: (ended - started).num_milliseconds() as f64 / 1000.0,
            invocations,
            call_count: calls.values().sum(),
            calls: calls
                .iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect::<Vec<_>>()
                .join(" + "),
            handler_seconds: handler.as_secs_f64(),
            late_seconds: (notified_at - ended).num_milliseconds() as f64 / 1000.0,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly"]
async fn check_job_for_5_s_and_60_s_jobs() {
    let mut env = stack_env();
    let url = async_emulator_url(&env);
    env.insert("BIGQUERY_BASE_URL".into(), url.clone());
    let sqs = local_queues(&mut env, "checkbench").await;
    let config = Config::from_map(&env).unwrap();
    let store = PgStore::connect(&config.database_url.0, 4).unwrap();
    store.migrate().await.unwrap();
    let account = fresh_uuid();
    store
        .upsert_account(&account, "Bench", "UTC")
        .await
        .unwrap();
    let app = App::new(
        &config,
        Ports::connect(&config).await.unwrap(),
        segments_core::Catalog::default_catalog(),
    );
    let mut bench = Bench {
        app,
        store,
        sqs,
        url,
        account,
    };

    // Calibrate: how many rows the emulator gets through in a second here.
    let probe_rows = 200_000_000;
    let probe = bench.follow(probe_rows, CheckSchedule::default()).await;
    let rows_per_second = probe_rows as f64 / probe.job_seconds.max(0.01);
    println!(
        "calibration: {probe_rows} rows in {:.2} s",
        probe.job_seconds
    );

    let ours = CheckSchedule::default();
    let primary = CheckSchedule {
        first_delay: 15,
        window: 0,
        gap: 15,
        deadline: ours.deadline,
    };
    println!(
        "| job | schedule | job ran | invocations | BigQuery calls | handler time (billed) | job end → notification |"
    );
    println!("|---|---|---|---|---|---|---|");
    for target in [5.0, 60.0] {
        let rows = (rows_per_second * target) as u64;
        for (name, schedule) in [
            (
                "ours: first check at 2 s, waits up to 13 s, re-queued 2 s",
                ours,
            ),
            ("fixed 15 s polling (primary source)", primary),
        ] {
            let m = bench.follow(rows, schedule).await;
            println!(
                "| {target:.0} s | {name} | {:.1} s | {} | {} ({}) | {:.1} s | {:.1} s |",
                m.job_seconds,
                m.invocations,
                m.call_count,
                m.calls,
                m.handler_seconds,
                m.late_seconds
            );
        }
    }
}
