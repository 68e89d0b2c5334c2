-- capture_many() (0009) as set statements instead of capture() per job. A capture batch holds
-- the wallets it touches until its COMMIT, and reservations of those wallets wait for it: the
-- shorter the batch, the shorter the wait. Per batch now: the reservations locked and settled
-- in one statement each, per account one wallet update (by the account's total) and one read
-- of its grants, then one statement each for the grants drawn, the transfers, their postings
-- and their draws, instead of about eight statements per job.
--
-- Each job is settled as capture() settles it alone, in the same order (accounts in order,
-- a job's account in arrival order): the same transfer (`capture:<job>`, reserved_after the
-- wallet's reserve after this job, available_after its available), postings (reserved ->
-- revenue for the paid part, bonus_spent for the bonus part) and draws (bonus grants first, then
-- paid, oldest first within each kind); a job not held, or a job twice in the batch, is a
-- recorded no-op. Locks in the order of 0009: reservations by job id, then per account (in
-- order) its wallet, then its grants.

CREATE OR REPLACE FUNCTION capture_many(p_jobs text[], p_reason text)
RETURNS TABLE (job_id text, outcome text, amount bigint, paid bigint, bonus bigint)
LANGUAGE plpgsql AS $$
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
