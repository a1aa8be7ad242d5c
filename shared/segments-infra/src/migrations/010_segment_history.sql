-- SPEC §11: every create, update and revert of a segment's rules adds a
-- revision. "requestId" (ours) is the delivery that wrote it, so a redelivered
-- message adds no second revision. Ours, applied at cold start: no foreign
-- keys to the web app's tables (they may not exist yet, and referencing them
-- needs their owner's rights), like segment_jobs.
CREATE TABLE IF NOT EXISTS "SegmentRevisions" (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    "segmentId" UUID NOT NULL,
    "accountId" UUID NOT NULL,
    revision INT NOT NULL CHECK (revision >= 1),
    name VARCHAR(200) NOT NULL,
    description TEXT,
    "ruleGroups" TEXT NOT NULL,
    action VARCHAR(20) NOT NULL CHECK (action IN ('create', 'update', 'revert')),
    "revertedTo" INT,
    "requestId" TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE ("segmentId", revision),
    UNIQUE ("segmentId", "requestId")
);
CREATE INDEX IF NOT EXISTS "SegmentRevisions_account" ON "SegmentRevisions" ("accountId", "segmentId");
-- Which revision of the rules a run (build or refresh) ran.
ALTER TABLE segment_jobs ADD COLUMN IF NOT EXISTS revision INT;
