-- A lease is its own column, so a provider-webhook nudge cannot hand a row that a runner is
-- working on to a second runner: claims skip rows whose lease has not run out, and a nudge
-- that arrives during a lease only marks the row, which the holder makes due when it lets go.
ALTER TABLE jobs
    ADD COLUMN leased_until           timestamptz,
    ADD COLUMN nudged                 boolean NOT NULL DEFAULT false,
    -- Provider tasks lost by the provider (404 on read) and submitted again: the n-th
    -- resubmission carries the idempotency key "<job id>.<n>", so a crash repeats it safely.
    ADD COLUMN resubmissions          integer NOT NULL DEFAULT 0,
    -- A canceled job's provider task still to be canceled at the provider (the customer's
    -- cancel commits first and calls the provider outside the transaction; the runner retries).
    ADD COLUMN provider_cancel_at     timestamptz,
    ADD COLUMN provider_cancel_tries  integer NOT NULL DEFAULT 0;

CREATE INDEX jobs_provider_cancels ON jobs (provider_cancel_at)
    WHERE provider_cancel_at IS NOT NULL;
