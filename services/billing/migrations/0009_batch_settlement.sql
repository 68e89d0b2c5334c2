-- Settling many jobs in one statement: billing's event consumer takes its job events in
-- batches (services/messaging/batch.py), one transaction per batch, and captures, releases or
-- confirms a batch's jobs with one call each (services/billing/entrypoints/events.py).
--
-- Each job is settled exactly as capture() / release() settle it alone (the same functions run
-- per job, in the same transaction): the same transfers, postings, draws and recorded no-ops.
-- What the batch adds is one order of locks for all of them, so two batches (two billing
-- processes), or a batch and a single settlement or reservation, never wait on each other in a
-- cycle: first each job's per-job advisory lock (release only, as release() takes it), by job
-- id; then the jobs' reservations, by job id; then the jobs are settled grouped by account
-- (wallet, then that wallet's grants), accounts in order. The single-job paths take at most one
-- wallet after their own job's locks, so they cannot close a cycle with a batch either.

CREATE FUNCTION capture_many(p_jobs text[], p_reason text)
RETURNS TABLE (job_id text, outcome text, amount bigint, paid bigint, bonus bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    v_job text;
BEGIN
    PERFORM 1 FROM reservations r WHERE r.job_id = ANY (p_jobs) ORDER BY r.job_id FOR UPDATE;
    FOR v_job IN
        SELECT t.j FROM unnest(p_jobs) WITH ORDINALITY AS t (j, n)
          LEFT JOIN reservations r ON r.job_id = t.j
         ORDER BY r.account_id, t.n
    LOOP
        RETURN QUERY SELECT v_job, c.outcome, c.amount, c.paid, c.bonus
                       FROM capture(v_job, p_reason) c;
    END LOOP;
END $$;

CREATE FUNCTION release_many(p_jobs text[], p_reason text)
RETURNS TABLE (job_id text, outcome text, amount bigint)
LANGUAGE plpgsql AS $$
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
