-- People who sign in to the dashboard, their sessions, reset links, sign-in limits and the
-- contact requests of the public pages. Each person owns one gateway account (account_id is
-- gateway.accounts.id, created over internal HTTP at sign-up: no cross-schema reference).

CREATE TABLE users (
    id            text PRIMARY KEY,
    email         text NOT NULL CHECK (email = lower(email) AND length(email) <= 254),
    password_hash text NOT NULL,                 -- argon2id, PHC string
    -- Set once the gateway created the account; a row without one is a sign-up in progress.
    account_id    text UNIQUE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email ON users (email);

-- Server-side sessions: the cookie holds a random id, the table only its SHA-256.
CREATE TABLE sessions (
    id_hash      bytea PRIMARY KEY,
    user_id      text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    revoked_at   timestamptz,
    address      text,
    user_agent   text
);
CREATE INDEX sessions_user ON sessions (user_id) WHERE revoked_at IS NULL;

-- One-time password-reset links: only the token's SHA-256 is kept.
CREATE TABLE password_resets (
    token_hash  bytea PRIMARY KEY,
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX password_resets_user ON password_resets (user_id);

-- Failed sign-ins (and sign-ups) per email or client address in a fixed window.
CREATE TABLE signin_failures (
    scope        text NOT NULL CHECK (scope IN ('email', 'address', 'signup')),
    subject      text NOT NULL,                 -- SHA-256 hex of the email, or the address
    window_start timestamptz NOT NULL,
    failures     integer NOT NULL,
    PRIMARY KEY (scope, subject)
);

-- "Talk to us" requests from the public pages, read by sales (`clipmix-admin contact list`).
CREATE TABLE contact_requests (
    id          text PRIMARY KEY,
    email       text NOT NULL CHECK (length(email) <= 254),
    topic       text NOT NULL CHECK (length(topic) <= 64),
    company     text CHECK (length(company) <= 200),
    message     text CHECK (length(message) <= 4000),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX contact_requests_created ON contact_requests (created_at DESC);
