-- Live jobs run from this table as a durable work queue (see docs/jobs.md): the command is
-- recorded at once, admission (per-account and per-provider limits) marks it admitted, and
-- runners claim due rows with FOR UPDATE SKIP LOCKED, taking a lease by moving next_check_at.
ALTER TABLE jobs
    ADD COLUMN provider          text,
    ADD COLUMN provider_task_id  text,
    ADD COLUMN admitted_at       timestamptz,
    ADD COLUMN next_check_at     timestamptz,
    ADD COLUMN deadline_at       timestamptz,
    ADD COLUMN attempts          integer NOT NULL DEFAULT 0,
    ADD COLUMN sandbox           jsonb,
    ADD COLUMN correlation_id    text;

-- Rows a runner may have to look at (NULL once settled, or while waiting for admission).
CREATE INDEX jobs_due ON jobs (next_check_at) WHERE next_check_at IS NOT NULL;
-- Live jobs waiting for admission, oldest first.
CREATE INDEX jobs_waiting ON jobs (created_at)
    WHERE status = 'queued' AND admitted_at IS NULL AND NOT test;
-- What counts against the limits: admitted and not settled.
CREATE INDEX jobs_admitted ON jobs (account_id, service)
    WHERE admitted_at IS NOT NULL AND status IN ('queued', 'processing');
