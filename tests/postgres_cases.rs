//! GIVEN the fixture warehouse in the local Postgres (loaded from the same
//! `tests/fixtures/warehouse.sql` as the BigQuery emulator), WHEN each golden
//! case's create query runs, THEN the segment table holds exactly the case's
//! `expect` ids; and a cronjob refresh at the same instant leaves it so.
//! One test per case (listed by `build.rs`), so a failure names its case.
//! Sessions run with an odd `TimeZone` and an empty `search_path`: the SQL
//! must not depend on either.

use segments_core::Target;
use segments_core::sql::DialectKind;
use segments_tests::cases::{Case, NOW, load_all};
use segments_tests::pg_warehouse::PgWarehouse;
use sqlparser::dialect::PostgreSqlDialect;
use sqlparser::parser::Parser;

fn case(name: &str) -> Case {
    load_all()
        .into_iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no golden case {name}"))
}

/// Statements of `sql`, as Postgres's grammar (per sqlparser) reads them.
fn statements(sql: &str) -> Result<usize, String> {
    Parser::parse_sql(&PostgreSqlDialect {}, sql)
        .map(|s| s.len())
        .map_err(|e| format!("does not parse as PostgreSQL: {e}\n{sql}"))
}

async fn run(name: &str) {
    let case = case(name);
    let w = PgWarehouse::fixture("pgcase").await;
    w.run("SET TimeZone = 'Pacific/Kiritimati'; SET search_path = pg_catalog")
        .await
        .unwrap();
    let outcome = async {
        let target = Target::for_dialect(DialectKind::Postgres, "", &w.schema)?;
        let (r, cron) = case.render_short(&target, NOW)?;
        statements(&r.create_table_query)?;
        w.run(&r.create_table_query)
            .await
            .map_err(|e| format!("create failed: {e}\n{}", r.create_table_query))?;
        let got = w.members(&r.table).await?;
        let mut want = case.expect.clone();
        want.sort();
        if got != want {
            return Err(format!(
                "members {got:?}, expected {want:?}\n{}",
                r.create_table_query
            ));
        }
        // A refresh at the same instant is a no-op.
        statements(&cron)?;
        w.run(&cron)
            .await
            .map_err(|e| format!("cronjob failed: {e}\n{cron}"))?;
        let again = w.members(&r.table).await?;
        if again != want {
            return Err(format!(
                "after the cronjob refresh: {again:?}, expected {want:?}\n{cron}"
            ));
        }
        Ok::<(), String>(())
    }
    .await;
    w.cleanup().await;
    if let Err(e) = outcome {
        panic!("case {name} ({}) on Postgres: {e}", case.about);
    }
}

macro_rules! golden_cases {
    ($($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                run(stringify!($name)).await
            }
        )*
    };
}

include!(concat!(env!("OUT_DIR"), "/golden_cases.rs"));

#[test]
fn every_golden_case_has_a_postgres_test() {
    let generated = include_str!(concat!(env!("OUT_DIR"), "/golden_cases.rs"));
    let cases = load_all();
    assert!(cases.len() >= 90, "found {} cases", cases.len());
    for c in &cases {
        assert!(
            generated.contains(&format!("    {},\n", c.name)),
            "no Postgres test for case {}",
            c.name
        );
    }
}
