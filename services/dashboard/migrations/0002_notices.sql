-- Account notices (contracts/notices.py) the dashboard heard of: each mailed to the account's
-- people once and shown as a banner while it applies. notice_id is the notice's own id: a
-- notice delivered or published twice is one row, one mail.
CREATE TABLE notices (
    notice_id    text PRIMARY KEY,
    type         text        NOT NULL,
    account_id   text        NOT NULL,
    api_key_id   text        NOT NULL,
    mode         text        NOT NULL CHECK (mode IN ('test', 'live')),
    data         jsonb       NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    -- A banner is shown until it no longer applies: the endpoint is enabled again (seen on its
    -- panel), the person dismissed it, or (a key expiring) the expiry passed.
    applies_until timestamptz,
    resolved_at  timestamptz,
    dismissed_at timestamptz
);
CREATE INDEX notices_account_open ON notices (account_id, received_at DESC)
    WHERE resolved_at IS NULL AND dismissed_at IS NULL;

-- Mails of those notices: written with the notice, sent after the commit by the process that
-- handled it (another process sweeps what is left a while later). At least once: a process
-- that dies between the SMTP answer and sent_at sends that mail again.
CREATE TABLE notice_mails (
    id            text PRIMARY KEY,
    notice_id     text        NOT NULL REFERENCES notices (notice_id) ON DELETE CASCADE,
    to_email      text        NOT NULL,
    subject       text        NOT NULL,
    body          text        NOT NULL,
    owner         text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    attempts      integer     NOT NULL DEFAULT 0,
    next_try_at   timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz,
    UNIQUE (notice_id, to_email)
);
CREATE INDEX notice_mails_unsent ON notice_mails (next_try_at) WHERE sent_at IS NULL;
