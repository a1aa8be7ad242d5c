//! segment-api on the real local stack: Postgres, Redis, moto (S3), the
//! BigQuery emulator with the fixture warehouse. Exact rows, cache keys and
//! TTLs, CSV bytes and URLs; a foreign account refused; bad input answered
//! with its path.

use async_trait::async_trait;
use chrono::Utc;
use segments_core::Catalog;
use segments_core::jobs::QueryStatus;
use segments_core::messages::SegmentCommand;
use segments_handlers::api::{self, ApiError};
use segments_handlers::check_job::{self, Checked};
use segments_handlers::{App, Failure, create_segment, report};
use segments_infra::aws::{S3Store, sdk_config};
use segments_infra::config::Config;
use segments_infra::ports::{JobStatus, QueryJob, SegmentStore, Warehouse};
use segments_infra::postgres::PgStore;
use segments_infra::wiring::Ports;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

use segments_tests::lambda::{fresh_uuid as uuid, stack_env};

struct Env {
    app: App,
    account: String,
    store: PgStore,
    redis: redis::aio::MultiplexedConnection,
    bucket: String,
}

async fn env() -> Env {
    env_with(|_| {}).await
}

async fn env_with(tweak: impl FnOnce(&mut std::collections::HashMap<String, String>)) -> Env {
    let mut vars = stack_env();
    tweak(&mut vars);
    let _sqs = segments_tests::lambda::local_queues(&mut vars, "api").await;
    let account = uuid();
    vars.insert("BIGQUERY_DATASET_PREFIX".into(), "api_".into());
    let bucket = format!("static-api-{}", &uuid()[..8]);
    vars.insert("STATIC_BUCKET".into(), bucket.clone());
    let config = Config::from_map(&vars).unwrap();
    let store = PgStore::connect(&config.database_url.0, 4).unwrap();
    store.migrate().await.unwrap();
    store.upsert_account(&account, "Acme", "UTC").await.unwrap();
    let mut ports = Ports::connect(&config).await.unwrap();
    // The harness's clients: credentials from the stack's env, not the process's.
    let sdk = sdk_config(
        &vars["AWS_REGION"],
        Some(&vars["AWS_ENDPOINT_URL"]),
        Some((&vars["AWS_ACCESS_KEY_ID"], &vars["AWS_SECRET_ACCESS_KEY"])),
    )
    .await;
    let s3 = S3Store::new(&sdk);
    s3.client()
        .create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .unwrap();
    ports.objects = Arc::new(s3);
    ports.queue = Arc::new(_sqs);
    let app = App::new(&config, ports, Catalog::default_catalog());
    segments_tests::warehouse::Warehouse::fixture_in(&app.dataset(&account)).await;
    let redis = redis::Client::open(vars["REDIS_URL"].as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    Env {
        app,
        account,
        store,
        redis,
        bucket,
    }
}

impl Env {
    async fn call(&self, req: Value) -> Result<Value, ApiError> {
        api::handle(&self.app, &req, &uuid(), Utc::now()).await
    }
    async fn ttl(&self, key: &str) -> i64 {
        let mut c = self.redis.clone();
        redis::cmd("TTL")
            .arg(key)
            .query_async(&mut c)
            .await
            .unwrap()
    }
    /// Creates a segment and marks its build done (the emulator ran it at submit).
    async fn segment(&self, name: &str, object_rules: Value) -> String {
        let id = uuid();
        self.create(&id, name, object_rules).await.unwrap();
        id
    }
    async fn create(&self, id: &str, name: &str, rules: Value) -> Result<(), Failure> {
        let mut seg = json!({"id": id, "ruleGroups": rules});
        if !name.is_empty() {
            seg["name"] = json!(name);
        }
        let cmd = SegmentCommand::parse(
            json!({"action": "create", "accountId": self.account, "segment": seg})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        let out = create_segment::handle(&self.app, &cmd, &uuid(), Utc::now()).await?;
        let job = out.segments[0].job_id.clone().unwrap();
        self.store
            .finish_job(&job, QueryStatus::Done, Some(10), None, Utc::now())
            .await
            .unwrap();
        Ok(())
    }
}

fn equals(key: &str, value: &str) -> Value {
    json!([{"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
        "g0": {"type": "dimension", "key": key, "condition": "equals", "value": value}}])
}

/// The one error's path and message.
fn refusal(r: Result<Value, ApiError>) -> (u16, String, String) {
    let e = r.expect_err("refused");
    assert_eq!(e.errors.len(), 1, "{e:?}");
    (
        e.status,
        e.errors[0].path.clone(),
        e.errors[0].message.clone(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_list_enable_disable_and_names() {
    let e = env().await;
    let us = e.segment("US sessions", equals("country", "us")).await;
    let desktop = e
        .segment("Desktop sessions", equals("device_type", "desktop"))
        .await;
    let key = format!("redis_segments_{}", e.account);

    // list: from Postgres, then cached for 1 hour under redis_segments_{accountId}.
    let first = e
        .call(json!({"action": "list", "accountId": e.account}))
        .await
        .unwrap();
    assert_eq!(first["cached"], false);
    let names: Vec<&str> = first["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["All Data", "US sessions", "Desktop sessions"]);
    assert_eq!(first["segments"][1]["ruleGroups"], equals("country", "us"));
    assert_eq!(first["segments"][0]["ruleGroups"], json!([]));
    assert!(first["segments"][1].get("query").is_none(), "no query text");
    assert_eq!(first["segments"][1]["queryStatus"], "done");
    let ttl = e.ttl(&key).await;
    assert!((3590..=3600).contains(&ttl), "TTL {ttl}");
    let second = e
        .call(json!({"action": "list", "accountId": e.account}))
        .await
        .unwrap();
    assert_eq!(second["cached"], true);
    assert_eq!(second["segments"], first["segments"]);

    // get: one segment, the same view.
    let got = e
        .call(json!({"action": "get", "accountId": e.account, "segmentId": us}))
        .await
        .unwrap();
    assert_eq!(got, first["segments"][1]);

    // disable: status false, the list's cache cleared, reports refuse it.
    let off = e
        .call(json!({"action": "disable", "accountId": e.account, "segmentId": desktop}))
        .await
        .unwrap();
    assert_eq!(off["status"], false);
    assert_eq!(e.ttl(&key).await, -2, "the cached list is cleared");
    let list = e
        .call(json!({"action": "list", "accountId": e.account}))
        .await
        .unwrap();
    assert_eq!(list["cached"], false);
    assert_eq!(list["segments"][2]["status"], false);
    let report_req = json!({"accountId": e.account, "object": "session", "dateRange": {"startDate": "2024-01-01", "endDate": "2024-12-31"},
        "dimensions": ["device_type"], "metrics": ["sessions"], "segments": [desktop]});
    assert_eq!(
        report::handle(&e.app, &report_req, "r1", Utc::now())
            .await
            .unwrap_err(),
        Failure::Rejected(format!("segment {desktop} is disabled"))
    );
    let on = e
        .call(json!({"action": "enable", "accountId": e.account, "segmentId": desktop}))
        .await
        .unwrap();
    assert_eq!(on["status"], true);
    assert!(
        report::handle(&e.app, &report_req, "r2", Utc::now())
            .await
            .is_ok()
    );
    let all_data = first["segments"][0]["id"].as_str().unwrap();
    assert_eq!(
        refusal(
            e.call(json!({"action": "disable", "accountId": e.account, "segmentId": all_data}))
                .await
        ),
        (
            400,
            "segmentId".into(),
            "the \"All Data\" segment cannot be disabled".into()
        )
    );

    // Every change clears the list: create, update (through create-segment) too.
    e.call(json!({"action": "list", "accountId": e.account}))
        .await
        .unwrap();
    assert!(e.ttl(&key).await > 0);
    let third = e.segment("Third", equals("country", "de")).await;
    assert_eq!(e.ttl(&key).await, -2, "create clears the cached list");

    // Names: required, at most 200 characters, unique per account (any case, trimmed).
    let long = "x".repeat(201);
    for (name, message) in [
        ("", "segment.name: is required".to_string()),
        (
            long.as_str(),
            "segment.name: is 201 characters long; at most 200".to_string(),
        ),
        (
            " us SESSIONS ",
            "segment.name: another segment of the account is named \"us SESSIONS\"".to_string(),
        ),
    ] {
        assert_eq!(
            e.create(&uuid(), name, equals("country", "us"))
                .await
                .unwrap_err(),
            Failure::Rejected(message)
        );
    }
    // Renaming onto another segment's name is refused too; keeping one's own is not.
    assert_eq!(
        e.create(&third, "Desktop sessions", equals("country", "de"))
            .await
            .unwrap_err(),
        Failure::Rejected(
            "segment.name: another segment of the account is named \"Desktop sessions\"".into()
        )
    );
    e.create(&third, "Third", equals("country", "de"))
        .await
        .unwrap();
    assert_eq!(
        e.store.segments(&e.account).await.unwrap().len(),
        4,
        "nothing written"
    );
    // 200 characters exactly is stored whole (no longer cut).
    let exact = "é".repeat(200);
    let id = uuid();
    e.create(&id, &exact, equals("country", "fr"))
        .await
        .unwrap();
    assert_eq!(
        e.store
            .segment(&e.account, &id)
            .await
            .unwrap()
            .unwrap()
            .name,
        exact
    );

    // A foreign account: its segments are not found; bad input names its path.
    let other = uuid();
    e.store
        .upsert_account(&other, "Other", "UTC")
        .await
        .unwrap();
    for action in ["get", "enable", "disable"] {
        assert_eq!(
            refusal(
                e.call(json!({"action": action, "accountId": other, "segmentId": us}))
                    .await
            ),
            (
                404,
                "segmentId".into(),
                format!("segment {us} does not belong to account {other}")
            )
        );
    }
    assert!(
        e.store
            .segment(&e.account, &us)
            .await
            .unwrap()
            .unwrap()
            .status,
        "the foreign disable changed nothing"
    );
    assert_eq!(
        refusal(e.call(json!({"action": "list", "accountId": "nope"})).await),
        (400, "accountId".into(), "\"nope\" is not a UUID".into())
    );
    assert_eq!(
        refusal(e.call(json!({"action": "list", "accountId": uuid()})).await).1,
        "accountId"
    );
    assert_eq!(
        refusal(
            e.call(json!({"action": "get", "accountId": e.account}))
                .await
        ),
        (400, "segmentId".into(), "is required".into())
    );
    assert_eq!(
        refusal(
            e.call(json!({"action": "explode", "accountId": e.account}))
                .await
        )
        .1,
        "action"
    );
    assert_eq!(refusal(e.call(json!([1])).await).1, "$");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn function_url_requests_get_http_answers() {
    let e = env().await;
    let body = json!({"action": "get", "accountId": e.account, "segmentId": uuid()}).to_string();
    let event = |body: &str| {
        lambda_runtime::LambdaEvent::new(
            json!({"version": "2.0", "rawPath": "/", "requestContext": {"http": {"method": "POST"}}, "body": body, "isBase64Encoded": false}),
            lambda_runtime::Context::default(),
        )
    };
    let out = api::entry(&e.app, event(&body)).await.unwrap();
    assert_eq!(out["statusCode"], 404);
    let answer: Value = serde_json::from_str(out["body"].as_str().unwrap()).unwrap();
    assert_eq!(answer["error"]["kind"], "not-found");
    assert_eq!(answer["error"]["errors"][0]["path"], "segmentId");
    let ok = api::entry(
        &e.app,
        event(&json!({"action": "list", "accountId": e.account}).to_string()),
    )
    .await
    .unwrap();
    assert_eq!(ok["statusCode"], 200);
    let answer: Value = serde_json::from_str(ok["body"].as_str().unwrap()).unwrap();
    assert_eq!(answer["result"]["segments"][0]["name"], "All Data");
    let bad = api::entry(&e.app, event("{not json")).await.unwrap();
    assert_eq!(bad["statusCode"], 400);
    // A direct invoke answers the body alone.
    let direct = api::entry(
        &e.app,
        lambda_runtime::LambdaEvent::new(
            json!({"action": "list", "accountId": "x"}),
            Default::default(),
        ),
    )
    .await
    .unwrap();
    assert_eq!(direct["error"]["errors"][0]["path"], "accountId");
}

/// The real warehouse, recording the SQL submitted; its dry run says `scans`
/// bytes when set (the emulator has no dry run).
struct Probe {
    inner: Arc<dyn Warehouse>,
    scans: Option<i64>,
    state: Arc<ProbeState>,
}

#[derive(Default)]
struct ProbeState {
    submitted: std::sync::Mutex<Vec<String>>,
    /// The next this many submissions fail as an outage would.
    failing_submits: std::sync::atomic::AtomicU32,
}

impl ProbeState {
    fn last(&self) -> String {
        self.submitted.lock().unwrap().last().cloned().unwrap()
    }
}

impl Probe {
    fn install(app: &mut App, scans: Option<i64>) -> Arc<ProbeState> {
        let state = Arc::new(ProbeState::default());
        app.ports.warehouse = Arc::new(Probe {
            inner: app.ports.warehouse.clone(),
            scans,
            state: state.clone(),
        });
        state
    }
}

#[async_trait]
impl Warehouse for Probe {
    async fn submit(&self, job: &QueryJob) -> segments_infra::Result<(JobStatus, bool)> {
        use std::sync::atomic::Ordering;
        if self
            .state
            .failing_submits
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(segments_infra::InfraError::Warehouse(
                "injected outage".into(),
            ));
        }
        self.state.submitted.lock().unwrap().push(job.sql.clone());
        self.inner.submit(job).await
    }
    async fn status(&self, job_id: &str) -> segments_infra::Result<JobStatus> {
        self.inner.status(job_id).await
    }
    async fn wait(&self, job_id: &str, t: Duration) -> segments_infra::Result<JobStatus> {
        self.inner.wait(job_id, t).await
    }
    async fn cancel(&self, job_id: &str) -> segments_infra::Result<()> {
        self.inner.cancel(job_id).await
    }
    async fn rows(&self, job_id: &str, n: usize) -> segments_infra::Result<Vec<Vec<Value>>> {
        self.inner.rows(job_id, n).await
    }
    async fn table_rows(
        &self,
        d: &str,
        t: &str,
        n: usize,
    ) -> segments_infra::Result<Vec<Vec<Value>>> {
        self.inner.table_rows(d, t, n).await
    }
    async fn ensure_dataset(&self, d: &str) -> segments_infra::Result<()> {
        self.inner.ensure_dataset(d).await
    }
    async fn dry_run(&self, sql: &str) -> segments_infra::Result<i64> {
        match self.scans {
            Some(n) => Ok(n),
            None => self.inner.dry_run(sql).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_validates_renders_and_dry_runs() {
    let mut e = env().await;
    let seg = json!({"name": "US", "ruleGroups": equals("country", "us")});
    let out = e
        .call(json!({"action": "test", "accountId": e.account, "segment": seg}))
        .await
        .unwrap();
    assert_eq!(out["valid"], true);
    assert_eq!(out["table"], "segment_00000000_0000_0000_0000_000000000000");
    let dataset = e.app.dataset(&e.account);
    assert!(
        out["createTableQuery"]
            .as_str()
            .unwrap()
            .starts_with(&format!("CREATE OR REPLACE TABLE `segments-local.{dataset}.segment_00000000_0000_0000_0000_000000000000`")),
        "{}",
        out["createTableQuery"]
    );
    assert!(out["cronjobQuery"].as_str().unwrap().starts_with("MERGE"));
    // The emulator cannot estimate: said so, not invented.
    assert_eq!(out["dryRun"]["supported"], false);
    assert_eq!(
        out["dryRun"]["maximumBytesBilled"],
        e.app.maximum_bytes_billed
    );

    // Bad rules: every error with its path under `segment`.
    let bad = json!({"name": "x", "ruleGroups": [{"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
        "g0": {"type": "dimension", "key": "country", "condition": "equal", "value": "us"}}]});
    let err = e
        .call(json!({"action": "test", "accountId": e.account, "segment": bad}))
        .await
        .unwrap_err();
    assert_eq!(err.status, 400);
    assert_eq!(err.errors[0].path, "segment.ruleGroups[0].g0.condition");
    assert_eq!(
        refusal(
            e.call(json!({"action": "test", "accountId": e.account}))
                .await
        ),
        (400, "segment".into(), "is required".into())
    );

    // A warehouse that can estimate: the bytes, and a refusal over the cap.
    let real = e.app.ports.warehouse.clone();
    let cap = e.app.maximum_bytes_billed;
    Probe::install(&mut e.app, Some(1_234));
    let out = e
        .call(json!({"action": "test", "accountId": e.account, "segment": seg}))
        .await
        .unwrap();
    assert_eq!(
        out["dryRun"],
        json!({"supported": true, "totalBytesProcessed": 1234, "maximumBytesBilled": cap})
    );
    e.app.ports.warehouse = real;
    Probe::install(&mut e.app, Some(cap + 1));
    let err = e
        .call(json!({"action": "test", "accountId": e.account, "segment": seg}))
        .await
        .unwrap_err();
    assert_eq!((err.status, err.kind), (422, "over-byte-cap"));
    assert_eq!(
        err.errors[0].message,
        format!(
            "a build would scan {} bytes, over the cap of {cap} (BIGQUERY_MAXIMUM_BYTES_BILLED)",
            cap + 1
        )
    );
}

fn positions(links: &Value) -> Vec<(String, Value, bool)> {
    links["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["segmentName"].as_str().unwrap().to_string(),
                l["position"].clone(),
                l["sticky"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_applied_to_reports() {
    let e = env().await;
    let mut ids = Vec::new();
    for (name, country) in [
        ("A", "us"),
        ("B", "de"),
        ("C", "fr"),
        ("D", "germany"),
        ("E", "us"),
    ] {
        ids.push(e.segment(name, equals("country", country)).await);
    }
    let user = uuid();
    let link = |seg: &str, report: &str, extra: Value| {
        let mut r = json!({"action": "link-report", "accountId": e.account, "userId": user, "reportName": report, "segmentId": seg});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        r
    };
    // A sticky link applies to every report of the user.
    let out = e
        .call(link(&ids[0], "sessions", json!({"sticky": true})))
        .await
        .unwrap();
    assert_eq!(positions(&out), [("A".into(), json!(1), true)]);
    for s in &ids[1..4] {
        e.call(link(s, "sessions", json!({"object": "session"})))
            .await
            .unwrap();
    }
    let out = e
        .call(json!({"action": "report-segments", "accountId": e.account, "userId": user, "reportName": "sessions"}))
        .await
        .unwrap();
    assert_eq!(
        positions(&out),
        [
            ("A".into(), json!(1), true),
            ("B".into(), json!(2), false),
            ("C".into(), json!(3), false),
            ("D".into(), json!(4), false)
        ]
    );
    assert_eq!(out["links"][1]["object"], "session");
    // Linking a linked segment again updates it in place: it keeps its position.
    let out = e
        .call(link(
            &ids[1],
            "sessions",
            json!({"reportType": "analytics"}),
        ))
        .await
        .unwrap();
    assert_eq!(positions(&out)[1], ("B".into(), json!(2), false));
    assert_eq!(out["links"][1]["reportType"], "analytics");
    // A fifth applied segment is refused; linked but not applied is fine.
    assert_eq!(
        refusal(e.call(link(&ids[4], "sessions", json!({}))).await),
        (
            409,
            "segmentId".into(),
            "4 segments are applied to this report already; at most 4".into()
        )
    );
    let out = e
        .call(link(&ids[4], "sessions", json!({"apply": false})))
        .await
        .unwrap();
    assert_eq!(positions(&out)[4], ("E".into(), Value::Null, false));
    // Another report of the same user sees the sticky one only; another user nothing.
    let other_report = e
        .call(json!({"action": "report-segments", "accountId": e.account, "userId": user, "reportName": "users"}))
        .await
        .unwrap();
    assert_eq!(positions(&other_report), [("A".into(), json!(1), true)]);
    let nobody = e
        .call(json!({"action": "report-segments", "accountId": e.account, "userId": uuid(), "reportName": "sessions"}))
        .await
        .unwrap();
    assert_eq!(nobody["links"], json!([]));

    // applyChart on exactly the named segments.
    let out = e
        .call(json!({"action": "apply-chart", "accountId": e.account, "userId": user, "reportName": "sessions", "segmentIds": [ids[1], ids[3]]}))
        .await
        .unwrap();
    let charted: Vec<bool> = out["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["applyChart"].as_bool().unwrap())
        .collect();
    assert_eq!(charted, [false, true, false, true, false]);
    assert_eq!(
        refusal(e.call(json!({"action": "apply-chart", "accountId": e.account, "userId": user, "reportName": "sessions", "segmentIds": [ids[4]]})).await),
        (404, "segmentIds[0]".into(), format!("segment {} is not applied to report \"sessions\" of this user", ids[4]))
    );
    assert_eq!(
        refusal(e.call(json!({"action": "apply-chart", "accountId": e.account, "userId": user, "reportName": "sessions", "segmentIds": ["x"]})).await).1,
        "segmentIds[0]"
    );

    // report-with-segment: a request naming no segment uses the applied ones, in order.
    let request = json!({"accountId": e.account, "userId": user, "reportName": "sessions", "object": "session",
        "dateRange": {"startDate": "2024-01-01", "endDate": "2024-12-31"}, "dimensions": ["device_type"], "metrics": ["sessions"]});
    let resp = report::handle(&e.app, &request, "applied-1", Utc::now())
        .await
        .unwrap();
    let used: Vec<&str> = resp
        .segment_tables
        .iter()
        .map(|t| t.segment_id.as_str())
        .collect();
    assert_eq!(used, [&ids[0], &ids[1], &ids[2], &ids[3]]);
    // Unlinking removes it (the sticky link too); the next report uses the rest.
    let out = e
        .call(json!({"action": "unlink-report", "accountId": e.account, "userId": user, "reportName": "sessions", "segmentId": ids[0]}))
        .await
        .unwrap();
    assert_eq!(positions(&out)[0], ("B".into(), json!(1), false));
    let resp = report::handle(&e.app, &request, "applied-2", Utc::now())
        .await
        .unwrap();
    assert_eq!(resp.segment_tables.len(), 3);
    assert_eq!(resp.segment_tables[0].segment_id, ids[1]);
    assert_eq!(
        refusal(e.call(json!({"action": "unlink-report", "accountId": e.account, "userId": user, "reportName": "sessions", "segmentId": ids[0]})).await).0,
        404
    );
    // A disabled segment cannot be applied.
    e.call(json!({"action": "disable", "accountId": e.account, "segmentId": ids[0]}))
        .await
        .unwrap();
    assert_eq!(
        refusal(e.call(link(&ids[0], "sessions", json!({}))).await),
        (
            400,
            "segmentId".into(),
            format!("segment {} is disabled", ids[0])
        )
    );

    // A foreign account: refused, and its own segment cannot be linked to ours.
    let other = uuid();
    e.store
        .upsert_account(&other, "Other", "UTC")
        .await
        .unwrap();
    for action in ["link-report", "unlink-report"] {
        assert_eq!(
            refusal(e.call(json!({"action": action, "accountId": other, "userId": user, "reportName": "sessions", "segmentId": ids[1]})).await),
            (404, "segmentId".into(), format!("segment {} does not belong to account {other}", ids[1]))
        );
    }
    let theirs = e
        .call(json!({"action": "report-segments", "accountId": other, "userId": user, "reportName": "sessions"}))
        .await
        .unwrap();
    assert_eq!(
        theirs["links"],
        json!([]),
        "another account sees none of ours"
    );
    assert_eq!(
        refusal(e.call(json!({"action": "link-report", "accountId": e.account, "userId": "u1", "reportName": "sessions", "segmentId": ids[1]})).await).1,
        "userId"
    );
    assert_eq!(
        refusal(e.call(json!({"action": "link-report", "accountId": e.account, "userId": user, "segmentId": ids[1]})).await).1,
        "reportName"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_and_options() {
    let e = env().await;
    let group = json!({"segmentObject": "session", "conditionFocus": "property", "g0": {"type": "dimension", "key": "device_type"}});
    let out = e
        .call(json!({"action": "preview", "accountId": e.account, "group": group}))
        .await
        .unwrap();
    assert_eq!(out["cached"], false);
    assert_eq!(
        out["preview"],
        json!({
            "popularValues": [{"value": "Desktop", "count": 4}, {"value": "mobile", "count": 1}, {"value": "tablet", "count": 1}],
            "sampleValues": ["Desktop", "mobile", "tablet"],
            "uniqueCount": 3,
        })
    );
    let key = out["cacheKey"].as_str().unwrap().to_string();
    assert!(
        key.starts_with(&format!("{}_segment_inside_preview_", e.account)),
        "{key}"
    );
    assert_eq!(key, api::preview::preview_key(&e.account, &group));
    let ttl = e.ttl(&key).await;
    assert!((3590..=3600).contains(&ttl), "TTL {ttl}");
    let again = e
        .call(json!({"action": "preview", "accountId": e.account, "group": group}))
        .await
        .unwrap();
    assert_eq!(again["cached"], true);
    assert_eq!(again["preview"], out["preview"]);
    // A bad field is answered with its path.
    let bad = json!({"segmentObject": "session", "conditionFocus": "property", "g0": {"type": "dimension", "key": "nope"}});
    let err = e
        .call(json!({"action": "preview", "accountId": e.account, "group": bad}))
        .await
        .unwrap_err();
    assert_eq!(err.errors[0].path, "group.g0.key", "{err:?}");

    let options = async |t: &str, object: &str| -> Value {
        let out = e
            .call(json!({"action": "options", "accountId": e.account, "optionType": t, "segmentObject": object}))
            .await
            .unwrap_or_else(|err| panic!("{t}: {err:?}"));
        assert_eq!(
            out["cacheKey"],
            format!("{}_segment_option_{t}_{object}", e.account)
        );
        out["options"].clone()
    };
    let values = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|o| o["value"].as_str().unwrap().to_string())
            .collect()
    };
    // From the catalog.
    let checklist = options("checklist", "user").await;
    assert_eq!(
        checklist,
        json!([{"value": "browser", "type": "STRING"}, {"value": "country", "type": "STRING"}, {"value": "device_type", "type": "STRING"},
               {"value": "first_seen_at", "type": "TIMESTAMP"}, {"value": "people_id", "type": "STRING"}])
    );
    assert_eq!(
        values(options("metric", "user").await),
        [
            "avg_session_duration",
            "duration_seconds",
            "pageviews",
            "revenue",
            "sessions",
            "web_conversions"
        ]
    );
    // From the warehouse.
    assert_eq!(
        values(options("other-field", "session").await),
        ["Plan", "beta", "plan", "score"]
    );
    assert_eq!(
        values(options("event-variable", "session").await),
        ["amount", "form", "plan", "title"]
    );
    assert_eq!(
        options("event-name", "session").await,
        json!([{"value": "page_view", "count": 3}, {"value": "form_submit", "count": 2}, {"value": "Page_View", "count": 1}])
    );
    let ttl = e
        .ttl(&format!("{}_segment_option_event-name_session", e.account))
        .await;
    assert!((3590..=3600).contains(&ttl), "TTL {ttl}");
    assert_eq!(
        refusal(
            e.call(json!({"action": "options", "accountId": e.account, "optionType": "colours"}))
                .await
        )
        .1,
        "optionType"
    );
    assert_eq!(
        refusal(e.call(json!({"action": "options", "accountId": e.account, "optionType": "metric", "segmentObject": "planet"})).await).1,
        "segmentObject"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_csv_and_answers_a_presigned_url() {
    let e = env().await;
    let us = e.segment("US sessions", equals("country", "us")).await;
    let desktop = e
        .segment("Desktop, any case", equals("device_type", "desktop"))
        .await;
    let request = json!({"accountId": e.account, "reportName": "sessions", "object": "session",
        "dateRange": {"startDate": "2024-01-01", "endDate": "2024-12-31"}, "dimensions": ["device_type"],
        "metrics": ["sessions", "pageviews"], "sort": {"by": "device_type", "direction": "asc"}, "segments": [us, desktop]});
    let resp = report::handle(&e.app, &request, "export-1", Utc::now())
        .await
        .unwrap();
    let tables: Vec<Value> = resp
        .segment_tables
        .iter()
        .map(|t| json!({"segmentId": t.segment_id, "table": t.table}))
        .collect();
    let out = e
        .call(json!({"action": "export", "accountId": e.account, "dimensions": ["device_type"], "metrics": ["sessions", "pageviews"], "segmentTables": tables}))
        .await
        .unwrap();
    // US: s1 (Desktop, 5 pageviews), s2 (mobile, 1). Desktop: s1, s3, s6 in 2024 (5 + 10 + 3).
    let expected = "device_type,S1:US sessions - sessions,\"S2:Desktop, any case - sessions\",S1:US sessions - pageviews,\"S2:Desktop, any case - pageviews\"\r\n\
                    Desktop,1,3,5,18\r\n\
                    mobile,1,,1,\r\n";
    assert_eq!(out["rows"], 2);
    let key = out["key"].as_str().unwrap();
    assert!(
        key.starts_with(&format!("exports/{}/", e.account)) && key.ends_with(".csv"),
        "{key}"
    );
    assert_eq!(out["bucket"], e.bucket.as_str());
    assert_eq!(out["expiresIn"], 900);
    let url = out["url"].as_str().unwrap();
    let endpoint = stack_env()["AWS_ENDPOINT_URL"].clone();
    assert!(
        url.starts_with(&format!("{endpoint}/{}/{key}?", e.bucket)),
        "{url}"
    );
    assert!(
        url.contains("X-Amz-Expires=900") && url.contains("X-Amz-Signature="),
        "{url}"
    );
    // Anyone with the URL reads the bytes, without credentials.
    let fetched = reqwest::get(url).await.unwrap();
    assert_eq!(fetched.status(), 200);
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), expected.as_bytes());
    // The stored object is the same; without the signature it is refused.
    let stored = e
        .app
        .ports
        .objects
        .get(&e.bucket, key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored, expected.as_bytes());
    let unsigned = reqwest::get(url.split('?').next().unwrap()).await.unwrap();
    assert_eq!(unsigned.status(), 403, "moto refuses an unsigned read");

    // A shorter lifetime is honoured; bad input names its path.
    let short = e
        .call(json!({"action": "export", "accountId": e.account, "metrics": ["sessions", "pageviews"], "dimensions": ["device_type"], "segmentTables": tables, "expiresIn": 60}))
        .await
        .unwrap();
    assert!(short["url"].as_str().unwrap().contains("X-Amz-Expires=60"));
    let mut swapped = tables.clone();
    swapped[0]["table"] = tables[1]["table"].clone();
    assert_eq!(
        refusal(e.call(json!({"action": "export", "accountId": e.account, "metrics": ["sessions", "pageviews"], "dimensions": ["device_type"], "segmentTables": swapped})).await).1,
        "segmentTables[0].table"
    );
    assert_eq!(
        refusal(e.call(json!({"action": "export", "accountId": e.account, "metrics": ["sessions"], "dimensions": ["device_type"], "segmentTables": tables})).await),
        (400, "segmentTables[0].table".into(), format!("{} has 3 columns; the request names 2", tables[0]["table"].as_str().unwrap()))
    );
    assert_eq!(
        refusal(e.call(json!({"action": "export", "accountId": e.account, "metrics": ["x y"], "segmentTables": tables})).await).1,
        "metrics[0]"
    );
    assert_eq!(
        refusal(e.call(json!({"action": "export", "accountId": e.account, "metrics": ["sessions"], "segmentTables": tables, "expiresIn": 0})).await).1,
        "expiresIn"
    );
    // A foreign account cannot export our tables.
    let other = uuid();
    e.store
        .upsert_account(&other, "Other", "UTC")
        .await
        .unwrap();
    assert_eq!(
        refusal(e.call(json!({"action": "export", "accountId": other, "metrics": ["sessions", "pageviews"], "dimensions": ["device_type"], "segmentTables": tables})).await),
        (404, "segmentTables[0].segmentId".into(), format!("segment {us} does not belong to account {other}"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_tables_expire_after_a_day() {
    let mut e = env().await;
    let us = e.segment("US sessions", equals("country", "us")).await;
    let submitted = Probe::install(&mut e.app, None);
    let now = Utc::now();
    let request = json!({"accountId": e.account, "object": "session", "dateRange": {"startDate": "2024-01-01", "endDate": "2024-12-31"},
        "dimensions": ["device_type"], "metrics": ["sessions"], "segments": [us]});
    let resp = report::handle(&e.app, &request, "expiring", now)
        .await
        .unwrap();
    let sql = submitted.last();
    let table = &resp.segment_tables[0].table;
    let expected = format!(
        "CREATE OR REPLACE TABLE `segments-local.{}.{table}` OPTIONS (expiration_timestamp = TIMESTAMP '{}') AS\n",
        e.app.dataset(&e.account),
        (now + chrono::Duration::hours(24)).format("%Y-%m-%d %H:%M:%S+00:00")
    );
    assert!(sql.starts_with(&expected), "{sql}");
    // The warehouse ran it: the table holds the report's rows.
    let rows = e
        .app
        .ports
        .warehouse
        .table_rows(&e.app.dataset(&e.account), table, 10)
        .await
        .unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    // REPORT_TABLE_EXPIRATION_HOURS=0 keeps them.
    e.app.report_table_expiration = None;
    report::handle(&e.app, &request, "kept", now).await.unwrap();
    let sql = submitted.last();
    assert!(
        sql.starts_with(&format!(
            "CREATE OR REPLACE TABLE `segments-local.{}.{table}` AS\n",
            e.app.dataset(&e.account)
        )),
        "{sql}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_update_submit_keeps_the_old_rules_and_status() {
    let mut e = env().await;
    let seg = e.segment("US sessions", equals("country", "us")).await;
    let before = e.store.segment(&e.account, &seg).await.unwrap().unwrap();
    assert_eq!(before.query_status, "done");
    let probe = Probe::install(&mut e.app, None);
    probe
        .failing_submits
        .store(1, std::sync::atomic::Ordering::SeqCst);
    let update = SegmentCommand::parse(
        json!({"action": "update", "accountId": e.account, "segment": {"id": seg, "name": "German sessions", "ruleGroups": equals("country", "de")}})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let err = create_segment::handle(&e.app, &update, "u1", Utc::now())
        .await
        .unwrap_err();
    assert!(
        matches!(err, Failure::Retry(ref m) if m.contains("injected outage")),
        "{err}"
    );
    let after = e.store.segment(&e.account, &seg).await.unwrap().unwrap();
    assert_eq!(after, before, "rules, name, query and status unchanged");
    // The redelivery succeeds: now the new rules are stored, the build in progress.
    create_segment::handle(&e.app, &update, "u1", Utc::now())
        .await
        .unwrap();
    let after = e.store.segment(&e.account, &seg).await.unwrap().unwrap();
    assert_eq!(after.name, "German sessions");
    assert_eq!(
        after.rule_groups.as_deref(),
        Some(equals("country", "de").to_string().as_str())
    );
    assert_eq!(after.query_status, "in-progress");
    // The build is the segment's run with history (SPEC §11), at revision 2.
    let sql = probe.last();
    assert!(
        sql.contains("segment_population")
            && sql.contains(&format!("segment_{}", seg.replace('-', "_"))),
        "{sql}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_during_a_build_cancels_it_and_its_check_ends_quietly() {
    // BigQuery with asynchronous jobs, this test's project held: the build
    // stays queued (RUNNING to the API) until cancelled or released.
    let url = segments_tests::warehouse::async_emulator_url(&stack_env());
    let project = format!("held-{}", &uuid()[..8]);
    let e = env_with(|v| {
        v.insert("BIGQUERY_BASE_URL".into(), url.clone());
        v.insert("BIGQUERY_PROJECT".into(), project.clone());
    })
    .await;
    segments_tests::warehouse::hold_jobs(&url, &project).await;
    let seg = uuid();
    let create = SegmentCommand::parse(
        json!({"action": "create", "accountId": e.account, "segment": {"id": seg, "name": "US", "ruleGroups": equals("country", "us")}})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let started = Utc::now();
    let out = create_segment::handle(&e.app, &create, "c1", started)
        .await
        .unwrap();
    let build = out.segments[0].job_id.clone().unwrap();
    assert_eq!(
        e.app.ports.warehouse.status(&build).await.unwrap().state,
        "RUNNING"
    );

    let delete = SegmentCommand::parse(
        json!({"action": "delete", "accountId": e.account, "segmentId": seg})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let deleted = create_segment::handle(&e.app, &delete, "d1", Utc::now())
        .await
        .unwrap();
    assert_eq!(deleted.segments[0].query_status, "deleted");
    // The build was really stopped before the drop was submitted, and recorded.
    let status = e.app.ports.warehouse.status(&build).await.unwrap();
    assert_eq!(
        (status.state.as_str(), status.error_reason.as_deref()),
        ("DONE", Some("stopped"))
    );
    let job = e.store.job(&build).await.unwrap().unwrap();
    assert_eq!(job.status, QueryStatus::Canceled);
    assert_eq!(job.error.as_deref(), Some("segment deleted"));
    let calls = segments_tests::warehouse::api_calls(&url, &project).await;
    assert_eq!(calls[&build].get("jobs.cancel"), Some(&1), "{calls:?}");
    let drop_job = deleted.segments[0].job_id.clone().unwrap();
    assert_eq!(calls[&drop_job].get("jobs.insert"), Some(&1), "{calls:?}");
    assert!(e.store.segment(&e.account, &seg).await.unwrap().is_none());

    // The build's pending check ends quietly (no batch failure, no DLQ).
    let check = segments_core::messages::CheckJobMessage {
        job_id: build.clone(),
        account_id: e.account.clone(),
        action: segments_core::messages::JobAction::CreateSegment,
        job_input_data: segments_core::messages::JobInput {
            segment_id: Some(seg.clone()),
            ..Default::default()
        },
        started_at: started,
        attempt: 0,
    };
    assert_eq!(
        check_job::handle(&e.app, &check, Utc::now()).await.unwrap(),
        Checked::Canceled { notified: false }
    );
    // Another account's check of that job is still refused.
    let foreign = segments_core::messages::CheckJobMessage {
        account_id: uuid(),
        ..check
    };
    assert!(
        check_job::handle(&e.app, &foreign, Utc::now())
            .await
            .is_err()
    );
    segments_tests::warehouse::release_jobs(&url, &project).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebuild_with_drop_starts_the_build_after_the_drop_ended() {
    // BigQuery with asynchronous jobs (jobs.insert answers at once, the job runs behind it).
    let url = segments_tests::warehouse::async_emulator_url(&stack_env());
    let e = env_with(|v| {
        v.insert("BIGQUERY_BASE_URL".into(), url.clone());
    })
    .await;
    let table =
        segments_tests::warehouse::Warehouse::fixture_at(&url, &e.app.dataset(&e.account)).await;
    let seg = e.segment("US sessions", equals("country", "us")).await;
    let rebuild = SegmentCommand::parse(
        json!({"action": "rebuild", "accountId": e.account, "segmentId": seg, "dropTable": true})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    let out = create_segment::handle(&e.app, &rebuild, "r1", Utc::now())
        .await
        .unwrap();
    let build = out.segments[0].job_id.clone().unwrap();
    let drop = segments_core::jobs::job_id("drop-segment", &[&seg, "r1"]);
    let w = &e.app.ports.warehouse;
    let dropped = w.status(&drop).await.unwrap();
    let built = w.wait(&build, Duration::from_secs(20)).await.unwrap();
    assert_eq!(
        (dropped.state.as_str(), built.state.as_str()),
        ("DONE", "DONE")
    );
    assert_eq!(built.error_message, None);
    assert!(
        dropped.ended_at.unwrap() <= built.started_at.unwrap(),
        "the build started at {:?}, before the drop ended at {:?}",
        built.started_at,
        dropped.ended_at
    );
    // The table is there, with the segment's members.
    assert_eq!(
        table.members(&out.segments[0].table).await.unwrap(),
        ["s1", "s2"]
    );
}
