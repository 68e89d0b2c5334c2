-- Uptime: what each evaluation showed, counted per component and UTC hour. One evaluation
-- adds 1 to the column of the state the page showed (override applied), or to `maintenance`
-- when a scheduled window covered the component then. 90 days x 24 h x 6 components rows.
CREATE TABLE uptime_hours (
    component       text        NOT NULL,
    hour            timestamptz NOT NULL,
    operational     integer     NOT NULL DEFAULT 0,
    degraded        integer     NOT NULL DEFAULT 0,
    partial_outage  integer     NOT NULL DEFAULT 0,
    major_outage    integer     NOT NULL DEFAULT 0,
    no_data         integer     NOT NULL DEFAULT 0,
    maintenance     integer     NOT NULL DEFAULT 0,
    PRIMARY KEY (component, hour)
);

-- Incidents are measured (opened and resolved by the evaluation) or posted by an operator.
-- `state` follows hosted status pages: investigating, identified, monitoring, resolved.
ALTER TABLE incidents
    ADD COLUMN origin      text   NOT NULL DEFAULT 'measured' CHECK (origin IN ('measured', 'operator')),
    ADD COLUMN title       text,
    ADD COLUMN state       text   NOT NULL DEFAULT 'investigating'
        CHECK (state IN ('investigating', 'identified', 'monitoring', 'resolved')),
    ADD COLUMN components  text[] NOT NULL DEFAULT '{}',
    ADD COLUMN updated_at  timestamptz;
UPDATE incidents SET components = ARRAY[component], updated_at = COALESCE(resolved_at, started_at),
    state = CASE WHEN resolved_at IS NULL THEN 'investigating' ELSE 'resolved' END;
-- At most one ongoing *measured* incident per component; operators may post any number.
DROP INDEX incidents_ongoing;
CREATE UNIQUE INDEX incidents_measured_ongoing ON incidents (component)
    WHERE resolved_at IS NULL AND origin = 'measured';

-- The timeline of an incident: one row per update, oldest first.
CREATE TABLE incident_updates (
    id           text        PRIMARY KEY,
    incident_id  text        NOT NULL REFERENCES incidents (id),
    state        text        NOT NULL,
    message      text        NOT NULL,
    created_at   timestamptz NOT NULL
);
CREATE INDEX incident_updates_incident ON incident_updates (incident_id, created_at);

-- Scheduled maintenance. `announced` is the last state subscribers were told (scheduled,
-- in_progress, completed, canceled): the evaluation announces a window starting or ending.
CREATE TABLE maintenances (
    id            text        PRIMARY KEY,
    title         text        NOT NULL,
    message       text        NOT NULL,
    components    text[]      NOT NULL,
    starts_at     timestamptz NOT NULL,
    ends_at       timestamptz NOT NULL CHECK (ends_at > starts_at),
    canceled_at   timestamptz,
    announced     text        NOT NULL DEFAULT 'scheduled',
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);
CREATE INDEX maintenances_ends_at ON maintenances (ends_at);

-- Customers' status webhook endpoints (per account; the secret is shown once, at creation).
CREATE TABLE subscriptions (
    id          text        PRIMARY KEY,
    account_id  text        NOT NULL,
    url         text        NOT NULL,
    secret      text        NOT NULL,
    created_at  timestamptz NOT NULL
);
CREATE INDEX subscriptions_account ON subscriptions (account_id, created_at);

-- What happened to incidents and maintenance, as delivered (the body is signed as stored).
CREATE TABLE status_events (
    id           text        PRIMARY KEY,
    type         text        NOT NULL,
    body         bytea       NOT NULL,
    occurred_at  timestamptz NOT NULL
);

-- One delivery per (event, subscription), retried on a bounded schedule; claimed under a lease.
CREATE TABLE deliveries (
    event_id         text        NOT NULL REFERENCES status_events (id) ON DELETE CASCADE,
    subscription_id  text        NOT NULL REFERENCES subscriptions (id) ON DELETE CASCADE,
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,           -- NULL once settled
    leased_until     timestamptz,
    delivered_at     timestamptz,
    last_error       text,
    last_status      integer,
    PRIMARY KEY (event_id, subscription_id)
);
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE next_attempt_at IS NOT NULL;
