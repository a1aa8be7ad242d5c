//! segmentctl as the acceptance checks use it: arguments, JSON out, exit codes.

use std::io::Write;
use std::process::{Command, Output};

fn segmentctl(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_segmentctl"))
        .args(args)
        .output()
        .expect("run segmentctl")
}

fn file(text: &str) -> tempfile_path::TempFile {
    tempfile_path::TempFile::new(text)
}

/// A file in the target tmp dir that is removed on drop.
mod tempfile_path {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    pub struct TempFile(pub std::path::PathBuf);
    impl TempFile {
        pub fn new(text: &str) -> TempFile {
            let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
            let path = dir.join(format!(
                "cli-{}-{}.json",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let mut f = std::fs::File::create(&path).expect("create temp file");
            f.write_all(text.as_bytes()).expect("write temp file");
            TempFile(path)
        }
        pub fn path(&self) -> &str {
            self.0.to_str().unwrap_or_default()
        }
    }
    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }
}

const SEGMENT: &str = r#"{
  "id": "7b0c1f0e-3f1a-4a59-9a53-2f1c7d7f3b11", "accountId": "0d6f", "name": "Engaged US sessions",
  "ruleGroups": [{
    "mainOperator": "include", "conjunction": "and", "segmentObject": "session", "conditionFocus": "property",
    "dateRangeFilter": { "type": "previous-period", "numberOfDaysPrevious": 30 },
    "g0": { "type": "dimension", "key": "country", "condition": "equals", "value": "US" },
    "g1": { "conjunction": "or", "type": "custom", "key": "plan", "condition": "in-list", "value": ["pro", "team"] }
  }]
}"#;

#[test]
fn render_prints_table_create_and_cronjob() {
    let seg = file(SEGMENT);
    let out = segmentctl(&[
        "render",
        "--segment",
        seg.path(),
        "--project",
        "acme-prod",
        "--dataset",
        "account_1",
        "--time-zone",
        "America/New_York",
        "--now",
        "2024-06-15T12:00:00Z",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["table"], "segment_7b0c1f0e_3f1a_4a59_9a53_2f1c7d7f3b11");
    let create = v["createTableQuery"].as_str().unwrap();
    assert!(create.starts_with("CREATE OR REPLACE TABLE `acme-prod.account_1.segment_7b0c1f0e_3f1a_4a59_9a53_2f1c7d7f3b11` AS"));
    // Previous 30 whole days before 2024-06-15 in New York, as literal instants.
    assert!(
        create.contains("TIMESTAMP '2024-05-16 04:00:00+00:00'")
            && create.contains("TIMESTAMP '2024-06-15 04:00:00+00:00'"),
        "{create}"
    );
    let cron = v["cronjobQuery"].as_str().unwrap();
    assert!(cron.starts_with("MERGE `acme-prod.account_1.segment_"));
    assert!(cron.contains("{{ts:today-30d}}") && cron.contains("{{ts:today+0d}}"));
}

#[test]
fn cronjob_sql_replaces_the_placeholders_for_that_run() {
    let seg = file(SEGMENT);
    let out = segmentctl(&[
        "render",
        "--segment",
        seg.path(),
        "--project",
        "p",
        "--dataset",
        "d",
        "--time-zone",
        "UTC",
        "--now",
        "2024-06-15T12:00:00Z",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let query = file(v["cronjobQuery"].as_str().unwrap());
    let out = segmentctl(&[
        "cronjob-sql",
        "--query-file",
        query.path(),
        "--time-zone",
        "Europe/Berlin",
        "--now",
        "2024-07-01T00:30:00+02:00",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sql = String::from_utf8(out.stdout).unwrap();
    assert!(!sql.contains("{{"), "{sql}");
    // Today in Berlin is 2024-07-01; its midnight is 2024-06-30T22:00Z.
    assert!(
        sql.contains("TIMESTAMP '2024-06-30 22:00:00+00:00'")
            && sql.contains("TIMESTAMP '2024-05-31 22:00:00+00:00'"),
        "{sql}"
    );
}

#[test]
fn an_invalid_segment_exits_2_naming_every_path() {
    let bad = file(
        r#"{"id": "s", "ruleGroups": [{"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
            "g0": {"type": "dimension", "key": "country", "condition": "equal", "value": "x"},
            "g1": {"type": "dimension", "key": "nope", "condition": "equals", "value": "x"}},
            {"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property", "g1": {}}]}"#,
    );
    let out = segmentctl(&["validate", "--segment", bad.path()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"ruleGroups[0].g0.condition: unknown operator "equal""#),
        "{err}"
    );
    assert!(err.contains("ruleGroups[1].g0: is missing"), "{err}");
    let render = segmentctl(&[
        "render",
        "--segment",
        bad.path(),
        "--project",
        "p",
        "--dataset",
        "d",
        "--time-zone",
        "UTC",
        "--now",
        "2024-06-15T12:00:00Z",
    ]);
    assert_eq!(render.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&render.stderr).contains("ruleGroups[0].g0.condition"));
}

#[test]
fn validate_checks_keys_against_the_catalog() {
    let bad = file(
        r#"{"id": "s", "ruleGroups": [{"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
        "g0": {"type": "dimension", "key": "nope", "condition": "equals", "value": "x"},
        "g1": {"type": "custom", "key": "a b", "condition": "equals", "value": "x"}}]}"#,
    );
    let out = segmentctl(&["validate", "--segment", bad.path()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(r#"ruleGroups[0].g0.key: unknown field of sessions "nope""#),
        "{err}"
    );
    assert!(
        err.contains(r#"ruleGroups[0].g1.key: "a b" is not a valid key"#),
        "{err}"
    );
    let good = file(SEGMENT);
    let out = segmentctl(&["validate", "--segment", good.path()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_arguments_exit_2() {
    let seg = file(SEGMENT);
    for args in [
        vec![
            "render",
            "--segment",
            seg.path(),
            "--project",
            "p",
            "--dataset",
            "d",
            "--time-zone",
            "Mars/Olympus",
            "--now",
            "2024-06-15T12:00:00Z",
        ],
        vec![
            "render",
            "--segment",
            seg.path(),
            "--project",
            "p",
            "--dataset",
            "d-x",
            "--time-zone",
            "UTC",
            "--now",
            "2024-06-15T12:00:00Z",
        ],
        vec![
            "render",
            "--segment",
            seg.path(),
            "--project",
            "p",
            "--dataset",
            "d",
            "--time-zone",
            "UTC",
            "--now",
            "yesterday",
        ],
        vec!["render", "--segment", seg.path()],
    ] {
        let out = segmentctl(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn report_sql_prints_one_query_per_segment() {
    let req = file(
        r#"{"accountId": "a", "accountTimeZone": "UTC", "reportName": "r", "object": "session",
        "dateRange": {"startDate": "2024-06-01", "endDate": "2024-06-30"}, "dimensions": ["country"], "metrics": ["sessions"],
        "segments": ["11111111-1111-1111-1111-111111111111", {"id": "22222222-2222-2222-2222-222222222222", "object": "user"}],
        "comparisonSegments": ["33333333-3333-3333-3333-333333333333"], "sort": {"by": "sessions", "direction": "desc"}, "limit": 50, "offset": 10}"#,
    );
    let out = segmentctl(&[
        "report-sql",
        "--request",
        req.path(),
        "--project",
        "p",
        "--dataset",
        "d",
        "--time-zone",
        "UTC",
        "--now",
        "2024-07-01T00:00:00Z",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let segs = v["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 2);
    assert_eq!(v["comparisonSegments"].as_array().unwrap().len(), 1);
    let q0 = segs[0]["query"].as_str().unwrap();
    assert!(
        q0.contains("o.`session_id` IN (")
            && q0.contains("`p.d.segment_11111111_1111_1111_1111_111111111111`"),
        "{q0}"
    );
    let q1 = segs[1]["query"].as_str().unwrap();
    assert!(q1.contains("o.`user_id` IN ("), "{q1}");
    assert!(q1.contains("LIMIT 50 OFFSET 10"), "{q1}");
    let five = file(
        r#"{"object": "session", "dateRange": {"startDate": "2024-06-01", "endDate": "2024-06-30"}, "segments": ["a","b","c","d","e"]}"#,
    );
    let out = segmentctl(&[
        "report-sql",
        "--request",
        five.path(),
        "--project",
        "p",
        "--dataset",
        "d",
        "--time-zone",
        "UTC",
        "--now",
        "2024-07-01T00:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("segments: at most 4 segments per report")
    );
}

#[test]
fn another_warehouse_is_a_catalog_file() {
    let mut catalog: serde_json::Value =
        serde_json::from_str(segments_core::catalog::DEFAULT_CATALOG_JSON).unwrap();
    catalog["objects"]["session"]["table"] = "visits".into();
    catalog["objects"]["session"]["columns"]["plan_tier"] = "STRING".into();
    let cat = file(&catalog.to_string());
    let seg = file(
        r#"{"id": "s1", "ruleGroups": [{"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
        "g0": {"type": "dimension", "key": "plan_tier", "condition": "equals", "value": "gold"}}]}"#,
    );
    let out = segmentctl(&[
        "render",
        "--segment",
        seg.path(),
        "--catalog",
        cat.path(),
        "--project",
        "p",
        "--dataset",
        "d",
        "--time-zone",
        "UTC",
        "--now",
        "2024-06-15T12:00:00Z",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let create = v["createTableQuery"].as_str().unwrap();
    assert!(
        create.contains("FROM `p.d.visits` AS o") && create.contains("o.`plan_tier`"),
        "{create}"
    );
    // The default catalog has no such field.
    let out = segmentctl(&["validate", "--segment", seg.path()]);
    assert_eq!(out.status.code(), Some(2));
    // A catalog with a bad identifier is refused, naming the field.
    catalog["objects"]["session"]["table"] = "visits; DROP TABLE x".into();
    let bad = file(&catalog.to_string());
    let out = segmentctl(&["validate", "--segment", seg.path(), "--catalog", bad.path()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("objects.session.table"));
}

#[test]
fn validate_lists_structural_and_catalog_errors_together() {
    let seg = file(
        r#"{"id": "s1", "ruleGroups": [
  {"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
   "g0": {"type": "dimension", "key": "nocolumn", "condition": "equals", "value": "x"}},
  {"mainOperator": "include", "segmentObject": "session", "conditionFocus": "property",
   "g0": {"type": "dimension", "key": "country", "condition": "equal", "value": "x"},
   "g2": {"type": "dimension", "key": "country", "condition": "equals", "value": "x"}}
]}"#,
    );
    let out = segmentctl(&["validate", "--segment", seg.path()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for path in [
        "ruleGroups[1].g0.condition: unknown operator \"equal\"",
        "ruleGroups[1].g1: is missing",
        "ruleGroups[0].g0.key: unknown field of sessions \"nocolumn\"",
    ] {
        assert!(err.contains(path), "{path} not in:\n{err}");
    }
}

#[test]
fn render_accepts_a_dataset_starting_with_a_digit_and_refuses_year_zero() {
    let seg = file(SEGMENT);
    let at = |dataset: &str, now: &str| {
        segmentctl(&[
            "render",
            "--segment",
            seg.path(),
            "--project",
            "p",
            "--dataset",
            dataset,
            "--time-zone",
            "UTC",
            "--now",
            now,
        ])
    };
    let out = at("0d6f4b52_6a2c", "2024-06-15T10:30:00Z");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("`p.0d6f4b52_6a2c.sessions`"));
    // 30 days before 0001-01-15 is year 0, which BigQuery cannot hold.
    let out = at("d", "0001-01-15T00:00:00Z");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside BigQuery's range"));
}

/// `--dialect postgres`: `--dataset` is the schema, `--project` may be left
/// out; the cronjob query's placeholders become Postgres literals; a pattern
/// Postgres would read differently exits 2 naming the construct.
#[test]
fn postgres_dialect_renders_schema_tables_and_its_own_literals() {
    let seg = file(SEGMENT);
    let out = segmentctl(&[
        "render",
        "--dialect",
        "postgres",
        "--segment",
        seg.path(),
        "--dataset",
        "acct_1",
        "--time-zone",
        "America/New_York",
        "--now",
        "2024-06-15T12:00:00Z",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let create = v["createTableQuery"].as_str().unwrap();
    assert!(
        create.contains(
            r#"CREATE TABLE "acct_1"."segment_7b0c1f0e_3f1a_4a59_9a53_2f1c7d7f3b11__next""#
        ),
        "{create}"
    );
    assert!(
        create.contains(r#"FROM "acct_1"."sessions" AS o"#),
        "{create}"
    );
    // 30 whole days before today in New York, as an instant with its offset.
    assert!(
        create.contains("TIMESTAMP WITH TIME ZONE '2024-05-16 04:00:00+00:00'"),
        "{create}"
    );
    assert!(!create.contains('`'), "{create}");
    let cron = v["cronjobQuery"].as_str().unwrap();
    assert!(
        cron.starts_with(r#"LOCK TABLE "acct_1"."segment_7b0c1f0e_3f1a_4a59_9a53_2f1c7d7f3b11""#),
        "{cron}"
    );
    assert!(cron.contains("{{ts:today-30d}}"), "{cron}");

    let q = file(cron);
    let out = segmentctl(&[
        "cronjob-sql",
        "--dialect",
        "postgres",
        "--query-file",
        q.path(),
        "--time-zone",
        "America/New_York",
        "--now",
        "2024-06-15T12:00:00Z",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sql = String::from_utf8(out.stdout).unwrap();
    assert!(
        sql.contains("TIMESTAMP WITH TIME ZONE '2024-05-16 04:00:00+00:00'"),
        "{sql}"
    );
    assert!(!sql.contains("{{"), "{sql}");

    // BigQuery still needs its project.
    let out = segmentctl(&[
        "render",
        "--segment",
        seg.path(),
        "--dataset",
        "acct_1",
        "--time-zone",
        "UTC",
        "--now",
        "2024-06-15T12:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--project"));

    let rx = file(&SEGMENT.replace(
        r#""key": "country", "condition": "equals", "value": "US""#,
        r#""key": "country", "condition": "matches-regex", "value": "(?i)^us$""#,
    ));
    let out = segmentctl(&[
        "render",
        "--dialect",
        "postgres",
        "--segment",
        rx.path(),
        "--dataset",
        "acct_1",
        "--time-zone",
        "UTC",
        "--now",
        "2024-06-15T12:00:00Z",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("(?i)") && err.contains("Postgres"), "{err}");
}

#[test]
fn cronjob_sql_renders_from_the_rules_and_reads_stored_queries_of_any_version() {
    let seg = file(SEGMENT);
    let at = [
        "--time-zone",
        "Europe/Berlin",
        "--now",
        "2024-07-01T00:30:00+02:00",
    ];
    let out = segmentctl(&[
        "render",
        "--segment",
        seg.path(),
        "--project",
        "p",
        "--dataset",
        "d",
        "--time-zone",
        "UTC",
        "--now",
        "2024-06-15T12:00:00Z",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cron = v["cronjobQuery"].as_str().unwrap();
    let from_rules = segmentctl(
        &[
            &["cronjob-sql", "--segment", seg.path()][..],
            &["--project", "p", "--dataset", "d", "--dialect", "bigquery"],
            &at,
        ]
        .concat(),
    );
    assert_eq!(
        from_rules.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&from_rules.stderr)
    );
    // An unstamped (version 1) and a stamped stored query mean the same run.
    for stored in [cron.to_string(), format!("-- segments-compiler v2\n{cron}")] {
        let query = file(&stored);
        let legacy =
            segmentctl(&[&["cronjob-sql", "--query-file", query.path()][..], &at].concat());
        let text = String::from_utf8(legacy.stdout).unwrap();
        let text = text.trim_start_matches("-- segments-compiler v2\n");
        assert_eq!(text, String::from_utf8_lossy(&from_rules.stdout));
    }
    let bad = segmentctl(
        &[
            &[
                "cronjob-sql",
                "--segment",
                seg.path(),
                "--dialect",
                "oracle",
            ][..],
            &["--project", "p", "--dataset", "d"],
            &at,
        ]
        .concat(),
    );
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn run_sql_prints_the_statements_of_one_run() {
    let seg = file(SEGMENT);
    let args = |revision: Option<&str>| {
        let mut a = vec![
            "run-sql",
            "--segment",
            seg.path(),
            "--project",
            "acme-prod",
            "--dataset",
            "account_1",
            "--time-zone",
            "America/New_York",
            "--now",
            "2024-06-15T12:00:00Z",
            "--run-id",
            "run-42",
        ];
        if let Some(r) = revision {
            a.extend(["--revision", r]);
        }
        segmentctl(&a)
    };
    let out = args(Some("7"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sql = v["sql"].as_str().unwrap();
    assert_eq!(v.as_object().unwrap().len(), 1);
    assert!(sql.starts_with(
        "CREATE TABLE IF NOT EXISTS `acme-prod.account_1.segment_membership_changes`"
    ));
    assert_eq!(sql.split(";\n").count(), 9, "{sql}");
    assert!(sql.contains("'run-42' AS `run_id`") && sql.contains("7 AS `revision`"));
    assert!(
        sql.contains("TIMESTAMP '2024-05-16 04:00:00+00:00'"),
        "{sql}"
    );
    assert!(!sql.contains("{{"), "{sql}");
    // Revision 1 when omitted.
    let v: serde_json::Value = serde_json::from_slice(&args(None).stdout).unwrap();
    assert!(v["sql"].as_str().unwrap().contains("1 AS `revision`"));
    // Postgres is not a run-sql dialect yet: refused, not mis-rendered.
    let out = segmentctl(&[
        "run-sql",
        "--segment",
        seg.path(),
        "--dataset",
        "d",
        "--time-zone",
        "UTC",
        "--now",
        "2024-06-15T12:00:00Z",
        "--run-id",
        "r",
        "--dialect",
        "postgres",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

/// `models --source segment` prints the statements of SPEC §10 for each
/// dialect (a full build, or a refresh with `--refresh`); bad options exit 2.
#[test]
fn models_prints_the_statements_and_refuses_bad_options() {
    let out = segmentctl(&[
        "models",
        "--source",
        "segment",
        "--dialect",
        "postgres",
        "--source-dataset",
        "segment_raw",
        "--dataset",
        "acct_1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let statements = v["statements"].as_array().unwrap();
    assert!(
        statements[0]
            .as_str()
            .unwrap()
            .contains("\"segment_raw\".\"identifies\"")
    );
    let sessions = statements
        .iter()
        .filter_map(|s| s.as_str())
        .find(|s| s.contains("\"acct_1\".\"segment_src_sessionised__next\""))
        .unwrap();
    assert!(sessions.contains("1800 seconds"), "{sessions}");
    let out = segmentctl(&[
        "models",
        "--source",
        "segment",
        "--project",
        "p",
        "--source-dataset",
        "raw",
        "--dataset",
        "acct",
        "--session-timeout-minutes",
        "45",
        "--refresh",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("segment_src_new_hits") && text.contains("INTERVAL 2700 SECOND"));
    for bad in [
        vec!["--session-timeout-minutes", "0"],
        vec!["--dataset", "acct;drop"],
        vec!["--source-dataset", "raw`x"],
    ] {
        let mut args = vec![
            "models",
            "--source",
            "segment",
            "--project",
            "p",
            "--source-dataset",
            "raw",
            "--dataset",
            "acct",
        ];
        args.extend(bad.iter().copied());
        let out = segmentctl(&args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bad:?}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}
