-- A rotate-secret retried with the same Idempotency-Key (the gateway's call timed out, the
-- customer's client retried) answers the secret the first call made instead of rotating again:
-- the first secret would otherwise be lost with the answer nobody received. Kept a day.
CREATE TABLE rotations (
    api_key_id       text        NOT NULL,
    idempotency_key  text        NOT NULL,
    secret           bytea       NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_id, idempotency_key)
);
CREATE INDEX rotations_created ON rotations (created_at);

-- Manual redeliveries of one delivery are bounded (one pending at a time, a few an hour):
-- counted through replay_of.
CREATE INDEX deliveries_replay_of ON deliveries (replay_of, created_at)
    WHERE replay_of IS NOT NULL;
