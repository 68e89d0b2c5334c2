-- Every job event a customer may be told about, under a stable event id. Endpoints,
-- signing and deliveries come with the webhooks issue and deliver from this table.
CREATE TABLE events (
    id            text PRIMARY KEY,
    type          text        NOT NULL,
    account_id    text        NOT NULL,
    api_key_id    text        NOT NULL,
    job_id        text        NOT NULL,
    test          boolean     NOT NULL,
    payload       jsonb       NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_key_created ON events (api_key_id, created_at DESC);
