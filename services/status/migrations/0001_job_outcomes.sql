-- Job outcomes per product service and minute: the raw material of per-service health.
CREATE TABLE job_outcomes (
    minute        timestamptz NOT NULL,
    service       text        NOT NULL,
    outcome       text        NOT NULL,
    count         integer     NOT NULL,
    PRIMARY KEY (minute, service, outcome)
);
