//! Decisions about BigQuery jobs: deterministic job ids, mapping BigQuery states
//! to `queryStatus`, statuses that only move forward, and when to check again.

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::fmt;

/// `"Segments"."queryStatus"` values (SPEC §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum QueryStatus {
    InProgress,
    Done,
    Failed,
    Canceled,
}

impl QueryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            QueryStatus::InProgress => "in-progress",
            QueryStatus::Done => "done",
            QueryStatus::Failed => "failed",
            QueryStatus::Canceled => "canceled",
        }
    }

    pub fn from_wire(s: &str) -> Option<QueryStatus> {
        Some(match s {
            "in-progress" => QueryStatus::InProgress,
            "done" => QueryStatus::Done,
            "failed" => QueryStatus::Failed,
            "canceled" => QueryStatus::Canceled,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        self != QueryStatus::InProgress
    }

    /// Within one job, status only moves forward: in-progress -> a final
    /// status, and a final status never changes (a late or duplicate check
    /// cannot undo it). A new build is a new job and starts at in-progress.
    pub fn may_become(self, next: QueryStatus) -> bool {
        !self.is_final() || self == next
    }
}

impl fmt::Display for QueryStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Maps a BigQuery job state (`status.state`) and its `errorResult.reason`.
/// `None` for a state BigQuery does not document.
pub fn status_of(state: &str, error_reason: Option<&str>) -> Option<QueryStatus> {
    match state {
        "PENDING" | "RUNNING" => Some(QueryStatus::InProgress),
        "DONE" => Some(match error_reason {
            None => QueryStatus::Done,
            // A job we (or anyone) cancelled ends DONE with reason "stopped".
            Some("stopped") => QueryStatus::Canceled,
            Some(_) => QueryStatus::Failed,
        }),
        _ => None,
    }
}

/// A BigQuery job id that is the same for the same inputs, so a redelivered
/// message submits nothing twice (BigQuery answers 409 for a known id).
/// `kind` names what the job does; `parts` pin one request (for example the
/// segment id and the SQS message id, or the segment id and the run's slot).
pub fn job_id(kind: &str, parts: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    for p in parts {
        // Length-prefixed so ("ab", "c") and ("a", "bc") differ.
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let kind: String = kind
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    format!("segments_{kind}_{hex}")
}

/// When to look at a running job again.
///
/// The primary source polled every 15 s, so a job was noticed up to 15 s after
/// it ended. Here each check waits for the job inside the invocation (BigQuery's
/// `getQueryResults` with `timeoutMs` returns as soon as the job ends) for
/// `window` seconds, then re-queues itself `gap` seconds later. The first check
/// comes `first_delay` seconds after submission. With the defaults (2, 13, 2)
/// check i covers [2 + 15i, 15 + 15i]: a job of any length needs no more
/// invocations than 15 s polling, and is noticed at most `gap` seconds late.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckSchedule {
    pub first_delay: u32,
    pub window: u32,
    pub gap: u32,
    /// Seconds after `startedAt` when a still-running job is cancelled.
    pub deadline: u32,
}

impl Default for CheckSchedule {
    fn default() -> Self {
        CheckSchedule {
            first_delay: 2,
            window: 13,
            gap: 2,
            deadline: 300,
        }
    }
}

/// What a check does after seeing the job still running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterRunning {
    /// Send the check message again with this SQS delay (seconds, at most 900).
    Requeue { delay: u32 },
    /// Past the deadline: cancel the job and record `canceled`.
    Cancel,
}

impl CheckSchedule {
    fn elapsed(started_at: DateTime<Utc>, now: DateTime<Utc>) -> i64 {
        (now - started_at).num_seconds().max(0)
    }

    /// How long this check may wait for the job to end.
    pub fn wait_now(&self, started_at: DateTime<Utc>, now: DateTime<Utc>) -> u32 {
        let left = i64::from(self.deadline) - Self::elapsed(started_at, now);
        left.clamp(0, i64::from(self.window)) as u32
    }

    pub fn after_running(&self, started_at: DateTime<Utc>, now: DateTime<Utc>) -> AfterRunning {
        let elapsed = Self::elapsed(started_at, now);
        let left = i64::from(self.deadline) - elapsed;
        if left <= 0 {
            AfterRunning::Cancel
        } else {
            AfterRunning::Requeue {
                delay: (self.gap as i64).min(left).clamp(0, 900) as u32,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn states_map_to_query_status() {
        assert_eq!(status_of("PENDING", None), Some(QueryStatus::InProgress));
        assert_eq!(status_of("RUNNING", None), Some(QueryStatus::InProgress));
        assert_eq!(status_of("DONE", None), Some(QueryStatus::Done));
        assert_eq!(
            status_of("DONE", Some("invalidQuery")),
            Some(QueryStatus::Failed)
        );
        assert_eq!(
            status_of("DONE", Some("stopped")),
            Some(QueryStatus::Canceled)
        );
        assert_eq!(status_of("WEIRD", None), None);
    }

    #[test]
    fn status_never_moves_backwards() {
        use QueryStatus::*;
        assert!(InProgress.may_become(Done));
        assert!(InProgress.may_become(Failed));
        assert!(Done.may_become(Done));
        assert!(!Done.may_become(InProgress));
        assert!(!Failed.may_become(Done));
        assert!(!Canceled.may_become(InProgress));
    }

    #[test]
    fn job_ids_are_deterministic_and_valid() {
        let a = job_id("create-segment", &["seg-1", "msg-1"]);
        assert_eq!(a, job_id("create-segment", &["seg-1", "msg-1"]));
        assert_ne!(a, job_id("create-segment", &["seg-1", "msg-2"]));
        assert_ne!(job_id("k", &["ab", "c"]), job_id("k", &["a", "bc"]));
        assert!(a.starts_with("segments_create_segment_"));
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        );
        assert!(a.len() < 1024);
    }

    /// Invocations and detection delay of a job of `d` seconds.
    fn simulate(s: &CheckSchedule, d: i64) -> (u32, i64) {
        let start = DateTime::<Utc>::UNIX_EPOCH;
        let mut t = i64::from(s.first_delay);
        let mut invocations = 0;
        loop {
            invocations += 1;
            let now = start + Duration::seconds(t);
            let wait = i64::from(s.wait_now(start, now));
            if d <= t + wait {
                return (invocations, (d.max(t)) - d);
            }
            match s.after_running(start, now + Duration::seconds(wait)) {
                AfterRunning::Cancel => return (invocations, -1),
                AfterRunning::Requeue { delay } => t += wait + i64::from(delay),
            }
        }
    }

    #[test]
    fn never_more_invocations_than_fixed_15s_polling_and_at_most_2s_late() {
        let s = CheckSchedule::default();
        for d in 1..=299 {
            let fixed_invocations = (d + 14) / 15;
            let (inv, late) = simulate(&s, d);
            assert!(
                i64::from(inv) <= fixed_invocations.max(1),
                "job of {d}s: {inv} > {fixed_invocations}"
            );
            assert!((0..=2).contains(&late), "job of {d}s noticed {late}s late");
        }
        assert_eq!(simulate(&s, 5), (1, 0));
        assert_eq!(simulate(&s, 60), (4, 0));
    }

    #[test]
    fn cancels_after_the_deadline() {
        let s = CheckSchedule::default();
        let start = DateTime::<Utc>::UNIX_EPOCH;
        assert_eq!(
            s.after_running(start, start + Duration::seconds(300)),
            AfterRunning::Cancel
        );
        assert_eq!(
            s.after_running(start, start + Duration::seconds(299)),
            AfterRunning::Requeue { delay: 1 }
        );
        assert_eq!(s.wait_now(start, start + Duration::seconds(295)), 5);
        assert_eq!(s.wait_now(start, start + Duration::seconds(400)), 0);
    }
}
