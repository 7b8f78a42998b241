-- A health trainer's caseload is their open episodes: found through this index instead
-- of reading every open episode of the service (about 2,000 in the demonstration's
-- services) on each view.
CREATE INDEX episodes_open_by_lead ON episodes (service_id, lead_worker_id, first_contact_on)
    WHERE closed_on IS NULL;

-- A service's audit trail is its latest entries: read in order from this index instead
-- of sorting every entry of the service (16 ms a view in the demonstration).
CREATE INDEX audit_log_service_latest ON audit_log (service_id, audit_id);
