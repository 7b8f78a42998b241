-- An audit entry's detail (which holds the values of the records it is about, personal
-- data among them) is hashed apart: the entry's chain hash covers `detail_hash`, so an
-- erased client's details can be removed from the log (`detail` set to NULL, the hash
-- kept) while every chain still verifies. Entries written before this have no
-- `detail_hash` and are chained over their detail as before.
ALTER TABLE audit_log ADD COLUMN detail_hash TEXT;

-- What remains of an erased client: its reference within the service, when, by whom and
-- why. No personal data.
CREATE TABLE erasures (
    service_id INTEGER NOT NULL,
    client_ref TEXT NOT NULL,
    erased_at TEXT NOT NULL,
    erased_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (service_id, client_ref)
);
