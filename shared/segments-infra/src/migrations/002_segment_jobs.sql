-- Our own table: every BigQuery job the functions submit. A segment's latest
-- build job decides its status, so a late check of an older job changes nothing.
CREATE TABLE IF NOT EXISTS segment_jobs (
    job_id TEXT PRIMARY KEY,
    account_id UUID NOT NULL,
    segment_id UUID,
    action TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'in-progress'
        CHECK (status IN ('in-progress', 'done', 'failed', 'canceled')),
    bytes_billed BIGINT,
    error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    finished_at TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS segment_jobs_segment ON segment_jobs (segment_id, created_at DESC);
CREATE INDEX IF NOT EXISTS segment_jobs_account ON segment_jobs (account_id, created_at DESC);
