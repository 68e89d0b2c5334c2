-- Restricted keys (rk_live_/rk_test_): one access level per resource, e.g.
-- {"jobs": "read", "webhook": "write", "wallet": "none"}. NULL: a full key (sk_), which may do
-- everything. Read by the auth statement itself (no round trip of its own).
ALTER TABLE api_keys ADD COLUMN permissions jsonb CHECK (
    permissions IS NULL OR (
        jsonb_typeof(permissions) = 'object'
        AND permissions ?& ARRAY['jobs', 'webhook', 'wallet']
        AND permissions - 'jobs' - 'webhook' - 'wallet' = '{}'::jsonb
        AND permissions ->> 'jobs' IN ('none', 'read', 'write')
        AND permissions ->> 'webhook' IN ('none', 'read', 'write')
        AND permissions ->> 'wallet' IN ('none', 'read', 'write')
    )
);

-- keys.expiring: one row per key and expiry whose notice was staged in the outbox (in the same
-- transaction), so a restart or a second replica never announces the same expiry twice. A key
-- whose expiry moves gets a notice for the new one.
CREATE TABLE key_expiry_notices (
    api_key_id  text        NOT NULL,
    expires_at  timestamptz NOT NULL,
    notified_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (api_key_id, expires_at)
);
-- The chore looks for keys whose expiry is near: only keys with one are indexed.
CREATE INDEX api_keys_expiring ON api_keys (expires_at)
    WHERE expires_at IS NOT NULL AND revoked_at IS NULL AND rolled_to IS NULL;
