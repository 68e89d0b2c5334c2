-- Group commit of reservations: billing gathers the reservations that arrive together (its
-- POST /internal/v1/reservations, services/billing/reservations.py) and makes them in one
-- statement and one transaction, so one commit (one WAL flush) serves them all; each caller is
-- answered after that commit, with its own outcome.
--
-- Each reservation is made exactly as reserve() makes it alone (reserve() runs per job, in
-- arrival order within an account): the same outcomes, transfers and postings; a later one in
-- the batch sees the earlier ones (a wallet the batch emptied answers `insufficient`, a job id
-- twice answers `repeat`). Locks in one order, as the batch settlements of 0009: every job's
-- advisory lock first (by job id), then the wallets, accounts in order. Rows come back with the
-- position (1-based) of their job in the arrays.

CREATE FUNCTION reserve_many(
    p_jobs text[], p_accounts text[], p_services text[], p_amounts bigint[],
    p_price_versions integer[]
) RETURNS TABLE (n bigint, outcome text, amount bigint, price_version integer, available bigint)
LANGUAGE plpgsql AS $$
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
