-- Card top-ups through the payment provider's checkout (docs/billing.md, "Buying credits").
-- A row is written when the provider has created the session, with the quote the customer was
-- shown before paying; only the provider's signed checkout.session.completed fulfils it, once:
-- the purchase's reference is the session id, and this row moves open -> completed in the same
-- transaction as the purchase.
CREATE TABLE checkouts (
    session_id     text PRIMARY KEY,
    account_id     text        NOT NULL,
    usd_cents      bigint      NOT NULL CHECK (usd_cents > 0),
    paid_credits   bigint      NOT NULL CHECK (paid_credits > 0),
    bonus_credits  bigint      NOT NULL CHECK (bonus_credits >= 0),
    bonus_percent  integer     NOT NULL CHECK (bonus_percent >= 0),
    price_version  integer     NOT NULL,
    url            text        NOT NULL,
    state          text        NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'completed')),
    event_id       text,
    purchase_id    text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    completed_at   timestamptz,
    CHECK ((state = 'completed') = (completed_at IS NOT NULL AND purchase_id IS NOT NULL))
);

CREATE INDEX checkouts_by_account ON checkouts (account_id, created_at DESC);
