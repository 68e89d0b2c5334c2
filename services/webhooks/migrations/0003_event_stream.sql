-- The events API (GET /api/v1/events) and `clipmix webhooks listen` read this table as a
-- stream. A stream ordered by an identity column alone can skip a row: a transaction that took
-- seq 11 may commit after one that took seq 12 was read, and the reader's cursor is past it.
-- So each row also keeps the id of the transaction that wrote it, and readers only take rows
-- whose transaction is older than every transaction still running (pg_snapshot_xmin); those
-- can no longer be joined by an earlier row. See docs/webhooks.md, "Events API".
ALTER TABLE events
    ADD COLUMN seq         bigint GENERATED ALWAYS AS IDENTITY,
    ADD COLUMN txid        xid8        NOT NULL DEFAULT pg_current_xact_id(),
    -- The event's own time, the `created` of its body (rows from before this column use
    -- created_at).
    ADD COLUMN occurred_at timestamptz;

CREATE INDEX events_key_stream ON events (api_key_id, txid, seq);
CREATE INDEX events_key_seq ON events (api_key_id, seq DESC);
DROP INDEX events_key_created;
