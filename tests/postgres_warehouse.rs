//! The Postgres warehouse on the local Postgres: the fixture loads from the
//! same file as the emulator's; jobs run, fail, time out and cancel as the
//! `Warehouse` port says; an account's role cannot read another account.

use segments_infra::pg_warehouse::{self, PgWarehouse, PgWarehouseConfig, account_role};
use segments_infra::ports::{QueryJob, Warehouse};
use segments_tests::fixture::{self, FixtureStatement};
use segments_tests::pg_warehouse::{Cleanup, PgWarehouse as Fixture, connect, database_url};
use std::time::Duration;

/// GIVEN the fixture file, WHEN it loads into a Postgres schema, THEN every
/// table holds exactly the fixture's rows, with values read back exactly.
#[tokio::test]
async fn the_fixture_warehouse_loads_into_postgres_from_the_same_file() {
    let w = Fixture::fixture("pgfix").await;
    let stmts = fixture::warehouse();
    for s in &stmts {
        let FixtureStatement::Create { table, columns } = s else {
            continue;
        };
        let want: usize = stmts
            .iter()
            .map(|s| match s {
                FixtureStatement::Insert { table: t, rows, .. } if t == table => rows.len(),
                _ => 0,
            })
            .sum();
        let got = w
            .column(&format!("SELECT count(*) FROM {}", w.table(table)))
            .await
            .unwrap();
        assert_eq!(got, vec![want.to_string()], "rows of {table}");
        // Types are those of SPEC §9.
        for (name, ty) in columns {
            let t = w
                .column(&format!(
                    "SELECT atttypid = '{}'::regtype FROM pg_attribute
                     WHERE attrelid = '{}'::regclass AND attname = '{name}'",
                    ty.postgres(),
                    w.table(table)
                ))
                .await
                .unwrap();
            assert_eq!(
                t,
                vec!["t".to_string()],
                "{table}.{name} is {}",
                ty.postgres()
            );
        }
    }
    let landing = w
        .column(&format!(
            "SELECT landing_page FROM {} WHERE session_id = 's3'",
            w.table("sessions")
        ))
        .await
        .unwrap();
    assert_eq!(landing, vec!["/it's\\path".to_string()]);
    let custom = w
        .column(&format!(
            "SELECT custom::text FROM {} WHERE session_id = 's2'",
            w.table("sessions")
        ))
        .await
        .unwrap();
    assert_eq!(
        custom,
        vec![r#"[{"key": "plan", "value": "free"}, {"key": "plan", "value": "Team"}]"#.to_string()]
    );
    w.cleanup().await;
}

/// An account's schema (with the fixture), its role, and the service login.
struct Setup {
    a: Fixture,
    b: Fixture,
    warehouse: PgWarehouse,
    /// Drops the schemas and roles even when an assertion fails.
    _cleanup: Cleanup,
}

async fn setup(prefix: &str) -> Setup {
    let a = Fixture::fixture(&format!("{prefix}a")).await;
    let b = Fixture::fixture(&format!("{prefix}b")).await;
    let service = format!("{}_svc", a.schema);
    let _cleanup = Cleanup {
        schemas: vec![a.schema.clone(), b.schema.clone()],
        roles: vec![
            account_role(&a.schema),
            account_role(&b.schema),
            service.clone(),
        ],
    };
    let admin = connect().await;
    admin
        .batch_execute(&format!("CREATE ROLE \"{service}\" LOGIN NOINHERIT"))
        .await
        .unwrap();
    let admin_url = database_url();
    pg_warehouse::install(&admin_url, &service).await.unwrap();
    for s in [&a.schema, &b.schema] {
        pg_warehouse::provision_account(&admin_url, s, &service)
            .await
            .unwrap();
    }
    let url = service_url(&admin_url, &service);
    let warehouse = PgWarehouse::connect(&PgWarehouseConfig {
        url,
        statement_timeout: Duration::from_secs(3),
        max_running: 4,
    })
    .unwrap();
    Setup {
        a,
        b,
        warehouse,
        _cleanup,
    }
}

/// The local server trusts every login: the same URL with another user.
fn service_url(admin_url: &str, user: &str) -> String {
    let rest = admin_url
        .split_once('@')
        .map(|(_, r)| r)
        .unwrap_or("127.0.0.1:5432/test");
    format!("postgres://{user}@{rest}")
}

fn job(id: &str, schema: &str, sql: &str) -> QueryJob {
    QueryJob {
        job_id: id.to_string(),
        sql: sql.to_string(),
        dataset: schema.to_string(),
        labels: vec![],
        batch: false,
        maximum_bytes_billed: 1,
    }
}

fn unique(name: &str) -> String {
    segments_tests::warehouse::unique_dataset(name)
}

/// GIVEN a provisioned account, WHEN jobs are submitted, THEN they run as the
/// account's role: a create succeeds and is readable, a duplicate id is the
/// same job, bad SQL fails with its message, a long job times out, a
/// cancelled job stops, and reading another account's schema is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_run_as_the_accounts_role_and_report_their_end() {
    let s = setup("pgjob").await;
    let w = &s.warehouse;
    let a = &s.a.schema;
    let b = &s.b.schema;
    w.ensure_dataset(a).await.unwrap();
    assert!(w.ensure_dataset("no_such_schema_x").await.is_err());

    // A create, run to its end.
    let id = unique("create");
    let sql = format!(
        "CREATE TABLE \"{a}\".\"segment_t\" AS SELECT session_id AS object_id FROM \"{a}\".\"sessions\" WHERE pageviews > 2"
    );
    let (st, dup) = w.submit(&job(&id, a, &sql)).await.unwrap();
    assert!(!dup);
    assert_ne!(st.state, "PENDING", "submit returns once the job started");
    let done = w.wait(&id, Duration::from_secs(20)).await.unwrap();
    assert_eq!(
        (done.state.as_str(), done.error_reason.as_deref()),
        ("DONE", None),
        "{done:?}"
    );
    assert_eq!(done.total_bytes_billed, None);
    assert!(done.started_at.is_some() && done.ended_at.is_some());
    let rows = w.table_rows(a, "segment_t", 100).await.unwrap();
    let mut ids: Vec<String> = rows
        .iter()
        .map(|r| r[0].as_str().unwrap_or_default().to_string())
        .collect();
    ids.sort();
    assert_eq!(ids, ["s1", "s3", "s6"]);
    // The table belongs to the account's role, not to the service login.
    let owner =
        s.a.column(&format!(
            "SELECT tableowner FROM pg_tables WHERE schemaname = '{a}' AND tablename = 'segment_t'"
        ))
        .await
        .unwrap();
    assert_eq!(owner, vec![account_role(a)]);

    // The same id again: the same job, not a second run.
    let (again, dup) = w.submit(&job(&id, a, "SELECT 1/0")).await.unwrap();
    assert!(dup);
    assert_eq!(again.error_reason, None);

    // Bad SQL fails with the server's message.
    let bad = unique("bad");
    w.submit(&job(
        &bad,
        a,
        &format!("SELECT nope FROM \"{a}\".\"sessions\""),
    ))
    .await
    .unwrap();
    let st = w.wait(&bad, Duration::from_secs(20)).await.unwrap();
    assert_eq!(st.state, "DONE");
    assert_eq!(st.error_reason.as_deref(), Some("invalidQuery"));
    assert!(
        st.error_message
            .as_deref()
            .unwrap_or_default()
            .contains("nope"),
        "{st:?}"
    );

    // Least privilege: account A's role cannot read account B's schema,
    // nor change A's source tables.
    for (name, sql) in [
        (
            "cross",
            format!("CREATE TABLE \"{a}\".\"stolen\" AS SELECT * FROM \"{b}\".\"sessions\""),
        ),
        ("alter", format!("DELETE FROM \"{a}\".\"sessions\"")),
        ("ctl", "SELECT * FROM segments_ctl.jobs".to_string()),
    ] {
        let id = unique(name);
        w.submit(&job(&id, a, &sql)).await.unwrap();
        let st = w.wait(&id, Duration::from_secs(20)).await.unwrap();
        assert_eq!(st.state, "DONE", "{name}");
        assert!(
            st.error_message
                .as_deref()
                .unwrap_or_default()
                .contains("permission denied"),
            "{name}: {st:?}"
        );
    }
    assert_eq!(
        s.a.column(&format!("SELECT count(*) FROM \"{a}\".\"sessions\""))
            .await
            .unwrap(),
        vec!["7".to_string()]
    );

    // The statement timeout ends a long job.
    let slow = unique("slow");
    w.submit(&job(&slow, a, "SELECT pg_sleep(30)"))
        .await
        .unwrap();
    let st = w.wait(&slow, Duration::from_secs(20)).await.unwrap();
    assert_eq!(st.error_reason.as_deref(), Some("timeout"), "{st:?}");

    // Cancel interrupts a running job.
    let cancel = unique("cancel");
    w.submit(&job(&cancel, a, "SELECT pg_sleep(2.5)"))
        .await
        .unwrap();
    let running = w.status(&cancel).await.unwrap();
    assert_eq!(running.state, "RUNNING");
    w.cancel(&cancel).await.unwrap();
    let st = w.wait(&cancel, Duration::from_secs(20)).await.unwrap();
    assert_eq!(
        (st.state.as_str(), st.error_reason.as_deref()),
        ("DONE", Some("stopped")),
        "{st:?}"
    );
    assert!(w.status("no-such-job").await.is_err());
}

/// GIVEN a segment table being rebuilt and refreshed over and over with
/// alternating members, WHEN another session reads it all the while, THEN
/// every read sees one whole member set, never an error (a missing table),
/// an empty or a half-built one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_never_see_a_segment_table_missing_or_half_built() {
    use segments_core::sql::DialectKind;
    let w = Fixture::fixture("pgswap").await;
    let target = segments_core::Target::for_dialect(DialectKind::Postgres, "", &w.schema).unwrap();
    let tz = segments_core::time::parse_time_zone("UTC").unwrap();
    let now = segments_core::time::parse_now("2024-06-15T12:00:00Z").unwrap();
    let country = |c: &str| {
        segments_core::parse_segment(&serde_json::json!({"id": "swap", "ruleGroups": [{
            "mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
            "g0": {"type": "dimension", "key": "country", "condition": "equals", "value": c}}]}))
        .unwrap()
    };
    let catalog = segments_core::Catalog::default_catalog();
    let (us, de) = (country("us"), country("de"));
    let create = |s| segments_core::render_segment(s, &catalog, &target, &tz, now).unwrap();
    let refresh = |s| segments_core::render_refresh(s, &catalog, &target, &tz, now).unwrap();
    let statements = [
        create(&us).create_table_query,
        create(&de).create_table_query,
        refresh(&us),
        refresh(&de),
    ];
    let table = create(&us).table;
    w.run(&statements[0]).await.unwrap();

    let reader = connect().await;
    let sql = format!(
        "SELECT string_agg(object_id, ',' ORDER BY object_id) FROM {}",
        w.table(&table)
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    let reads = tokio::spawn(async move {
        let mut seen = Vec::new();
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            let got = reader
                .query_one(&sql, &[])
                .await
                .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
                .map_err(|e| segments_tests::pg_warehouse::describe(&e));
            seen.push(got);
        }
        seen
    });
    for i in 0..40 {
        w.run(&statements[i % 4]).await.unwrap();
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let seen = reads.await.unwrap();
    assert!(seen.len() > 10, "only {} reads", seen.len());
    for s in &seen {
        assert!(
            matches!(s.as_deref(), Ok("s1,s2") | Ok("s3")),
            "a reader saw {s:?}"
        );
    }
    w.cleanup().await;
}
