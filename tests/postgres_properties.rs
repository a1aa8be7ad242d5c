//! Properties of the Postgres dialect: hostile user values and keys never
//! change a statement's shape (parsed with sqlparser's PostgreSQL dialect),
//! come back out of the parse unchanged, run on the real Postgres, and every
//! string literal reads back on the server exactly as it went in.

use proptest::prelude::*;
use segments_core::sql::DialectKind;
use segments_core::time::{parse_now, parse_time_zone};
use segments_core::{Catalog, Target, parse_segment, render_segment};
use segments_tests::pg_warehouse::{self, PgWarehouse};
use serde_json::{Value, json};
use sqlparser::ast::{Value as SqlValue, ValueWithSpan, VisitMut, VisitorMut};
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;
use std::ops::ControlFlow;
use std::sync::OnceLock;

/// One runtime and one fixture warehouse for every case of this file.
struct Server {
    rt: tokio::runtime::Runtime,
    warehouse: PgWarehouse,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        // One fixed schema, replaced on each run, so runs leave at most one behind.
        let warehouse = rt.block_on(async {
            let admin = pg_warehouse::connect().await;
            admin
                .batch_execute("DROP SCHEMA IF EXISTS segments_pgprop CASCADE")
                .await
                .unwrap();
            PgWarehouse::fixture_in("segments_pgprop").await
        });
        Server { rt, warehouse }
    })
}

fn target(schema: &str) -> Target {
    Target::for_dialect(DialectKind::Postgres, "", schema).unwrap()
}

fn render(seg: &Value, schema: &str) -> segments_core::RenderedSegment {
    let seg = parse_segment(seg).unwrap();
    render_segment(
        &seg,
        &Catalog::default_catalog(),
        &target(schema),
        &parse_time_zone("UTC").unwrap(),
        parse_now("2024-06-15T12:00:00Z").unwrap(),
    )
    .unwrap()
}

fn refresh(seg: &Value, schema: &str, now: &str) -> String {
    let seg = parse_segment(seg).unwrap();
    segments_core::render_refresh(
        &seg,
        &Catalog::default_catalog(),
        &target(schema),
        &parse_time_zone("UTC").unwrap(),
        parse_now(now).unwrap(),
    )
    .unwrap()
}

/// Replaces every string literal with '' and records the originals.
struct Literals(Vec<String>);

impl VisitorMut for Literals {
    type Break = ();
    fn pre_visit_value(&mut self, v: &mut ValueWithSpan) -> ControlFlow<()> {
        if let SqlValue::SingleQuotedString(s) = &mut v.value {
            self.0.push(std::mem::take(s));
        }
        ControlFlow::Continue(())
    }
}

/// The statements' shape (literals blanked) and their literals.
fn shape(sql: &str) -> (String, Vec<String>) {
    let mut stmts = Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .unwrap_or_else(|e| panic!("does not parse as PostgreSQL: {e}\n{sql}"));
    let mut lits = Literals(Vec::new());
    let _ = stmts.visit(&mut lits);
    let text: Vec<String> = stmts.iter().map(ToString::to_string).collect();
    (text.join(";\n"), lits.0)
}

fn value_segment(id: &str, value: &str, key: &str) -> Value {
    json!({"id": id, "ruleGroups": [{
        "mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
        "g0": {"type": "dimension", "key": "country", "condition": "contains", "value": value},
        "g1": {"conjunction": "or", "type": "custom", "key": key, "condition": "in-list", "value": [value, "b"]},
        "g2": {"type": "dimension", "key": "referrer", "condition": "matches-regex", "value": regex_escape(value)},
        "g3": {"type": "dimension", "key": "city", "condition": "ends-with", "value": value}
    }, {
        "mainOperator": "include", "segmentObject": "session", "conditionFocus": "other-event",
        "g0": {"key": "page_view", "subKey": key, "condition": "not-equal", "value": value}
    }]})
}

/// Any text as an RE2 pattern matching it literally.
fn regex_escape(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~ \t\n\r\u{b}\u{c}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Strings meant to break out of a literal or identifier in Postgres.
fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        "[^\u{0}]{1,24}",
        prop::collection::vec(
            prop::sample::select(vec![
                "'",
                "''",
                "\\",
                "\\'",
                "\"",
                ";",
                "--",
                "/*",
                "*/",
                "$$",
                "$a$",
                "E'",
                "{{ts:now}}",
                "\n",
                "\u{2028}",
                "\u{feff}",
                "é",
                "ß",
                "İ",
                "x",
            ]),
            1..8
        )
        .prop_map(|parts| parts.concat()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn hostile_values_never_change_a_postgres_statement(value in hostile(), key in "[A-Za-z_][A-Za-z0-9_]{0,12}") {
        let (base_seg, got_seg) = (value_segment("prop", "x", "k"), value_segment("prop", &value, &key));
        let base = render(&base_seg, "acct");
        let got = render(&got_seg, "acct");
        let day2 = "2024-06-16T00:00:00Z";
        for (b, g) in [
            (base.create_table_query.clone(), got.create_table_query.clone()),
            (refresh(&base_seg, "acct", day2), refresh(&got_seg, "acct", day2)),
        ] {
            let (base_shape, _) = shape(&b);
            let (got_shape, lits) = shape(&g);
            prop_assert_eq!(&base_shape, &got_shape);
            prop_assert!(lits.contains(&value), "value {:?} not among literals {:?}", value, lits);
            prop_assert!(lits.contains(&key));
            let are = segments_core::re2_postgres::to_postgres(&regex_escape(&value)).unwrap();
            prop_assert!(lits.contains(&are), "regex {:?} not among literals", are);
        }
    }

    #[test]
    fn string_literals_round_trip_on_postgres(s in hostile()) {
        let mut lit = String::new();
        DialectKind::Postgres.dialect().string_literal(&mut lit, &s);
        let sql = format!("SELECT {lit}");
        let (_, lits) = shape(&sql);
        prop_assert_eq!(&lits, &vec![s.clone()]);
        let srv = server();
        let rows = srv
            .rt
            .block_on(srv.warehouse.client.simple_query(&sql))
            .map_err(|e| pg_warehouse::describe(&e));
        let got: Vec<String> = rows
            .unwrap_or_else(|e| panic!("{e}\n{sql}"))
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                _ => None,
            })
            .collect();
        prop_assert_eq!(got, vec![s]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The statements run on the fixture warehouse with any value: the create
    /// and the refresh succeed, and the refresh leaves what the create built.
    #[test]
    fn hostile_values_run_on_postgres(value in hostile(), key in "[A-Za-z_][A-Za-z0-9_]{0,12}") {
        let srv = server();
        let r = render(&value_segment("prop-run", &value, &key), &srv.warehouse.schema);
        srv.rt.block_on(async {
            srv.warehouse.run(&r.create_table_query).await.unwrap_or_else(|e| panic!("{e}\n{}", r.create_table_query));
            let built = srv.warehouse.members(&r.table).await.unwrap();
            let refresh = refresh(&value_segment("prop-run", &value, &key), &srv.warehouse.schema, "2024-06-15T12:00:00Z");
            srv.warehouse.run(&refresh).await.unwrap_or_else(|e| panic!("{e}\n{refresh}"));
            assert_eq!(srv.warehouse.members(&r.table).await.unwrap(), built);
        });
    }
}
