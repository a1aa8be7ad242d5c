//! GIVEN a segment built at T1, WHEN the data changes (members enter and leave)
//! and it refreshes at T2, and the same refresh runs again, THEN both history
//! tables hold exactly the rows of SPEC §11, computed here by hand, and the
//! segment table equals a rebuild at T2.

use segments_core::history::{Run, render_run};
use segments_core::time::{parse_now, parse_time_zone};
use segments_core::{Catalog, Target, parse_segment, render_segment};
use segments_tests::bq_check;
use segments_tests::warehouse::Warehouse;

const SEGMENT_ID: &str = "5e1f0c2a-9d4b-4c1e-8f2a-0b1c2d3e4f50";
const T1: &str = "2024-06-15T12:00:00Z";
const T2: &str = "2024-06-16T12:00:00Z";

fn segment(id: &str) -> segments_core::Segment {
    parse_segment(&serde_json::json!({"id": id, "ruleGroups": [{
        "mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
        "g0": {"type": "dimension", "key": "country", "condition": "equals", "value": "US"}
    }]}))
    .unwrap()
}

fn run_sql(w: &Warehouse, at: &str, run_id: &str, revision: i64) -> String {
    let target = Target::new(&w.project, &w.dataset).unwrap();
    let r = render_run(
        &segment(SEGMENT_ID),
        &Catalog::default_catalog(),
        &target,
        &parse_time_zone("Europe/Berlin").unwrap(),
        parse_now(at).unwrap(),
        Run { run_id, revision },
    )
    .unwrap();
    // Every statement is BigQuery Standard SQL on its own.
    for stmt in r.sql.split(";\n") {
        bq_check::check(stmt).unwrap_or_else(|e| panic!("{e}"));
    }
    r.sql
}

/// Sessions `(session_id, country)` as a query.
fn rows_of(rows: &[(&str, &str)]) -> String {
    rows.iter()
        .map(|(id, country)| format!("SELECT '{id}' AS session_id, '{country}' AS country"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

fn secs(at: &str) -> String {
    parse_now(at).unwrap().timestamp().to_string()
}

/// Rows as `a|b|c` strings, sorted.
async fn rows(w: &Warehouse, sql: &str) -> Vec<String> {
    let mut rs = w.run(sql).await.unwrap();
    let n = rs.column_names().len();
    let mut out = Vec::new();
    while rs.next_row() {
        let cells: Vec<String> = (0..n)
            .map(|i| rs.get_string(i).unwrap().unwrap_or_else(|| "<NULL>".into()))
            .collect();
        out.push(cells.join("|"));
    }
    out.sort();
    out
}

async fn changes(w: &Warehouse) -> Vec<String> {
    rows(
        w,
        &format!(
            "SELECT segment_id, run_id, object_id, change, CAST(UNIX_SECONDS(changed_at) AS STRING) FROM {}",
            w.table("segment_membership_changes")
        ),
    )
    .await
}

async fn population(w: &Warehouse) -> Vec<String> {
    rows(
        w,
        &format!(
            "SELECT segment_id, run_id, CAST(UNIX_SECONDS(ran_at) AS STRING), CAST(revision AS STRING), \
             CAST(population AS STRING), CAST(entered AS STRING), CAST(exited AS STRING) FROM {}",
            w.table("segment_population")
        ),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_and_refreshes_record_exactly_the_changes_and_the_population() {
    let w = Warehouse::empty("history").await;
    let sessions = w.table("sessions");
    let table = segment(SEGMENT_ID).table_name();
    w.run(&format!(
        "CREATE TABLE {sessions} AS {}",
        rows_of(&[("s1", "US"), ("s2", "us"), ("s3", "FR"), ("s4", "US")])
    ))
    .await
    .unwrap();

    // Build at T1: no segment table yet, so P is empty and every member entered.
    w.run(&run_sql(&w, T1, "build-1", 1)).await.unwrap();
    assert_eq!(w.members(&table).await.unwrap(), ["s1", "s2", "s4"]);
    let t1 = secs(T1);
    let entered_t1: Vec<String> = ["s1", "s2", "s4"]
        .iter()
        .map(|id| format!("{SEGMENT_ID}|build-1|{id}|entered|{t1}"))
        .collect();
    assert_eq!(changes(&w).await, entered_t1);
    assert_eq!(
        population(&w).await,
        [format!("{SEGMENT_ID}|build-1|{t1}|1|3|3|0")]
    );

    // The data changes: s2 leaves (now FR), s4 is gone, s3 enters (now US), s5 is new.
    w.run(&format!(
        "CREATE OR REPLACE TABLE {sessions} AS {}",
        rows_of(&[("s1", "US"), ("s2", "FR"), ("s3", "us"), ("s5", "US")])
    ))
    .await
    .unwrap();

    // Refresh at T2 (revision 2), then the same run again.
    let refresh = run_sql(&w, T2, "refresh-2", 2);
    w.run(&refresh).await.unwrap();
    let t2 = secs(T2);
    let mut want_changes = entered_t1.clone();
    want_changes.extend([
        format!("{SEGMENT_ID}|refresh-2|s2|exited|{t2}"),
        format!("{SEGMENT_ID}|refresh-2|s3|entered|{t2}"),
        format!("{SEGMENT_ID}|refresh-2|s4|exited|{t2}"),
        format!("{SEGMENT_ID}|refresh-2|s5|entered|{t2}"),
    ]);
    want_changes.sort();
    let want_population = [
        format!("{SEGMENT_ID}|build-1|{t1}|1|3|3|0"),
        format!("{SEGMENT_ID}|refresh-2|{t2}|2|3|2|2"),
    ];
    assert_eq!(changes(&w).await, want_changes);
    assert_eq!(population(&w).await, want_population);
    assert_eq!(w.members(&table).await.unwrap(), ["s1", "s3", "s5"]);

    w.run(&refresh).await.unwrap();
    assert_eq!(
        changes(&w).await,
        want_changes,
        "a second run added changes"
    );
    assert_eq!(
        population(&w).await,
        want_population,
        "a second run added a population row"
    );

    // The segment table equals a rebuild at T2, and no scratch table is left.
    let target = Target::new(&w.project, &w.dataset).unwrap();
    let rebuild = render_segment(
        &segment("5e1f0c2a-9d4b-4c1e-8f2a-00000000beef"),
        &Catalog::default_catalog(),
        &target,
        &parse_time_zone("Europe/Berlin").unwrap(),
        parse_now(T2).unwrap(),
    )
    .unwrap();
    w.run(&rebuild.create_table_query).await.unwrap();
    assert_eq!(
        w.members(&table).await.unwrap(),
        w.members(&rebuild.table).await.unwrap()
    );
    let scratch = segments_core::history::run_table_name(SEGMENT_ID, "refresh-2");
    assert!(
        w.members(&scratch).await.is_err(),
        "scratch table {scratch} left behind"
    );
}

/// A run that died after writing its changes but before its population row:
/// running it again writes the population row from those changes and adds no change twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_died_between_statements_completes_without_duplicates() {
    let w = Warehouse::empty("history_crash").await;
    let sessions = w.table("sessions");
    w.run(&format!(
        "CREATE TABLE {sessions} AS {}",
        rows_of(&[("s1", "US"), ("s2", "US")])
    ))
    .await
    .unwrap();
    let sql = run_sql(&w, T1, "crashy", 1);
    let statements: Vec<&str> = sql.split(";\n").collect();
    // Up to and including the change insert, then the job dies.
    w.run(&statements[..5].join(";\n")).await.unwrap();
    let t1 = secs(T1);
    assert_eq!(population(&w).await, Vec::<String>::new());
    w.run(&sql).await.unwrap();
    assert_eq!(
        changes(&w).await,
        [
            format!("{SEGMENT_ID}|crashy|s1|entered|{t1}"),
            format!("{SEGMENT_ID}|crashy|s2|entered|{t1}"),
        ]
    );
    assert_eq!(
        population(&w).await,
        [format!("{SEGMENT_ID}|crashy|{t1}|1|2|2|0")]
    );
}
