-- Endpoints that protect themselves (issue 18): an endpoint is enabled, paused (by its
-- customer) or disabled (by us: it answered 410 Gone, or every attempt failed for the
-- configured window). While not enabled its deliveries are `held`: queued, never sent, never
-- lost, until it is resumed (released in event order) or they are set aside as failed.
ALTER TABLE endpoints
    ADD COLUMN status          text NOT NULL DEFAULT 'enabled'
                               CHECK (status IN ('enabled', 'paused', 'disabled')),
    ADD COLUMN disabled_reason text CHECK (disabled_reason IN ('gone', 'failing')),
    ADD COLUMN disabled_at     timestamptz,
    -- The first failed attempt since the last successful one (test fires do not count).
    ADD COLUMN failing_since   timestamptz,
    -- The key's mode, as last seen on a call or a job event (the endpoint.disabled event and
    -- notice carry it); NULL until seen.
    ADD COLUMN test            boolean;

ALTER TABLE deliveries DROP CONSTRAINT deliveries_state_check;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_state_check
    CHECK (state IN ('pending', 'held', 'succeeded', 'failed', 'replayed'));
-- The recovery that queued a replay (POST /api/v1/webhook/recover), if one did.
ALTER TABLE deliveries ADD COLUMN recovery_id text;
CREATE INDEX deliveries_held ON deliveries (api_key_id, created_at) WHERE state = 'held';
CREATE INDEX deliveries_recovery ON deliveries (recovery_id) WHERE recovery_id IS NOT NULL;

-- Events that are not about a job (endpoint.disabled, keys.expiring) have no job.
ALTER TABLE events ALTER COLUMN job_id DROP NOT NULL;

-- Recoveries a customer ran: one running per key, an Idempotency-Key answers the same one.
CREATE TABLE recoveries (
    id               text PRIMARY KEY,
    api_key_id       text        NOT NULL,
    account_id       text        NOT NULL,
    idempotency_key  text,
    since            timestamptz NOT NULL,
    until            timestamptz,
    queued           integer     NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX recoveries_idempotency ON recoveries (api_key_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
CREATE INDEX recoveries_key_created ON recoveries (api_key_id, created_at DESC);
