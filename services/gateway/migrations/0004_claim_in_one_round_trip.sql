-- A create with an Idempotency-Key takes the key's advisory lock and then reads the key's
-- record. Two statements were needed: one statement's snapshot is taken before its lock, so it
-- could miss a record committed by the lock's previous holder in between. A VOLATILE function
-- takes a fresh snapshot for each query it runs, so the read after the lock sees that record,
-- and the pair costs one round trip (docs/performance.md, "What the profile changed").
CREATE FUNCTION claim_idempotency_key(lock_key text, for_api_key text, for_key text)
RETURNS TABLE (got boolean, fingerprint bytea, response_status integer,
               response_headers jsonb, response_body bytea, pending boolean)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF NOT pg_try_advisory_xact_lock(hashtextextended(lock_key, 0)) THEN
        RETURN QUERY SELECT false, NULL::bytea, NULL::integer, NULL::jsonb, NULL::bytea,
                            NULL::boolean;
        RETURN;
    END IF;
    RETURN QUERY
        SELECT true, k.fingerprint, k.response_status, k.response_headers, k.response_body,
               k.lock_token IS NOT NULL
        FROM (SELECT 1) AS one
        LEFT JOIN idempotency_keys AS k
            ON k.api_key_id = for_api_key AND k.key = for_key AND k.expires_at > now();
END
$$;
