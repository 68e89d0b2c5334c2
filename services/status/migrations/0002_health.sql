-- Outcomes per component, signal source and time bucket (a minute in production): counts,
-- platform errors and a latency histogram (counts per contracts.status.LATENCY_BOUNDS + overflow).
CREATE TABLE traffic (
    bucket_start  timestamptz NOT NULL,
    component     text        NOT NULL,
    source        text        NOT NULL,  -- requests | jobs | deliveries
    count         bigint      NOT NULL,
    errors        bigint      NOT NULL,
    latency       bigint[]    NOT NULL,
    PRIMARY KEY (bucket_start, component, source)
);

-- Each component's confirmed state, the state waiting for confirmation, and the figures of
-- the last evaluation.
CREATE TABLE component_health (
    component        text        PRIMARY KEY,
    state            text        NOT NULL,
    candidate        text,
    candidate_seen   integer     NOT NULL DEFAULT 0,
    candidate_since  timestamptz,
    measured         text        NOT NULL,
    reason           text,
    stats            jsonb       NOT NULL,
    evaluated_at     timestamptz NOT NULL
);

-- When the health was last evaluated (one row): replicas skip a round another one just did.
CREATE TABLE evaluations (
    singleton    boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    computed_at  timestamptz NOT NULL
);

CREATE TABLE incidents (
    id           text        PRIMARY KEY,
    component    text        NOT NULL,
    impact       text        NOT NULL,
    reason       text        NOT NULL,
    started_at   timestamptz NOT NULL,
    resolved_at  timestamptz
);
-- At most one ongoing incident per component.
CREATE UNIQUE INDEX incidents_ongoing ON incidents (component) WHERE resolved_at IS NULL;
CREATE INDEX incidents_resolved_at ON incidents (resolved_at);

-- Oncall's time-limited manual states.
CREATE TABLE overrides (
    component   text        PRIMARY KEY,
    state       text        NOT NULL,
    reason      text        NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);

-- The worst state shown per component and UTC day: the 90-day history bars.
CREATE TABLE daily_status (
    day        date     NOT NULL,
    component  text     NOT NULL,
    severity   smallint NOT NULL,  -- domain.SEVERITY of the worst state that day
    PRIMARY KEY (day, component)
);
