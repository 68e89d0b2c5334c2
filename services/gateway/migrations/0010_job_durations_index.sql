-- The ETA of a quote (adapters/eta.py): p50/p95 of created -> completed for live jobs of one
-- service and tier that completed within the last hour. This index holds exactly those rows
-- (completed live jobs), ordered by service, tier and completion time, with `created_at`
-- included, so the query reads one range of it and never the table. The tier expression must
-- stay the query's own.
CREATE INDEX jobs_completed_live
    ON jobs (service, (coalesce(input->>'tier', input->>'mode', '')), completed_at DESC)
    INCLUDE (created_at)
    WHERE status = 'completed' AND NOT test;
