//! Segment models on 1 million raw events in the local Postgres: a full build
//! versus a refresh after one new day (plus late rows), with the times and
//! the raw rows each read. Ignored by default (it takes minutes on a shared
//! machine); run it with
//! `cargo test -p segments-tests --test models_bench -- --ignored --nocapture`.
//! The results are in docs/segment-source.md.

use segments_core::Target;
use segments_core::models::SegmentSource;
use segments_core::sql::DialectKind;
use segments_tests::pg_warehouse::PgWarehouse;
use std::time::Instant;

/// Raw pages and tracks for `days` days from 2024-06-01 starting at event
/// number `from` (`n` events): 50,000 anonymous ids active in bursts of 20
/// events 4.32 s apart, every tenth event identified, 60 % pages.
fn raw_events(schema: &str, from: i64, n: i64, start: &str, spacing_ms: i64) -> Vec<String> {
    let base = |table: &str, cols: &str, select: &str, filter: &str| {
        format!(
            "INSERT INTO \"{schema}\".\"{table}\" ({cols}) SELECT {select} FROM generate_series({from}, {}) AS g WHERE {filter}",
            from + n - 1
        )
    };
    let common = format!(
        "'e' || g, 'a' || ((g / 20) % 50000), CASE WHEN g % 10 = 0 THEN 'u' || ((g / 20) % 50000 / 3) END, TIMESTAMPTZ '{start}' + (g - {from}) * INTERVAL '{spacing_ms} milliseconds'"
    );
    vec![
        base(
            "pages",
            "id, anonymous_id, user_id, timestamp, url, path, title, referrer, context_campaign_source, context_campaign_medium, context_campaign_name",
            &format!(
                "{common}, 'https://x.io/p' || (g % 100), '/p' || (g % 100), 'Page ' || (g % 100), CASE WHEN g % 7 = 0 THEN 'https://google.com' END, CASE WHEN g % 11 = 0 THEN 'google' END, NULL, NULL"
            ),
            "g % 5 < 3",
        ),
        base(
            "tracks",
            "id, anonymous_id, user_id, timestamp, event, context_page_url",
            &format!("{common}, 'event_' || (g % 20), 'https://x.io/p' || (g % 100)"),
            "g % 5 >= 3",
        ),
        base(
            "identifies",
            "id, anonymous_id, user_id, timestamp, email, first_name, last_name",
            &format!(
                "'i' || g, 'a' || ((g / 20) % 50000), 'u' || ((g / 20) % 50000 / 3), TIMESTAMPTZ '{start}' + (g - {from}) * INTERVAL '{spacing_ms} milliseconds', 'user' || ((g / 20) % 50000 / 3) || '@example.com', NULL, NULL"
            ),
            "g % 50 = 0",
        ),
    ]
}

async fn count(w: &PgWarehouse, table: &str) -> i64 {
    w.column(&format!("SELECT COUNT(*) FROM {}", w.table(table)))
        .await
        .unwrap()[0]
        .parse()
        .unwrap()
}

async fn run(w: &PgWarehouse, statements: &[String]) -> f64 {
    let t = Instant::now();
    for sql in statements {
        w.run(sql).await.unwrap_or_else(|e| panic!("{e}\n{sql}"));
    }
    t.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn one_million_events_full_build_versus_refresh() {
    let src = PgWarehouse::empty("segbenchraw").await;
    let dst = PgWarehouse::empty("segbench").await;
    let s = &src.schema;
    for (t, cols) in [
        (
            "identifies",
            "id text, anonymous_id text, user_id text, timestamp timestamptz, email text, first_name text, last_name text",
        ),
        (
            "pages",
            "id text, anonymous_id text, user_id text, timestamp timestamptz, url text, path text, title text, referrer text, context_campaign_source text, context_campaign_medium text, context_campaign_name text",
        ),
        (
            "tracks",
            "id text, anonymous_id text, user_id text, timestamp timestamptz, event text, context_page_url text",
        ),
    ] {
        src.run(&format!(
            "CREATE TABLE \"{s}\".\"{t}\" ({cols}); CREATE INDEX ON \"{s}\".\"{t}\" (id)"
        ))
        .await
        .unwrap();
    }
    // 1,000,000 events over 30 days.
    for sql in raw_events(s, 0, 1_000_000, "2024-06-01 00:00:00+00", 2592) {
        src.run(&sql).await.unwrap();
    }
    src.run(&format!(
        "ANALYZE \"{s}\".pages; ANALYZE \"{s}\".tracks; ANALYZE \"{s}\".identifies"
    ))
    .await
    .unwrap();
    let models = SegmentSource::new(
        Target::for_dialect(DialectKind::Postgres, "", s).unwrap(),
        Target::for_dialect(DialectKind::Postgres, "", &dst.schema).unwrap(),
        30,
    )
    .unwrap();
    let full = run(&dst, &models.full_build().unwrap()).await;
    let raw_total = count(&src, "pages").await + count(&src, "tracks").await;
    println!(
        "full build: {full:.1} s, raw events read {raw_total}, events {}, sessions {}",
        count(&dst, "events").await,
        count(&dst, "sessions").await
    );
    // One new day (33,333 events) and 1,000 late events spread over the month.
    for sql in raw_events(s, 1_000_000, 33_333, "2024-07-01 00:00:00+00", 2592) {
        src.run(&sql).await.unwrap();
    }
    for sql in raw_events(s, 2_000_000, 1_000, "2024-06-02 00:00:00+00", 2_500_000) {
        src.run(&sql).await.unwrap();
    }
    let refresh = run(&dst, &models.refresh().unwrap()).await;
    let new = count(&dst, "segment_src_new_hits").await;
    let rebuilt_anons: i64 = dst
        .column(&format!(
            "SELECT COUNT(DISTINCT anonymous_id) FROM {}",
            dst.table("segment_src_new_hits")
        ))
        .await
        .unwrap()[0]
        .parse()
        .unwrap();
    println!(
        "refresh: {refresh:.1} s, raw events read {new} (new and late), anonymous ids rebuilt {rebuilt_anons}"
    );
    src.cleanup().await;
    dst.cleanup().await;
}
