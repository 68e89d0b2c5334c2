-- Jobs whose end billing has seen. The ledger (reservations, capture, release) comes with the
-- billing issue; this table is where settlement is recorded exactly once per job.
CREATE TABLE job_settlements (
    job_id        text PRIMARY KEY,
    account_id    text        NOT NULL,
    outcome       text        NOT NULL CHECK (outcome IN ('completed', 'failed', 'canceled')),
    test          boolean     NOT NULL,
    cost_credits  integer     NOT NULL,
    settled_at    timestamptz NOT NULL DEFAULT now()
);
