-- GET /api/v1/jobs filters by service and status within an account and mode, newest first.
CREATE INDEX jobs_account_service_list ON jobs (account_id, test, service, id DESC);

-- Every gateway replica LISTENs on "<schema>_jobs" to wake `Prefer: wait` requests the moment
-- a job's read model reaches a final status (the job-events consumer may run on any replica).
-- Only updates notify: a job inserted already settled (most sandbox jobs) has nobody waiting.
CREATE FUNCTION notify_job_settled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify(TG_TABLE_SCHEMA || '_jobs', NEW.id);
    RETURN NULL;
END;
$$;

CREATE TRIGGER jobs_settled_notify
    AFTER UPDATE OF status ON jobs
    FOR EACH ROW
    WHEN (NEW.status IN ('completed', 'failed', 'canceled'))
    EXECUTE FUNCTION notify_job_settled();
