CREATE TABLE jobs (
    id            text PRIMARY KEY,
    account_id    text        NOT NULL,
    api_key_id    text        NOT NULL,
    service       text        NOT NULL,
    status        text        NOT NULL CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'canceled')),
    test          boolean     NOT NULL,
    input         jsonb       NOT NULL,
    output        jsonb,
    error         jsonb,
    progress      real        NOT NULL DEFAULT 0,
    cost_credits  integer     NOT NULL DEFAULT 0 CHECK (cost_credits >= 0),
    created_at    timestamptz NOT NULL,
    started_at    timestamptz,
    completed_at  timestamptz,
    version       integer     NOT NULL,
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_account_created ON jobs (account_id, created_at DESC);
CREATE INDEX jobs_unfinished ON jobs (status) WHERE status IN ('queued', 'processing');
