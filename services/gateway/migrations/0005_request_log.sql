-- The per-key API request log (the dashboard's "Request log"): one row per authenticated
-- /api/v1 request. Each replica buffers rows in memory and writes them in batches from a
-- background task, never on the request path (entrypoints/request_log.py). Rows are kept
-- 7 days and at most a few thousand per account (both enforced by a periodic purge). No
-- secret and no body is ever stored: the key is named by its id, the request by its path.
CREATE TABLE request_log (
    account_id       text        NOT NULL,
    api_key_id       text        NOT NULL,
    test             boolean     NOT NULL,
    -- When the request arrived at the gateway.
    created_at       timestamptz NOT NULL,
    request_id       text        NOT NULL,
    method           text        NOT NULL,
    path             text        NOT NULL,
    status           smallint    NOT NULL,
    latency_ms       real        NOT NULL,
    idempotency_key  text,
    replayed         boolean     NOT NULL,
    -- The job the request created or named (the dashboard links to it), when there is one.
    job_id           text
);
-- An account's pages, newest first (keyset on time, the request id breaking ties); the
-- per-account cap walks the same index from its newest end.
CREATE INDEX request_log_account_time ON request_log (account_id, created_at DESC, request_id DESC);
-- The age limit deletes from the oldest end in bounded batches.
CREATE INDEX request_log_created ON request_log (created_at);
