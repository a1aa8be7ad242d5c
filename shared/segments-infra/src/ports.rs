//! The ports: one small trait per capability the handlers need. Each has one
//! real adapter in this crate; handlers are generic over these traits.

use crate::error::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use segments_core::jobs::QueryStatus;
use serde_json::Value;
use std::time::Duration;

/// A row of `"Segments"`.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRow {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub description: Option<String>,
    pub is_custom: bool,
    pub rule_groups: Option<String>,
    pub status: bool,
    pub query_status: String,
    pub query: Option<String>,
    pub is_blocked: bool,
    pub total_bytes_billed: Option<i64>,
    pub build_at: Option<DateTime<Utc>>,
}

/// What create/update writes.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentWrite {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub description: Option<String>,
    pub rule_groups: String,
    pub query: String,
}

/// A BigQuery job the functions submitted (our `segment_jobs` table).
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    pub job_id: String,
    pub account_id: String,
    pub segment_id: Option<String>,
    pub action: String,
    pub status: QueryStatus,
    pub bytes_billed: Option<i64>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The result of recording a job's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobTransition {
    /// Recorded; `segment_updated` is false when a newer build owns the segment.
    Applied {
        segment_updated: bool,
    },
    /// The job had already ended with this status; nothing changed.
    AlreadyFinal(QueryStatus),
    UnknownJob,
}

#[async_trait]
pub trait SegmentStore: Send + Sync {
    async fn account_time_zone(&self, account_id: &str) -> Result<Option<String>>;
    /// The segment, only if it belongs to `account_id`.
    async fn segment(&self, account_id: &str, segment_id: &str) -> Result<Option<SegmentRow>>;
    /// Inserts or updates; refuses (NotFound) an id that belongs to another account.
    async fn save_segment(&self, seg: &SegmentWrite) -> Result<()>;
    async fn delete_segment(&self, account_id: &str, segment_id: &str) -> Result<bool>;
    async fn custom_segments(&self, account_id: &str) -> Result<Vec<SegmentRow>>;
    /// The account's non-custom "All Data" segment, created when missing.
    async fn ensure_all_data(&self, account_id: &str) -> Result<String>;
    /// Segments the cronjob refreshes: enabled, not blocked, done, with a query, under the threshold.
    async fn eligible_for_refresh(
        &self,
        account_id: &str,
        bytes_threshold: i64,
    ) -> Result<Vec<SegmentRow>>;
    /// `(accountId, timeZone)` of every account with at least one eligible segment.
    async fn accounts_to_refresh(&self, bytes_threshold: i64) -> Result<Vec<(String, String)>>;
    /// Records a submitted job; a build job also sets its segment in-progress.
    /// Recording the same job twice is harmless.
    async fn start_job(&self, job: &JobRecord) -> Result<()>;
    /// Records a job's end. Status only moves forward; the segment is updated
    /// only when this job is its latest build.
    async fn finish_job(
        &self,
        job_id: &str,
        status: QueryStatus,
        bytes_billed: Option<i64>,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<JobTransition>;
    async fn job(&self, job_id: &str) -> Result<Option<JobRecord>>;
    /// Ids of the segment's builds still in progress (oldest first).
    async fn running_builds(&self, account_id: &str, segment_id: &str) -> Result<Vec<String>>;
    /// Every segment of the account, "All Data" first, then by creation.
    async fn segments(&self, account_id: &str) -> Result<Vec<SegmentRow>>;
    /// Enables or disables (`status`) a segment of the account; false when it is not the account's.
    async fn set_status(&self, account_id: &str, segment_id: &str, enabled: bool) -> Result<bool>;
    /// Whether another segment of the account (not `except_id`) has this name,
    /// compared trimmed and case-insensitively.
    async fn name_in_use(&self, account_id: &str, name: &str, except_id: &str) -> Result<bool>;
    /// `"SegmentReport"` rows of a user's report: the report's own and the
    /// user's sticky ones (no `reportName`), oldest first.
    async fn segment_reports(
        &self,
        account_id: &str,
        user_id: &str,
        report_name: &str,
    ) -> Result<Vec<SegmentReportRow>>;
    /// Inserts or updates one `"SegmentReport"` row (keyed by account, user,
    /// report or sticky, and segment); returns its id.
    async fn link_report(&self, link: &SegmentReportRow) -> Result<String>;
    /// Deletes the user's link of the segment to the report, and its sticky link.
    async fn unlink_report(
        &self,
        account_id: &str,
        user_id: &str,
        report_name: &str,
        segment_id: &str,
    ) -> Result<u64>;
    /// Sets `applyChart` on exactly `segment_ids` among the user's links of the report.
    async fn apply_chart(
        &self,
        account_id: &str,
        user_id: &str,
        report_name: &str,
        segment_ids: &[String],
    ) -> Result<u64>;
}

/// A row of `"SegmentReport"`: a segment applied to a user's report.
/// `report_name` `None` is a sticky link: every report of the user and object.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentReportRow {
    pub id: String,
    pub account_id: String,
    pub segment_id: String,
    pub segment_name: String,
    pub report_name: Option<String>,
    pub user_id: String,
    pub report_type: Option<String>,
    pub object: Option<String>,
    pub apply: bool,
    pub apply_chart: bool,
}

#[async_trait]
pub trait Cache: Send + Sync {
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<()>;
    async fn get(&self, key: &str) -> Result<Option<String>>;
    async fn delete(&self, key: &str) -> Result<()>;
    /// Deletes every key that starts with `prefix` (SCAN + UNLINK); returns how many.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64>;
}

#[async_trait]
pub trait Queue: Send + Sync {
    async fn send(&self, queue_url: &str, body: &str, delay_seconds: u32) -> Result<()> {
        self.send_with_attributes(queue_url, body, delay_seconds, &[])
            .await
    }
    /// Sends one message with string message attributes (e.g. `accountId`, for
    /// filtering and tracing without parsing the body).
    async fn send_with_attributes(
        &self,
        queue_url: &str,
        body: &str,
        delay_seconds: u32,
        attributes: &[(&str, &str)],
    ) -> Result<()>;
    /// Sends one message to a FIFO queue: `dedup_id` makes a second send of the
    /// same message within SQS's 5-minute window a no-op.
    async fn send_fifo(
        &self,
        queue_url: &str,
        body: &str,
        group_id: &str,
        dedup_id: &str,
    ) -> Result<()> {
        let _ = (queue_url, body, group_id, dedup_id);
        Err(crate::error::InfraError::Unsupported(
            "FIFO messages on this queue adapter".into(),
        ))
    }
    /// Sends many bodies in batches of 10.
    async fn send_batch(&self, queue_url: &str, bodies: &[String]) -> Result<()>;
}

#[async_trait]
pub trait ObjectStore: Send + Sync {
    /// The object's bytes; `None` when it does not exist.
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>>;
    /// Writes an object, replacing any with that key.
    async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<()>;
    /// A URL that reads the object without credentials until `expires_in` has passed.
    async fn presigned_get(&self, bucket: &str, key: &str, expires_in: Duration) -> Result<String>;
}

/// A query job to submit.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryJob {
    pub job_id: String,
    pub sql: String,
    /// The account's dataset (BigQuery) or schema (Postgres) the job works
    /// in; a Postgres job runs as that schema's role.
    pub dataset: String,
    pub labels: Vec<(String, String)>,
    /// BATCH priority (the cronjob); INTERACTIVE otherwise.
    pub batch: bool,
    pub maximum_bytes_billed: i64,
}

/// What BigQuery says about a job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobStatus {
    pub job_id: String,
    /// `PENDING`, `RUNNING` or `DONE`.
    pub state: String,
    pub error_reason: Option<String>,
    pub error_message: Option<String>,
    pub total_bytes_billed: Option<i64>,
    /// When BigQuery started and ended the job (absent until it did).
    pub started_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
}

impl JobStatus {
    pub fn query_status(&self) -> Option<QueryStatus> {
        segments_core::jobs::status_of(&self.state, self.error_reason.as_deref())
    }
}

#[async_trait]
pub trait Warehouse: Send + Sync {
    /// Submits a job; a job id BigQuery already knows yields that job (`duplicate` true).
    async fn submit(&self, job: &QueryJob) -> Result<(JobStatus, bool)>;
    async fn status(&self, job_id: &str) -> Result<JobStatus>;
    /// Waits up to `timeout` for the job to end, then returns its status.
    async fn wait(&self, job_id: &str, timeout: Duration) -> Result<JobStatus>;
    async fn cancel(&self, job_id: &str) -> Result<()>;
    /// The first `max_rows` rows of a finished query job, as JSON values per column.
    async fn rows(&self, job_id: &str, max_rows: usize) -> Result<Vec<Vec<Value>>>;
    /// The first `max_rows` rows of a table (a report's result table).
    async fn table_rows(
        &self,
        dataset: &str,
        table: &str,
        max_rows: usize,
    ) -> Result<Vec<Vec<Value>>>;
    async fn ensure_dataset(&self, dataset: &str) -> Result<()>;
    /// Bytes a query would process; `Unsupported` where the service cannot say.
    async fn dry_run(&self, sql: &str) -> Result<i64>;
}

#[async_trait]
pub trait Notifier: Send + Sync {
    async fn trigger(&self, channel: &str, event: &str, data: &Value) -> Result<()>;
}

/// Why a revision of a segment's rules was written (SPEC §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevisionAction {
    Create,
    Update,
    Revert,
}

impl RevisionAction {
    pub fn as_str(self) -> &'static str {
        match self {
            RevisionAction::Create => "create",
            RevisionAction::Update => "update",
            RevisionAction::Revert => "revert",
        }
    }
}

/// A row of `"SegmentRevisions"`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionRow {
    pub segment_id: String,
    pub account_id: String,
    pub revision: i64,
    pub name: String,
    pub description: Option<String>,
    pub rule_groups: String,
    pub action: String,
    pub reverted_to: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// One run of a segment as `segment_jobs` records it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRecord {
    pub job_id: String,
    pub action: String,
    pub status: String,
    pub revision: Option<i64>,
    pub bytes_billed: Option<i64>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Rule revisions and runs of segments (SPEC §11).
#[async_trait]
pub trait HistoryStore: Send + Sync {
    /// Saves the segment as [`SegmentStore::save_segment`] does and appends a
    /// revision in the same transaction; returns its number. The same
    /// `request_id` again (a redelivery) writes nothing and returns the
    /// revision it wrote the first time.
    async fn save_with_revision(
        &self,
        seg: &SegmentWrite,
        action: RevisionAction,
        reverted_to: Option<i64>,
        request_id: &str,
    ) -> Result<i64>;
    /// The segment's revisions, oldest first; none for another account's segment.
    async fn revisions(&self, account_id: &str, segment_id: &str) -> Result<Vec<RevisionRow>>;
    async fn revision(
        &self,
        account_id: &str,
        segment_id: &str,
        revision: i64,
    ) -> Result<Option<RevisionRow>>;
    /// The latest revision of each segment of the account that has one.
    async fn latest_revisions(
        &self,
        account_id: &str,
    ) -> Result<std::collections::HashMap<String, i64>>;
    /// Records which revision a job runs.
    async fn set_job_revision(&self, job_id: &str, revision: i64) -> Result<()>;
    /// Registers a run's published changes (`parts` messages) once and
    /// returns how many parts were already sent (0 the first time).
    async fn outbox_claim(
        &self,
        run_id: &str,
        account_id: &str,
        segment_id: &str,
        parts: i64,
    ) -> Result<i64>;
    /// Records that parts `1..=sent` of the run are on the queue.
    async fn outbox_sent(&self, run_id: &str, sent: i64) -> Result<()>;
    /// The segment's runs (builds and refreshes), newest first, at most `limit`.
    async fn runs(&self, account_id: &str, segment_id: &str, limit: i64) -> Result<Vec<RunRecord>>;
}
