-- The baseline of ledger_reserve_capture (bench/pipeline/ledger_baseline.py): the statements
-- of billing's reserve() and capture() (services/billing/migrations 0002 + 0004) on their
-- happy path, without the ledger's logic (no branches, checks, triggers or outcomes): tables
-- with the same keys and indexes on a scratch schema, and the statements in two functions, so
-- each is one round trip and one transaction with cached plans, as a ledger function call is.
-- Run with search_path set to the scratch schema (the bench creates and drops it).
CREATE TABLE wallets (account_id text PRIMARY KEY, available bigint NOT NULL,
    reserved bigint NOT NULL DEFAULT 0);
CREATE TABLE reservations (job_id text PRIMARY KEY, account_id text NOT NULL,
    amount bigint NOT NULL, state text NOT NULL DEFAULT 'held',
    created_at timestamptz NOT NULL DEFAULT now(), settled_at timestamptz);
CREATE TABLE noops (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, job_id text);
CREATE INDEX ON noops (job_id);
CREATE TABLE transfers (seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key text NOT NULL UNIQUE, account_id text NOT NULL, amount bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX ON transfers (account_id, seq DESC);
CREATE TABLE postings (transfer_seq bigint NOT NULL, account_id text NOT NULL,
    ledger_account text NOT NULL, amount bigint NOT NULL,
    PRIMARY KEY (transfer_seq, ledger_account));
CREATE INDEX ON postings (account_id, ledger_account);
CREATE TABLE grants (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id text NOT NULL, remaining bigint NOT NULL);
CREATE INDEX ON grants (account_id, id) WHERE remaining > 0;
CREATE TABLE draws (transfer_seq bigint NOT NULL, grant_id bigint NOT NULL,
    amount bigint NOT NULL, PRIMARY KEY (transfer_seq, grant_id));

-- 7 statements, as reserve(): advisory lock, no-op check, claim, wallet, balance check,
-- transfer, postings.
CREATE FUNCTION reserve(j text, a text, n bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_seq bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('bench.reservation:' || j, 0));
    PERFORM EXISTS (SELECT 1 FROM noops WHERE job_id = j);
    INSERT INTO reservations (job_id, account_id, amount) VALUES (j, a, n);
    UPDATE wallets SET available = available - n, reserved = reserved + n
     WHERE account_id = a AND available >= n;
    PERFORM (SELECT sum(x) FROM unnest(ARRAY[-n, n]) x);
    INSERT INTO transfers (key, account_id, amount) VALUES ('reserve:' || j, a, n)
    RETURNING seq INTO v_seq;
    INSERT INTO postings VALUES (v_seq, a, 'available', -n), (v_seq, a, 'reserved', n);
END $$;

-- 8 statements, as capture(): reservation, wallet, grants locked, grant drawn, balance
-- check, transfer, postings, draw.
CREATE FUNCTION capture(j text, a text, n bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_grant bigint;
    v_seq bigint;
BEGIN
    UPDATE reservations SET state = 'captured', settled_at = now()
     WHERE job_id = j AND state = 'held';
    UPDATE wallets SET reserved = reserved - n WHERE account_id = a;
    SELECT min(id) INTO v_grant FROM (SELECT id FROM grants
      WHERE account_id = a AND remaining > 0 ORDER BY id FOR UPDATE) g;
    UPDATE grants SET remaining = remaining - n WHERE id = v_grant;
    PERFORM (SELECT sum(x) FROM unnest(ARRAY[-n, n, 0]) x);
    INSERT INTO transfers (key, account_id, amount) VALUES ('capture:' || j, a, n)
    RETURNING seq INTO v_seq;
    INSERT INTO postings VALUES (v_seq, a, 'reserved', -n), (v_seq, a, 'revenue', n);
    INSERT INTO draws VALUES (v_seq, v_grant, n);
END $$;
