//! [`HistoryStore`] on Postgres: rule revisions written in the same transaction
//! as the segment, and the runs `segment_jobs` records. Scoped by account like
//! every other query of the store.

use super::{PgStore, is_uuid, pg};
use crate::error::{InfraError, Result};
use crate::ports::{HistoryStore, RevisionAction, RevisionRow, RunRecord, SegmentWrite};
use async_trait::async_trait;
use std::collections::HashMap;
use tokio_postgres::Row;

const REVISION_COLUMNS: &str = r#""segmentId"::text, "accountId"::text, revision::bigint, name, description,
    "ruleGroups", action, "revertedTo"::bigint, created_at"#;

fn revision_row(r: &Row) -> RevisionRow {
    RevisionRow {
        segment_id: r.get(0),
        account_id: r.get(1),
        revision: r.get(2),
        name: r.get(3),
        description: r.get(4),
        rule_groups: r.get(5),
        action: r.get(6),
        reverted_to: r.get(7),
        created_at: r.get(8),
    }
}

#[async_trait]
impl HistoryStore for PgStore {
    async fn save_with_revision(
        &self,
        seg: &SegmentWrite,
        action: RevisionAction,
        reverted_to: Option<i64>,
        request_id: &str,
    ) -> Result<i64> {
        if !is_uuid(&seg.account_id) || !is_uuid(&seg.id) {
            return Err(InfraError::NotFound(format!(
                "segment {} of account {}: ids must be UUIDs",
                seg.id, seg.account_id
            )));
        }
        let mut c = self.client().await?;
        let tx = c.transaction().await.map_err(pg)?;
        // Revisions of one segment are numbered in order even when two writes race.
        tx.execute("SELECT pg_advisory_xact_lock(hashtext($1))", &[&seg.id])
            .await
            .map_err(pg)?;
        let seen = tx
            .query_opt(
                r#"SELECT revision::bigint FROM "SegmentRevisions" r
                   WHERE r."segmentId" = $1::text::uuid AND r."accountId" = $2::text::uuid AND r."requestId" = $3"#,
                &[&seg.id, &seg.account_id, &request_id],
            )
            .await
            .map_err(pg)?;
        if let Some(r) = seen {
            return Ok(r.get(0));
        }
        // The conflict update only applies within the same account (as save_segment).
        let n = tx
            .execute(
                r#"INSERT INTO "Segments" (id, "accountId", name, description, "isCustom", "ruleGroups", status, "queryStatus", query)
                   VALUES ($1::text::uuid, $2::text::uuid, $3, $4, TRUE, $5, TRUE, 'in-progress', $6)
                   ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, description = EXCLUDED.description,
                       "ruleGroups" = EXCLUDED."ruleGroups", query = EXCLUDED.query, updated_at = now()
                   WHERE "Segments"."accountId" = EXCLUDED."accountId" AND "Segments"."isCustom""#,
                &[&seg.id, &seg.account_id, &seg.name, &seg.description, &seg.rule_groups, &seg.query],
            )
            .await
            .map_err(|e| {
                if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) {
                    InfraError::NotFound(format!("account {} does not exist", seg.account_id))
                } else {
                    pg(e)
                }
            })?;
        if n != 1 {
            return Err(InfraError::NotFound(format!(
                "segment {} does not belong to account {}",
                seg.id, seg.account_id
            )));
        }
        let reverted_to = reverted_to.map(|r| r as i32);
        let row = tx
            .query_one(
                r#"INSERT INTO "SegmentRevisions" ("segmentId", "accountId", revision, name, description, "ruleGroups",
                       action, "revertedTo", "requestId")
                   SELECT $1::text::uuid, $2::text::uuid,
                          COALESCE((SELECT MAX(revision) FROM "SegmentRevisions" WHERE "segmentId" = $1::text::uuid), 0) + 1,
                          $3, $4, $5, $6, $7, $8
                   RETURNING revision::bigint"#,
                &[
                    &seg.id,
                    &seg.account_id,
                    &seg.name,
                    &seg.description,
                    &seg.rule_groups,
                    &action.as_str(),
                    &reverted_to,
                    &request_id,
                ],
            )
            .await
            .map_err(pg)?;
        tx.commit().await.map_err(pg)?;
        Ok(row.get(0))
    }

    async fn revisions(&self, account_id: &str, segment_id: &str) -> Result<Vec<RevisionRow>> {
        if !is_uuid(account_id) || !is_uuid(segment_id) {
            return Ok(vec![]);
        }
        let c = self.client().await?;
        let sql = format!(
            r#"SELECT {REVISION_COLUMNS} FROM "SegmentRevisions"
               WHERE "segmentId" = $1::text::uuid AND "accountId" = $2::text::uuid ORDER BY revision"#
        );
        let rows = c
            .query(&sql, &[&segment_id, &account_id])
            .await
            .map_err(pg)?;
        Ok(rows.iter().map(revision_row).collect())
    }

    async fn revision(
        &self,
        account_id: &str,
        segment_id: &str,
        revision: i64,
    ) -> Result<Option<RevisionRow>> {
        if !is_uuid(account_id) || !is_uuid(segment_id) {
            return Ok(None);
        }
        let c = self.client().await?;
        let sql = format!(
            r#"SELECT {REVISION_COLUMNS} FROM "SegmentRevisions"
               WHERE "segmentId" = $1::text::uuid AND "accountId" = $2::text::uuid AND revision = $3::bigint"#
        );
        let row = c
            .query_opt(&sql, &[&segment_id, &account_id, &revision])
            .await
            .map_err(pg)?;
        Ok(row.as_ref().map(revision_row))
    }

    async fn latest_revisions(&self, account_id: &str) -> Result<HashMap<String, i64>> {
        if !is_uuid(account_id) {
            return Ok(HashMap::new());
        }
        let c = self.client().await?;
        let rows = c
            .query(
                r#"SELECT "segmentId"::text, MAX(revision)::bigint FROM "SegmentRevisions"
                   WHERE "accountId" = $1::text::uuid GROUP BY "segmentId""#,
                &[&account_id],
            )
            .await
            .map_err(pg)?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn set_job_revision(&self, job_id: &str, revision: i64) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            "UPDATE segment_jobs SET revision = $2 WHERE job_id = $1",
            &[&job_id, &(revision as i32)],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn outbox_claim(
        &self,
        run_id: &str,
        account_id: &str,
        segment_id: &str,
        parts: i64,
    ) -> Result<i64> {
        let c = self.client().await?;
        c.execute(
            r#"INSERT INTO segment_delta_outbox (run_id, account_id, segment_id, parts, finished_at)
               VALUES ($1, $2::text::uuid, $3::text::uuid, $4::bigint, CASE WHEN $4::bigint = 0 THEN clock_timestamp() END)
               ON CONFLICT (run_id) DO NOTHING"#,
            &[&run_id, &account_id, &segment_id, &parts],
        )
        .await
        .map_err(pg)?;
        let row = c
            .query_one(
                "SELECT parts_sent::bigint, parts::bigint FROM segment_delta_outbox WHERE run_id = $1",
                &[&run_id],
            )
            .await
            .map_err(pg)?;
        let (sent, recorded): (i64, i64) = (row.get(0), row.get(1));
        if recorded != parts {
            // The same run always splits the same way; anything else is a bug
            // worth stopping for rather than publishing a second, different split.
            return Err(InfraError::Postgres(format!(
                "run {run_id}: {parts} parts now, {recorded} recorded"
            )));
        }
        Ok(sent)
    }

    async fn outbox_sent(&self, run_id: &str, sent: i64) -> Result<()> {
        let c = self.client().await?;
        c.execute(
            r#"UPDATE segment_delta_outbox SET parts_sent = GREATEST(parts_sent, $2::bigint::int),
                   finished_at = CASE WHEN GREATEST(parts_sent, $2::bigint::int) = parts THEN clock_timestamp() ELSE finished_at END
               WHERE run_id = $1"#,
            &[&run_id, &sent],
        )
        .await
        .map_err(pg)?;
        Ok(())
    }

    async fn runs(&self, account_id: &str, segment_id: &str, limit: i64) -> Result<Vec<RunRecord>> {
        if !is_uuid(account_id) || !is_uuid(segment_id) {
            return Ok(vec![]);
        }
        let c = self.client().await?;
        let rows = c
            .query(
                r#"SELECT job_id, action, status, revision::bigint, bytes_billed, error, created_at, finished_at
                   FROM segment_jobs
                   WHERE segment_id = $1::text::uuid AND account_id = $2::text::uuid
                     AND action IN ('create-segment', 'rebuild-segment', 'refresh-segment')
                   ORDER BY started_seq DESC LIMIT $3"#,
                &[&segment_id, &account_id, &limit],
            )
            .await
            .map_err(pg)?;
        Ok(rows
            .iter()
            .map(|r| RunRecord {
                job_id: r.get(0),
                action: r.get(1),
                status: r.get(2),
                revision: r.get(3),
                bytes_billed: r.get(4),
                error: r.get(5),
                created_at: r.get(6),
                finished_at: r.get(7),
            })
            .collect())
    }
}
