-- Each service's report version moves on in every transaction that changes its records
-- (and every service's when reference data or settings change). Reports keep the counts
-- of a service and period with the version they were made from, and reuse them only
-- while the version is the same, so a write is always seen by the next report.
CREATE TABLE service_versions (
    service_id INTEGER NOT NULL PRIMARY KEY,
    version BIGINT NOT NULL
);

CREATE TABLE report_facts (
    service_id INTEGER NOT NULL,
    period_from TEXT NOT NULL,
    period_to TEXT NOT NULL,
    version BIGINT NOT NULL,
    facts TEXT NOT NULL,
    PRIMARY KEY (service_id, period_from, period_to)
);
