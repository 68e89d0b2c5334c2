-- reserve() and release() of one job no longer interleave. Before, a release arriving while
-- a reserve's claim was still uncommitted found nothing (READ COMMITTED cannot see the claim),
-- recorded "unknown", and the reserve then committed credits as held: the gateway had told the
-- customer nothing was charged, and the credits stayed held until the reconciler's threshold.
-- Both functions are the same as in 0002 but for the per-job advisory lock they take first.

CREATE OR REPLACE FUNCTION reserve(
    p_job text, p_account text, p_service text, p_amount bigint, p_price_version integer
) RETURNS TABLE (outcome text, amount bigint, price_version integer, available bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r reservations%ROWTYPE;
    w wallets%ROWTYPE;
BEGIN
    -- One reserve or release of a job at a time: a release must not miss a reserve that is
    -- still in flight (its claim not yet committed), nor a reserve a release just recorded.
    PERFORM pg_advisory_xact_lock(hashtextextended('billing.reservation:' || p_job, 0));
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

CREATE OR REPLACE FUNCTION release(p_job text, p_reason text)
RETURNS TABLE (outcome text, amount bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r reservations%ROWTYPE;
    w wallets%ROWTYPE;
BEGIN
    -- One reserve or release of a job at a time: a release must not miss a reserve that is
    -- still in flight (its claim not yet committed), nor a reserve a release just recorded.
    PERFORM pg_advisory_xact_lock(hashtextextended('billing.reservation:' || p_job, 0));
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
