-- Per-language settlement of translations (docs/jobs.md, "Per-language results"): a translation
-- that delivered some of its languages is charged only for those. Its reservation is settled in
-- one call: the delivered languages' share is captured (`capture:<job>`, drawn from the grants as
-- any capture), and each language not delivered is released by a transfer of its own
-- (`release:<job>:<language>`, its language in `reference`). The reservation is then `captured`
-- (something was charged); the amounts always add up to what was reserved, which
-- ledger_problems() now checks for every settled reservation.
--
-- The shares come from the caller (billing's domain: the price is per language, so each
-- language's share is exact); this function refuses shares that do not add up to the
-- reservation. Outcomes: captured | already_captured / already_released / unknown (no-ops).
CREATE FUNCTION settle_languages(
    p_job text, p_reason text, p_capture bigint, p_languages text[], p_releases bigint[]
) RETURNS TABLE (outcome text, amount bigint, paid bigint, bonus bigint, released bigint)
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

-- As before, plus: every settled reservation's capture and releases add up to what it reserved
-- (a held one has neither).
CREATE OR REPLACE FUNCTION ledger_problems() RETURNS TABLE (problem text) LANGUAGE sql STABLE
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
