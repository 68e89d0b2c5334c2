-- The credit ledger: double-entry, integer credits, immutable entries.
--
-- Ledger accounts are (account_id, ledger_account): per customer `available` and `reserved`
-- (materialized in `wallets`, updated in the same transaction as the entries), and the system
-- side `revenue` (paid credits spent), `bonus_spent` (bonus credits spent: never revenue),
-- `purchases` and `bonus_issued` (the sources credits come from; they run negative). System
-- accounts are not materialized: a running row updated by every capture would serialize all
-- captures; their balances are sums over `postings`.
--
-- Every write goes through one of the functions below, so a reservation is one statement and
-- one round trip on the gateway's hot path.

-- A wallet exists once the account has bought credits: its existence is the live-mode switch.
CREATE TABLE wallets (
    account_id          text PRIMARY KEY,
    available           bigint      NOT NULL CHECK (available >= 0),
    reserved            bigint      NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    lifetime_purchased  bigint      NOT NULL DEFAULT 0 CHECK (lifetime_purchased >= 0),
    lifetime_bonus      bigint      NOT NULL DEFAULT 0 CHECK (lifetime_bonus >= 0),
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE transfers (
    seq              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id               text        NOT NULL UNIQUE,
    -- The caller-supplied transfer id ("reserve:<job>", "capture:<job>", "purchase:<ref>"...):
    -- a repeat finds it taken and answers the first transfer.
    key              text        NOT NULL UNIQUE,
    account_id       text        NOT NULL,
    type             text        NOT NULL
                     CHECK (type IN ('purchase', 'reservation', 'capture', 'release')),
    amount           bigint      NOT NULL CHECK (amount > 0),
    available_change bigint      NOT NULL,
    reserved_change  bigint      NOT NULL,
    available_after  bigint      NOT NULL,
    reserved_after   bigint      NOT NULL,
    paid_amount      bigint      NOT NULL DEFAULT 0 CHECK (paid_amount >= 0),
    bonus_amount     bigint      NOT NULL DEFAULT 0 CHECK (bonus_amount >= 0),
    job_id           text,
    reference        text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX transfers_by_account ON transfers (account_id, seq DESC);

CREATE TABLE postings (
    transfer_seq    bigint NOT NULL REFERENCES transfers (seq),
    account_id      text   NOT NULL,
    ledger_account  text   NOT NULL CHECK (ledger_account IN
                    ('available', 'reserved', 'revenue', 'bonus_spent', 'purchases', 'bonus_issued')),
    amount          bigint NOT NULL CHECK (amount <> 0),
    PRIMARY KEY (transfer_seq, ledger_account)
);
CREATE INDEX postings_by_account ON postings (account_id, ledger_account);

-- Paid and bonus credits are separate grants; `remaining` counts what no capture has drawn yet,
-- so per account sum(remaining) = available + reserved.
CREATE TABLE grants (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id   text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('paid', 'bonus')),
    reference    text        NOT NULL,
    amount       bigint      NOT NULL CHECK (amount > 0),
    remaining    bigint      NOT NULL CHECK (remaining >= 0 AND remaining <= amount),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX grants_open ON grants (account_id, id) WHERE remaining > 0;

-- Which grant each capture drew from, and how much.
CREATE TABLE grant_draws (
    transfer_seq  bigint NOT NULL REFERENCES transfers (seq),
    grant_id      bigint NOT NULL REFERENCES grants (id),
    amount        bigint NOT NULL CHECK (amount > 0),
    PRIMARY KEY (transfer_seq, grant_id)
);

CREATE TABLE purchases (
    reference      text PRIMARY KEY,
    id             text        NOT NULL UNIQUE,
    account_id     text        NOT NULL,
    usd_cents      bigint      NOT NULL CHECK (usd_cents > 0),
    paid_credits   bigint      NOT NULL CHECK (paid_credits > 0),
    bonus_credits  bigint      NOT NULL CHECK (bonus_credits >= 0),
    bonus_percent  integer     NOT NULL CHECK (bonus_percent >= 0),
    created_at     timestamptz NOT NULL DEFAULT now()
);

-- Two-phase transfers: `held` until the job's end captures or releases it. State changes here,
-- the money movements are the (immutable) transfers.
CREATE TABLE reservations (
    job_id         text PRIMARY KEY,
    account_id     text        NOT NULL,
    service        text        NOT NULL,
    amount         bigint      NOT NULL CHECK (amount > 0),
    price_version  integer     NOT NULL,
    state          text        NOT NULL DEFAULT 'held'
                   CHECK (state IN ('held', 'captured', 'released')),
    -- Set when a job event (or the jobs service) showed the job exists: the reconciler skips it.
    confirmed_at   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    settled_at     timestamptz,
    settle_reason  text
);
CREATE INDEX reservations_unconfirmed ON reservations (created_at)
    WHERE state = 'held' AND confirmed_at IS NULL;

-- Capture/release that found nothing to do (unknown job, already settled): recorded, not raised.
CREATE TABLE settlement_noops (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_id      text        NOT NULL,
    action      text        NOT NULL CHECK (action IN ('capture', 'release')),
    found       text        NOT NULL,
    reason      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX settlement_noops_by_job ON settlement_noops (job_id);

-- Entries are facts: the database refuses to change or remove them, whatever the caller.
CREATE FUNCTION forbid_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'billing.%: ledger rows are immutable (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE TRIGGER transfers_immutable BEFORE UPDATE OR DELETE ON transfers
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER transfers_no_truncate BEFORE TRUNCATE ON transfers
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();
CREATE TRIGGER postings_immutable BEFORE UPDATE OR DELETE ON postings
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON postings
    FOR EACH STATEMENT EXECUTE FUNCTION forbid_change();
CREATE TRIGGER grant_draws_immutable BEFORE UPDATE OR DELETE ON grant_draws
    FOR EACH ROW EXECUTE FUNCTION forbid_change();
CREATE TRIGGER purchases_immutable BEFORE UPDATE OR DELETE ON purchases
    FOR EACH ROW EXECUTE FUNCTION forbid_change();

-- Writes one transfer and its postings; the postings must sum to zero (double entry).
CREATE FUNCTION post_transfer(
    p_key text, p_account text, p_type text, p_amount bigint,
    p_available_change bigint, p_reserved_change bigint,
    p_available_after bigint, p_reserved_after bigint,
    p_paid bigint, p_bonus bigint, p_job text, p_reference text,
    p_ledger_accounts text[], p_amounts bigint[]
) RETURNS bigint LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_seq bigint;
BEGIN
    IF (SELECT sum(a) FROM unnest(p_amounts) a) <> 0 THEN
        RAISE EXCEPTION 'unbalanced transfer %', p_key;
    END IF;
    INSERT INTO transfers (id, key, account_id, type, amount, available_change, reserved_change,
                           available_after, reserved_after, paid_amount, bonus_amount, job_id,
                           reference)
    VALUES ('le_' || replace(gen_random_uuid()::text, '-', ''), p_key, p_account, p_type,
            p_amount, p_available_change, p_reserved_change, p_available_after,
            p_reserved_after, p_paid, p_bonus, p_job, p_reference)
    RETURNING seq INTO v_seq;
    INSERT INTO postings (transfer_seq, account_id, ledger_account, amount)
    SELECT v_seq, p_account, la, amt FROM unnest(p_ledger_accounts, p_amounts) AS t (la, amt)
    WHERE amt <> 0;
    RETURN v_seq;
END $$;

-- available -> reserved.
-- Outcomes: reserved | repeat | insufficient | not_live | conflict | released.
CREATE FUNCTION reserve(
    p_job text, p_account text, p_service text, p_amount bigint, p_price_version integer
) RETURNS TABLE (outcome text, amount bigint, price_version integer, available bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r reservations%ROWTYPE;
    w wallets%ROWTYPE;
BEGIN
    -- The gateway released this job before its reserve landed (it gave up waiting and told
    -- the customer nothing was charged): hold nothing rather than wait for the reconciler.
    IF EXISTS (SELECT 1 FROM settlement_noops
                WHERE job_id = p_job AND action = 'release' AND found = 'unknown') THEN
        RETURN QUERY SELECT 'released'::text, p_amount, p_price_version, 0::bigint;
        RETURN;
    END IF;
    -- Claim the job id first: a concurrent duplicate waits here, then sees the first one.
    INSERT INTO reservations (job_id, account_id, service, amount, price_version)
    VALUES (p_job, p_account, p_service, p_amount, p_price_version)
    ON CONFLICT (job_id) DO NOTHING;
    IF NOT FOUND THEN
        SELECT * INTO r FROM reservations WHERE job_id = p_job;
        IF r.account_id <> p_account THEN
            RETURN QUERY SELECT 'conflict'::text, r.amount, r.price_version, 0::bigint;
            RETURN;
        END IF;
        RETURN QUERY SELECT 'repeat'::text, r.amount, r.price_version, t.available_after
            FROM transfers t WHERE t.key = 'reserve:' || p_job;
        RETURN;
    END IF;
    UPDATE wallets SET available = wallets.available - p_amount,
                       reserved = wallets.reserved + p_amount
     WHERE account_id = p_account AND wallets.available >= p_amount
    RETURNING * INTO w;
    IF NOT FOUND THEN
        -- Nothing was held: forget the claim so a later attempt (after a top-up) may succeed.
        DELETE FROM reservations WHERE job_id = p_job;
        SELECT * INTO w FROM wallets WHERE account_id = p_account;
        IF NOT FOUND THEN
            RETURN QUERY SELECT 'not_live'::text, p_amount, p_price_version, 0::bigint;
        ELSE
            RETURN QUERY SELECT 'insufficient'::text, p_amount, p_price_version, w.available;
        END IF;
        RETURN;
    END IF;
    PERFORM post_transfer('reserve:' || p_job, p_account, 'reservation', p_amount,
        -p_amount, p_amount, w.available, w.reserved, 0, 0, p_job, NULL,
        ARRAY['available', 'reserved'], ARRAY[-p_amount, p_amount]);
    RETURN QUERY SELECT 'reserved'::text, p_amount, p_price_version, w.available;
END $$;

-- Shared by capture and release: a settle that finds no held reservation is recorded here.
CREATE FUNCTION record_noop(p_job text, p_action text, p_reason text)
RETURNS text LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_found text;
BEGIN
    SELECT state INTO v_found FROM reservations WHERE job_id = p_job;
    v_found := coalesce(v_found, 'unknown');
    INSERT INTO settlement_noops (job_id, action, found, reason)
    VALUES (p_job, p_action, v_found, p_reason);
    RETURN CASE v_found WHEN 'unknown' THEN 'unknown' ELSE 'already_' || v_found END;
END $$;

-- reserved -> revenue (paid part) and bonus_spent (bonus part). Draw order: bonus grants
-- first, then paid grants, oldest first within each kind.
-- Outcomes: captured | already_captured / already_released / unknown (recorded no-ops).
CREATE FUNCTION capture(p_job text, p_reason text)
RETURNS TABLE (outcome text, amount bigint, paid bigint, bonus bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r reservations%ROWTYPE;
    w wallets%ROWTYPE;
    g record;
    v_left bigint;
    v_take bigint;
    v_paid bigint := 0;
    v_bonus bigint := 0;
    v_grants bigint[] := '{}';
    v_takes bigint[] := '{}';
    v_seq bigint;
BEGIN
    UPDATE reservations SET state = 'captured', settled_at = now(), settle_reason = p_reason,
                            confirmed_at = coalesce(confirmed_at, now())
     WHERE job_id = p_job AND state = 'held'
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RETURN QUERY SELECT record_noop(p_job, 'capture', p_reason), 0::bigint, 0::bigint,
                            0::bigint;
        RETURN;
    END IF;
    UPDATE wallets SET reserved = wallets.reserved - r.amount
     WHERE account_id = r.account_id RETURNING * INTO w;
    v_left := r.amount;
    FOR g IN SELECT id, kind, remaining FROM grants
              WHERE account_id = r.account_id AND remaining > 0
              ORDER BY (kind = 'paid'), id FOR UPDATE
    LOOP
        v_take := least(v_left, g.remaining);
        UPDATE grants SET remaining = remaining - v_take WHERE id = g.id;
        v_grants := v_grants || g.id;
        v_takes := v_takes || v_take;
        IF g.kind = 'bonus' THEN v_bonus := v_bonus + v_take; ELSE v_paid := v_paid + v_take; END IF;
        v_left := v_left - v_take;
        EXIT WHEN v_left = 0;
    END LOOP;
    IF v_left <> 0 THEN
        RAISE EXCEPTION 'grants of % do not cover capture of %', r.account_id, p_job;
    END IF;
    v_seq := post_transfer('capture:' || p_job, r.account_id, 'capture', r.amount,
        0, -r.amount, w.available, w.reserved, v_paid, v_bonus, p_job, NULL,
        ARRAY['reserved', 'revenue', 'bonus_spent'], ARRAY[-r.amount, v_paid, v_bonus]);
    INSERT INTO grant_draws (transfer_seq, grant_id, amount)
    SELECT v_seq, gid, amt FROM unnest(v_grants, v_takes) AS t (gid, amt);
    RETURN QUERY SELECT 'captured'::text, r.amount, v_paid, v_bonus;
END $$;

-- reserved -> available. Outcomes: released | already_captured / already_released / unknown.
CREATE FUNCTION release(p_job text, p_reason text)
RETURNS TABLE (outcome text, amount bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r reservations%ROWTYPE;
    w wallets%ROWTYPE;
BEGIN
    UPDATE reservations SET state = 'released', settled_at = now(), settle_reason = p_reason
     WHERE job_id = p_job AND state = 'held'
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RETURN QUERY SELECT record_noop(p_job, 'release', p_reason), 0::bigint;
        RETURN;
    END IF;
    UPDATE wallets SET available = wallets.available + r.amount,
                       reserved = wallets.reserved - r.amount
     WHERE account_id = r.account_id RETURNING * INTO w;
    PERFORM post_transfer('release:' || p_job, r.account_id, 'release', r.amount,
        r.amount, -r.amount, w.available, w.reserved, 0, 0, p_job, NULL,
        ARRAY['reserved', 'available'], ARRAY[-r.amount, r.amount]);
    RETURN QUERY SELECT 'released'::text, r.amount;
END $$;

-- purchases/bonus_issued -> available, as two grants. Outcomes: purchased | repeat.
-- A repeat answers the first purchase (the caller compares it with what it asked).
CREATE FUNCTION purchase(
    p_reference text, p_account text, p_usd_cents bigint, p_paid bigint, p_bonus bigint,
    p_bonus_percent integer
) RETURNS TABLE (outcome text, id text, account_id text, reference text, usd_cents bigint,
                 paid_credits bigint, bonus_credits bigint, bonus_percent integer,
                 available_after bigint, created_at timestamptz)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    w wallets%ROWTYPE;
    v_outcome text := 'purchased';
BEGIN
    INSERT INTO purchases (reference, id, account_id, usd_cents, paid_credits, bonus_credits,
                           bonus_percent)
    VALUES (p_reference, 'pur_' || replace(gen_random_uuid()::text, '-', ''), p_account,
            p_usd_cents, p_paid, p_bonus, p_bonus_percent)
    ON CONFLICT ON CONSTRAINT purchases_pkey DO NOTHING;
    IF NOT FOUND THEN
        v_outcome := 'repeat';
    ELSE
        INSERT INTO wallets AS cur (account_id, available, lifetime_purchased, lifetime_bonus)
        VALUES (p_account, p_paid + p_bonus, p_paid, p_bonus)
        ON CONFLICT ON CONSTRAINT wallets_pkey DO UPDATE
            SET available = cur.available + excluded.available,
                lifetime_purchased = cur.lifetime_purchased + excluded.lifetime_purchased,
                lifetime_bonus = cur.lifetime_bonus + excluded.lifetime_bonus
        RETURNING * INTO w;
        INSERT INTO grants (account_id, kind, reference, amount, remaining)
        VALUES (p_account, 'paid', p_reference, p_paid, p_paid);
        IF p_bonus > 0 THEN
            INSERT INTO grants (account_id, kind, reference, amount, remaining)
            VALUES (p_account, 'bonus', p_reference, p_bonus, p_bonus);
        END IF;
        PERFORM post_transfer('purchase:' || p_reference, p_account, 'purchase',
            p_paid + p_bonus, p_paid + p_bonus, 0, w.available, w.reserved, p_paid, p_bonus,
            NULL, p_reference, ARRAY['purchases', 'bonus_issued', 'available'],
            ARRAY[-p_paid, -p_bonus, p_paid + p_bonus]);
    END IF;
    RETURN QUERY
        SELECT v_outcome, p.id, p.account_id, p.reference, p.usd_cents, p.paid_credits,
               p.bonus_credits, p.bonus_percent, t.available_after, p.created_at
          FROM purchases p JOIN transfers t ON t.key = 'purchase:' || p.reference
         WHERE p.reference = p_reference;
END $$;

-- Recomputes every balance from the entries; returns one row per inconsistency (none: sound).
-- Pinned to this schema: operators call it from psql as billing.ledger_problems().
CREATE FUNCTION ledger_problems() RETURNS TABLE (problem text) LANGUAGE sql STABLE
SET search_path FROM CURRENT AS $$
    SELECT 'entries sum to ' || s FROM (SELECT coalesce(sum(amount), 0) s FROM postings) z
     WHERE s <> 0
    UNION ALL
    SELECT 'transfer ' || transfer_seq || ' sums to ' || sum(amount)
      FROM postings GROUP BY transfer_seq HAVING sum(amount) <> 0
    UNION ALL
    SELECT 'wallet ' || w.account_id || ' available ' || w.available || ' reserved '
           || w.reserved || ' but entries say ' || coalesce(e.available, 0) || '/'
           || coalesce(e.reserved, 0)
      FROM wallets w LEFT JOIN (
            SELECT account_id,
                   sum(amount) FILTER (WHERE ledger_account = 'available') available,
                   sum(amount) FILTER (WHERE ledger_account = 'reserved') reserved
              FROM postings GROUP BY account_id) e USING (account_id)
     WHERE w.available <> coalesce(e.available, 0) OR w.reserved <> coalesce(e.reserved, 0)
    UNION ALL
    SELECT 'wallet ' || w.account_id || ' holds ' || (w.available + w.reserved)
           || ' but its grants hold ' || coalesce(g.remaining, 0)
      FROM wallets w LEFT JOIN (SELECT account_id, sum(remaining) remaining FROM grants
                                 GROUP BY account_id) g USING (account_id)
     WHERE w.available + w.reserved <> coalesce(g.remaining, 0)
    UNION ALL
    SELECT 'reservation ' || r.job_id || ' is ' || r.state || ' but its transfers disagree'
      FROM reservations r
     WHERE (r.state = 'captured') <> EXISTS (SELECT 1 FROM transfers t
                                               WHERE t.key = 'capture:' || r.job_id)
        OR (r.state = 'released') <> EXISTS (SELECT 1 FROM transfers t
                                               WHERE t.key = 'release:' || r.job_id)
        OR NOT EXISTS (SELECT 1 FROM transfers t WHERE t.key = 'reserve:' || r.job_id)
    UNION ALL
    SELECT 'capture ' || t.seq || ' drew ' || coalesce(d.drawn, 0) || ' of ' || t.amount
      FROM transfers t LEFT JOIN (SELECT transfer_seq, sum(amount) drawn FROM grant_draws
                                   GROUP BY transfer_seq) d ON d.transfer_seq = t.seq
     WHERE t.type = 'capture' AND coalesce(d.drawn, 0) <> t.amount;
$$;
