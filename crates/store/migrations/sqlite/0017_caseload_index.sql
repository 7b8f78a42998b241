-- A health trainer's caseload is their open episodes: found through this index instead
-- of reading every open episode of the service (about 2,000 in the demonstration's
-- services) on each view.
CREATE INDEX episodes_open_by_lead ON episodes (service_id, lead_worker_id, first_contact_on)
    WHERE closed_on IS NULL;
