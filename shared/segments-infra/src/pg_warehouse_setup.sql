-- The Postgres warehouse's job machinery (docs/postgres-warehouse.md). Run by
-- the warehouse's owner (an administrator), never by the functions; safe to
-- run again. {{service}} is the functions' login role.
CREATE SCHEMA IF NOT EXISTS segments_ctl;

-- One row per query job: its SQL, the role it runs as, its state and timing.
CREATE TABLE IF NOT EXISTS segments_ctl.jobs (
    job_id TEXT PRIMARY KEY,
    run_as TEXT NOT NULL,
    sql TEXT NOT NULL,
    labels JSONB NOT NULL DEFAULT '{}',
    state TEXT NOT NULL DEFAULT 'PENDING' CHECK (state IN ('PENDING', 'RUNNING', 'DONE')),
    error_reason TEXT,
    error_message TEXT,
    cancel_requested BOOLEAN NOT NULL DEFAULT FALSE,
    backend_pid INT,
    backend_query_start TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    started_at TIMESTAMPTZ,
    ended_at TIMESTAMPTZ
);

-- Runs one PENDING job to its end and records the end in the same session, so
-- the state is right even when the caller (a frozen Lambda) never reads the
-- answer. The job's SQL runs as the job's role (SET LOCAL ROLE), inside one
-- subtransaction: it commits whole or not at all.
CREATE OR REPLACE PROCEDURE segments_ctl.run_job(p_job_id TEXT)
LANGUAGE plpgsql
AS $run_job$
DECLARE
    j segments_ctl.jobs%ROWTYPE;
    canceled BOOLEAN;
BEGIN
    UPDATE segments_ctl.jobs
       SET state = 'RUNNING',
           backend_pid = pg_backend_pid(),
           backend_query_start = (SELECT query_start FROM pg_stat_activity WHERE pid = pg_backend_pid()),
           started_at = clock_timestamp()
     WHERE job_id = p_job_id AND state = 'PENDING'
    RETURNING * INTO j;
    IF NOT FOUND THEN
        -- Canceled before it started, or already run: nothing to do.
        RETURN;
    END IF;
    COMMIT;
    BEGIN
        EXECUTE format('SET LOCAL ROLE %I', j.run_as);
        EXECUTE j.sql;
        RESET ROLE;
        UPDATE segments_ctl.jobs
           SET state = 'DONE', ended_at = clock_timestamp()
         WHERE job_id = p_job_id;
    EXCEPTION
        WHEN query_canceled THEN
            SELECT cancel_requested INTO canceled FROM segments_ctl.jobs WHERE job_id = p_job_id;
            UPDATE segments_ctl.jobs
               SET state = 'DONE', ended_at = clock_timestamp(),
                   error_reason = CASE WHEN canceled THEN 'stopped' ELSE 'timeout' END,
                   error_message = SQLERRM
             WHERE job_id = p_job_id;
        WHEN OTHERS THEN
            UPDATE segments_ctl.jobs
               SET state = 'DONE', ended_at = clock_timestamp(),
                   error_reason = CASE WHEN SQLSTATE LIKE '42%' THEN 'invalidQuery' ELSE 'backendError' END,
                   error_message = SQLERRM || ' (' || SQLSTATE || ')'
             WHERE job_id = p_job_id;
    END;
    COMMIT;
END
$run_job$;

GRANT USAGE ON SCHEMA segments_ctl TO {{service}};
GRANT SELECT, INSERT, UPDATE ON segments_ctl.jobs TO {{service}};
GRANT EXECUTE ON PROCEDURE segments_ctl.run_job(TEXT) TO {{service}};
