CREATE TABLE accounts (
    id            text PRIMARY KEY,
    name          text        NOT NULL,
    email         text,
    -- Live keys work only after the account's first credit purchase (billing turns this on).
    live_enabled  boolean     NOT NULL DEFAULT false,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    id            text PRIMARY KEY,
    account_id    text        NOT NULL REFERENCES accounts (id),
    name          text,
    mode          text        NOT NULL CHECK (mode IN ('test', 'live')),
    -- SHA-256 of the secret; the secret itself is never stored.
    secret_hash   bytea       NOT NULL UNIQUE,
    display       text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_account ON api_keys (account_id);

-- Idempotency-Key records, scoped to the API key, kept 24 h.
CREATE TABLE idempotency_keys (
    api_key_id       text        NOT NULL,
    key              text        NOT NULL,
    fingerprint      bytea       NOT NULL,
    response_status  integer     NOT NULL,
    response_headers jsonb       NOT NULL,
    response_body    bytea       NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    PRIMARY KEY (api_key_id, key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

-- The gateway's read model of jobs: written with the create command, then moved on by job
-- events. GETs read only this table, so a job is visible the moment its POST returns.
CREATE TABLE jobs (
    id            text PRIMARY KEY,
    account_id    text        NOT NULL,
    api_key_id    text        NOT NULL,
    service       text        NOT NULL,
    status        text        NOT NULL,
    test          boolean     NOT NULL,
    input         jsonb       NOT NULL,
    output        jsonb,
    error         jsonb,
    progress      real        NOT NULL DEFAULT 0,
    cost_credits  integer     NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL,
    started_at    timestamptz,
    completed_at  timestamptz,
    version       integer     NOT NULL
);
CREATE INDEX jobs_account_list ON jobs (account_id, test, id DESC);
