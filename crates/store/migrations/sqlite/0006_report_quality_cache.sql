-- The data-quality counts of a service and period, kept like report_facts.
CREATE TABLE report_quality (
    service_id INTEGER NOT NULL,
    period_from TEXT NOT NULL,
    period_to TEXT NOT NULL,
    version BIGINT NOT NULL,
    facts TEXT NOT NULL,
    PRIMARY KEY (service_id, period_from, period_to)
);
