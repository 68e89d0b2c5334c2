-- One endpoint per API key. Secrets are the raw 32 random bytes (the whsec_ string is their
-- base64): HMAC needs them back, so they are kept, but never selected into logs or answers.
CREATE TABLE endpoints (
    api_key_id                  text PRIMARY KEY,
    account_id                  text        NOT NULL,
    url                         text        NOT NULL,
    events                      text[]      NOT NULL,
    secret                      bytea       NOT NULL,
    previous_secret             bytea,
    previous_secret_expires_at  timestamptz,
    created_at                  timestamptz NOT NULL DEFAULT now(),
    updated_at                  timestamptz NOT NULL DEFAULT now()
);

-- A delivery task: one event to one key's endpoint, tried on the retry schedule. The schedule
-- lives here (next_attempt_at), claimed with FOR UPDATE SKIP LOCKED: see docs/webhooks.md.
-- state: pending -> succeeded | failed (the dead-letter set) -> replayed (a replay was made).
CREATE TABLE deliveries (
    id               text PRIMARY KEY,
    api_key_id       text        NOT NULL,
    account_id       text        NOT NULL,
    event_id         text        NOT NULL,
    event_type       text        NOT NULL,
    body             bytea       NOT NULL,
    trigger          text        NOT NULL CHECK (trigger IN ('first', 'test', 'replay')),
    state            text        NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'succeeded', 'failed', 'replayed')),
    attempts_done    integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    -- A claim is a lease: a process that dies mid-send loses it when it runs out.
    claim_token      text,
    claimed_until    timestamptz,
    replay_of        text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz
);
-- The first delivery of an event is made once, however often the event is redelivered.
CREATE UNIQUE INDEX deliveries_first_once ON deliveries (event_id, api_key_id)
    WHERE trigger = 'first';
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX deliveries_failed ON deliveries (api_key_id, finished_at) WHERE state = 'failed';

-- The delivery log: one row per attempt, the newest 100 kept per key.
CREATE TABLE attempts (
    seq              bigserial PRIMARY KEY,
    id               text        NOT NULL UNIQUE,
    delivery_id      text        NOT NULL,
    api_key_id       text        NOT NULL,
    event_id         text        NOT NULL,
    event_type       text        NOT NULL,
    attempt          integer     NOT NULL,
    trigger          text        NOT NULL,
    attempted_at     timestamptz NOT NULL,
    url              text        NOT NULL,
    resolved_ip      text,
    status_code      integer,
    error            text,
    succeeded        boolean     NOT NULL,
    latency_ms       double precision,
    response_head    text,
    next_attempt_at  timestamptz
);
CREATE INDEX attempts_key_seq ON attempts (api_key_id, seq DESC);
