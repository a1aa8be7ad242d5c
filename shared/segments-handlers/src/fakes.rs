//! In-memory fakes of every port, for unit tests of the handlers' decisions
//! that run in milliseconds without the stack. Each fake behaves like its real
//! adapter where the handlers depend on it (the store scopes every row by
//! account and moves job statuses forward only; the warehouse answers a known
//! job id as a duplicate) and keeps what it was asked as plain data a test
//! reads back. Wrap a fake in [`segments_infra::faults::Faulty`] to fail its
//! calls on cue, transient or permanent ([`Fakes::app_with_faults`]).
//!
//! Compiled for this crate's tests and with the `fakes` feature.

use crate::App;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use segments_core::Catalog;
use segments_core::jobs::QueryStatus;
use segments_infra::InfraError;
use segments_infra::config::Config;
use segments_infra::error::Result;
use segments_infra::faults::{Faults, Faulty};
use segments_infra::ports::{
    Cache, HistoryStore, JobRecord, JobStatus, JobTransition, Notifier, ObjectStore, QueryJob,
    Queue, RevisionAction, RevisionRow, RunRecord, SegmentReportRow, SegmentRow, SegmentStore,
    SegmentWrite, Warehouse,
};
use segments_infra::wiring::Ports;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn is_build(action: &str) -> bool {
    action == "create-segment" || action == "rebuild-segment"
}

#[derive(Default)]
struct StoreState {
    /// Account id -> time zone.
    accounts: BTreeMap<String, Option<String>>,
    /// In insertion order, like `ORDER BY created_at`.
    segments: Vec<SegmentRow>,
    /// With the order they started in (the real table's `started_seq`).
    jobs: Vec<(u64, JobRecord)>,
    next_seq: u64,
    /// `"SegmentReport"` rows in insertion order (`ORDER BY created_at`).
    links: Vec<SegmentReportRow>,
    next_link: u64,
    /// `"SegmentRevisions"`, with the request that wrote each.
    revisions: Vec<(RevisionRow, String)>,
    /// `segment_jobs.revision`.
    job_revisions: HashMap<String, i64>,
    /// `segment_delta_outbox`: run -> (parts, sent).
    outbox: HashMap<String, (i64, i64)>,
}

/// The segment store (`"Accounts"`, `"Segments"`, `segment_jobs`).
#[derive(Default)]
pub struct FakeStore {
    state: Mutex<StoreState>,
}

impl FakeStore {
    pub fn add_account(&self, account_id: &str, time_zone: &str) {
        lock(&self.state)
            .accounts
            .insert(account_id.into(), Some(time_zone.into()));
    }

    /// Stores a row as the web app or an earlier build left it.
    pub fn put_segment(&self, row: SegmentRow) {
        let mut s = lock(&self.state);
        s.segments.retain(|r| r.id != row.id);
        s.segments.push(row);
    }

    /// A segment by id, whatever its account.
    pub fn row(&self, segment_id: &str) -> Option<SegmentRow> {
        lock(&self.state)
            .segments
            .iter()
            .find(|r| r.id == segment_id)
            .cloned()
    }

    pub fn rows(&self) -> Vec<SegmentRow> {
        lock(&self.state).segments.clone()
    }

    pub fn jobs(&self) -> Vec<JobRecord> {
        lock(&self.state)
            .jobs
            .iter()
            .map(|(_, j)| j.clone())
            .collect()
    }

    fn eligible(row: &SegmentRow, threshold: i64) -> bool {
        row.is_custom
            && row.status
            && !row.is_blocked
            && row.query_status == "done"
            && row.query.is_some()
            && row.total_bytes_billed.unwrap_or(0) < threshold
    }
}

#[async_trait]
impl HistoryStore for FakeStore {
    async fn save_with_revision(
        &self,
        seg: &SegmentWrite,
        action: RevisionAction,
        reverted_to: Option<i64>,
        request_id: &str,
    ) -> Result<i64> {
        if let Some((r, _)) = lock(&self.state)
            .revisions
            .iter()
            .find(|(r, req)| r.segment_id == seg.id && req == request_id)
        {
            return Ok(r.revision);
        }
        self.save_segment(seg).await?;
        let mut s = lock(&self.state);
        let revision = s
            .revisions
            .iter()
            .filter(|(r, _)| r.segment_id == seg.id)
            .map(|(r, _)| r.revision)
            .max()
            .unwrap_or(0)
            + 1;
        s.revisions.push((
            RevisionRow {
                segment_id: seg.id.clone(),
                account_id: seg.account_id.clone(),
                revision,
                name: seg.name.clone(),
                description: seg.description.clone(),
                rule_groups: seg.rule_groups.clone(),
                action: action.as_str().into(),
                reverted_to,
                created_at: Utc::now(),
            },
            request_id.into(),
        ));
        Ok(revision)
    }

    async fn revisions(&self, account_id: &str, segment_id: &str) -> Result<Vec<RevisionRow>> {
        Ok(lock(&self.state)
            .revisions
            .iter()
            .filter(|(r, _)| r.account_id == account_id && r.segment_id == segment_id)
            .map(|(r, _)| r.clone())
            .collect())
    }

    async fn revision(
        &self,
        account_id: &str,
        segment_id: &str,
        revision: i64,
    ) -> Result<Option<RevisionRow>> {
        Ok(self
            .revisions(account_id, segment_id)
            .await?
            .into_iter()
            .find(|r| r.revision == revision))
    }

    async fn latest_revisions(&self, account_id: &str) -> Result<HashMap<String, i64>> {
        let mut out = HashMap::new();
        for (r, _) in lock(&self.state).revisions.iter() {
            if r.account_id == account_id {
                let e = out.entry(r.segment_id.clone()).or_insert(r.revision);
                *e = (*e).max(r.revision);
            }
        }
        Ok(out)
    }

    async fn set_job_revision(&self, job_id: &str, revision: i64) -> Result<()> {
        lock(&self.state)
            .job_revisions
            .insert(job_id.into(), revision);
        Ok(())
    }

    async fn outbox_claim(
        &self,
        run_id: &str,
        _account_id: &str,
        _segment_id: &str,
        parts: i64,
    ) -> Result<i64> {
        let mut s = lock(&self.state);
        let (recorded, sent) = *s.outbox.entry(run_id.into()).or_insert((parts, 0));
        if recorded != parts {
            return Err(InfraError::Postgres(format!(
                "run {run_id}: {parts} parts now, {recorded} recorded"
            )));
        }
        Ok(sent)
    }

    async fn outbox_sent(&self, run_id: &str, sent: i64) -> Result<()> {
        if let Some(e) = lock(&self.state).outbox.get_mut(run_id) {
            e.1 = e.1.max(sent);
        }
        Ok(())
    }

    async fn runs(&self, account_id: &str, segment_id: &str, limit: i64) -> Result<Vec<RunRecord>> {
        let s = lock(&self.state);
        let mut jobs: Vec<&(u64, JobRecord)> = s
            .jobs
            .iter()
            .filter(|(_, j)| {
                j.account_id == account_id && j.segment_id.as_deref() == Some(segment_id)
            })
            .collect();
        jobs.sort_by_key(|(seq, _)| std::cmp::Reverse(*seq));
        Ok(jobs
            .into_iter()
            .take(limit.max(0) as usize)
            .map(|(_, j)| RunRecord {
                job_id: j.job_id.clone(),
                action: j.action.clone(),
                status: j.status.as_str().into(),
                revision: s.job_revisions.get(&j.job_id).copied(),
                bytes_billed: j.bytes_billed,
                error: j.error.clone(),
                created_at: j.created_at,
                finished_at: j.finished_at,
            })
            .collect())
    }
}

/// A custom segment row with defaults (built, enabled, not blocked).
pub fn segment_row(account_id: &str, segment_id: &str, rule_groups: &Value) -> SegmentRow {
    SegmentRow {
        id: segment_id.into(),
        account_id: account_id.into(),
        name: "Segment".into(),
        description: None,
        is_custom: true,
        rule_groups: Some(rule_groups.to_string()),
        status: true,
        query_status: "done".into(),
        query: Some("SELECT 1".into()),
        is_blocked: false,
        total_bytes_billed: Some(1),
        build_at: None,
    }
}

#[async_trait]
impl SegmentStore for FakeStore {
    async fn account_time_zone(&self, account_id: &str) -> Result<Option<String>> {
        Ok(lock(&self.state)
            .accounts
            .get(account_id)
            .cloned()
            .flatten())
    }

    async fn segment(&self, account_id: &str, segment_id: &str) -> Result<Option<SegmentRow>> {
        Ok(lock(&self.state)
            .segments
            .iter()
            .find(|r| r.id == segment_id && r.account_id == account_id)
            .cloned())
    }

    async fn save_segment(&self, seg: &SegmentWrite) -> Result<()> {
        let mut s = lock(&self.state);
        if !s.accounts.contains_key(&seg.account_id) {
            return Err(InfraError::NotFound(format!(
                "account {} does not exist",
                seg.account_id
            )));
        }
        match s.segments.iter_mut().find(|r| r.id == seg.id) {
            Some(r) if r.account_id == seg.account_id && r.is_custom => {
                r.name.clone_from(&seg.name);
                r.description.clone_from(&seg.description);
                r.rule_groups = Some(seg.rule_groups.clone());
                r.query = Some(seg.query.clone());
                Ok(())
            }
            Some(_) => Err(InfraError::NotFound(format!(
                "segment {} does not belong to account {}",
                seg.id, seg.account_id
            ))),
            None => {
                s.segments.push(SegmentRow {
                    id: seg.id.clone(),
                    account_id: seg.account_id.clone(),
                    name: seg.name.clone(),
                    description: seg.description.clone(),
                    is_custom: true,
                    rule_groups: Some(seg.rule_groups.clone()),
                    status: true,
                    query_status: "in-progress".into(),
                    query: Some(seg.query.clone()),
                    is_blocked: false,
                    total_bytes_billed: None,
                    build_at: None,
                });
                Ok(())
            }
        }
    }

    async fn delete_segment(&self, account_id: &str, segment_id: &str) -> Result<bool> {
        let mut s = lock(&self.state);
        let before = s.segments.len();
        s.segments
            .retain(|r| !(r.id == segment_id && r.account_id == account_id && r.is_custom));
        Ok(s.segments.len() < before)
    }

    async fn custom_segments(&self, account_id: &str) -> Result<Vec<SegmentRow>> {
        Ok(lock(&self.state)
            .segments
            .iter()
            .filter(|r| r.account_id == account_id && r.is_custom)
            .cloned()
            .collect())
    }

    async fn ensure_all_data(&self, account_id: &str) -> Result<String> {
        let mut s = lock(&self.state);
        if !s.accounts.contains_key(account_id) {
            return Err(InfraError::NotFound(format!(
                "account {account_id} does not exist"
            )));
        }
        if let Some(r) = s
            .segments
            .iter()
            .find(|r| r.account_id == account_id && !r.is_custom)
        {
            return Ok(r.id.clone());
        }
        let id = format!("a11da7a0-0000-4000-8000-{:012}", s.segments.len());
        s.segments.push(SegmentRow {
            id: id.clone(),
            account_id: account_id.into(),
            name: "All Data".into(),
            description: None,
            is_custom: false,
            rule_groups: None,
            status: true,
            query_status: "done".into(),
            query: None,
            is_blocked: false,
            total_bytes_billed: None,
            build_at: None,
        });
        Ok(id)
    }

    async fn eligible_for_refresh(
        &self,
        account_id: &str,
        bytes_threshold: i64,
    ) -> Result<Vec<SegmentRow>> {
        Ok(lock(&self.state)
            .segments
            .iter()
            .filter(|r| r.account_id == account_id && FakeStore::eligible(r, bytes_threshold))
            .cloned()
            .collect())
    }

    async fn accounts_to_refresh(&self, bytes_threshold: i64) -> Result<Vec<(String, String)>> {
        let s = lock(&self.state);
        Ok(s.accounts
            .iter()
            .filter(|(a, _)| {
                s.segments
                    .iter()
                    .any(|r| &r.account_id == *a && FakeStore::eligible(r, bytes_threshold))
            })
            .map(|(a, tz)| (a.clone(), tz.clone().unwrap_or_else(|| "UTC".into())))
            .collect())
    }

    async fn start_job(&self, job: &JobRecord) -> Result<()> {
        let mut s = lock(&self.state);
        if s.jobs.iter().any(|(_, j)| j.job_id == job.job_id) {
            return Ok(());
        }
        s.next_seq += 1;
        let seq = s.next_seq;
        s.jobs.push((seq, job.clone()));
        if is_build(&job.action)
            && let Some(r) = s
                .segments
                .iter_mut()
                .find(|r| Some(&r.id) == job.segment_id.as_ref() && r.account_id == job.account_id)
        {
            r.query_status = QueryStatus::InProgress.as_str().into();
        }
        Ok(())
    }

    async fn finish_job(
        &self,
        job_id: &str,
        status: QueryStatus,
        bytes_billed: Option<i64>,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<JobTransition> {
        let mut s = lock(&self.state);
        let Some(pos) = s.jobs.iter().position(|(_, j)| j.job_id == job_id) else {
            return Ok(JobTransition::UnknownJob);
        };
        let job = s.jobs[pos].1.clone();
        if !job.status.may_become(status) || job.status == status {
            return Ok(JobTransition::AlreadyFinal(job.status));
        }
        {
            let j = &mut s.jobs[pos].1;
            j.status = status;
            j.bytes_billed = bytes_billed.or(j.bytes_billed);
            j.error = error.map(String::from);
            j.finished_at = status.is_final().then_some(at);
        }
        let mut segment_updated = false;
        if let (true, Some(segment_id)) = (is_build(&job.action), &job.segment_id) {
            // Only the segment's latest build decides its status.
            let latest = s
                .jobs
                .iter()
                .filter(|(_, j)| j.segment_id.as_ref() == Some(segment_id) && is_build(&j.action))
                .max_by_key(|(seq, _)| *seq)
                .map(|(_, j)| j.job_id.clone());
            if latest.as_deref() == Some(job_id)
                && let Some(r) = s
                    .segments
                    .iter_mut()
                    .find(|r| &r.id == segment_id && r.account_id == job.account_id)
            {
                r.query_status = status.as_str().into();
                if status == QueryStatus::Done {
                    r.total_bytes_billed = bytes_billed.or(r.total_bytes_billed);
                    r.build_at = Some(at);
                }
                segment_updated = true;
            }
        }
        Ok(JobTransition::Applied { segment_updated })
    }

    async fn job(&self, job_id: &str) -> Result<Option<JobRecord>> {
        Ok(lock(&self.state)
            .jobs
            .iter()
            .find(|(_, j)| j.job_id == job_id)
            .map(|(_, j)| j.clone()))
    }

    async fn running_builds(&self, account_id: &str, segment_id: &str) -> Result<Vec<String>> {
        let s = lock(&self.state);
        let mut jobs: Vec<&(u64, JobRecord)> = s
            .jobs
            .iter()
            .filter(|(_, j)| {
                j.account_id == account_id
                    && j.segment_id.as_deref() == Some(segment_id)
                    && j.status == QueryStatus::InProgress
                    && is_build(&j.action)
            })
            .collect();
        jobs.sort_by_key(|(seq, _)| *seq);
        Ok(jobs.into_iter().map(|(_, j)| j.job_id.clone()).collect())
    }

    async fn segments(&self, account_id: &str) -> Result<Vec<SegmentRow>> {
        let mut rows: Vec<SegmentRow> = lock(&self.state)
            .segments
            .iter()
            .filter(|r| r.account_id == account_id)
            .cloned()
            .collect();
        // "All Data" first, then by creation (a stable sort keeps insertion order).
        rows.sort_by_key(|r| r.is_custom);
        Ok(rows)
    }

    async fn set_status(&self, account_id: &str, segment_id: &str, enabled: bool) -> Result<bool> {
        let mut s = lock(&self.state);
        match s
            .segments
            .iter_mut()
            .find(|r| r.id == segment_id && r.account_id == account_id)
        {
            Some(r) => {
                r.status = enabled;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn name_in_use(&self, account_id: &str, name: &str, except_id: &str) -> Result<bool> {
        let wanted = name.trim().to_lowercase();
        Ok(lock(&self.state).segments.iter().any(|r| {
            r.account_id == account_id
                && r.id != except_id
                && r.name.trim().to_lowercase() == wanted
        }))
    }

    async fn segment_reports(
        &self,
        account_id: &str,
        user_id: &str,
        report_name: &str,
    ) -> Result<Vec<SegmentReportRow>> {
        let s = lock(&self.state);
        Ok(s.links
            .iter()
            .filter(|l| {
                l.account_id == account_id
                    && l.user_id == user_id
                    && l.report_name.as_deref().is_none_or(|n| n == report_name)
            })
            .filter_map(|l| {
                // Joined with its segment, as the real query is.
                let seg = s
                    .segments
                    .iter()
                    .find(|r| r.id == l.segment_id && r.account_id == l.account_id)?;
                Some(SegmentReportRow {
                    segment_name: seg.name.clone(),
                    ..l.clone()
                })
            })
            .collect())
    }

    async fn link_report(&self, link: &SegmentReportRow) -> Result<String> {
        let mut s = lock(&self.state);
        if !s
            .segments
            .iter()
            .any(|r| r.id == link.segment_id && r.account_id == link.account_id)
        {
            return Err(InfraError::NotFound(format!(
                "segment {} does not belong to account {}",
                link.segment_id, link.account_id
            )));
        }
        // One row per (account, user, report or sticky, segment): updated in place.
        if let Some(l) = s.links.iter_mut().find(|l| {
            l.account_id == link.account_id
                && l.user_id == link.user_id
                && l.segment_id == link.segment_id
                && l.report_name == link.report_name
        }) {
            l.apply = link.apply;
            l.apply_chart = link.apply_chart;
            l.report_type.clone_from(&link.report_type);
            l.object.clone_from(&link.object);
            return Ok(l.id.clone());
        }
        s.next_link += 1;
        let id = format!("5e9a11c0-0000-4000-8000-{:012}", s.next_link);
        s.links.push(SegmentReportRow {
            id: id.clone(),
            ..link.clone()
        });
        Ok(id)
    }

    async fn unlink_report(
        &self,
        account_id: &str,
        user_id: &str,
        report_name: &str,
        segment_id: &str,
    ) -> Result<u64> {
        let mut s = lock(&self.state);
        let before = s.links.len();
        s.links.retain(|l| {
            !(l.account_id == account_id
                && l.user_id == user_id
                && l.segment_id == segment_id
                && l.report_name.as_deref().is_none_or(|n| n == report_name))
        });
        Ok((before - s.links.len()) as u64)
    }

    async fn apply_chart(
        &self,
        account_id: &str,
        user_id: &str,
        report_name: &str,
        segment_ids: &[String],
    ) -> Result<u64> {
        let mut s = lock(&self.state);
        let mut n = 0;
        for l in s.links.iter_mut().filter(|l| {
            l.account_id == account_id
                && l.user_id == user_id
                && l.report_name.as_deref().is_none_or(|n| n == report_name)
        }) {
            l.apply_chart = segment_ids.contains(&l.segment_id);
            n += 1;
        }
        Ok(n)
    }
}

/// The cache: keys and values, TTLs ignored.
#[derive(Default)]
pub struct FakeCache {
    entries: Mutex<BTreeMap<String, String>>,
}

impl FakeCache {
    pub fn keys(&self) -> Vec<String> {
        lock(&self.entries).keys().cloned().collect()
    }
    pub fn value(&self, key: &str) -> Option<String> {
        lock(&self.entries).get(key).cloned()
    }
}

#[async_trait]
impl Cache for FakeCache {
    async fn put(&self, key: &str, value: &str, _ttl: Duration) -> Result<()> {
        lock(&self.entries).insert(key.into(), value.into());
        Ok(())
    }
    async fn get(&self, key: &str) -> Result<Option<String>> {
        Ok(self.value(key))
    }
    async fn delete(&self, key: &str) -> Result<()> {
        lock(&self.entries).remove(key);
        Ok(())
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        let mut e = lock(&self.entries);
        let before = e.len();
        e.retain(|k, _| !k.starts_with(prefix));
        Ok((before - e.len()) as u64)
    }
}

/// One message a handler sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    pub queue_url: String,
    pub body: String,
    pub delay_seconds: u32,
    pub attributes: Vec<(String, String)>,
}

impl Sent {
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// The queue: every message sent, in order.
#[derive(Default)]
pub struct FakeQueue {
    sent: Mutex<Vec<Sent>>,
}

impl FakeQueue {
    pub fn sent(&self) -> Vec<Sent> {
        lock(&self.sent).clone()
    }
    /// What went to one queue.
    pub fn sent_to(&self, queue_url: &str) -> Vec<Sent> {
        self.sent()
            .into_iter()
            .filter(|s| s.queue_url == queue_url)
            .collect()
    }
}

#[async_trait]
impl Queue for FakeQueue {
    async fn send_with_attributes(
        &self,
        queue_url: &str,
        body: &str,
        delay_seconds: u32,
        attributes: &[(&str, &str)],
    ) -> Result<()> {
        lock(&self.sent).push(Sent {
            queue_url: queue_url.into(),
            body: body.into(),
            delay_seconds,
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        });
        Ok(())
    }
    async fn send_batch(&self, queue_url: &str, bodies: &[String]) -> Result<()> {
        for b in bodies {
            self.send(queue_url, b, 0).await?;
        }
        Ok(())
    }
}

/// The object store: `(bucket, key)` -> bytes. Presigned URLs are
/// `fake://{bucket}/{key}?expires={seconds}`.
#[derive(Default)]
pub struct FakeObjects {
    objects: Mutex<HashMap<(String, String), Vec<u8>>>,
    content_types: Mutex<HashMap<(String, String), String>>,
}

impl FakeObjects {
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        lock(&self.objects).insert((bucket.into(), key.into()), bytes.to_vec());
    }
    /// The content type an object was written with through the port.
    pub fn content_type(&self, bucket: &str, key: &str) -> Option<String> {
        lock(&self.content_types)
            .get(&(bucket.into(), key.into()))
            .cloned()
    }
}

#[async_trait]
impl ObjectStore for FakeObjects {
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(lock(&self.objects)
            .get(&(bucket.into(), key.into()))
            .cloned())
    }
    async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<()> {
        lock(&self.objects).insert((bucket.into(), key.into()), bytes);
        lock(&self.content_types).insert((bucket.into(), key.into()), content_type.into());
        Ok(())
    }
    async fn presigned_get(&self, bucket: &str, key: &str, expires_in: Duration) -> Result<String> {
        Ok(format!(
            "fake://{bucket}/{key}?expires={}",
            expires_in.as_secs()
        ))
    }
}

#[derive(Default)]
struct WarehouseState {
    submitted: Vec<QueryJob>,
    statuses: HashMap<String, JobStatus>,
    /// What a new job looks like at once: `DONE` unless set.
    next: Option<JobStatus>,
    cancelled: Vec<String>,
    datasets: Vec<String>,
    tables: HashMap<(String, String), Vec<Vec<Value>>>,
    results: HashMap<String, Vec<Vec<Value>>>,
}

/// The warehouse: jobs end at once (`DONE`) unless a test says otherwise.
#[derive(Default)]
pub struct FakeWarehouse {
    state: Mutex<WarehouseState>,
}

/// A job's status as BigQuery would answer it.
pub fn job_status(job_id: &str, state: &str, error_reason: Option<&str>) -> JobStatus {
    JobStatus {
        job_id: job_id.into(),
        state: state.into(),
        error_reason: error_reason.map(String::from),
        error_message: error_reason.map(|r| format!("job failed: {r}")),
        total_bytes_billed: Some(1024),
        started_at: None,
        ended_at: None,
    }
}

impl FakeWarehouse {
    /// Every job submitted, duplicates excluded, in order.
    pub fn submitted(&self) -> Vec<QueryJob> {
        lock(&self.state).submitted.clone()
    }
    pub fn submitted_ids(&self) -> Vec<String> {
        self.submitted().into_iter().map(|j| j.job_id).collect()
    }
    /// Sets what BigQuery says about `job_id` from now on.
    pub fn set_status(&self, job_id: &str, state: &str, error_reason: Option<&str>) {
        lock(&self.state)
            .statuses
            .insert(job_id.into(), job_status(job_id, state, error_reason));
    }
    /// New jobs start in `state` (`RUNNING` to keep them running).
    pub fn new_jobs_are(&self, state: &str) {
        lock(&self.state).next = Some(job_status("", state, None));
    }
    pub fn cancelled(&self) -> Vec<String> {
        lock(&self.state).cancelled.clone()
    }
    pub fn datasets(&self) -> Vec<String> {
        lock(&self.state).datasets.clone()
    }
    /// The result rows of a query job.
    pub fn put_results(&self, job_id: &str, rows: Vec<Vec<Value>>) {
        lock(&self.state).results.insert(job_id.into(), rows);
    }
    pub fn put_table(&self, dataset: &str, table: &str, rows: Vec<Vec<Value>>) {
        lock(&self.state)
            .tables
            .insert((dataset.into(), table.into()), rows);
    }
}

#[async_trait]
impl Warehouse for FakeWarehouse {
    async fn submit(&self, job: &QueryJob) -> Result<(JobStatus, bool)> {
        let mut s = lock(&self.state);
        if let Some(status) = s.statuses.get(&job.job_id) {
            return Ok((status.clone(), true));
        }
        let status = JobStatus {
            job_id: job.job_id.clone(),
            ..s.next
                .clone()
                .unwrap_or_else(|| job_status("", "DONE", None))
        };
        s.statuses.insert(job.job_id.clone(), status.clone());
        s.submitted.push(job.clone());
        Ok((status, false))
    }
    async fn status(&self, job_id: &str) -> Result<JobStatus> {
        lock(&self.state)
            .statuses
            .get(job_id)
            .cloned()
            .ok_or_else(|| InfraError::NotFound(format!("BigQuery job {job_id} does not exist")))
    }
    async fn wait(&self, job_id: &str, _timeout: Duration) -> Result<JobStatus> {
        self.status(job_id).await
    }
    async fn cancel(&self, job_id: &str) -> Result<()> {
        let mut s = lock(&self.state);
        s.cancelled.push(job_id.into());
        s.statuses
            .insert(job_id.into(), job_status(job_id, "DONE", Some("stopped")));
        Ok(())
    }
    async fn rows(&self, job_id: &str, max_rows: usize) -> Result<Vec<Vec<Value>>> {
        let s = lock(&self.state);
        let rows = s.results.get(job_id).cloned().unwrap_or_default();
        Ok(rows.into_iter().take(max_rows).collect())
    }
    async fn table_rows(
        &self,
        dataset: &str,
        table: &str,
        max_rows: usize,
    ) -> Result<Vec<Vec<Value>>> {
        let s = lock(&self.state);
        match s.tables.get(&(dataset.into(), table.into())) {
            Some(rows) => Ok(rows.iter().take(max_rows).cloned().collect()),
            None => Err(InfraError::refused(
                segments_infra::error::Service::BigQuery,
                "notFound",
                format!("Not found: Table {dataset}.{table}"),
            )),
        }
    }
    async fn ensure_dataset(&self, dataset: &str) -> Result<()> {
        let mut s = lock(&self.state);
        if !s.datasets.iter().any(|d| d == dataset) {
            s.datasets.push(dataset.into());
        }
        Ok(())
    }
    async fn dry_run(&self, _sql: &str) -> Result<i64> {
        Err(InfraError::Unsupported(
            "the fake warehouse estimates nothing".into(),
        ))
    }
}

/// One notification sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Notification {
    pub channel: String,
    pub event: String,
    pub data: Value,
}

/// The notifier: every event triggered, in order.
#[derive(Default)]
pub struct FakeNotifier {
    sent: Mutex<Vec<Notification>>,
}

impl FakeNotifier {
    pub fn sent(&self) -> Vec<Notification> {
        lock(&self.sent).clone()
    }
}

#[async_trait]
impl Notifier for FakeNotifier {
    async fn trigger(&self, channel: &str, event: &str, data: &Value) -> Result<()> {
        lock(&self.sent).push(Notification {
            channel: channel.into(),
            event: event.into(),
            data: data.clone(),
        });
        Ok(())
    }
}

/// Queue URLs and bucket of the fake configuration.
pub const CHECK_QUEUE: &str = "fake://check";
pub const CRON_QUEUE: &str = "fake://cron";
pub const SCHEDULE_REPORT_QUEUE: &str = "fake://schedule-report";
pub const DEAD_LETTER_QUEUE: &str = "fake://dead-letter";
pub const STATIC_BUCKET: &str = "static";
pub const PROJECT: &str = "fake-project";

/// Every fake, shared with the [`App`] they serve.
#[derive(Clone, Default)]
pub struct Fakes {
    pub store: Arc<FakeStore>,
    pub cache: Arc<FakeCache>,
    pub queue: Arc<FakeQueue>,
    pub objects: Arc<FakeObjects>,
    pub warehouse: Arc<FakeWarehouse>,
    pub notifier: Arc<FakeNotifier>,
}

impl Fakes {
    /// The configuration the fakes' app runs with (every optional queue set).
    pub fn config() -> Config {
        let vars: HashMap<String, String> = [
            ("DATABASE_URL", "postgres://fake/db"),
            ("REDIS_URL", "redis://fake"),
            ("CHECK_JOB_QUEUE_URL", CHECK_QUEUE),
            ("CRONJOB_QUEUE_URL", CRON_QUEUE),
            ("SCHEDULE_REPORT_QUEUE_URL", SCHEDULE_REPORT_QUEUE),
            ("DEAD_LETTER_QUEUE_URL", DEAD_LETTER_QUEUE),
            ("STATIC_BUCKET", STATIC_BUCKET),
            ("PUSHER_APP_ID", "1"),
            ("PUSHER_KEY", "key"),
            ("PUSHER_SECRET", "secret"),
            ("BIGQUERY_PROJECT", PROJECT),
            ("BIGQUERY_BASE_URL", "http://fake"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        Config::from_map(&vars).unwrap_or_else(|e| unreachable!("the fake configuration: {e}"))
    }

    /// An app over these fakes.
    pub fn app(&self) -> App {
        let ports = Ports {
            store: self.store.clone(),
            history: self.store.clone(),
            cache: self.cache.clone(),
            queue: self.queue.clone(),
            objects: self.objects.clone(),
            warehouse: self.warehouse.clone(),
            notifier: self.notifier.clone(),
        };
        App::new(&Fakes::config(), ports, Catalog::default_catalog())
    }

    /// An app over these fakes whose calls fail when `faults` says so
    /// (operations named as in [`segments_infra::faults`]).
    pub fn app_with_faults(&self, faults: &Faults) -> App {
        let ports = Ports {
            store: Arc::new(Faulty::new(Shared(self.store.clone()), faults)),
            history: Arc::new(Faulty::new(Shared(self.store.clone()), faults)),
            cache: Arc::new(Faulty::new(Shared(self.cache.clone()), faults)),
            queue: Arc::new(Faulty::new(Shared(self.queue.clone()), faults)),
            objects: Arc::new(Faulty::new(Shared(self.objects.clone()), faults)),
            warehouse: Arc::new(Faulty::new(Shared(self.warehouse.clone()), faults)),
            notifier: Arc::new(Faulty::new(Shared(self.notifier.clone()), faults)),
        };
        App::new(&Fakes::config(), ports, Catalog::default_catalog())
    }
}

/// A shared fake, so the test keeps reading what the wrapped one recorded.
pub struct Shared<T>(pub Arc<T>);

#[async_trait]
impl<T: HistoryStore> HistoryStore for Shared<T> {
    async fn save_with_revision(
        &self,
        seg: &SegmentWrite,
        action: RevisionAction,
        reverted_to: Option<i64>,
        request_id: &str,
    ) -> Result<i64> {
        self.0
            .save_with_revision(seg, action, reverted_to, request_id)
            .await
    }
    async fn revisions(&self, a: &str, s: &str) -> Result<Vec<RevisionRow>> {
        self.0.revisions(a, s).await
    }
    async fn revision(&self, a: &str, s: &str, r: i64) -> Result<Option<RevisionRow>> {
        self.0.revision(a, s, r).await
    }
    async fn latest_revisions(&self, a: &str) -> Result<HashMap<String, i64>> {
        self.0.latest_revisions(a).await
    }
    async fn set_job_revision(&self, j: &str, r: i64) -> Result<()> {
        self.0.set_job_revision(j, r).await
    }
    async fn outbox_claim(&self, run: &str, a: &str, s: &str, parts: i64) -> Result<i64> {
        self.0.outbox_claim(run, a, s, parts).await
    }
    async fn outbox_sent(&self, run: &str, sent: i64) -> Result<()> {
        self.0.outbox_sent(run, sent).await
    }
    async fn runs(&self, a: &str, s: &str, limit: i64) -> Result<Vec<RunRecord>> {
        self.0.runs(a, s, limit).await
    }
}

#[async_trait]
impl<T: SegmentStore> SegmentStore for Shared<T> {
    async fn account_time_zone(&self, a: &str) -> Result<Option<String>> {
        self.0.account_time_zone(a).await
    }
    async fn segment(&self, a: &str, s: &str) -> Result<Option<SegmentRow>> {
        self.0.segment(a, s).await
    }
    async fn save_segment(&self, seg: &SegmentWrite) -> Result<()> {
        self.0.save_segment(seg).await
    }
    async fn delete_segment(&self, a: &str, s: &str) -> Result<bool> {
        self.0.delete_segment(a, s).await
    }
    async fn custom_segments(&self, a: &str) -> Result<Vec<SegmentRow>> {
        self.0.custom_segments(a).await
    }
    async fn ensure_all_data(&self, a: &str) -> Result<String> {
        self.0.ensure_all_data(a).await
    }
    async fn eligible_for_refresh(&self, a: &str, t: i64) -> Result<Vec<SegmentRow>> {
        self.0.eligible_for_refresh(a, t).await
    }
    async fn accounts_to_refresh(&self, t: i64) -> Result<Vec<(String, String)>> {
        self.0.accounts_to_refresh(t).await
    }
    async fn start_job(&self, job: &JobRecord) -> Result<()> {
        self.0.start_job(job).await
    }
    async fn finish_job(
        &self,
        job_id: &str,
        status: QueryStatus,
        bytes_billed: Option<i64>,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<JobTransition> {
        self.0
            .finish_job(job_id, status, bytes_billed, error, at)
            .await
    }
    async fn job(&self, job_id: &str) -> Result<Option<JobRecord>> {
        self.0.job(job_id).await
    }
    async fn running_builds(&self, a: &str, s: &str) -> Result<Vec<String>> {
        self.0.running_builds(a, s).await
    }
    async fn segments(&self, a: &str) -> Result<Vec<SegmentRow>> {
        self.0.segments(a).await
    }
    async fn set_status(&self, a: &str, s: &str, enabled: bool) -> Result<bool> {
        self.0.set_status(a, s, enabled).await
    }
    async fn name_in_use(&self, a: &str, name: &str, except_id: &str) -> Result<bool> {
        self.0.name_in_use(a, name, except_id).await
    }
    async fn segment_reports(&self, a: &str, u: &str, r: &str) -> Result<Vec<SegmentReportRow>> {
        self.0.segment_reports(a, u, r).await
    }
    async fn link_report(&self, link: &SegmentReportRow) -> Result<String> {
        self.0.link_report(link).await
    }
    async fn unlink_report(&self, a: &str, u: &str, r: &str, s: &str) -> Result<u64> {
        self.0.unlink_report(a, u, r, s).await
    }
    async fn apply_chart(&self, a: &str, u: &str, r: &str, ids: &[String]) -> Result<u64> {
        self.0.apply_chart(a, u, r, ids).await
    }
}

#[async_trait]
impl<T: Cache> Cache for Shared<T> {
    async fn put(&self, k: &str, v: &str, ttl: Duration) -> Result<()> {
        self.0.put(k, v, ttl).await
    }
    async fn get(&self, k: &str) -> Result<Option<String>> {
        self.0.get(k).await
    }
    async fn delete(&self, k: &str) -> Result<()> {
        self.0.delete(k).await
    }
    async fn delete_prefix(&self, p: &str) -> Result<u64> {
        self.0.delete_prefix(p).await
    }
}

#[async_trait]
impl<T: Queue> Queue for Shared<T> {
    async fn send_with_attributes(
        &self,
        url: &str,
        body: &str,
        delay: u32,
        attributes: &[(&str, &str)],
    ) -> Result<()> {
        self.0
            .send_with_attributes(url, body, delay, attributes)
            .await
    }
    async fn send_batch(&self, url: &str, bodies: &[String]) -> Result<()> {
        self.0.send_batch(url, bodies).await
    }
}

#[async_trait]
impl<T: ObjectStore> ObjectStore for Shared<T> {
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        self.0.get(bucket, key).await
    }
    async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<()> {
        self.0.put(bucket, key, bytes, content_type).await
    }
    async fn presigned_get(&self, bucket: &str, key: &str, expires_in: Duration) -> Result<String> {
        self.0.presigned_get(bucket, key, expires_in).await
    }
}

#[async_trait]
impl<T: Warehouse> Warehouse for Shared<T> {
    async fn submit(&self, job: &QueryJob) -> Result<(JobStatus, bool)> {
        self.0.submit(job).await
    }
    async fn status(&self, id: &str) -> Result<JobStatus> {
        self.0.status(id).await
    }
    async fn wait(&self, id: &str, t: Duration) -> Result<JobStatus> {
        self.0.wait(id, t).await
    }
    async fn cancel(&self, id: &str) -> Result<()> {
        self.0.cancel(id).await
    }
    async fn rows(&self, id: &str, n: usize) -> Result<Vec<Vec<Value>>> {
        self.0.rows(id, n).await
    }
    async fn table_rows(&self, d: &str, t: &str, n: usize) -> Result<Vec<Vec<Value>>> {
        self.0.table_rows(d, t, n).await
    }
    async fn ensure_dataset(&self, d: &str) -> Result<()> {
        self.0.ensure_dataset(d).await
    }
    async fn dry_run(&self, sql: &str) -> Result<i64> {
        self.0.dry_run(sql).await
    }
}

#[async_trait]
impl<T: Notifier> Notifier for Shared<T> {
    async fn trigger(&self, c: &str, e: &str, d: &Value) -> Result<()> {
        self.0.trigger(c, e, d).await
    }
}
