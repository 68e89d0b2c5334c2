-- Low-balance warnings (docs/billing.md, "Low balance"). One row per account that has been
-- evaluated or has set its own threshold. `low` is the state of the last evaluation: a warning is
-- sent when it turns true (once per crossing), and it turns false again when the balance is back
-- at or above the threshold (the warning is armed again).
CREATE TABLE low_balance (
    account_id       text PRIMARY KEY,
    -- The customer's own threshold in credits; NULL: the default (what the last 24 h consumed,
    -- spent in 2 h). 0 turns the warning off.
    threshold        bigint CHECK (threshold >= 0),
    low              boolean     NOT NULL DEFAULT false,
    crossed_at       timestamptz,
    notice_id        text,
    evaluated_at     timestamptz,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- What an account spent recently, read per account and time without scanning its whole history:
-- only captures are indexed (one index entry per capture; reservations and releases add none).
CREATE INDEX transfers_captures_by_time ON transfers (account_id, created_at)
    WHERE type = 'capture';

-- How far the evaluation has read the transfers (one row): each round looks at the accounts with
-- a transfer past it, less a margin for transfers that committed out of order.
CREATE TABLE low_balance_cursor (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    seq       bigint  NOT NULL
);
INSERT INTO low_balance_cursor (seq) VALUES (0);
