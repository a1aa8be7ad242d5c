//! A function's cold start, exactly as a deployment runs it (`App::from_vars`,
//! the path of every `main.rs`), on a Postgres database created empty for the
//! test: the deploy itself must leave the functions able to record a job.

use chrono::Utc;
use segments_core::jobs::QueryStatus;
use segments_handlers::App;
use segments_infra::ports::JobRecord;
use segments_infra::postgres::PgStore;
use segments_tests::lambda::{fresh_uuid, stack_env};
use std::collections::HashMap;

/// A database of its own, dropped (with its connections) when the test ends.
struct FreshDatabase {
    admin: tokio_postgres::Client,
    name: String,
    url: String,
}

impl FreshDatabase {
    async fn create() -> FreshDatabase {
        let base = stack_env()["DATABASE_URL"].clone();
        let (admin, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .expect("Postgres is not reachable: start the local stack with tests/stack/up.sh");
        tokio::spawn(conn);
        let name = format!("segments_deploy_{}", fresh_uuid().replace('-', ""));
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let (path, query) = match base.split_once('?') {
            Some((p, q)) => (p.to_string(), format!("?{q}")),
            None => (base.clone(), String::new()),
        };
        let (server, _) = path.rsplit_once('/').unwrap();
        let url = format!("{server}/{name}{query}");
        FreshDatabase { admin, name, url }
    }

    async fn query_strings(&self, sql: &str) -> Vec<String> {
        let (c, conn) = tokio_postgres::connect(&self.url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        c.query(sql, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect()
    }

    async fn drop_it(self) {
        self.admin
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .await
            .unwrap();
    }
}

fn function_env(database_url: &str) -> HashMap<String, String> {
    let mut vars = stack_env();
    vars.insert("DATABASE_URL".into(), database_url.to_string());
    vars.insert(
        "CHECK_JOB_QUEUE_URL".into(),
        "http://127.0.0.1:5055/000000000000/unused".into(),
    );
    vars
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_cold_start_creates_our_tables_on_an_empty_database() {
    segments_infra::telemetry::install_crypto_provider();
    let db = FreshDatabase::create().await;
    assert!(
        db.query_strings(
            "SELECT to_regclass('segment_jobs')::text WHERE to_regclass('segment_jobs') IS NOT NULL"
        )
        .await
        .is_empty()
    );

    // Two functions cold-starting at once, as after a deploy.
    let (a, b) = tokio::join!(
        App::from_vars(function_env(&db.url)),
        App::from_vars(function_env(&db.url))
    );
    let app = a.unwrap();
    b.unwrap();
    assert_eq!(
        db.query_strings("SELECT version::text FROM segments_migrations ORDER BY version")
            .await,
        ["10", "11", "2", "3"],
        "the functions' own migrations, each once"
    );
    // The web app's tables are the web app's: a cold start never touches them.
    assert_eq!(
        db.query_strings(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename"
        )
        .await,
        [
            "SegmentRevisions",
            "segment_delta_outbox",
            "segment_jobs",
            "segments_migrations"
        ]
    );
    // The first job row of a deployment lands.
    let job = JobRecord {
        job_id: format!("segments_cold_start_{}", fresh_uuid().replace('-', "")),
        account_id: fresh_uuid(),
        segment_id: Some(fresh_uuid()),
        action: "create".into(),
        status: QueryStatus::InProgress,
        bytes_billed: None,
        error: None,
        created_at: Utc::now(),
        finished_at: None,
    };
    app.ports.store.start_job(&job).await.unwrap();
    let stored = app.ports.store.job(&job.job_id).await.unwrap().unwrap();
    assert_eq!(stored.status, QueryStatus::InProgress);
    drop(app);
    db.drop_it().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_apply_each_version_once_under_the_lock() {
    let db = FreshDatabase::create().await;
    let (s1, s2) = (
        PgStore::connect(&db.url, 1).unwrap(),
        PgStore::connect(&db.url, 1).unwrap(),
    );
    let (a, b) = tokio::join!(s1.migrate_functions(), s2.migrate_functions());
    let (mut a, mut b) = (a.unwrap(), b.unwrap());
    // One of them applied both versions; the other waited on the lock, then found nothing to do.
    if a.is_empty() {
        std::mem::swap(&mut a, &mut b);
    }
    assert_eq!((a, b), (vec![2, 3, 10, 11], vec![]));
    assert_eq!(s1.migrate_functions().await.unwrap(), Vec::<i32>::new());
    // The full set (tests, the demo) adds the web app's tables on top.
    assert_eq!(s1.migrate().await.unwrap(), vec![1]);
    drop((s1, s2));
    db.drop_it().await;
}
