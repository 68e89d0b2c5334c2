-- When a key was last presented. The auth statement already writes the key's rate_buckets row
-- on every request (its refilled_at is the last request's time), so the hot path gains nothing.
-- That table is UNLOGGED (a crash empties it): a chore copies the times here about once a
-- minute, so a crash forgets at most that much.
ALTER TABLE api_keys ADD COLUMN last_used_at timestamptz;
-- A rolled key names the key that replaced it: a key is rolled once (a second roll of the same
-- key, e.g. a form sent twice, is refused instead of minting a key whose secret nobody saw).
ALTER TABLE api_keys ADD COLUMN rolled_to text;
