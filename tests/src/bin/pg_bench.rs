//! Performance on a real engine (not run in CI): builds a Postgres warehouse of
//! 1,000,000 sessions and their events (schema `segments_pgbench`, replaced on
//! each run), then times, for five representative segments, our generated
//! create statement against a hand-written query a Postgres expert would write
//! for the same members, checks both select the same ids, and prints the ratios.
//!
//! `cargo run -p segments-tests --bin pg_bench [-- --sessions N --no-indexes]`
//! (the time is spent in Postgres: a debug build measures the same)
//! with `DATABASE_URL` set (`tests/stack/up.sh` writes it to `.stack/env`).

use segments_core::sql::DialectKind;
use segments_core::{Catalog, Target, parse_segment, render_segment};
use segments_tests::fixture::{self, FixtureStatement};
use segments_tests::pg_warehouse::{connect, describe};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

const SCHEMA: &str = "segments_pgbench";
const NOW: &str = "2024-06-15T12:00:00Z";
const RUNS: usize = 3;

/// The data, generated in the server. Times spread over the 90 days before NOW.
fn generate(sessions: u64) -> Vec<String> {
    let s = SCHEMA;
    let users = sessions / 5;
    let people = sessions / 10;
    let companies = sessions / 50;
    let t = "TIMESTAMP WITH TIME ZONE '2024-06-15 12:00:00+00:00'";
    vec![
        format!(
            "INSERT INTO {s}.sessions (session_id, user_id, people_id, company_id, started_at, country, device_type, pageviews, is_engaged, custom)
             SELECT 's' || i, 'u' || (i % {users}), 'p' || (i % {people}), 'c' || (i % {companies}),
                    {t} - ((i * 7919) % (90 * 86400)) * INTERVAL '1 second',
                    (ARRAY['US', 'us', 'DE', 'FR', 'GB', 'Brazil', 'IN'])[1 + i % 7],
                    (ARRAY['Desktop', 'mobile', 'tablet'])[1 + (i / 7) % 3],
                    i % 20, i % 3 = 0,
                    CASE i % 4 WHEN 0 THEN '[{{\"key\": \"plan\", \"value\": \"pro\"}}]'::jsonb
                               WHEN 1 THEN '[{{\"key\": \"plan\", \"value\": \"Free\"}}, {{\"key\": \"score\", \"value\": \"42\"}}]'::jsonb
                               ELSE '[]'::jsonb END
             FROM generate_series(1::bigint, {sessions}) AS i"
        ),
        format!(
            "INSERT INTO {s}.events (event_id, event_name, session_id, user_id, people_id, company_id, page_url, event_timestamp, properties)
             SELECT 'e' || i || '_' || k, (ARRAY['page_view', 'page_view', 'signup', 'form_submit'])[1 + (i + k) % 4],
                    's' || i, 'u' || (i % {users}), 'p' || (i % {people}), 'c' || (i % {companies}), '/p' || (i % 50),
                    {t} - ((i * 7919) % (90 * 86400)) * INTERVAL '1 second' + k * INTERVAL '1 minute',
                    CASE (i + k) % 3 WHEN 0 THEN '[{{\"key\": \"form\", \"value\": \"Newsletter\"}}]'::jsonb
                                     WHEN 1 THEN '[{{\"key\": \"form\", \"value\": \"contact\"}}]'::jsonb
                                     ELSE '[]'::jsonb END
             FROM generate_series(1::bigint, {sessions}) AS i, generate_series(1, 3) AS k"
        ),
        format!(
            "INSERT INTO {s}.users (user_id, people_id, first_seen_at, last_seen_at, country, custom)
             SELECT 'u' || i, 'p' || (i % {people}), {t} - INTERVAL '200 days', {t} - (i % 90) * INTERVAL '1 day', 'US', '[]'::jsonb
             FROM generate_series(0, {users} - 1) AS i"
        ),
        format!(
            "INSERT INTO {s}.people (people_id, company_id, email, lifecycle_stage, tags, is_customer, created_at, last_seen_at, custom)
             SELECT 'p' || i, 'c' || (i % {companies}), 'p' || i || '@example.com',
                    (ARRAY['lead', 'customer', 'churned', 'Churned'])[1 + i % 4],
                    CASE i % 5 WHEN 0 THEN ARRAY['VIP', 'beta'] WHEN 1 THEN ARRAY['early'] WHEN 2 THEN ARRAY[]::text[] ELSE NULL END,
                    i % 2 = 0, {t} - INTERVAL '300 days', {t} - (i % 60) * INTERVAL '1 day', '[]'::jsonb
             FROM generate_series(0, {people} - 1) AS i"
        ),
    ]
}

/// The indexes docs/postgres-warehouse.md recommends for these segments.
const INDEXES: &[&str] = &[
    "CREATE INDEX ON segments_pgbench.sessions (started_at)",
    "CREATE INDEX ON segments_pgbench.sessions (user_id, started_at)",
    "CREATE INDEX ON segments_pgbench.events (event_name, event_timestamp)",
    "CREATE INDEX ON segments_pgbench.events (session_id)",
];

/// (name, segment rules, hand-written query for the same members)
fn segments() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        (
            "property: US mobile/tablet sessions, last 30 days",
            json!([{"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
                "dateRangeFilter": {"type": "previous-period", "numberOfDaysPrevious": 30},
                "g0": {"type": "dimension", "key": "country", "condition": "equals", "value": "us"},
                "g1": {"type": "dimension", "key": "device_type", "condition": "in-list", "value": ["mobile", "tablet"]}}]),
            "SELECT session_id AS object_id FROM segments_pgbench.sessions
             WHERE lower(country) = 'us' AND lower(device_type) IN ('mobile', 'tablet')
               AND started_at >= '2024-05-16 00:00:00+00' AND started_at < '2024-06-15 00:00:00+00'",
        ),
        (
            "custom key: sessions whose plan is pro",
            json!([{"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
                "g0": {"type": "custom", "key": "plan", "condition": "equals", "value": "pro"}}]),
            "SELECT session_id AS object_id FROM segments_pgbench.sessions s
             WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(s.custom) e
                           WHERE e->>'key' = 'plan' AND lower(e->>'value') = 'pro')",
        ),
        (
            "metric: users with more than 1 session in 30 days",
            json!([{"mainOperator": "include", "segmentObject": "user", "conditionFocus": "metric",
                "dateRangeFilter": {"type": "previous-period", "numberOfDaysPrevious": 30},
                "g0": {"type": "metric", "key": "sessions", "condition": "greater-than", "value": 1}}]),
            "SELECT u.user_id AS object_id FROM segments_pgbench.users u
             JOIN (SELECT user_id FROM segments_pgbench.sessions
                   WHERE started_at >= '2024-05-16 00:00:00+00' AND started_at < '2024-06-15 00:00:00+00'
                   GROUP BY user_id HAVING count(*) > 1) s USING (user_id)",
        ),
        (
            "event: sessions with a newsletter signup in 7 days",
            json!([{"mainOperator": "include", "segmentObject": "session", "conditionFocus": "other-event",
                "dateRangeFilter": {"type": "previous-period", "numberOfDaysPrevious": 7},
                "g0": {"key": "signup", "subKey": "form", "condition": "equals", "value": "newsletter"}}]),
            "SELECT DISTINCT e.session_id AS object_id FROM segments_pgbench.events e
             WHERE e.event_name = 'signup'
               AND e.event_timestamp >= '2024-06-08 00:00:00+00' AND e.event_timestamp < '2024-06-15 00:00:00+00'
               AND EXISTS (SELECT 1 FROM jsonb_array_elements(e.properties) p
                           WHERE p->>'key' = 'form' AND lower(p->>'value') = 'newsletter')
               AND EXISTS (SELECT 1 FROM segments_pgbench.sessions s WHERE s.session_id = e.session_id)",
        ),
        (
            "include minus exclude: VIP or beta people who are not churned",
            json!([{"mainOperator": "include", "segmentObject": "people", "conditionFocus": "property",
                "g0": {"type": "multi-value", "key": "tags", "condition": "contains-any", "value": ["vip", "beta"]}},
                {"mainOperator": "exclude", "segmentObject": "people", "conditionFocus": "property",
                "g0": {"type": "dimension", "key": "lifecycle_stage", "condition": "equals", "value": "churned"}}]),
            "SELECT people_id AS object_id FROM segments_pgbench.people
             WHERE EXISTS (SELECT 1 FROM unnest(tags) t WHERE lower(t) IN ('vip', 'beta'))
               AND (lifecycle_stage IS NULL OR lower(lifecycle_stage) <> 'churned')",
        ),
    ]
}

async fn run(c: &tokio_postgres::Client, sql: &str) -> Duration {
    let start = Instant::now();
    c.batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{}\n{sql}", describe(&e)));
    start.elapsed()
}

fn median(mut d: Vec<Duration>) -> Duration {
    d.sort();
    d[d.len() / 2]
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sessions: u64 = args
        .iter()
        .position(|a| a == "--sessions")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let indexes = !args.iter().any(|a| a == "--no-indexes");
    // `--reuse`: time the queries on the warehouse a previous run built.
    let reuse = args.iter().any(|a| a == "--reuse");
    let c = connect().await;
    let t = Instant::now();
    if !reuse {
        build(&c, sessions, indexes).await;
    }
    println!(
        "warehouse: {sessions} sessions, {} events, indexes {}, {} in {:.1?}",
        sessions * 3,
        if indexes { "on" } else { "off" },
        if reuse { "reused" } else { "built" },
        t.elapsed()
    );
    queries(&c).await;
}

async fn build(c: &tokio_postgres::Client, sessions: u64, indexes: bool) {
    run(
        c,
        &format!("DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; CREATE SCHEMA {SCHEMA}"),
    )
    .await;
    let creates: Vec<FixtureStatement> = fixture::warehouse()
        .into_iter()
        .filter(|s| matches!(s, FixtureStatement::Create { .. }))
        .collect();
    for sql in fixture::postgres_statements(&creates, SCHEMA) {
        run(c, &sql).await;
    }
    for sql in generate(sessions) {
        run(c, &sql).await;
    }
    if indexes {
        for sql in INDEXES {
            run(c, sql).await;
        }
    }
    run(
        c,
        &format!("ANALYZE {SCHEMA}.sessions, {SCHEMA}.events, {SCHEMA}.users, {SCHEMA}.people"),
    )
    .await;
}

async fn queries(c: &tokio_postgres::Client) {
    let target = Target::for_dialect(DialectKind::Postgres, "", SCHEMA).unwrap();
    let tz = segments_core::time::parse_time_zone("UTC").unwrap();
    let now = segments_core::time::parse_now(NOW).unwrap();
    println!("| segment | members | generated | hand-written | ratio |");
    println!("|---|---|---|---|---|");
    for (i, (name, groups, hand)) in segments().into_iter().enumerate() {
        let seg =
            parse_segment(&json!({"id": format!("bench-{i}"), "ruleGroups": groups})).unwrap();
        let r = render_segment(&seg, &Catalog::default_catalog(), &target, &tz, now).unwrap();
        let hand_create = format!(
            "DROP TABLE IF EXISTS {SCHEMA}.hand_{i}; CREATE TABLE {SCHEMA}.hand_{i} AS {hand}"
        );
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        for _ in 0..RUNS {
            ours.push(run(c, &r.create_table_query).await);
            theirs.push(run(c, &hand_create).await);
        }
        let diff: i64 = c
            .query_one(
                &format!(
                    "SELECT (SELECT count(*) FROM (SELECT object_id FROM {SCHEMA}.{t} EXCEPT SELECT object_id FROM {SCHEMA}.hand_{i}) a)
                          + (SELECT count(*) FROM (SELECT object_id FROM {SCHEMA}.hand_{i} EXCEPT SELECT object_id FROM {SCHEMA}.{t}) b)",
                    t = r.table
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        let members: i64 = c
            .query_one(&format!("SELECT count(*) FROM {SCHEMA}.{}", r.table), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            diff, 0,
            "{name}: the generated and hand-written queries select different ids"
        );
        let (o, h) = (median(ours), median(theirs));
        println!(
            "| {name} | {members} | {:.0?} | {:.0?} | {:.2}x |",
            o,
            h,
            o.as_secs_f64() / h.as_secs_f64()
        );
    }
}
