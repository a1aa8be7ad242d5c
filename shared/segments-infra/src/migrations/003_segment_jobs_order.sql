-- Which build is a segment's latest is the order our start_job calls recorded
-- them in, not the callers' clocks (two Lambdas' clocks may disagree).
ALTER TABLE segment_jobs ADD COLUMN IF NOT EXISTS started_seq BIGINT GENERATED ALWAYS AS IDENTITY;
CREATE INDEX IF NOT EXISTS segment_jobs_segment_seq ON segment_jobs (segment_id, started_seq DESC);
