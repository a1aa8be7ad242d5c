-- One row per run whose membership changes are published: how many parts the
-- changes split into and how many have been sent, so a check delivered again
-- (or a function that died between parts) sends only the parts not yet sent.
CREATE TABLE IF NOT EXISTS segment_delta_outbox (
    run_id TEXT PRIMARY KEY,
    account_id UUID NOT NULL,
    segment_id UUID NOT NULL,
    parts INT NOT NULL CHECK (parts >= 0),
    parts_sent INT NOT NULL DEFAULT 0 CHECK (parts_sent >= 0 AND parts_sent <= parts),
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    finished_at TIMESTAMPTZ
);
