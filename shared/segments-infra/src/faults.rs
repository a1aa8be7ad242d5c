//! Fault injection for tests: `Faulty` wraps a real adapter and fails the calls
//! a test arms, so an outage in the middle of a flow runs against the real stack.

use crate::error::{ErrorClass, InfraError, Result, Service};
use crate::ports::{
    Cache, HistoryStore, JobRecord, JobStatus, JobTransition, Notifier, ObjectStore, QueryJob,
    Queue, RevisionAction, RevisionRow, RunRecord, SegmentReportRow, SegmentRow, SegmentStore,
    SegmentWrite, Warehouse,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use segments_core::jobs::QueryStatus;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The armed faults, shared between a test and its wrappers. Operations are
/// named `port.method`, e.g. `store.finish_job`, `notifier.trigger`.
#[derive(Clone, Default)]
pub struct Faults {
    armed: Arc<Mutex<HashMap<String, (u32, ErrorClass)>>>,
}

impl Faults {
    /// The next `times` calls of `op` fail with an outage (`u32::MAX`: until cleared).
    pub fn fail(&self, op: &str, times: u32) {
        self.fail_with(op, times, ErrorClass::Transient);
    }

    /// The next `times` calls of `op` fail with an error of `class`: an outage
    /// (transient) or a refusal (permanent, reason `injected`).
    pub fn fail_with(&self, op: &str, times: u32, class: ErrorClass) {
        self.lock().insert(op.to_string(), (times, class));
    }

    pub fn clear(&self) {
        self.lock().clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, ErrorClass)>> {
        // A test that panicked while holding the lock leaves usable data behind.
        self.armed.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Err (of the adapter's own service, so retry decisions match) when `op` is armed.
    fn check(&self, op: &str, service: Service) -> Result<()> {
        let mut armed = self.lock();
        match armed.get_mut(op) {
            Some((0, _)) | None => Ok(()),
            Some((n, class)) => {
                if *n != u32::MAX {
                    *n -= 1;
                }
                Err(InfraError::of_class(
                    *class,
                    service,
                    "injected",
                    format!("injected fault in {op}"),
                ))
            }
        }
    }
}

/// A real adapter whose calls fail on cue.
pub struct Faulty<T> {
    inner: T,
    faults: Faults,
}

impl<T> Faulty<T> {
    pub fn new(inner: T, faults: &Faults) -> Faulty<T> {
        Faulty {
            inner,
            faults: faults.clone(),
        }
    }
}

/// The history port (same database): `save_with_revision` saves the segment,
/// so it fails where `store.save_segment` is armed; the others as `history.*`.
#[async_trait]
impl<T: HistoryStore> HistoryStore for Faulty<T> {
    async fn save_with_revision(
        &self,
        seg: &SegmentWrite,
        action: RevisionAction,
        reverted_to: Option<i64>,
        request_id: &str,
    ) -> Result<i64> {
        self.faults.check("store.save_segment", Service::Postgres)?;
        self.inner
            .save_with_revision(seg, action, reverted_to, request_id)
            .await
    }
    async fn revisions(&self, a: &str, s: &str) -> Result<Vec<RevisionRow>> {
        self.faults.check("history.revisions", Service::Postgres)?;
        self.inner.revisions(a, s).await
    }
    async fn revision(&self, a: &str, s: &str, r: i64) -> Result<Option<RevisionRow>> {
        self.faults.check("history.revision", Service::Postgres)?;
        self.inner.revision(a, s, r).await
    }
    async fn latest_revisions(&self, a: &str) -> Result<HashMap<String, i64>> {
        self.faults
            .check("history.latest_revisions", Service::Postgres)?;
        self.inner.latest_revisions(a).await
    }
    async fn set_job_revision(&self, j: &str, r: i64) -> Result<()> {
        self.faults
            .check("history.set_job_revision", Service::Postgres)?;
        self.inner.set_job_revision(j, r).await
    }
    async fn outbox_claim(&self, run: &str, a: &str, s: &str, parts: i64) -> Result<i64> {
        self.faults
            .check("history.outbox_claim", Service::Postgres)?;
        self.inner.outbox_claim(run, a, s, parts).await
    }
    async fn outbox_sent(&self, run: &str, sent: i64) -> Result<()> {
        self.faults
            .check("history.outbox_sent", Service::Postgres)?;
        self.inner.outbox_sent(run, sent).await
    }
    async fn runs(&self, a: &str, s: &str, limit: i64) -> Result<Vec<RunRecord>> {
        self.faults.check("history.runs", Service::Postgres)?;
        self.inner.runs(a, s, limit).await
    }
}

#[async_trait]
impl<T: SegmentStore> SegmentStore for Faulty<T> {
    async fn account_time_zone(&self, account_id: &str) -> Result<Option<String>> {
        self.faults
            .check("store.account_time_zone", Service::Postgres)?;
        self.inner.account_time_zone(account_id).await
    }
    async fn segment(&self, account_id: &str, segment_id: &str) -> Result<Option<SegmentRow>> {
        self.faults.check("store.segment", Service::Postgres)?;
        self.inner.segment(account_id, segment_id).await
    }
    async fn save_segment(&self, seg: &SegmentWrite) -> Result<()> {
        self.faults.check("store.save_segment", Service::Postgres)?;
        self.inner.save_segment(seg).await
    }
    async fn delete_segment(&self, account_id: &str, segment_id: &str) -> Result<bool> {
        self.faults
            .check("store.delete_segment", Service::Postgres)?;
        self.inner.delete_segment(account_id, segment_id).await
    }
    async fn custom_segments(&self, account_id: &str) -> Result<Vec<SegmentRow>> {
        self.faults
            .check("store.custom_segments", Service::Postgres)?;
        self.inner.custom_segments(account_id).await
    }
    async fn ensure_all_data(&self, account_id: &str) -> Result<String> {
        self.faults
            .check("store.ensure_all_data", Service::Postgres)?;
        self.inner.ensure_all_data(account_id).await
    }
    async fn eligible_for_refresh(
        &self,
        account_id: &str,
        threshold: i64,
    ) -> Result<Vec<SegmentRow>> {
        self.faults
            .check("store.eligible_for_refresh", Service::Postgres)?;
        self.inner.eligible_for_refresh(account_id, threshold).await
    }
    async fn accounts_to_refresh(&self, threshold: i64) -> Result<Vec<(String, String)>> {
        self.faults
            .check("store.accounts_to_refresh", Service::Postgres)?;
        self.inner.accounts_to_refresh(threshold).await
    }
    async fn start_job(&self, job: &JobRecord) -> Result<()> {
        self.faults.check("store.start_job", Service::Postgres)?;
        self.inner.start_job(job).await
    }
    async fn finish_job(
        &self,
        job_id: &str,
        status: QueryStatus,
        bytes_billed: Option<i64>,
        error: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<JobTransition> {
        self.faults.check("store.finish_job", Service::Postgres)?;
        self.inner
            .finish_job(job_id, status, bytes_billed, error, at)
            .await
    }
    async fn job(&self, job_id: &str) -> Result<Option<JobRecord>> {
        self.faults.check("store.job", Service::Postgres)?;
        self.inner.job(job_id).await
    }
    async fn running_builds(&self, account_id: &str, segment_id: &str) -> Result<Vec<String>> {
        self.faults
            .check("store.running_builds", Service::Postgres)?;
        self.inner.running_builds(account_id, segment_id).await
    }
    async fn segments(&self, account_id: &str) -> Result<Vec<SegmentRow>> {
        self.faults.check("store.segments", Service::Postgres)?;
        self.inner.segments(account_id).await
    }
    async fn set_status(&self, account_id: &str, segment_id: &str, enabled: bool) -> Result<bool> {
        self.faults.check("store.set_status", Service::Postgres)?;
        self.inner.set_status(account_id, segment_id, enabled).await
    }
    async fn name_in_use(&self, account_id: &str, name: &str, except_id: &str) -> Result<bool> {
        self.faults.check("store.name_in_use", Service::Postgres)?;
        self.inner.name_in_use(account_id, name, except_id).await
    }
    async fn segment_reports(
        &self,
        account_id: &str,
        user_id: &str,
        report_name: &str,
    ) -> Result<Vec<SegmentReportRow>> {
        self.faults
            .check("store.segment_reports", Service::Postgres)?;
        self.inner
            .segment_reports(account_id, user_id, report_name)
            .await
    }
    async fn link_report(&self, link: &SegmentReportRow) -> Result<String> {
        self.faults.check("store.link_report", Service::Postgres)?;
        self.inner.link_report(link).await
    }
    async fn unlink_report(
        &self,
        account_id: &str,
        user_id: &str,
        report_name: &str,
        segment_id: &str,
    ) -> Result<u64> {
        self.faults
            .check("store.unlink_report", Service::Postgres)?;
        self.inner
            .unlink_report(account_id, user_id, report_name, segment_id)
            .await
    }
    async fn apply_chart(
        &self,
        account_id: &str,
        user_id: &str,
        report_name: &str,
        segment_ids: &[String],
    ) -> Result<u64> {
        self.faults.check("store.apply_chart", Service::Postgres)?;
        self.inner
            .apply_chart(account_id, user_id, report_name, segment_ids)
            .await
    }
}

#[async_trait]
impl<T: Cache> Cache for Faulty<T> {
    async fn put(&self, key: &str, value: &str, ttl: Duration) -> Result<()> {
        self.faults.check("cache.put", Service::Redis)?;
        self.inner.put(key, value, ttl).await
    }
    async fn get(&self, key: &str) -> Result<Option<String>> {
        self.faults.check("cache.get", Service::Redis)?;
        self.inner.get(key).await
    }
    async fn delete(&self, key: &str) -> Result<()> {
        self.faults.check("cache.delete", Service::Redis)?;
        self.inner.delete(key).await
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<u64> {
        self.faults.check("cache.delete_prefix", Service::Redis)?;
        self.inner.delete_prefix(prefix).await
    }
}

#[async_trait]
impl<T: Queue> Queue for Faulty<T> {
    async fn send_with_attributes(
        &self,
        queue_url: &str,
        body: &str,
        delay_seconds: u32,
        attributes: &[(&str, &str)],
    ) -> Result<()> {
        self.faults.check("queue.send", Service::Sqs)?;
        self.inner
            .send_with_attributes(queue_url, body, delay_seconds, attributes)
            .await
    }
    async fn send_fifo(
        &self,
        queue_url: &str,
        body: &str,
        group_id: &str,
        dedup_id: &str,
    ) -> Result<()> {
        self.faults.check("queue.send_fifo", Service::Sqs)?;
        self.inner
            .send_fifo(queue_url, body, group_id, dedup_id)
            .await
    }
    async fn send_batch(&self, queue_url: &str, bodies: &[String]) -> Result<()> {
        self.faults.check("queue.send_batch", Service::Sqs)?;
        self.inner.send_batch(queue_url, bodies).await
    }
}

#[async_trait]
impl<T: ObjectStore> ObjectStore for Faulty<T> {
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>> {
        self.faults.check("objects.get", Service::S3)?;
        self.inner.get(bucket, key).await
    }
    async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>, content_type: &str) -> Result<()> {
        self.faults.check("objects.put", Service::S3)?;
        self.inner.put(bucket, key, bytes, content_type).await
    }
    async fn presigned_get(&self, bucket: &str, key: &str, expires_in: Duration) -> Result<String> {
        self.faults.check("objects.presigned_get", Service::S3)?;
        self.inner.presigned_get(bucket, key, expires_in).await
    }
}

#[async_trait]
impl<T: Warehouse> Warehouse for Faulty<T> {
    async fn submit(&self, job: &QueryJob) -> Result<(JobStatus, bool)> {
        self.faults.check("warehouse.submit", Service::BigQuery)?;
        self.inner.submit(job).await
    }
    async fn status(&self, job_id: &str) -> Result<JobStatus> {
        self.faults.check("warehouse.status", Service::BigQuery)?;
        self.inner.status(job_id).await
    }
    async fn wait(&self, job_id: &str, timeout: Duration) -> Result<JobStatus> {
        self.faults.check("warehouse.wait", Service::BigQuery)?;
        self.inner.wait(job_id, timeout).await
    }
    async fn cancel(&self, job_id: &str) -> Result<()> {
        self.faults.check("warehouse.cancel", Service::BigQuery)?;
        self.inner.cancel(job_id).await
    }
    async fn rows(&self, job_id: &str, max_rows: usize) -> Result<Vec<Vec<Value>>> {
        self.faults.check("warehouse.rows", Service::BigQuery)?;
        self.inner.rows(job_id, max_rows).await
    }
    async fn table_rows(
        &self,
        dataset: &str,
        table: &str,
        max_rows: usize,
    ) -> Result<Vec<Vec<Value>>> {
        self.faults
            .check("warehouse.table_rows", Service::BigQuery)?;
        self.inner.table_rows(dataset, table, max_rows).await
    }
    async fn ensure_dataset(&self, dataset: &str) -> Result<()> {
        self.faults
            .check("warehouse.ensure_dataset", Service::BigQuery)?;
        self.inner.ensure_dataset(dataset).await
    }
    async fn dry_run(&self, sql: &str) -> Result<i64> {
        self.faults.check("warehouse.dry_run", Service::BigQuery)?;
        self.inner.dry_run(sql).await
    }
}

#[async_trait]
impl<T: Notifier> Notifier for Faulty<T> {
    async fn trigger(&self, channel: &str, event: &str, data: &Value) -> Result<()> {
        self.faults.check("notifier.trigger", Service::Pusher)?;
        self.inner.trigger(channel, event, data).await
    }
}
