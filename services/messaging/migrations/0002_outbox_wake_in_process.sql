-- The relay is now woken in-process by the code that commits (every service relays its own
-- outbox), with the poll as the safety net. NOTIFY took a database-wide lock from commit
-- until the commit was flushed, so every transaction that staged a message committed one at
-- a time; dropping it doubled the gateway's create throughput (docs/decisions.md, ADR-019).
DROP TRIGGER outbox_notify ON outbox;
DROP FUNCTION outbox_notify();
