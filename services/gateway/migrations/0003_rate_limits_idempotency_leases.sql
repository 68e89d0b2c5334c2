-- Per-key overrides of the rate limit (NULL: the deployment's default from settings).
ALTER TABLE api_keys
    ADD COLUMN rate_limit_per_second double precision CHECK (rate_limit_per_second > 0),
    ADD COLUMN rate_limit_burst      integer          CHECK (rate_limit_burst >= 1);

-- Token buckets shared by every gateway replica. UNLOGGED: a request that only touches this
-- table writes no WAL, so its commit does not wait for a disk flush (it is on the hot path).
-- A crash empties the table, which only hands every key a full bucket: acceptable for a limit.
CREATE UNLOGGED TABLE rate_buckets (
    api_key_id   text             PRIMARY KEY,
    tokens       double precision NOT NULL,
    -- Whether the last request was let through (the new token count alone cannot tell).
    granted      boolean          NOT NULL,
    rate         double precision NOT NULL,
    burst        double precision NOT NULL,
    refilled_at  timestamptz      NOT NULL
) WITH (fillfactor = 50);  -- room for HOT updates: every request rewrites its key's row

-- A forwarded POST (webhook test, job cancel, ...) claims its Idempotency-Key with a row whose
-- lock_token is set and whose expires_at is a short lease; the answer then replaces it
-- (lock_token NULL, expires_at = the 24 h retention). A lease that runs out (the gateway died
-- mid-call) frees the key for a retry.
ALTER TABLE idempotency_keys ADD COLUMN lock_token text;
