//! GIVEN raw Segment.com warehouse rows written by hand (tests/src/segment_raw.rs),
//! WHEN the models of SPEC §10 run on the BigQuery emulator, THEN the derived
//! tables hold exactly the expected rows, every other §5 table exists empty,
//! and segments on the derived objects select exactly the expected ids.

use segments_core::Target;
use segments_core::models::SegmentSource;
use segments_core::models::schema::EMPTY_TABLES;
use segments_core::sql::DialectKind;
use segments_tests::pg_warehouse::PgWarehouse;
use segments_tests::segment_raw::*;
use segments_tests::warehouse::{PROJECT, Warehouse};

fn sorted(rows: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = rows.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// A dataset on the BigQuery emulator or a schema in the local Postgres.
enum Db {
    Bq(Box<Warehouse>),
    Pg(PgWarehouse),
}

impl Db {
    async fn new(engine: Engine, prefix: &str) -> Db {
        match engine {
            Engine::BigQuery => Db::Bq(Box::new(Warehouse::empty(prefix).await)),
            Engine::Postgres => Db::Pg(PgWarehouse::empty(prefix).await),
        }
    }

    fn engine(&self) -> Engine {
        match self {
            Db::Bq(_) => Engine::BigQuery,
            Db::Pg(_) => Engine::Postgres,
        }
    }

    fn ns(&self) -> &str {
        match self {
            Db::Bq(w) => &w.dataset,
            Db::Pg(w) => &w.schema,
        }
    }

    fn target(&self) -> Target {
        let dialect = match self {
            Db::Bq(_) => DialectKind::BigQuery,
            Db::Pg(_) => DialectKind::Postgres,
        };
        Target::for_dialect(dialect, PROJECT, self.ns()).unwrap()
    }

    fn table(&self, name: &str) -> String {
        self.engine().table(PROJECT, self.ns(), name)
    }

    async fn run(&self, sql: &str) -> Result<(), String> {
        match self {
            Db::Bq(w) => {
                segments_tests::bq_check::check(sql)?;
                w.run(sql).await.map(|_| ())
            }
            Db::Pg(w) => w.run(sql).await,
        }
    }

    async fn column(&self, sql: &str) -> Result<Vec<String>, String> {
        match self {
            Db::Bq(w) => w.column(sql).await,
            Db::Pg(w) => w.column(sql).await,
        }
    }

    async fn members(&self, table: &str) -> Vec<String> {
        self.column(&format!("SELECT object_id FROM {}", self.table(table)))
            .await
            .unwrap()
    }

    /// Drops a Postgres schema this test created.
    async fn cleanup(self) {
        if let Db::Pg(w) = self {
            w.cleanup().await;
        }
    }
}

/// Loads the raw tables into a new source dataset (or schema).
async fn raw_source(engine: Engine, identifies: &[&str], pages: &[&str], tracks: &[&str]) -> Db {
    let src = Db::new(engine, "segraw").await;
    for (table, columns, rows) in [
        ("identifies", IDENTIFY_COLUMNS, identifies),
        ("pages", PAGE_COLUMNS, pages),
        ("tracks", TRACK_COLUMNS, tracks),
    ] {
        for sql in engine.load_raw(PROJECT, src.ns(), table, columns, rows) {
            src.run(&sql)
                .await
                .unwrap_or_else(|err| panic!("{err}\n{sql}"));
        }
    }
    src
}

fn models(src: &Db, dst: &Db) -> SegmentSource {
    SegmentSource::new(src.target(), dst.target(), 30).unwrap()
}

async fn run_all(w: &Db, statements: &[String]) {
    for sql in statements {
        w.run(sql)
            .await
            .unwrap_or_else(|e| panic!("model statement failed: {e}\n{sql}"));
    }
}

async fn assert_derived(dst: &Db) {
    let e = dst.engine();
    let read = |t: &str| dst.table(t);
    assert_eq!(
        dst.column(&e.read_events(&read("events"))).await.unwrap(),
        sorted(EXPECT_EVENTS),
        "events"
    );
    assert_eq!(
        dst.column(&e.read_sessions(&read("sessions")))
            .await
            .unwrap(),
        sorted(EXPECT_SESSIONS),
        "sessions"
    );
    assert_eq!(
        dst.column(&e.read_users(&read("users"))).await.unwrap(),
        sorted(EXPECT_USERS),
        "users"
    );
    assert_eq!(
        dst.column(&e.read_people(&read("people"))).await.unwrap(),
        sorted(EXPECT_PEOPLE),
        "people"
    );
}

/// GIVEN the hand-written raw rows, WHEN a full build runs (twice), THEN
/// events, sessions, users and people are exactly the expected rows and the
/// other §5 tables exist and are empty.
async fn full_build_derives_exactly_the_expected_rows(engine: Engine) {
    let src = raw_source(engine, IDENTIFIES, PAGES, TRACKS).await;
    let dst = Db::new(engine, "segmodels").await;
    let statements = models(&src, &dst).full_build().unwrap();
    run_all(&dst, &statements).await;
    assert_derived(&dst).await;
    for t in EMPTY_TABLES {
        let n = dst
            .column(&format!(
                "SELECT CAST(COUNT(*) AS {}) FROM {}",
                text_type(engine),
                dst.table(t.name)
            ))
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", t.name));
        assert_eq!(n, vec!["0"], "{} is empty", t.name);
    }
    // A second build over the same raw rows changes nothing.
    run_all(&dst, &statements).await;
    assert_derived(&dst).await;
    src.cleanup().await;
    dst.cleanup().await;
}

fn text_type(engine: Engine) -> &'static str {
    match engine {
        Engine::BigQuery => "STRING",
        Engine::Postgres => "text",
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_build_derives_exactly_the_expected_rows_on_bigquery() {
    full_build_derives_exactly_the_expected_rows(Engine::BigQuery).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_build_derives_exactly_the_expected_rows_on_postgres() {
    full_build_derives_exactly_the_expected_rows(Engine::Postgres).await;
}

fn segment(
    dst: &Db,
    id: &str,
    groups: serde_json::Value,
    now: &str,
) -> segments_core::RenderedSegment {
    let seg =
        segments_core::parse_segment(&serde_json::json!({"id": id, "ruleGroups": groups})).unwrap();
    segments_core::render_segment(
        &seg,
        &segments_core::Catalog::default_catalog(),
        &dst.target(),
        &segments_core::time::parse_time_zone("UTC").unwrap(),
        segments_core::time::parse_now(now).unwrap(),
    )
    .unwrap()
}

/// The segments of the issue on the derived objects, with their expected ids.
pub fn derived_object_segments() -> Vec<(&'static str, serde_json::Value, Vec<&'static str>)> {
    vec![
        (
            "seg-landing-pageviews",
            serde_json::json!([{
                "mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
                "g0": {"type": "dimension", "key": "landing_page", "condition": "starts-with", "value": "https://X.io/"},
                "g1": {"type": "number", "key": "pageviews", "condition": "greater-than-or-equal", "value": 2}
            }]),
            vec!["a1/e03", "a3/e20"],
        ),
        (
            "seg-users-sessions-7d",
            serde_json::json!([{
                "mainOperator": "include", "segmentObject": "user", "conditionFocus": "metric",
                "dateRangeFilter": {"type": "previous-period", "numberOfDaysPrevious": 7},
                "g0": {"type": "metric", "key": "sessions", "condition": "greater-than-or-equal", "value": 2}
            }]),
            vec!["a1"],
        ),
        (
            "seg-people-domain",
            serde_json::json!([{
                "mainOperator": "include", "segmentObject": "people", "conditionFocus": "property",
                "g0": {"type": "dimension", "key": "email", "condition": "ends-with", "value": "example.com"}
            }]),
            vec!["u1", "u5"],
        ),
    ]
}

/// GIVEN the models built from the raw rows, WHEN segments on sessions
/// (landing page and pageviews), users (sessions in the last 7 days) and
/// people (email domain) run, THEN each selects exactly the expected ids;
/// a week later the users segment is empty.
async fn segments_on_the_derived_objects_select_the_expected_ids(engine: Engine) {
    let src = raw_source(engine, IDENTIFIES, PAGES, TRACKS).await;
    let dst = Db::new(engine, "segmodseg").await;
    run_all(&dst, &models(&src, &dst).full_build().unwrap()).await;
    for (id, groups, want) in derived_object_segments() {
        let r = segment(&dst, id, groups, "2024-06-12T00:00:00Z");
        dst.run(&r.create_table_query).await.unwrap();
        assert_eq!(dst.members(&r.table).await, want, "{id}");
    }
    let (id, groups, _) = derived_object_segments().remove(1);
    let later = segment(&dst, id, groups, "2024-06-19T00:00:00Z");
    dst.run(&later.create_table_query).await.unwrap();
    assert_eq!(dst.members(&later.table).await, Vec::<String>::new());
    src.cleanup().await;
    dst.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_on_the_derived_objects_select_the_expected_ids_on_bigquery() {
    segments_on_the_derived_objects_select_the_expected_ids(Engine::BigQuery).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_on_the_derived_objects_select_the_expected_ids_on_postgres() {
    segments_on_the_derived_objects_select_the_expected_ids(Engine::Postgres).await;
}

/// The derived and staging tables a refresh must leave equal to a full build.
const COMPARED: &[&str] = &[
    "events",
    "sessions",
    "users",
    "people",
    "segment_src_identifies",
    "segment_src_hits",
    "segment_src_identity",
    "segment_src_sessionised",
];

async fn append_later_rows(src: &Db) {
    let e = src.engine();
    for (table, columns, rows) in [
        ("identifies", IDENTIFY_COLUMNS, IDENTIFIES_LATER),
        ("pages", PAGE_COLUMNS, PAGES_LATER),
        ("tracks", TRACK_COLUMNS, TRACKS_LATER),
    ] {
        for sql in e.insert_raw(PROJECT, src.ns(), table, columns, rows) {
            src.run(&sql)
                .await
                .unwrap_or_else(|err| panic!("{err}\n{sql}"));
        }
    }
}

/// GIVEN a full build, WHEN new and late raw rows arrive (a late page that
/// joins two sessions, one that moves a session's start, identity changes,
/// a redelivered id, a new anonymous id, a user-only event) and the refresh
/// runs (after one that failed part-way), THEN every row of every model table
/// equals a full build over the same raw tables; a second refresh with
/// nothing new changes nothing.
async fn refresh_equals_a_full_build(engine: Engine) {
    let pages: Vec<&str> = PAGES.iter().chain(PAGES_BEFORE).copied().collect();
    let src = raw_source(engine, IDENTIFIES, &pages, TRACKS).await;
    let refreshed = Db::new(engine, "segrefresh").await;
    let m = models(&src, &refreshed);
    run_all(&refreshed, &m.full_build().unwrap()).await;
    append_later_rows(&src).await;
    // A refresh that fails after staging the new rows and rebuilding the
    // identity (its first 8 statements ran) is completed by the next one.
    let refresh = m.refresh().unwrap();
    run_all(&refreshed, &refresh[..8]).await;
    run_all(&refreshed, &refresh).await;

    let full = Db::new(engine, "segfull").await;
    run_all(&full, &models(&src, &full).full_build().unwrap()).await;
    let e = engine;
    for t in COMPARED {
        let got = refreshed
            .column(&e.read_rows(&refreshed.table(t)))
            .await
            .unwrap();
        let want = full.column(&e.read_rows(&full.table(t))).await.unwrap();
        assert!(!want.is_empty(), "{t} is empty");
        assert_eq!(got, want, "{t}: refresh differs from a full build");
    }
    // The scenario does what it says: joined, moved and re-identified rows.
    let sessions = full
        .column(&e.read_sessions(&full.table("sessions")))
        .await
        .unwrap();
    for want in EXPECT_SESSIONS_LATER {
        assert!(
            sessions.contains(&want.to_string()),
            "{want} in {sessions:#?}"
        );
    }
    assert_eq!(sessions.iter().filter(|s| s.starts_with("a5/")).count(), 1);
    assert_eq!(sessions.iter().filter(|s| s.starts_with("a6/")).count(), 1);
    assert_eq!(
        full.column(&e.read_people(&full.table("people")))
            .await
            .unwrap(),
        sorted(EXPECT_PEOPLE_LATER)
    );
    // Nothing new: a second refresh keeps every row.
    run_all(&refreshed, &m.refresh().unwrap()).await;
    for t in COMPARED {
        let got = refreshed
            .column(&e.read_rows(&refreshed.table(t)))
            .await
            .unwrap();
        let want = full.column(&e.read_rows(&full.table(t))).await.unwrap();
        assert_eq!(got, want, "{t}: a refresh without new rows changed it");
    }
    src.cleanup().await;
    refreshed.cleanup().await;
    full.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_equals_a_full_build_on_bigquery() {
    refresh_equals_a_full_build(Engine::BigQuery).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_equals_a_full_build_on_postgres() {
    refresh_equals_a_full_build(Engine::Postgres).await;
}
