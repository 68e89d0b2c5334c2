-- The billing schema as its migrations build it (pg_dump --schema-only, normalised).
-- Generated: python -m services.runtime.schema_snapshot billing; checked by a test.
-- Do not edit: write a migration, then regenerate this file.

CREATE FUNCTION billing.capture(p_job text, p_reason text) RETURNS TABLE(outcome text, amount bigint, paid bigint, bonus bigint)
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION billing.capture_many(p_jobs text[], p_reason text) RETURNS TABLE(job_id text, outcome text, amount bigint, paid bigint, bonus bigint)
    LANGUAGE plpgsql
    AS $$
#variable_conflict use_column
DECLARE
    a record;
    g record;
    v_job text;
    v_captured text[];
    -- The captured jobs, accounts in order, each account's jobs in arrival order.
    c_jobs text[];
    c_accounts text[];
    c_amounts bigint[];
    c_paid bigint[] := '{}';
    c_bonus bigint[] := '{}';
    c_available bigint[] := '{}';
    c_reserved bigint[] := '{}';
    -- The draws: position of the job in c_*, grant, amount.
    d_job integer[] := '{}';
    d_grant bigint[] := '{}';
    d_amount bigint[] := '{}';
    -- One account's open grants in draw order, and what is left of each.
    g_ids bigint[];
    g_bonus boolean[];
    g_left bigint[];
    gi integer;
    i integer;
    v_reserved bigint;
    v_left bigint;
    v_take bigint;
    v_seqs bigint[];
BEGIN
    PERFORM 1 FROM reservations r WHERE r.job_id = ANY (p_jobs) ORDER BY r.job_id FOR UPDATE;
    WITH settled AS (
        UPDATE reservations r
           SET state = 'captured', settled_at = now(), settle_reason = p_reason,
               confirmed_at = coalesce(r.confirmed_at, now())
         WHERE r.job_id = ANY (p_jobs) AND r.state = 'held'
        RETURNING r.job_id, r.account_id, r.amount
    ), ordered AS (
        SELECT s.job_id, s.account_id, s.amount,
               (SELECT min(t.n) FROM unnest(p_jobs) WITH ORDINALITY AS t (j, n)
                 WHERE t.j = s.job_id) AS n
          FROM settled s
    )
    SELECT array_agg(o.job_id ORDER BY o.account_id, o.n),
           array_agg(o.account_id ORDER BY o.account_id, o.n),
           array_agg(o.amount ORDER BY o.account_id, o.n)
      INTO c_jobs, c_accounts, c_amounts
      FROM ordered o;
    c_jobs := coalesce(c_jobs, '{}');

    -- Per account, in order: its wallet by the account's total, then its grants drawn job by job.
    i := 1;
    FOR a IN
        SELECT t.acct, sum(t.amt) AS total, count(*) AS jobs
          FROM unnest(c_accounts, c_amounts) AS t (acct, amt)
         GROUP BY t.acct ORDER BY t.acct
    LOOP
        UPDATE wallets w SET reserved = w.reserved - a.total
         WHERE w.account_id = a.acct
        RETURNING w.reserved + a.total, w.available INTO v_reserved, v_left;
        SELECT array_agg(x.id ORDER BY x.paid, x.id), array_agg(x.kind = 'bonus' ORDER BY x.paid, x.id),
               array_agg(x.remaining ORDER BY x.paid, x.id)
          INTO g_ids, g_bonus, g_left
          FROM (SELECT gr.id, gr.kind, gr.remaining, gr.kind = 'paid' AS paid FROM grants gr
                 WHERE gr.account_id = a.acct AND gr.remaining > 0
                 ORDER BY (gr.kind = 'paid'), gr.id FOR UPDATE) x;
        g_ids := coalesce(g_ids, '{}');
        gi := 1;
        FOR k IN 1 .. a.jobs LOOP
            v_reserved := v_reserved - c_amounts[i];
            c_available := c_available || v_left;
            c_reserved := c_reserved || v_reserved;
            c_paid := c_paid || 0::bigint;
            c_bonus := c_bonus || 0::bigint;
            v_take := c_amounts[i];  -- what is still to draw for this job
            WHILE v_take > 0 AND gi <= cardinality(g_ids) LOOP
                IF g_left[gi] = 0 THEN
                    gi := gi + 1;
                    CONTINUE;
                END IF;
                d_job := d_job || i;
                d_grant := d_grant || g_ids[gi];
                d_amount := d_amount || least(v_take, g_left[gi]);
                IF g_bonus[gi] THEN
                    c_bonus[i] := c_bonus[i] + least(v_take, g_left[gi]);
                ELSE
                    c_paid[i] := c_paid[i] + least(v_take, g_left[gi]);
                END IF;
                IF v_take >= g_left[gi] THEN
                    v_take := v_take - g_left[gi];
                    g_left[gi] := 0;
                    gi := gi + 1;
                ELSE
                    g_left[gi] := g_left[gi] - v_take;
                    v_take := 0;
                END IF;
            END LOOP;
            IF v_take <> 0 THEN
                RAISE EXCEPTION 'grants of % do not cover capture of %', a.acct, c_jobs[i];
            END IF;
            i := i + 1;
        END LOOP;
    END LOOP;

    IF cardinality(c_jobs) > 0 THEN
        UPDATE grants gr SET remaining = gr.remaining - t.total
          FROM (SELECT d.g, sum(d.amt) AS total FROM unnest(d_grant, d_amount) AS d (g, amt)
                 GROUP BY d.g) t
         WHERE gr.id = t.g;
        -- One transfer per job, numbered in settlement order (as one capture() after another).
        WITH made AS (
            INSERT INTO transfers (id, key, account_id, type, amount, available_change,
                                   reserved_change, available_after, reserved_after,
                                   paid_amount, bonus_amount, job_id, reference)
            SELECT 'le_' || replace(gen_random_uuid()::text, '-', ''), 'capture:' || t.j, t.acct,
                   'capture', t.amt, 0, -t.amt, t.avail, t.res, t.paid, t.bonus, t.j, NULL
              FROM unnest(c_jobs, c_accounts, c_amounts, c_available, c_reserved, c_paid,
                          c_bonus) WITH ORDINALITY AS t (j, acct, amt, avail, res, paid, bonus, n)
             ORDER BY t.n
            RETURNING seq, transfers.job_id AS j
        )
        SELECT array_agg(m.seq ORDER BY array_position(c_jobs, m.j)) INTO v_seqs FROM made m;
        INSERT INTO postings (transfer_seq, account_id, ledger_account, amount)
        SELECT v_seqs[t.n], t.acct, p.la, p.amt
          FROM unnest(c_accounts, c_amounts, c_paid, c_bonus) WITH ORDINALITY
               AS t (acct, amt, paid, bonus, n),
               LATERAL (VALUES ('reserved', -t.amt), ('revenue', t.paid),
                               ('bonus_spent', t.bonus)) AS p (la, amt)
         WHERE p.amt <> 0;
        INSERT INTO grant_draws (transfer_seq, grant_id, amount)
        SELECT v_seqs[d.jn], d.g, sum(d.amt)
          FROM unnest(d_job, d_grant, d_amount) AS d (jn, g, amt)
         GROUP BY d.jn, d.g;
    END IF;

    FOR i IN 1 .. cardinality(c_jobs) LOOP
        RETURN QUERY SELECT c_jobs[i], 'captured'::text, c_amounts[i], c_paid[i], c_bonus[i];
    END LOOP;
    -- Every other job of the batch (not held, unknown, or already captured earlier in the
    -- batch): a recorded no-op, as capture() records it.
    v_captured := c_jobs;
    FOR v_job IN SELECT t.j FROM unnest(p_jobs) WITH ORDINALITY AS t (j, n) ORDER BY t.n LOOP
        IF v_job = ANY (v_captured) THEN
            v_captured := array_remove(v_captured, v_job);  -- its first copy: captured above
        ELSE
            RETURN QUERY SELECT v_job, record_noop(v_job, 'capture', p_reason), 0::bigint,
                                0::bigint, 0::bigint;
        END IF;
    END LOOP;
END $$;

CREATE FUNCTION billing.forbid_change() RETURNS trigger
    LANGUAGE plpgsql
    AS $$
BEGIN
    RAISE EXCEPTION 'billing.%: ledger rows are immutable (% refused)', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;

CREATE FUNCTION billing.ledger_problems() RETURNS TABLE(problem text)
    LANGUAGE sql STABLE
    SET search_path TO 'billing'
    AS $$
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
    SELECT 'reservation ' || r.job_id || ' of ' || r.amount || ' is ' || r.state || ' but '
           || coalesce(s.settled, 0) || ' was captured or released'
      FROM reservations r LEFT JOIN (
            SELECT job_id, sum(amount) settled FROM transfers
             WHERE type IN ('capture', 'release') AND job_id IS NOT NULL
             GROUP BY job_id) s USING (job_id)
     WHERE coalesce(s.settled, 0) <> CASE WHEN r.state = 'held' THEN 0 ELSE r.amount END
    UNION ALL
    SELECT 'capture ' || t.seq || ' drew ' || coalesce(d.drawn, 0) || ' of ' || t.amount
      FROM transfers t LEFT JOIN (SELECT transfer_seq, sum(amount) drawn FROM grant_draws
                                   GROUP BY transfer_seq) d ON d.transfer_seq = t.seq
     WHERE t.type = 'capture' AND coalesce(d.drawn, 0) <> t.amount;
$$;

CREATE FUNCTION billing.post_transfer(p_key text, p_account text, p_type text, p_amount bigint, p_available_change bigint, p_reserved_change bigint, p_available_after bigint, p_reserved_after bigint, p_paid bigint, p_bonus bigint, p_job text, p_reference text, p_ledger_accounts text[], p_amounts bigint[]) RETURNS bigint
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION billing.purchase(p_reference text, p_account text, p_usd_cents bigint, p_paid bigint, p_bonus bigint, p_bonus_percent integer) RETURNS TABLE(outcome text, id text, account_id text, reference text, usd_cents bigint, paid_credits bigint, bonus_credits bigint, bonus_percent integer, available_after bigint, created_at timestamp with time zone)
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION billing.record_noop(p_job text, p_action text, p_reason text) RETURNS text
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION billing.release(p_job text, p_reason text) RETURNS TABLE(outcome text, amount bigint)
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION billing.release_many(p_jobs text[], p_reason text) RETURNS TABLE(job_id text, outcome text, amount bigint)
    LANGUAGE plpgsql
    AS $$
#variable_conflict use_column
DECLARE
    v_job text;
BEGIN
    FOR v_job IN SELECT DISTINCT t.j FROM unnest(p_jobs) AS t (j) ORDER BY t.j LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended('billing.reservation:' || v_job, 0));
    END LOOP;
    PERFORM 1 FROM reservations r WHERE r.job_id = ANY (p_jobs) ORDER BY r.job_id FOR UPDATE;
    FOR v_job IN
        SELECT t.j FROM unnest(p_jobs) WITH ORDINALITY AS t (j, n)
          LEFT JOIN reservations r ON r.job_id = t.j
         ORDER BY r.account_id, t.n
    LOOP
        RETURN QUERY SELECT v_job, c.outcome, c.amount FROM release(v_job, p_reason) c;
    END LOOP;
END $$;

CREATE FUNCTION billing.reserve(p_job text, p_account text, p_service text, p_amount bigint, p_price_version integer) RETURNS TABLE(outcome text, amount bigint, price_version integer, available bigint)
    LANGUAGE plpgsql
    AS $$
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

CREATE FUNCTION billing.reserve_many(p_jobs text[], p_accounts text[], p_services text[], p_amounts bigint[], p_price_versions integer[]) RETURNS TABLE(n bigint, outcome text, amount bigint, price_version integer, available bigint)
    LANGUAGE plpgsql
    AS $$
#variable_conflict use_column
DECLARE
    v record;
BEGIN
    FOR v IN SELECT DISTINCT t.j FROM unnest(p_jobs) AS t (j) ORDER BY t.j LOOP
        PERFORM pg_advisory_xact_lock(hashtextextended('billing.reservation:' || v.j, 0));
    END LOOP;
    FOR v IN
        SELECT * FROM unnest(p_jobs, p_accounts, p_services, p_amounts, p_price_versions)
                      WITH ORDINALITY AS t (j, a, s, m, pv, i)
         ORDER BY t.a, t.i
    LOOP
        RETURN QUERY SELECT v.i, r.outcome, r.amount, r.price_version, r.available
                       FROM reserve(v.j, v.a, v.s, v.m, v.pv) r;
    END LOOP;
END $$;

CREATE FUNCTION billing.settle_languages(p_job text, p_reason text, p_capture bigint, p_languages text[], p_releases bigint[]) RETURNS TABLE(outcome text, amount bigint, paid bigint, bonus bigint, released bigint)
    LANGUAGE plpgsql
    AS $$
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
    v_released bigint := coalesce((SELECT sum(a) FROM unnest(p_releases) a), 0);
    i integer;
BEGIN
    IF p_capture <= 0 OR cardinality(p_languages) <> cardinality(p_releases)
       OR EXISTS (SELECT 1 FROM unnest(p_releases) a WHERE a <= 0) THEN
        RAISE EXCEPTION 'settle_languages %: a capture and positive releases, one per language',
            p_job;
    END IF;
    -- As release(): one reserve or settlement of a job at a time.
    PERFORM pg_advisory_xact_lock(hashtextextended('billing.reservation:' || p_job, 0));
    UPDATE reservations SET state = 'captured', settled_at = now(), settle_reason = p_reason,
                            confirmed_at = coalesce(confirmed_at, now())
     WHERE job_id = p_job AND state = 'held'
    RETURNING * INTO r;
    IF NOT FOUND THEN
        RETURN QUERY SELECT record_noop(p_job, 'capture', p_reason), 0::bigint, 0::bigint,
                            0::bigint, 0::bigint;
        RETURN;
    END IF;
    IF p_capture + v_released <> r.amount THEN
        RAISE EXCEPTION 'settle_languages %: % captured + % released <> % reserved',
            p_job, p_capture, v_released, r.amount;
    END IF;
    -- The delivered languages: reserved -> revenue / bonus_spent, bonus grants first.
    UPDATE wallets SET reserved = wallets.reserved - p_capture
     WHERE account_id = r.account_id RETURNING * INTO w;
    v_left := p_capture;
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
    v_seq := post_transfer('capture:' || p_job, r.account_id, 'capture', p_capture,
        0, -p_capture, w.available, w.reserved, v_paid, v_bonus, p_job, NULL,
        ARRAY['reserved', 'revenue', 'bonus_spent'], ARRAY[-p_capture, v_paid, v_bonus]);
    INSERT INTO grant_draws (transfer_seq, grant_id, amount)
    SELECT v_seq, gid, amt FROM unnest(v_grants, v_takes) AS t (gid, amt);
    -- Each language not delivered: reserved -> available, a transfer of its own.
    FOR i IN 1 .. cardinality(p_languages) LOOP
        UPDATE wallets SET available = wallets.available + p_releases[i],
                           reserved = wallets.reserved - p_releases[i]
         WHERE account_id = r.account_id RETURNING * INTO w;
        PERFORM post_transfer('release:' || p_job || ':' || p_languages[i], r.account_id,
            'release', p_releases[i], p_releases[i], -p_releases[i], w.available, w.reserved,
            0, 0, p_job, p_languages[i],
            ARRAY['reserved', 'available'], ARRAY[-p_releases[i], p_releases[i]]);
    END LOOP;
    RETURN QUERY SELECT 'captured'::text, p_capture, v_paid, v_bonus, v_released;
END $$;

CREATE TABLE billing.checkouts (
    session_id text NOT NULL,
    account_id text NOT NULL,
    usd_cents bigint NOT NULL,
    paid_credits bigint NOT NULL,
    bonus_credits bigint NOT NULL,
    bonus_percent integer NOT NULL,
    price_version integer NOT NULL,
    url text NOT NULL,
    state text DEFAULT 'open'::text NOT NULL,
    event_id text,
    purchase_id text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    completed_at timestamp with time zone,
    CONSTRAINT checkouts_bonus_credits_check CHECK ((bonus_credits >= 0)),
    CONSTRAINT checkouts_bonus_percent_check CHECK ((bonus_percent >= 0)),
    CONSTRAINT checkouts_check CHECK (((state = 'completed'::text) = ((completed_at IS NOT NULL) AND (purchase_id IS NOT NULL)))),
    CONSTRAINT checkouts_paid_credits_check CHECK ((paid_credits > 0)),
    CONSTRAINT checkouts_state_check CHECK ((state = ANY (ARRAY['open'::text, 'completed'::text]))),
    CONSTRAINT checkouts_usd_cents_check CHECK ((usd_cents > 0))
);

CREATE TABLE billing.grant_draws (
    transfer_seq bigint NOT NULL,
    grant_id bigint NOT NULL,
    amount bigint NOT NULL,
    CONSTRAINT grant_draws_amount_check CHECK ((amount > 0))
);

CREATE TABLE billing.grants (
    id bigint NOT NULL,
    account_id text NOT NULL,
    kind text NOT NULL,
    reference text NOT NULL,
    amount bigint NOT NULL,
    remaining bigint NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT grants_amount_check CHECK ((amount > 0)),
    CONSTRAINT grants_check CHECK (((remaining >= 0) AND (remaining <= amount))),
    CONSTRAINT grants_kind_check CHECK ((kind = ANY (ARRAY['paid'::text, 'bonus'::text])))
);

ALTER TABLE billing.grants ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME billing.grants_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE billing.inbox (
    consumer text NOT NULL,
    message_id uuid NOT NULL,
    handled_at timestamp with time zone DEFAULT now() NOT NULL
);

CREATE TABLE billing.job_settlements (
    job_id text NOT NULL,
    account_id text NOT NULL,
    outcome text NOT NULL,
    test boolean NOT NULL,
    cost_credits integer NOT NULL,
    settled_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT job_settlements_outcome_check CHECK ((outcome = ANY (ARRAY['completed'::text, 'failed'::text, 'canceled'::text])))
);

CREATE TABLE billing.low_balance (
    account_id text NOT NULL,
    threshold bigint,
    low boolean DEFAULT false NOT NULL,
    crossed_at timestamp with time zone,
    notice_id text,
    evaluated_at timestamp with time zone,
    updated_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT low_balance_threshold_check CHECK ((threshold >= 0))
);

CREATE TABLE billing.low_balance_cursor (
    only_row boolean DEFAULT true NOT NULL,
    seq bigint NOT NULL,
    CONSTRAINT low_balance_cursor_only_row_check CHECK (only_row)
);

CREATE TABLE billing.outbox (
    id bigint NOT NULL,
    message_id uuid NOT NULL,
    exchange text NOT NULL,
    routing_key text NOT NULL,
    body bytea NOT NULL,
    created_at timestamp with time zone DEFAULT clock_timestamp() NOT NULL
);

CREATE SEQUENCE billing.outbox_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE billing.outbox_id_seq OWNED BY billing.outbox.id;

CREATE TABLE billing.postings (
    transfer_seq bigint NOT NULL,
    account_id text NOT NULL,
    ledger_account text NOT NULL,
    amount bigint NOT NULL,
    CONSTRAINT postings_amount_check CHECK ((amount <> 0)),
    CONSTRAINT postings_ledger_account_check CHECK ((ledger_account = ANY (ARRAY['available'::text, 'reserved'::text, 'revenue'::text, 'bonus_spent'::text, 'purchases'::text, 'bonus_issued'::text])))
);

CREATE TABLE billing.price_books (
    version integer NOT NULL,
    effective_at timestamp with time zone NOT NULL,
    rounding text[] NOT NULL,
    CONSTRAINT price_books_version_check CHECK ((version > 0))
);

CREATE TABLE billing.prices (
    version integer NOT NULL,
    service text NOT NULL,
    item text NOT NULL,
    unit text NOT NULL,
    credits integer NOT NULL,
    description text NOT NULL,
    CONSTRAINT prices_credits_check CHECK ((credits > 0)),
    CONSTRAINT prices_service_check CHECK ((service = ANY (ARRAY['music'::text, 'translations'::text, 'family_videos'::text, 'avatars'::text]))),
    CONSTRAINT prices_unit_check CHECK ((unit = ANY (ARRAY['second'::text, 'started_minute_per_language'::text, 'video'::text])))
);

CREATE TABLE billing.purchases (
    reference text NOT NULL,
    id text NOT NULL,
    account_id text NOT NULL,
    usd_cents bigint NOT NULL,
    paid_credits bigint NOT NULL,
    bonus_credits bigint NOT NULL,
    bonus_percent integer NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT purchases_bonus_credits_check CHECK ((bonus_credits >= 0)),
    CONSTRAINT purchases_bonus_percent_check CHECK ((bonus_percent >= 0)),
    CONSTRAINT purchases_paid_credits_check CHECK ((paid_credits > 0)),
    CONSTRAINT purchases_usd_cents_check CHECK ((usd_cents > 0))
);

CREATE TABLE billing.quotes (
    id text NOT NULL,
    account_id text NOT NULL,
    test boolean NOT NULL,
    service text NOT NULL,
    input jsonb NOT NULL,
    credits bigint NOT NULL,
    price_version integer NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    job_id text,
    used_at timestamp with time zone,
    CONSTRAINT quotes_check CHECK (((job_id IS NULL) = (used_at IS NULL))),
    CONSTRAINT quotes_check1 CHECK ((test OR (credits > 0))),
    CONSTRAINT quotes_credits_check CHECK ((credits >= 0))
);

CREATE TABLE billing.reservations (
    job_id text NOT NULL,
    account_id text NOT NULL,
    service text NOT NULL,
    amount bigint NOT NULL,
    price_version integer NOT NULL,
    state text DEFAULT 'held'::text NOT NULL,
    confirmed_at timestamp with time zone,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    settled_at timestamp with time zone,
    settle_reason text,
    CONSTRAINT reservations_amount_check CHECK ((amount > 0)),
    CONSTRAINT reservations_state_check CHECK ((state = ANY (ARRAY['held'::text, 'captured'::text, 'released'::text])))
);

CREATE TABLE billing.settlement_noops (
    id bigint NOT NULL,
    job_id text NOT NULL,
    action text NOT NULL,
    found text NOT NULL,
    reason text NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT settlement_noops_action_check CHECK ((action = ANY (ARRAY['capture'::text, 'release'::text])))
);

ALTER TABLE billing.settlement_noops ALTER COLUMN id ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME billing.settlement_noops_id_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE billing.top_up_bonuses (
    version integer NOT NULL,
    min_usd integer NOT NULL,
    bonus_percent integer NOT NULL,
    CONSTRAINT top_up_bonuses_bonus_percent_check CHECK (((bonus_percent > 0) AND (bonus_percent <= 100))),
    CONSTRAINT top_up_bonuses_min_usd_check CHECK ((min_usd > 0))
);

CREATE TABLE billing.transfers (
    seq bigint NOT NULL,
    id text NOT NULL,
    key text NOT NULL,
    account_id text NOT NULL,
    type text NOT NULL,
    amount bigint NOT NULL,
    available_change bigint NOT NULL,
    reserved_change bigint NOT NULL,
    available_after bigint NOT NULL,
    reserved_after bigint NOT NULL,
    paid_amount bigint DEFAULT 0 NOT NULL,
    bonus_amount bigint DEFAULT 0 NOT NULL,
    job_id text,
    reference text,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT transfers_amount_check CHECK ((amount > 0)),
    CONSTRAINT transfers_bonus_amount_check CHECK ((bonus_amount >= 0)),
    CONSTRAINT transfers_paid_amount_check CHECK ((paid_amount >= 0)),
    CONSTRAINT transfers_type_check CHECK ((type = ANY (ARRAY['purchase'::text, 'reservation'::text, 'capture'::text, 'release'::text])))
);

ALTER TABLE billing.transfers ALTER COLUMN seq ADD GENERATED ALWAYS AS IDENTITY (
    SEQUENCE NAME billing.transfers_seq_seq
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1
);

CREATE TABLE billing.wallets (
    account_id text NOT NULL,
    available bigint NOT NULL,
    reserved bigint DEFAULT 0 NOT NULL,
    lifetime_purchased bigint DEFAULT 0 NOT NULL,
    lifetime_bonus bigint DEFAULT 0 NOT NULL,
    created_at timestamp with time zone DEFAULT now() NOT NULL,
    CONSTRAINT wallets_available_check CHECK ((available >= 0)),
    CONSTRAINT wallets_lifetime_bonus_check CHECK ((lifetime_bonus >= 0)),
    CONSTRAINT wallets_lifetime_purchased_check CHECK ((lifetime_purchased >= 0)),
    CONSTRAINT wallets_reserved_check CHECK ((reserved >= 0))
);

ALTER TABLE ONLY billing.outbox ALTER COLUMN id SET DEFAULT nextval('billing.outbox_id_seq'::regclass);

ALTER TABLE ONLY billing.checkouts
    ADD CONSTRAINT checkouts_pkey PRIMARY KEY (session_id);

ALTER TABLE ONLY billing.grant_draws
    ADD CONSTRAINT grant_draws_pkey PRIMARY KEY (transfer_seq, grant_id);

ALTER TABLE ONLY billing.grants
    ADD CONSTRAINT grants_pkey PRIMARY KEY (id);

ALTER TABLE ONLY billing.inbox
    ADD CONSTRAINT inbox_pkey PRIMARY KEY (consumer, message_id);

ALTER TABLE ONLY billing.job_settlements
    ADD CONSTRAINT job_settlements_pkey PRIMARY KEY (job_id);

ALTER TABLE ONLY billing.low_balance_cursor
    ADD CONSTRAINT low_balance_cursor_pkey PRIMARY KEY (only_row);

ALTER TABLE ONLY billing.low_balance
    ADD CONSTRAINT low_balance_pkey PRIMARY KEY (account_id);

ALTER TABLE ONLY billing.outbox
    ADD CONSTRAINT outbox_message_id_key UNIQUE (message_id);

ALTER TABLE ONLY billing.outbox
    ADD CONSTRAINT outbox_pkey PRIMARY KEY (id);

ALTER TABLE ONLY billing.postings
    ADD CONSTRAINT postings_pkey PRIMARY KEY (transfer_seq, ledger_account);

ALTER TABLE ONLY billing.price_books
    ADD CONSTRAINT price_books_pkey PRIMARY KEY (version);

ALTER TABLE ONLY billing.prices
    ADD CONSTRAINT prices_pkey PRIMARY KEY (version, item);

ALTER TABLE ONLY billing.purchases
    ADD CONSTRAINT purchases_id_key UNIQUE (id);

ALTER TABLE ONLY billing.purchases
    ADD CONSTRAINT purchases_pkey PRIMARY KEY (reference);

ALTER TABLE ONLY billing.quotes
    ADD CONSTRAINT quotes_pkey PRIMARY KEY (id);

ALTER TABLE ONLY billing.reservations
    ADD CONSTRAINT reservations_pkey PRIMARY KEY (job_id);

ALTER TABLE ONLY billing.settlement_noops
    ADD CONSTRAINT settlement_noops_pkey PRIMARY KEY (id);

ALTER TABLE ONLY billing.top_up_bonuses
    ADD CONSTRAINT top_up_bonuses_pkey PRIMARY KEY (version, min_usd);

ALTER TABLE ONLY billing.transfers
    ADD CONSTRAINT transfers_id_key UNIQUE (id);

ALTER TABLE ONLY billing.transfers
    ADD CONSTRAINT transfers_key_key UNIQUE (key);

ALTER TABLE ONLY billing.transfers
    ADD CONSTRAINT transfers_pkey PRIMARY KEY (seq);

ALTER TABLE ONLY billing.wallets
    ADD CONSTRAINT wallets_pkey PRIMARY KEY (account_id);

CREATE INDEX checkouts_by_account ON billing.checkouts USING btree (account_id, created_at DESC);

CREATE INDEX grants_open ON billing.grants USING btree (account_id, id) WHERE (remaining > 0);

CREATE INDEX inbox_handled_at ON billing.inbox USING btree (handled_at);

CREATE INDEX postings_by_account ON billing.postings USING btree (account_id, ledger_account);

CREATE UNIQUE INDEX quotes_by_job ON billing.quotes USING btree (job_id) WHERE (job_id IS NOT NULL);

CREATE INDEX quotes_expiry ON billing.quotes USING btree (expires_at);

CREATE INDEX reservations_unconfirmed ON billing.reservations USING btree (created_at) WHERE ((state = 'held'::text) AND (confirmed_at IS NULL));

CREATE INDEX settlement_noops_by_job ON billing.settlement_noops USING btree (job_id);

CREATE INDEX transfers_by_account ON billing.transfers USING btree (account_id, seq DESC);

CREATE INDEX transfers_captures_by_time ON billing.transfers USING btree (account_id, created_at) WHERE (type = 'capture'::text);

CREATE TRIGGER grant_draws_immutable BEFORE DELETE OR UPDATE ON billing.grant_draws FOR EACH ROW EXECUTE FUNCTION billing.forbid_change();

CREATE TRIGGER postings_immutable BEFORE DELETE OR UPDATE ON billing.postings FOR EACH ROW EXECUTE FUNCTION billing.forbid_change();

CREATE TRIGGER postings_no_truncate BEFORE TRUNCATE ON billing.postings FOR EACH STATEMENT EXECUTE FUNCTION billing.forbid_change();

CREATE TRIGGER price_books_immutable BEFORE DELETE OR UPDATE ON billing.price_books FOR EACH ROW EXECUTE FUNCTION billing.forbid_change();

CREATE TRIGGER prices_immutable BEFORE DELETE OR UPDATE ON billing.prices FOR EACH ROW EXECUTE FUNCTION billing.forbid_change();

CREATE TRIGGER purchases_immutable BEFORE DELETE OR UPDATE ON billing.purchases FOR EACH ROW EXECUTE FUNCTION billing.forbid_change();

CREATE TRIGGER top_up_bonuses_immutable BEFORE DELETE OR UPDATE ON billing.top_up_bonuses FOR EACH ROW EXECUTE FUNCTION billing.forbid_change();

CREATE TRIGGER transfers_immutable BEFORE DELETE OR UPDATE ON billing.transfers FOR EACH ROW EXECUTE FUNCTION billing.forbid_change();

CREATE TRIGGER transfers_no_truncate BEFORE TRUNCATE ON billing.transfers FOR EACH STATEMENT EXECUTE FUNCTION billing.forbid_change();

ALTER TABLE ONLY billing.grant_draws
    ADD CONSTRAINT grant_draws_grant_id_fkey FOREIGN KEY (grant_id) REFERENCES billing.grants(id);

ALTER TABLE ONLY billing.grant_draws
    ADD CONSTRAINT grant_draws_transfer_seq_fkey FOREIGN KEY (transfer_seq) REFERENCES billing.transfers(seq);

ALTER TABLE ONLY billing.postings
    ADD CONSTRAINT postings_transfer_seq_fkey FOREIGN KEY (transfer_seq) REFERENCES billing.transfers(seq);

ALTER TABLE ONLY billing.prices
    ADD CONSTRAINT prices_version_fkey FOREIGN KEY (version) REFERENCES billing.price_books(version);

ALTER TABLE ONLY billing.top_up_bonuses
    ADD CONSTRAINT top_up_bonuses_version_fkey FOREIGN KEY (version) REFERENCES billing.price_books(version);
