-- Clients whose processing is restricted (UK GDPR Article 18): their records stay
-- stored, but they leave the capture worklists and research extracts until the mark is
-- lifted. Keyed by the client's reference within the service.
CREATE TABLE restrictions (
    service_id BIGINT NOT NULL,
    client_ref TEXT NOT NULL,
    restricted_at TEXT NOT NULL,
    restricted_by TEXT NOT NULL,
    reason TEXT NOT NULL,
    PRIMARY KEY (service_id, client_ref)
);
