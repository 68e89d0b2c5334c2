-- Notices about the whole account (a wallet running low) name no key.
ALTER TABLE notices ALTER COLUMN api_key_id DROP NOT NULL;
