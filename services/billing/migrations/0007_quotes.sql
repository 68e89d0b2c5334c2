-- Quotes (docs/billing.md, "Quotes"): the exact credits a create would reserve, held for a while
-- so that a create citing the quote is charged exactly that amount, whatever the price book says
-- by then. One row per quote; `job_id` is set, in the same transaction as the reservation, by
-- the one create that used it (a quote pays for one job), and cleared again only when the
-- gateway released that reservation because the job was never accepted.
CREATE TABLE quotes (
    id             text PRIMARY KEY,
    account_id     text        NOT NULL,
    -- A test key's quote (credits 0: the sandbox is free); only a test key's create may cite it.
    test           boolean     NOT NULL,
    service        text        NOT NULL,
    -- The create body as priced: defaults filled in, a translation's measured length included.
    input          jsonb       NOT NULL,
    credits        bigint      NOT NULL CHECK (credits >= 0),
    price_version  integer     NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    expires_at     timestamptz NOT NULL,
    job_id         text,
    used_at        timestamptz,
    CHECK ((job_id IS NULL) = (used_at IS NULL)),
    CHECK (test OR credits > 0)
);

-- The release of a never-accepted job frees its quote; the purge deletes from the oldest end.
CREATE UNIQUE INDEX quotes_by_job ON quotes (job_id) WHERE job_id IS NOT NULL;
CREATE INDEX quotes_expiry ON quotes (expires_at);
