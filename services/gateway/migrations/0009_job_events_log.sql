-- Live progress (GET /api/v1/jobs/{id}/events): every state the read model takes after a job's
-- create, one row per applied job event, written by the job-events consumer in the same
-- transaction as the read model (so a stream resumed with Last-Event-ID misses nothing, on any
-- replica, after any restart). ``seq`` counts the job's events from 1 (the SSE id; 0 is the job as
-- accepted, never logged): the next one is taken under the read model row's lock. ``data`` is
-- the event's JSON as streamed (the public job object, and the language a
-- job.language_completed announces).
CREATE TABLE job_events (
    job_id     text        NOT NULL,
    seq        integer     NOT NULL CHECK (seq > 0),
    type       text        NOT NULL,
    data       jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, seq)
);
-- The purge chore deletes by age in batches.
CREATE INDEX job_events_created ON job_events (created_at);

-- Open streams are woken by one LISTEN per gateway process on "<schema>_job_events" (payload:
-- the job id). A terminal event's transaction already NOTIFYs for Prefer: wait (0002), so this
-- adds a notifying commit only for the events before it (job.started, job.language_completed).
CREATE FUNCTION notify_job_event() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_job_events', NEW.job_id);
    RETURN NULL;
END;
$$;

CREATE TRIGGER job_events_notify
    AFTER INSERT ON job_events
    FOR EACH ROW
    EXECUTE FUNCTION notify_job_event();

-- Queue position while a live job is queued: the live jobs of its service accepted before it
-- and still queued. Only queued live jobs are indexed (a few at a time, never sandbox jobs).
CREATE INDEX jobs_queued_live ON jobs (service, id) WHERE status = 'queued' AND NOT test;
