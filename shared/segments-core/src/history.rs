//! A run of a segment (SPEC §11): statements that leave the segment table equal
//! to its members at T and record the population and the membership changes, once per run id.
//!
//! The run, as one job of `;`-separated statements (no scripting):
//! 1. create `segment_membership_changes` and `segment_population` when missing;
//! 2. create the segment table empty when missing (its previous members P are then none);
//! 3. materialise the members M once into a scratch table `segment_{id}__run_{hash}`
//!    (the only statement that reads the sources);
//! 4. insert one change row per id of M − P and P − M, unless this run already wrote
//!    changes or its population row;
//! 5. insert the population row, unless this run already did; entered and exited are
//!    counted from the change rows of this run, so the two tables always agree;
//! 6. replace the segment table with M (readers never see it missing or half built);
//! 7. drop the scratch table (it also expires on its own after a day);
//! 8. select this run's population row and the one before it (the job's result:
//!    the check reads it to compare sizes across a rule change, [`size_alert`]).
//!
//! Every insert is one atomic statement guarded by the rows it would write, so a run
//! executed again (a redelivered message, a retried job with the same id, or a
//! job that died between statements) adds nothing twice.

use crate::catalog::Catalog;
use crate::compile::{OBJECT_ID, members_query};
use crate::error::CoreError;
use crate::model::Segment;
use crate::sql::*;
use crate::time::{Clock, TimeRef};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;
use sha2::{Digest, Sha256};

pub const CHANGES_TABLE: &str = "segment_membership_changes";
pub const POPULATION_TABLE: &str = "segment_population";
/// Hours after which the warehouse drops a scratch table a run left behind.
pub const SCRATCH_EXPIRY_HOURS: u32 = 24;

/// `change` values of [`CHANGES_TABLE`].
pub const ENTERED: &str = "entered";
pub const EXITED: &str = "exited";

const SEGMENT_ID: &str = "segment_id";
const RUN_ID: &str = "run_id";
const CHANGE: &str = "change";
const CHANGED_AT: &str = "changed_at";
const RAN_AT: &str = "ran_at";
const REVISION: &str = "revision";
const POPULATION: &str = "population";

/// One run: its id (the job id) and the revision of the rules it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run<'a> {
    pub run_id: &'a str,
    pub revision: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderedRun {
    /// `segment_{id}`.
    pub table: String,
    /// The scratch table holding M while the run executes.
    pub run_table: String,
    /// The statements, separated by `;`, with every instant resolved.
    pub sql: String,
    pub statements: usize,
}

/// `segment_{id}__run_{16 hex digits of sha256(run id)}`: any run id gives a valid,
/// distinct-enough name, so two runs of one segment never share a scratch table.
pub fn run_table_name(segment_id: &str, run_id: &str) -> String {
    let digest = Sha256::digest(run_id.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!(
        "{}__run_{hex}",
        crate::model::segment_table_name(segment_id)
    )
}

fn changes_columns() -> Vec<(Ident, ValueType)> {
    vec![
        (Ident::fixed(SEGMENT_ID), ValueType::Text),
        (Ident::fixed(RUN_ID), ValueType::Text),
        (Ident::fixed(OBJECT_ID), ValueType::Text),
        (Ident::fixed(CHANGE), ValueType::Text),
        (Ident::fixed(CHANGED_AT), ValueType::Timestamp),
    ]
}

fn population_columns() -> Vec<(Ident, ValueType)> {
    vec![
        (Ident::fixed(SEGMENT_ID), ValueType::Text),
        (Ident::fixed(RUN_ID), ValueType::Text),
        (Ident::fixed(RAN_AT), ValueType::Timestamp),
        (Ident::fixed(REVISION), ValueType::Int),
        (Ident::fixed(POPULATION), ValueType::Int),
        (Ident::fixed(ENTERED), ValueType::Int),
        (Ident::fixed(EXITED), ValueType::Int),
    ]
}

fn names(cols: &[(Ident, ValueType)]) -> Vec<Ident> {
    cols.iter().map(|(name, _)| name.clone()).collect()
}

/// The `CREATE TABLE IF NOT EXISTS` of both history tables.
pub fn history_tables(target: &Target) -> Vec<Statement<'static>> {
    vec![
        Statement::CreateTableIfNotExists {
            table: target.table(CHANGES_TABLE),
            columns: changes_columns(),
            partition_by_day: Some(Ident::fixed(CHANGED_AT)),
            cluster_by: vec![Ident::fixed(SEGMENT_ID), Ident::fixed(RUN_ID)],
        },
        Statement::CreateTableIfNotExists {
            table: target.table(POPULATION_TABLE),
            columns: population_columns(),
            partition_by_day: Some(Ident::fixed(RAN_AT)),
            cluster_by: vec![Ident::fixed(SEGMENT_ID), Ident::fixed(RUN_ID)],
        },
    ]
}

fn col(alias: &'static str, name: &'static str) -> Expr {
    Expr::Column(alias.into(), Ident::fixed(name))
}

fn from(table: TableRef, alias: &'static str) -> Option<FromItem> {
    Some(FromItem::Table {
        table,
        alias: alias.into(),
    })
}

/// `SELECT a.object_id FROM table AS a`.
fn ids_of(table: &TableRef) -> Query {
    Query::select(
        Select {
            from: from(table.clone(), "a"),
            ..Select::default()
        }
        .item(col("a", OBJECT_ID), None),
    )
}

/// `NOT EXISTS (rows of this run in table)`.
fn run_absent(table: TableRef, segment_id: &str, run_id: &str) -> Expr {
    let filter = Expr::and(vec![
        col("h", SEGMENT_ID).eq(Expr::str(segment_id)),
        col("h", RUN_ID).eq(Expr::str(run_id)),
    ]);
    Expr::Not(Box::new(Expr::Exists(Box::new(Query::select(
        Select {
            from: from(table, "h"),
            filter: Some(filter),
            ..Select::default()
        }
        .item(Expr::Int(1), None),
    )))))
}

/// Ids of `a` not in `b`, each tagged with `change`.
fn difference(a: &TableRef, b: &TableRef, change: &str) -> Query {
    let diff = Query::Set(SetOp::ExceptDistinct, vec![ids_of(a), ids_of(b)]);
    Query::select(
        Select {
            from: Some(FromItem::Subquery {
                query: Box::new(diff),
                alias: "d".into(),
            }),
            ..Select::default()
        }
        .item(col("d", OBJECT_ID), Some(OBJECT_ID))
        .item(Expr::str(change), Some(CHANGE)),
    )
}

/// The statements of one run rendered for `clock`: their text, how many, and the scratch table.
pub fn render_run_for(
    seg: &Segment,
    catalog: &Catalog,
    target: &Target,
    clock: Clock,
    run: Run<'_>,
) -> Result<(String, usize, String), CoreError> {
    let members = members_query(seg, catalog, target)?;
    let table_name = seg.table_name();
    let run_name = run_table_name(&seg.id, run.run_id);
    let segment = target.table(&table_name);
    let scratch = target.table(&run_name);
    let changes = target.table(CHANGES_TABLE);
    let population = target.table(POPULATION_TABLE);
    let (sid, rid) = (seg.id.as_str(), run.run_id);

    let changes_rows = Query::select(
        Select {
            from: Some(FromItem::Subquery {
                query: Box::new(Query::Set(
                    SetOp::UnionAll,
                    vec![
                        difference(&scratch, &segment, ENTERED),
                        difference(&segment, &scratch, EXITED),
                    ],
                )),
                alias: "c".into(),
            }),
            filter: Some(Expr::and(vec![
                run_absent(population.clone(), sid, rid),
                run_absent(changes.clone(), sid, rid),
            ])),
            ..Select::default()
        }
        .item(Expr::str(sid), Some(SEGMENT_ID))
        .item(Expr::str(rid), Some(RUN_ID))
        .item(col("c", OBJECT_ID), Some(OBJECT_ID))
        .item(col("c", CHANGE), Some(CHANGE))
        .item(Expr::Time(TimeRef::Now), Some(CHANGED_AT)),
    );

    let size = Query::select(
        Select {
            from: from(scratch.clone(), "m"),
            ..Select::default()
        }
        .item(Expr::CountStar, Some(POPULATION)),
    );
    let count =
        |change: &str| Expr::call(Func::CountIf, vec![col("h", CHANGE).eq(Expr::str(change))]);
    let moved = Query::select(
        Select {
            from: from(changes.clone(), "h"),
            filter: Some(Expr::and(vec![
                col("h", SEGMENT_ID).eq(Expr::str(sid)),
                col("h", RUN_ID).eq(Expr::str(rid)),
            ])),
            ..Select::default()
        }
        .item(count(ENTERED), Some(ENTERED))
        .item(count(EXITED), Some(EXITED)),
    );
    let population_row = Query::select(
        Select {
            from: Some(FromItem::Subquery {
                query: Box::new(size),
                alias: "m".into(),
            }),
            joins: vec![Join {
                kind: JoinKind::Cross,
                item: FromItem::Subquery {
                    query: Box::new(moved),
                    alias: "c".into(),
                },
                on: Expr::Bool(true),
            }],
            filter: Some(run_absent(population.clone(), sid, rid)),
            ..Select::default()
        }
        .item(Expr::str(sid), Some(SEGMENT_ID))
        .item(Expr::str(rid), Some(RUN_ID))
        .item(Expr::Time(TimeRef::Now), Some(RAN_AT))
        .item(Expr::Int(run.revision), Some(REVISION))
        .item(col("m", POPULATION), Some(POPULATION))
        .item(col("c", ENTERED), Some(ENTERED))
        .item(col("c", EXITED), Some(EXITED)),
    );
    let new_members = ids_of(&scratch);
    // This run's row and the latest one before it.
    let recent = Query::select(
        Select {
            from: from(population.clone(), "h"),
            filter: Some(Expr::and(vec![
                col("h", SEGMENT_ID).eq(Expr::str(sid)),
                Expr::or(vec![
                    col("h", RUN_ID).eq(Expr::str(rid)),
                    col("h", RAN_AT).bin(BinOp::Lt, Expr::Time(TimeRef::Now)),
                ]),
            ])),
            order_by: vec![(col("h", RAN_AT), true), (col("h", RUN_ID), true)],
            limit: Some(2),
            ..Select::default()
        }
        .item(col("h", RUN_ID), Some(RUN_ID))
        .item(col("h", REVISION), Some(REVISION))
        .item(col("h", POPULATION), Some(POPULATION)),
    );

    let mut statements = history_tables(target);
    statements.extend([
        Statement::CreateTableIfNotExists {
            table: segment.clone(),
            columns: vec![(Ident::fixed(OBJECT_ID), ValueType::Text)],
            partition_by_day: None,
            cluster_by: vec![],
        },
        Statement::CreateOrReplaceScratchTable {
            table: scratch.clone(),
            query: &members,
            expire_hours: SCRATCH_EXPIRY_HOURS,
        },
        Statement::InsertSelect {
            table: changes,
            columns: names(&changes_columns()),
            query: &changes_rows,
        },
        Statement::InsertSelect {
            table: population,
            columns: names(&population_columns()),
            query: &population_row,
        },
        Statement::CreateOrReplaceTable {
            table: segment,
            query: &new_members,
        },
        Statement::DropTableIfExists(scratch),
        Statement::Query(&recent),
    ]);
    let sql = render_script(target.dialect(), &statements, clock)?;
    Ok((sql, statements.len(), run_name))
}

/// The run's SQL as the functions submit it: every instant resolved for `now` in `tz`.
pub fn render_run(
    seg: &Segment,
    catalog: &Catalog,
    target: &Target,
    tz: &Tz,
    now: DateTime<Utc>,
    run: Run<'_>,
) -> Result<RenderedRun, CoreError> {
    let (sql, statements, run_table) =
        render_run_for(seg, catalog, target, Clock::At { tz: *tz, now }, run)?;
    Ok(RenderedRun {
        table: seg.table_name(),
        run_table,
        sql,
        statements,
    })
}

/// A segment's population over time: its latest `limit` rows of
/// `segment_population`, newest first (`run_id`, `ran_at`, `revision`,
/// `population`, `entered`, `exited`). Clustering by `segment_id` keeps it cheap.
pub fn population_series_sql(
    target: &Target,
    segment_id: &str,
    limit: u64,
) -> Result<String, CoreError> {
    let q = Query::select(
        Select {
            from: from(target.table(POPULATION_TABLE), "h"),
            filter: Some(col("h", SEGMENT_ID).eq(Expr::str(segment_id))),
            order_by: vec![(col("h", RAN_AT), true), (col("h", RUN_ID), true)],
            limit: Some(limit),
            ..Select::default()
        }
        .item(col("h", RUN_ID), Some(RUN_ID))
        .item(col("h", RAN_AT), Some(RAN_AT))
        .item(col("h", REVISION), Some(REVISION))
        .item(col("h", POPULATION), Some(POPULATION))
        .item(col("h", ENTERED), Some(ENTERED))
        .item(col("h", EXITED), Some(EXITED)),
    );
    target.render(&Statement::Query(&q), Clock::Placeholders)
}

/// One row of a population series, as read back from the warehouse.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PopulationRow {
    pub run_id: String,
    pub ran_at: Option<DateTime<Utc>>,
    pub revision: i64,
    pub population: i64,
    pub entered: i64,
    pub exited: i64,
}

/// Rows of [`population_series_sql`]; BigQuery sends a TIMESTAMP as seconds
/// since the epoch in a string (`"1.7184528E9"`).
pub fn population_rows(rows: &[Vec<serde_json::Value>]) -> Vec<PopulationRow> {
    rows.iter()
        .filter_map(|r| {
            let ran_at = r.get(1).and_then(|v| match v {
                serde_json::Value::String(s) => s.parse::<f64>().ok(),
                serde_json::Value::Number(n) => n.as_f64(),
                _ => None,
            });
            Some(PopulationRow {
                run_id: r.first()?.as_str()?.to_string(),
                ran_at: ran_at.and_then(|secs| {
                    DateTime::<Utc>::from_timestamp_micros((secs * 1e6).round() as i64)
                }),
                revision: int(r.get(2)?)?,
                population: int(r.get(3)?)?,
                entered: int(r.get(4)?)?,
                exited: int(r.get(5)?)?,
            })
        })
        .collect()
}

/// The changes of one run, for publishing: `object_id`, `change`, sorted, so
/// every read of the same run splits into the same parts.
pub fn run_changes_sql(
    target: &Target,
    segment_id: &str,
    run_id: &str,
) -> Result<String, CoreError> {
    let q = Query::select(
        Select {
            from: from(target.table(CHANGES_TABLE), "h"),
            filter: Some(Expr::and(vec![
                col("h", SEGMENT_ID).eq(Expr::str(segment_id)),
                col("h", RUN_ID).eq(Expr::str(run_id)),
            ])),
            order_by: vec![(col("h", CHANGE), false), (col("h", OBJECT_ID), false)],
            ..Select::default()
        }
        .item(col("h", OBJECT_ID), Some(OBJECT_ID))
        .item(col("h", CHANGE), Some(CHANGE)),
    );
    target.render(&Statement::Query(&q), Clock::Placeholders)
}

/// SQS refuses messages of 256 KiB and more; parts stay under this many bytes.
pub const DELTA_PART_BYTES: usize = 250_000;

/// What every part of a run's published changes says about the run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeltaRun<'a> {
    pub account_id: &'a str,
    pub segment_id: &'a str,
    pub run_id: &'a str,
    pub revision: i64,
}

fn delta_message(
    run: &DeltaRun<'_>,
    part: usize,
    parts: usize,
    entered: &[&str],
    exited: &[&str],
) -> String {
    serde_json::json!({
        "type": "segment-membership-changed",
        "accountId": run.account_id,
        "segmentId": run.segment_id,
        "runId": run.run_id,
        "revision": run.revision,
        "part": part,
        "parts": parts,
        "entered": entered,
        "exited": exited,
    })
    .to_string()
}

/// The run's changes as SPEC §11 messages, each at most `max_bytes` long: only
/// changed members, entered then exited, in the order given (sorted by the
/// reader), so the same changes always give the same parts. No changes, no parts.
/// `rows` are (`object_id`, `change`).
pub fn delta_messages(
    run: &DeltaRun<'_>,
    rows: &[(String, String)],
    max_bytes: usize,
) -> Vec<String> {
    let entered: Vec<&str> = rows
        .iter()
        .filter(|(_, c)| c == ENTERED)
        .map(|(id, _)| id.as_str())
        .collect();
    let exited: Vec<&str> = rows
        .iter()
        .filter(|(_, c)| c == EXITED)
        .map(|(id, _)| id.as_str())
        .collect();
    if entered.is_empty() && exited.is_empty() {
        return vec![];
    }
    // The envelope with the widest part numbers a run can have.
    let envelope = delta_message(run, usize::MAX, usize::MAX, &[], &[]).len();
    let cost = |id: &str| {
        serde_json::to_string(id)
            .map(|s| s.len())
            .unwrap_or(id.len() * 6 + 2)
            + 1
    };
    // Greedy split: (entered range, exited range) per part.
    let mut chunks: Vec<(Vec<&str>, Vec<&str>)> = vec![(vec![], vec![])];
    let mut size = envelope;
    for (id, is_entered) in entered
        .iter()
        .map(|i| (*i, true))
        .chain(exited.iter().map(|i| (*i, false)))
    {
        let c = cost(id);
        let last = chunks.last_mut().expect("one chunk at least");
        if size + c > max_bytes && !(last.0.is_empty() && last.1.is_empty()) {
            chunks.push((vec![], vec![]));
            size = envelope;
        }
        let last = chunks.last_mut().expect("one chunk at least");
        if is_entered {
            last.0.push(id)
        } else {
            last.1.push(id)
        }
        size += c;
    }
    let parts = chunks.len();
    chunks
        .iter()
        .enumerate()
        .map(|(i, (e, x))| delta_message(run, i + 1, parts, e, x))
        .collect()
}

/// One `segment_population` row, as the run's last statement returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PopulationPoint {
    pub run_id: String,
    pub revision: i64,
    pub population: i64,
}

fn int(v: &serde_json::Value) -> Option<i64> {
    match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// This run's row and the one before it (if any) from the run's result rows
/// (`run_id`, `revision`, `population`). `None` when this run's row is missing.
pub fn population_points(
    run_id: &str,
    rows: &[Vec<serde_json::Value>],
) -> Option<(PopulationPoint, Option<PopulationPoint>)> {
    let points: Vec<PopulationPoint> = rows
        .iter()
        .filter_map(|r| {
            Some(PopulationPoint {
                run_id: r.first()?.as_str()?.to_string(),
                revision: int(r.get(1)?)?,
                population: int(r.get(2)?)?,
            })
        })
        .collect();
    let current = points.iter().find(|p| p.run_id == run_id)?.clone();
    let previous = points.into_iter().find(|p| p.run_id != run_id);
    Some((current, previous))
}

/// A run after a rule change that moved the population by more than the share.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SizeAlert {
    pub previous: PopulationPoint,
    pub current: PopulationPoint,
    /// |current − previous| / previous; infinite when previous was 0.
    pub change: f64,
}

/// Whether `current` (a run of a new revision) moved the population by more
/// than `share` (0.2 = 20 %) of the previous run's. Runs of the same revision
/// never alert: data moves populations every day; only rule edits are traced.
pub fn size_alert(
    current: &PopulationPoint,
    previous: Option<&PopulationPoint>,
    share: f64,
) -> Option<SizeAlert> {
    let previous = previous?;
    if previous.revision == current.revision {
        return None;
    }
    let delta = (current.population - previous.population).unsigned_abs() as f64;
    let change = if previous.population == 0 {
        if delta == 0.0 { 0.0 } else { f64::INFINITY }
    } else {
        delta / previous.population as f64
    };
    (change > share).then(|| SizeAlert {
        previous: previous.clone(),
        current: current.clone(),
        change,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_segment;
    use serde_json::json;

    fn seg(id: &str) -> Segment {
        parse_segment(
            &json!({"id": id, "ruleGroups": [{"mainOperator": "include", "segmentObject": "session",
            "conditionFocus": "property",
            "g0": {"type": "dimension", "key": "country", "condition": "equals", "value": "US"}}]}),
        )
        .unwrap()
    }

    fn render(run_id: &str, revision: i64) -> RenderedRun {
        let target = Target::new("p", "d").unwrap();
        let now = DateTime::parse_from_rfc3339("2024-06-15T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        render_run(
            &seg("7b0c1f0e-3f1a-4a59-9a53-2f1c7d7f3b11"),
            &Catalog::default_catalog(),
            &target,
            &chrono_tz::UTC,
            now,
            Run { run_id, revision },
        )
        .unwrap()
    }

    #[test]
    fn scratch_tables_are_valid_names_distinct_per_run() {
        let a = run_table_name("7b0c-1f", "job `1`; DROP");
        assert!(is_identifier(&a), "{a}");
        assert!(a.starts_with("segment_7b0c_1f__run_"));
        assert_ne!(a, run_table_name("7b0c-1f", "job 2"));
        assert_eq!(a, run_table_name("7b0c-1f", "job `1`; DROP"));
    }

    #[test]
    fn the_sources_are_read_by_one_statement_only() {
        let r = render("run-1", 3);
        let parts: Vec<&str> = r.sql.split(";\n").collect();
        assert_eq!(parts.len(), r.statements);
        assert_eq!(r.statements, 9);
        let reading = parts
            .iter()
            .filter(|s| s.contains("`p.d.sessions`"))
            .count();
        assert_eq!(reading, 1, "{}", r.sql);
        assert!(parts[3].contains("__run_") && parts[3].contains("`p.d.sessions`"));
        assert!(!r.sql.contains("{{"), "unresolved placeholder: {}", r.sql);
        assert!(r.sql.contains("TIMESTAMP '2024-06-15 12:00:00+00:00'"));
        assert!(r.sql.contains(", 3 AS `revision`"));
    }

    fn point(run: &str, revision: i64, population: i64) -> PopulationPoint {
        PopulationPoint {
            run_id: run.into(),
            revision,
            population,
        }
    }

    #[test]
    fn size_alerts_only_after_a_rule_change_beyond_the_share() {
        let before = point("a", 1, 100);
        // A rule change that moves the population 25 %: alert, both ways.
        let up = size_alert(&point("b", 2, 125), Some(&before), 0.2).unwrap();
        assert_eq!(up.change, 0.25);
        assert!(size_alert(&point("b", 2, 75), Some(&before), 0.2).is_some());
        // Exactly the share, or less: no alert.
        assert_eq!(size_alert(&point("b", 2, 120), Some(&before), 0.2), None);
        // The same revision: data moved it, not an edit.
        assert_eq!(size_alert(&point("b", 1, 300), Some(&before), 0.2), None);
        // No previous run: nothing to compare.
        assert_eq!(size_alert(&point("b", 2, 300), None, 0.2), None);
        // From empty to some: alert; empty to empty: none.
        assert!(size_alert(&point("b", 2, 1), Some(&point("a", 1, 0)), 0.2).is_some());
        assert_eq!(
            size_alert(&point("b", 2, 0), Some(&point("a", 1, 0)), 0.2),
            None
        );
    }

    #[test]
    fn population_points_come_from_the_runs_result_rows() {
        let rows = vec![
            vec![json!("b"), json!("2"), json!("130")],
            vec![json!("a"), json!(1), json!(100)],
        ];
        let (cur, prev) = population_points("b", &rows).unwrap();
        assert_eq!(cur, point("b", 2, 130));
        assert_eq!(prev, Some(point("a", 1, 100)));
        assert_eq!(population_points("c", &rows), None);
        let (cur, prev) = population_points("a", &rows[1..]).unwrap();
        assert_eq!((cur, prev), (point("a", 1, 100), None));
    }

    #[test]
    fn deltas_split_under_the_limit_and_cover_every_change_once() {
        let run = DeltaRun {
            account_id: "acc",
            segment_id: "seg",
            run_id: "run-1",
            revision: 2,
        };
        let mut rows: Vec<(String, String)> = (0..5000)
            .map(|i| (format!("entered-{i:05}"), ENTERED.to_string()))
            .collect();
        rows.extend((0..1000).map(|i| (format!("exit\"{i}"), EXITED.to_string())));
        let parts = delta_messages(&run, &rows, 20_000);
        assert!(parts.len() > 4, "{}", parts.len());
        let (mut entered, mut exited) = (vec![], vec![]);
        for (i, p) in parts.iter().enumerate() {
            assert!(p.len() <= 20_000, "part {i}: {} bytes", p.len());
            let v: serde_json::Value = serde_json::from_str(p).unwrap();
            assert_eq!(v["type"], "segment-membership-changed");
            assert_eq!(
                (v["part"].as_u64(), v["parts"].as_u64()),
                (Some(i as u64 + 1), Some(parts.len() as u64))
            );
            assert_eq!(
                (v["runId"].as_str(), v["revision"].as_i64()),
                (Some("run-1"), Some(2))
            );
            entered.extend(
                v["entered"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap().to_string()),
            );
            exited.extend(
                v["exited"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_str().unwrap().to_string()),
            );
        }
        assert_eq!(entered.len(), 5000);
        assert_eq!(exited.len(), 1000);
        assert_eq!(exited[7], "exit\"7");
        // The same changes give the same parts.
        assert_eq!(delta_messages(&run, &rows, 20_000), parts);
        assert!(delta_messages(&run, &[], 20_000).is_empty());
    }

    #[test]
    fn run_sql_snapshot() {
        insta::assert_snapshot!(render("segments_refresh_segment_0123", 2).sql);
    }

    #[test]
    fn a_run_id_is_a_literal_never_sql() {
        let r = render("x' OR TRUE; --", 1);
        assert!(r.sql.contains(r"'x\' OR TRUE; --'"), "{}", r.sql);
    }
}
