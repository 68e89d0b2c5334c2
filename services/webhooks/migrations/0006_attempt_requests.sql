-- The signature doctor (issue 18): each attempt keeps exactly what went out — the request
-- headers as written (the signatures among them, never a secret) and the body bytes that were
-- signed — so POST /api/v1/webhook/deliveries/{id}/diagnose can compare them with what the
-- customer's server received. Kept as long as the log row (the newest 100 per key). `json`,
-- not `jsonb`: the headers keep their order and spelling. NULL when nothing was sent (the
-- endpoint was removed, the name did not resolve) and for attempts logged before this.
ALTER TABLE attempts
    ADD COLUMN request_headers json,
    ADD COLUMN request_body    bytea;
