//! create-segment: create, update, revert, rebuild, delete and expire-all. A
//! valid segment is stored with its cronjob query and a new rule revision, its
//! build run submitted (SPEC §11: the members, the population and the changes,
//! with a job id derived from the message, so a redelivery submits nothing
//! twice), a job check queued and the caches cleared. An invalid one is refused
//! with every error path, and nothing is written.

use crate::{App, Failure};
use chrono::{DateTime, Utc};
use segments_core::history::{Run, render_run};
use segments_core::jobs::{QueryStatus, job_id};
use segments_core::messages::{CheckJobMessage, JobAction, JobInput, SegmentCommand};
use segments_core::model::Segment;
use segments_core::sql::drop_table;
use segments_core::time::parse_time_zone;
use segments_core::{check_segment, render_segment};
use segments_infra::ports::{JobRecord, QueryJob, RevisionAction, SegmentRow, SegmentWrite};
use serde::Serialize;
use serde_json::Value;
use tracing::Instrument;

/// The longest segment description stored (the name is cut to 200, its column's size).
pub const MAX_DESCRIPTION: usize = 2000;

/// What a command did, per segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    pub action: String,
    pub segments: Vec<SegmentOutcome>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SegmentOutcome {
    pub segment_id: String,
    pub table: String,
    /// The build job, when one was submitted.
    pub job_id: Option<String>,
    pub query_status: String,
}

/// Handles one command. `message_id` identifies the delivery (the SQS message
/// id, or the request id of a direct invoke); redeliveries share it.
pub async fn handle(
    app: &App,
    cmd: &SegmentCommand,
    message_id: &str,
    now: DateTime<Utc>,
) -> Result<Outcome, Failure> {
    let account = cmd.account_id();
    let tz_name = app
        .ports
        .store
        .account_time_zone(account)
        .await?
        .ok_or_else(|| Failure::Rejected(format!("account {account} does not exist")))?;
    let tz = parse_time_zone(&tz_name)?;
    let ctx = Ctx {
        app,
        account,
        tz: &tz,
        message_id,
        now,
    };
    // Every account has its "All Data" segment.
    app.ports.store.ensure_all_data(account).await?;
    let mut outcome = Outcome {
        action: cmd.action().to_string(),
        segments: Vec::new(),
    };
    match cmd {
        SegmentCommand::Create { segment, .. } | SegmentCommand::Update { segment, .. } => {
            // Every error, structural and against the catalog, in one answer.
            let mut seg = check_segment(segment, &app.catalog)?;
            if let Some(d) = &seg.description {
                let n = d.chars().count();
                if n > MAX_DESCRIPTION {
                    return Err(Failure::Rejected(format!(
                        "description: at most {MAX_DESCRIPTION} characters, got {n}"
                    )));
                }
            }
            if let Some(owner) = &seg.account_id
                && owner != account
            {
                return Err(Failure::Rejected(format!(
                    "segment.accountId {owner} differs from the message's accountId {account}"
                )));
            }
            if let SegmentCommand::Update { .. } = cmd
                && app.ports.store.segment(account, &seg.id).await?.is_none()
            {
                return Err(Failure::Rejected(format!(
                    "segment {} does not belong to account {account}",
                    seg.id
                )));
            }
            // Names: required, at most 200 characters, unique in the account.
            let name = crate::api::segments::check_unique_name(
                app,
                account,
                &seg.id,
                seg.name.as_deref(),
                "segment.name",
            )
            .await
            .map_err(crate::api::failure)?;
            seg.name = Some(name);
            let rules = segment.get("ruleGroups").cloned().unwrap_or(Value::Null);
            let (action, revision) = if matches!(cmd, SegmentCommand::Create { .. }) {
                (JobAction::CreateSegment, RevisionAction::Create)
            } else {
                (JobAction::RebuildSegment, RevisionAction::Update)
            };
            let rev = Rules::New {
                action: revision,
                reverted_to: None,
            };
            outcome
                .segments
                .push(build(&ctx, &seg, &rules, action, rev, false).await?);
        }
        SegmentCommand::Revert {
            segment_id,
            revision,
            ..
        } => {
            // The segment must be the account's, and so must the revision.
            owned(app, account, segment_id).await?;
            let old = app
                .ports
                .history
                .revision(account, segment_id, *revision)
                .await?
                .ok_or_else(|| {
                    Failure::Rejected(format!("segment {segment_id} has no revision {revision}"))
                })?;
            let rules: Value = serde_json::from_str(&old.rule_groups).map_err(|e| {
                Failure::Rejected(format!(
                    "revision {revision}: stored ruleGroups are not JSON: {e}"
                ))
            })?;
            let seg = check_segment(
                &serde_json::json!({"id": segment_id, "accountId": account, "name": old.name,
                    "description": old.description, "ruleGroups": rules}),
                &app.catalog,
            )?;
            let rev = Rules::New {
                action: RevisionAction::Revert,
                reverted_to: Some(*revision),
            };
            outcome
                .segments
                .push(build(&ctx, &seg, &rules, JobAction::RebuildSegment, rev, false).await?);
        }
        SegmentCommand::Rebuild {
            segment_id,
            drop_table,
            ..
        } => {
            let row = owned(app, account, segment_id).await?;
            let (seg, rules) = stored_segment(&row)?;
            outcome.segments.push(
                build(
                    &ctx,
                    &seg,
                    &rules,
                    JobAction::RebuildSegment,
                    Rules::Current,
                    *drop_table,
                )
                .await?,
            );
        }
        SegmentCommand::Delete { segment_id, .. } => {
            let row = owned(app, account, segment_id).await?;
            if !row.is_custom {
                return Err(Failure::Rejected(format!(
                    "segment {segment_id} is the account's \"All Data\" segment and cannot be deleted"
                )));
            }
            // A build still running would recreate the table after the drop:
            // cancel it first and wait (briefly) until it has stopped.
            for job in app.ports.store.running_builds(account, segment_id).await? {
                if let Err(e) = app.ports.warehouse.cancel(&job).await {
                    tracing::warn!(jobId = %job, error = %e, "delete: cancelling the build failed");
                }
                let status = app
                    .ports
                    .warehouse
                    .wait(&job, std::time::Duration::from_secs(10))
                    .await?;
                if status.state != "DONE" {
                    return Err(Failure::Retry(format!(
                        "build {job} of segment {segment_id} has not stopped yet"
                    )));
                }
                app.ports
                    .store
                    .finish_job(
                        &job,
                        QueryStatus::Canceled,
                        status.total_bytes_billed,
                        Some("segment deleted"),
                        now,
                    )
                    .await?;
            }
            let target = app.target(account)?;
            let table = segments_core::model::segment_table_name(segment_id);
            let sql = drop_table(&target.table(&table));
            let id = job_id("delete-segment", &[segment_id, message_id]);
            submit(app, account, &id, sql, false).await?;
            app.ports.store.delete_segment(account, segment_id).await?;
            outcome.segments.push(SegmentOutcome {
                segment_id: segment_id.clone(),
                table,
                job_id: Some(id),
                query_status: "deleted".into(),
            });
        }
        // Fanned out: one rebuild message per segment on the create-segment
        // queue, so the invocation's time does not grow with the account (a
        // redelivered expire-all fans out again; each rebuild is idempotent
        // per message).
        SegmentCommand::ExpireAll { drop_tables, .. } if app.create_segment_queue_url.is_some() => {
            let queue = app.create_segment_queue_url.as_deref().unwrap_or_default();
            let rows = app.ports.store.custom_segments(account).await?;
            let bodies: Vec<String> = rows
                .iter()
                .map(|row| {
                    serde_json::json!({
                        "action": "rebuild",
                        "accountId": account,
                        "segmentId": row.id,
                        "dropTable": drop_tables,
                    })
                    .to_string()
                })
                .collect();
            app.ports.queue.send_batch(queue, &bodies).await?;
            for row in rows {
                outcome.segments.push(SegmentOutcome {
                    table: segments_core::model::segment_table_name(&row.id),
                    segment_id: row.id,
                    job_id: None,
                    query_status: "queued".into(),
                });
            }
            // Each rebuild clears the caches of its segment.
            return Ok(outcome);
        }
        // Without the queue (a local run), one segment after another here.
        SegmentCommand::ExpireAll { drop_tables, .. } => {
            for row in app.ports.store.custom_segments(account).await? {
                // One bad stored segment must not stop the others.
                let built = match stored_segment(&row) {
                    Ok((seg, rules)) => {
                        build(
                            &ctx,
                            &seg,
                            &rules,
                            JobAction::RebuildSegment,
                            Rules::Current,
                            *drop_tables,
                        )
                        .await
                    }
                    Err(e) => Err(e),
                };
                match built {
                    Ok(o) => outcome.segments.push(o),
                    Err(e) => {
                        tracing::error!(segmentId = %row.id, error = %e, "expire-all: segment not rebuilt")
                    }
                }
            }
        }
    }
    app.invalidate(account, cmd.segment_id()).await;
    Ok(outcome)
}

async fn owned(app: &App, account: &str, segment_id: &str) -> Result<SegmentRow, Failure> {
    app.ports
        .store
        .segment(account, segment_id)
        .await?
        .ok_or_else(|| {
            Failure::Rejected(format!(
                "segment {segment_id} does not belong to account {account}"
            ))
        })
}

/// The typed segment and its raw rule groups, from a stored row.
fn stored_segment(row: &SegmentRow) -> Result<(Segment, Value), Failure> {
    Ok(segments_core::stored_segment(stored_rules(row))?)
}

/// The columns of a stored row that hold its definition.
pub(crate) fn stored_rules(row: &SegmentRow) -> segments_core::StoredRules<'_> {
    segments_core::StoredRules {
        id: &row.id,
        account_id: Some(&row.account_id),
        name: Some(&row.name),
        description: row.description.as_deref(),
        rule_groups: row.rule_groups.as_deref(),
    }
}

async fn submit(
    app: &App,
    account: &str,
    id: &str,
    sql: String,
    batch: bool,
) -> Result<(), Failure> {
    let job = QueryJob {
        job_id: id.to_string(),
        sql,
        dataset: app.dataset(account),
        labels: vec![("app".into(), "segments".into())],
        batch,
        maximum_bytes_billed: app.maximum_bytes_billed,
    };
    let (_, duplicate) = app.ports.warehouse.submit(&job).await?;
    if duplicate {
        tracing::info!(jobId = %id, "job already submitted (redelivered message)");
    }
    Ok(())
}

/// What every build of one command shares.
#[derive(Clone, Copy)]
struct Ctx<'a> {
    app: &'a App,
    account: &'a str,
    tz: &'a chrono_tz::Tz,
    message_id: &'a str,
    now: DateTime<Utc>,
}

/// Which revision of the rules a build runs.
#[derive(Clone, Copy)]
enum Rules {
    /// New rules (create, update, revert): a new revision is written with the segment.
    New {
        action: RevisionAction,
        reverted_to: Option<i64>,
    },
    /// The stored rules (rebuild, expire-all): their latest revision. A segment
    /// stored before revisions existed gets its first one (action `create`) here.
    Current,
}

/// Renders, stores, submits the build run and queues its check.
async fn build(
    ctx: &Ctx<'_>,
    seg: &Segment,
    rules: &Value,
    action: JobAction,
    revision: Rules,
    drop_first: bool,
) -> Result<SegmentOutcome, Failure> {
    let Ctx {
        app,
        account,
        tz,
        message_id,
        now,
    } = *ctx;
    let target = app.target(account)?;
    let rendered = render_segment(seg, &app.catalog, &target, tz, now)?;
    let write = SegmentWrite {
        id: seg.id.clone(),
        account_id: account.to_string(),
        name: seg
            .name
            .clone()
            .unwrap_or_else(|| "Untitled segment".into())
            .chars()
            .take(200)
            .collect(),
        description: seg.description.clone(),
        rule_groups: rules.to_string(),
        query: rendered.stored_query(),
    };
    // A new segment is stored first, with its first revision (its row refuses
    // an id of another account). An existing one keeps its rules, query and
    // status until the new build is submitted, so a failed submit changes
    // nothing; its new revision is written once the submit succeeded.
    let history = &app.ports.history;
    let existing = app.ports.store.segment(account, &seg.id).await?.is_some();
    let latest = history
        .latest_revisions(account)
        .await?
        .get(&seg.id)
        .copied();
    let (revision, save_after) = match (revision, existing, latest) {
        (
            Rules::New {
                action,
                reverted_to,
            },
            true,
            Some(r),
        ) => (r + 1, Some((action, reverted_to))),
        (
            Rules::New {
                action,
                reverted_to,
            },
            _,
            _,
        ) => (
            history
                .save_with_revision(&write, action, reverted_to, message_id)
                .await?,
            None,
        ),
        (Rules::Current, _, Some(r)) => (r, None),
        (Rules::Current, _, None) => (
            history
                .save_with_revision(&write, RevisionAction::Create, None, message_id)
                .await?,
            None,
        ),
    };
    app.ports.warehouse.ensure_dataset(target.dataset()).await?;
    let id = job_id(action.as_str(), &[&seg.id, message_id]);
    let span = tracing::info_span!("build", accountId = %account, segmentId = %seg.id, jobId = %id);
    // Attached to the future, not entered: a guard held across .await would
    // leak the span into whatever else the thread polls meanwhile.
    async move {
        if drop_first {
            let drop_id = job_id("drop-segment", &[&seg.id, message_id]);
            submit(
                app,
                account,
                &drop_id,
                drop_table(&target.table(&rendered.table)),
                false,
            )
            .await?;
            // Strictly ordered: the build starts once the drop has ended, so a
            // late drop never removes the table a build just made (and left `done`).
            let dropped = app
                .ports
                .warehouse
                .wait(&drop_id, std::time::Duration::from_secs(30))
                .await?;
            if dropped.state != "DONE" {
                return Err(Failure::Retry(format!(
                    "the drop of {} (job {drop_id}) has not ended yet",
                    rendered.table
                )));
            }
            if let Some(e) = dropped.error_message {
                return Err(Failure::Retry(format!(
                    "the drop of {} (job {drop_id}) failed: {e}",
                    rendered.table
                )));
            }
        }
        // The run with history (SPEC §11) renders for BigQuery; a Postgres
        // warehouse gets the plain build (docs/history.md, limits).
        let sql = if app.runs_with_history() {
            render_run(
                seg,
                &app.catalog,
                &target,
                tz,
                now,
                Run {
                    run_id: &id,
                    revision,
                },
            )?
            .sql
        } else {
            rendered.create_table_query
        };
        submit(app, account, &id, sql, false).await?;
        // The revision as stored: on a redelivery, the one this message
        // already wrote (saving is idempotent per message), not the guess.
        let revision = match (existing, save_after) {
            (true, Some((action, reverted_to))) => {
                history
                    .save_with_revision(&write, action, reverted_to, message_id)
                    .await?
            }
            (true, None) => {
                app.ports.store.save_segment(&write).await?;
                revision
            }
            (false, _) => revision,
        };
        app.ports
            .store
            .start_job(&JobRecord {
                job_id: id.clone(),
                account_id: account.to_string(),
                segment_id: Some(seg.id.clone()),
                action: action.as_str().into(),
                status: QueryStatus::InProgress,
                bytes_billed: None,
                error: None,
                created_at: now,
                finished_at: None,
            })
            .await?;
        history.set_job_revision(&id, revision).await?;
        let check = CheckJobMessage {
            job_id: id.clone(),
            account_id: account.to_string(),
            action,
            job_input_data: JobInput {
                segment_id: Some(seg.id.clone()),
                revision: Some(revision),
                ..Default::default()
            },
            started_at: now,
            attempt: 0,
        };
        app.queue_check(&check, app.schedule.first_delay).await?;
        tracing::info!(revision, "build submitted");
        Ok(SegmentOutcome {
            segment_id: seg.id.clone(),
            table: rendered.table,
            job_id: Some(id),
            query_status: QueryStatus::InProgress.as_str().into(),
        })
    }
    .instrument(span)
    .await
}
