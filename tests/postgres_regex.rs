//! `matches-regex` on both engines: each pattern runs as RE2 on the BigQuery
//! emulator (`REGEXP_CONTAINS`) and, rewritten by `re2_postgres`, as a Postgres
//! regular expression (`~`); every subject must match or not match alike.
//! The subjects are the ones where a naive copy of the pattern would differ.

use segments_core::re2_postgres::to_postgres;
use segments_core::sql::DialectKind;
use segments_tests::pg_warehouse::PgWarehouse;
use segments_tests::warehouse::Warehouse;

fn lit(d: DialectKind, s: &str) -> String {
    let mut out = String::new();
    d.dialect().string_literal(&mut out, s);
    out
}

const CASES: &[(&str, &[&str])] = &[
    ("a.c", &["abc", "a\nc", "a\u{e9}c"]),
    ("\\d+", &["42", "\u{663}", "x"]),
    ("^\\w+$", &["abc_1", "\u{e9}t\u{e9}", "a-b"]),
    ("\\s", &[" ", "\t", "\u{a0}", "x"]),
    ("\\S\\s\\S", &["a b", "a\u{a0}b"]),
    ("\\D", &["1", "\u{663}", "x"]),
    ("\\W", &["a", "\u{e9}", "-"]),
    ("^abc$", &["abc", "abc\n", "xabc"]),
    ("\\x41B", &["AB", "A", "\u{41b}"]),
    ("\\x{e9}", &["\u{e9}", "e"]),
    ("x{2}", &["xx", "x"]),
    ("a{,3}", &["a{,3}", "aaa"]),
    ("[[]", &["[", "]"]),
    ("[]a]+", &["]", "a", "b"]),
    ("end\\z", &["the end", "end\n", "endless"]),
    ("\\Astart", &["start here", "a start"]),
    ("\\S+@\\S+\\.\\w+", &["ann@example.com", "no at"]),
    ("(?:ab)+c", &["ababc", "ac"]),
    ("^\\$\\d", &["$5", "5$"]),
    ("[^a]", &["\n", "a"]),
    ("[\\d\\s]x", &["1x", " x", "\u{663}x", "ax"]),
    ("a|b", &["a", "c"]),
    ("\\t", &["\t", "t"]),
    ("\u{e9}+", &["\u{e9}\u{e9}", "e"]),
    ("a*?b", &["aab", "c"]),
    ("it's \\\\", &["it's \\", "its"]),
    (
        "\\.\\*\\+\\?\\(\\)\\[\\]\\{\\}\\|\\^",
        &[".*+?()[]{}|^", "x"],
    ),
    ("[a-c]{2,3}$", &["xbc", "xb"]),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_patterns_match_alike_on_bigquery_and_postgres() {
    let mut rows = Vec::new();
    for (pattern, subjects) in CASES {
        segments_core::re2::check(pattern).unwrap_or_else(|e| panic!("{pattern}: not RE2: {e}"));
        let are = to_postgres(pattern).unwrap_or_else(|e| panic!("{pattern}: refused: {e}"));
        for s in *subjects {
            rows.push((rows.len(), *pattern, are.clone(), *s));
        }
    }
    let bq = Warehouse::empty("regex").await;
    let structs: Vec<String> = rows
        .iter()
        .map(|(i, p, _, s)| {
            format!(
                "STRUCT({i} AS i, {} AS s, {} AS p)",
                lit(DialectKind::BigQuery, s),
                lit(DialectKind::BigQuery, p)
            )
        })
        .collect();
    let mut rs = bq
        .run(&format!(
            "SELECT i, REGEXP_CONTAINS(s, p) FROM UNNEST([{}]) ORDER BY i",
            structs.join(", ")
        ))
        .await
        .unwrap();
    let mut on_bigquery = Vec::new();
    while rs.next_row() {
        on_bigquery.push(rs.get_bool(1).unwrap().unwrap_or(false));
    }
    let pg = PgWarehouse::empty("regex").await;
    let values: Vec<String> = rows
        .iter()
        .map(|(i, _, are, s)| {
            format!(
                "({i}, {}, {})",
                lit(DialectKind::Postgres, s),
                lit(DialectKind::Postgres, are)
            )
        })
        .collect();
    let on_postgres: Vec<bool> = pg
        .client
        .query(
            &format!(
                "SELECT s ~ p FROM (VALUES {}) AS t(i, s, p) ORDER BY i",
                values.join(", ")
            ),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<_, bool>(0))
        .collect();
    pg.cleanup().await;
    assert_eq!(on_bigquery.len(), rows.len());
    let mut differ = Vec::new();
    for (((_, p, are, s), b), q) in rows.iter().zip(&on_bigquery).zip(&on_postgres) {
        if b != q {
            differ.push(format!(
                "{p:?} (Postgres {are:?}) on {s:?}: RE2 {b}, Postgres {q}"
            ));
        }
    }
    assert!(
        differ.is_empty(),
        "engines disagree:\n{}",
        differ.join("\n")
    );
    // The subjects are not trivial: both outcomes occur.
    assert!(on_bigquery.iter().any(|m| *m) && on_bigquery.iter().any(|m| !*m));
}

/// Patterns RE2 accepts but Postgres would read differently are refused,
/// naming the construct, when a segment renders for Postgres.
#[test]
fn refused_patterns_name_their_construct_when_rendering_for_postgres() {
    for (pattern, named) in [
        ("(?i)abc", "(?i)"),
        ("\\bword\\b", "\\b"),
        ("\\p{Greek}", "Unicode classes"),
        ("[[:alpha:]]", "POSIX classes"),
        ("(?P<n>a)", "named groups"),
    ] {
        segments_core::re2::check(pattern).unwrap();
        let seg = segments_core::parse_segment(&serde_json::json!({"id": "rx", "ruleGroups": [{
            "mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
            "g0": {"type": "dimension", "key": "referrer", "condition": "matches-regex", "value": pattern}}]}))
        .unwrap();
        let tz = segments_core::time::parse_time_zone("UTC").unwrap();
        let now = segments_core::time::parse_now("2024-06-15T12:00:00Z").unwrap();
        let catalog = segments_core::Catalog::default_catalog();
        let pg = segments_core::Target::for_dialect(DialectKind::Postgres, "", "acct").unwrap();
        let err = segments_core::render_segment(&seg, &catalog, &pg, &tz, now)
            .unwrap_err()
            .to_string();
        assert!(err.contains(named), "{pattern}: {err}");
        // The same segment renders for BigQuery, which runs RE2 itself.
        let bq = segments_core::Target::new("p", "acct").unwrap();
        assert!(segments_core::render_segment(&seg, &catalog, &bq, &tz, now).is_ok());
    }
}
