//! Properties of the Postgres dialect: hostile user values and keys never
//! change a statement's shape (parsed with sqlparser's PostgreSQL dialect;
//! one shape for ASCII values, one for others, which compare under ICU),
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
        // Comparisons with ASCII text take the dialect's ICU-free form, others
        // the ICU one: the baseline is a value of the same kind.
        let base_value = if value.is_ascii() { "x" } else { "\u{e9}" };
        let (base_seg, got_seg) = (value_segment("prop", base_value, "k"), value_segment("prop", &value, &key));
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

/// Text mixing ASCII with the letters whose lower case is tricky: KELVIN SIGN
/// and `İ` (their lower case holds ASCII), dotless `ı`, `ß`, final sigma,
/// OHM and ANGSTROM signs, a ligature, a titlecase digraph, a combining dot.
fn tricky_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop::sample::select(vec![
            "K", "k", "\u{212A}", "I", "i", "\u{130}", "\u{131}", "\u{307}", "S", "s", "\u{df}",
            "\u{3a3}", "\u{3c2}", "\u{2126}", "\u{212B}", "\u{fb01}", "\u{1c5}", "\u{c9}", "e",
            "A", " ",
        ]),
        0..6,
    )
    .prop_map(|p| p.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Against ASCII text the dialect lowers without ICU; every comparison must
    /// still answer as `LOWER(x COLLATE "und-x-icu")` does, on the server.
    #[test]
    fn ascii_comparisons_lower_as_icu_does(x in tricky_text(), lit in "[a-zA-Z ]{0,3}|k|i|ki|ss") {
        let (ours, icu, sql) = ours_and_icu(&x, &lit);
        prop_assert_eq!(ours, icu, "{:?} vs {:?}\n{}", x, lit, sql);
    }
}

/// Our comparisons of `LOWER(x)` with ASCII `lit` and the same comparisons
/// under ICU lowering, as the server answers them.
fn ours_and_icu(x: &str, lit: &str) -> (Vec<bool>, Vec<bool>, String) {
    use segments_core::sql::{BinOp, Expr, Func, Query, Select, render_query};
    use segments_core::time::Clock;
    let lower = |e: Expr| Expr::call(Func::Lower, vec![e]);
    let (v, l) = (lower(Expr::str(x)), lower(Expr::str(lit)));
    let ours = vec![
        v.clone().eq(l.clone()),
        Expr::InList(Box::new(v.clone()), vec![l.clone(), Expr::str("zz")]),
        Expr::call(Func::StrPos, vec![v.clone(), l.clone()]).bin(BinOp::Gt, Expr::Int(0)),
        Expr::call(Func::StartsWith, vec![v.clone(), l.clone()]),
        Expr::call(Func::EndsWith, vec![v.clone(), l.clone()]),
    ];
    let mut select = Select::default();
    for (i, e) in ours.into_iter().enumerate() {
        select = select.item(e, Some(["eq", "inl", "pos", "sw", "ew"][i]));
    }
    let sql = render_query(
        DialectKind::Postgres.dialect(),
        &Query::select(select),
        Clock::Placeholders,
    )
    .unwrap();
    assert!(
        !sql.contains("und-x-icu"),
        "the ASCII path was not taken: {sql}"
    );
    let q = |s: &str| {
        let mut out = String::new();
        DialectKind::Postgres.dialect().string_literal(&mut out, s);
        out
    };
    let (xq, lq) = (q(x), q(lit));
    let icu = |e: &str| format!("LOWER(({e}) COLLATE \"und-x-icu\")");
    let reference = format!(
        "SELECT {a} = {b}, {a} IN ({b}, 'zz'), STRPOS({a}, {b}) > 0, STARTS_WITH({a}, {b}), RIGHT({a}, LENGTH({b})) = {b}",
        a = icu(&xq),
        b = icu(&lq)
    );
    let srv = server();
    let row = |sql: String| -> Vec<bool> {
        let r = srv
            .rt
            .block_on(srv.warehouse.client.query_one(&sql, &[]))
            .unwrap_or_else(|e| panic!("{}\n{sql}", pg_warehouse::describe(&e)));
        (0..r.len()).map(|i| r.get::<_, bool>(i)).collect()
    };
    (
        row(sql.clone()),
        row(reference.clone()),
        format!("{sql}\n{reference}"),
    )
}

#[test]
fn ascii_comparisons_lower_as_icu_does_on_the_letters_that_matter() {
    for (x, lit) in [
        ("\u{212A}", "k"),
        ("\u{212A}ELVIN", "kelvin"),
        ("X\u{130}Y", "xi"),
        ("X\u{130}Y", "xiy"),
        ("\u{130}", "i"),
        ("STRA\u{df}E", "strasse"),
        ("STRASSE", "strasse"),
        ("\u{3a3}A", "a"),
        ("\u{131}", "i"),
    ] {
        let (ours, icu, sql) = ours_and_icu(x, lit);
        assert_eq!(ours, icu, "{x:?} vs {lit:?}\n{sql}");
    }
}
